@_exported import BamTensors
