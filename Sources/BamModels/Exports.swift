@_exported import BamFormats
@_exported import BamTensors
