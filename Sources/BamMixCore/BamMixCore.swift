// The `BamMixCore` product's one import: reading and running models — tensors and kernels
// (BamTensors), checkpoint and GGUF formats (BamFormats), tokenizers (BamTokenizers) and the
// transformer itself (BamModels). It needs neither swift-crypto nor the plots nor the corpora.
@_exported import BamFormats
@_exported import BamModels
@_exported import BamTensors
@_exported import BamTokenizers
