import BamTensors
import Foundation

/// A checkpoint's tensors under their HF (transformers) names, whatever the container: safetensors
/// (single or sharded), GGUF or PyTorch .bin. Everything above the formats layer reads weights
/// through this, so models, mixing and conversion never care where the bytes came from.
public protocol TensorStore: AnyObject, Sendable {
    /// A human-readable description of where the tensors come from (a directory or file path).
    var location: String { get }
    /// Tensor names, in storage order.
    var names: [String] { get }
    func info(_ name: String) -> TensorInfo?
    /// The stored bytes, in `info(name).dtype`, valid while the store lives. Stores whose tensors
    /// need transformation to match HF layout (GGUF's permuted Q/K) return the transformed bytes.
    func bytes(_ name: String) throws -> UnsafeRawBufferPointer
    /// The tensor as float32: zero-copy when stored as aligned F32, converted otherwise.
    func tensor(_ name: String) throws -> Tensor
    /// Hints that a tensor's bytes will not be needed again soon (streaming). Pointers from an
    /// earlier bytes(name) call are invalid afterwards unless the caller holds `bytesOwner(name)`.
    func release(_ name: String)
    /// An object that keeps the bytes of `bytes(name)` valid while it lives, even after
    /// `release(name)` (which for a mapped file only advises the kernel, but frees a transformed
    /// copy): what a borrower of the bytes (an inference `WeightMatrix`) holds. Default: the store.
    func bytesOwner(_ name: String) -> AnyObject
}

/// Bytes a store allocated for a tensor (a transformed copy), freed when the last holder lets go.
public final class OwnedBytes: @unchecked Sendable {
    public let bytes: UnsafeMutableRawBufferPointer
    public init(_ bytes: UnsafeMutableRawBufferPointer) { self.bytes = bytes }
    deinit { bytes.deallocate() }
}

extension TensorStore {
    public func bytesOwner(_ name: String) -> AnyObject { self }

    public func contains(_ name: String) -> Bool { info(name) != nil }

    /// The tensor, checked against the shape the caller expects.
    public func tensor(_ name: String, shape: [Int]) throws -> Tensor {
        guard let i = info(name) else {
            throw BamError.format(location, at: .tensor(name), "the tensor is missing", expected: "shape \(shape)", found: "no such tensor")
        }
        guard i.shape == shape else {
            throw BamError.mismatch("the shape differs from the one the config implies", file: i.file, at: .tensor(name),
                                    expected: "\(shape)", found: "\(i.shape)")
        }
        return try tensor(name)
    }

    /// Float32 decoding shared by stores: borrows aligned F32 bytes, converts anything else.
    public func decodeFloat32(_ name: String, owner: AnyObject) throws -> Tensor {
        guard let i = info(name) else { throw BamError.format(location, at: .tensor(name), "the tensor is missing") }
        let raw = try bytes(name)
        if i.dtype == .f32, let base = raw.baseAddress, Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 {
            return Tensor(shape: i.shape, borrowing: UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Float.self)),
                          owner: owner)
        }
        let t = Tensor(shape: i.shape)
        try decodeChecked(raw, i, into: t.data)
        return t
    }

    /// Decodes a tensor's stored bytes after checking them against its dtype and shape (whole
    /// blocks, exact byte length); failures name the file and tensor.
    public func decodeChecked(_ raw: UnsafeRawBufferPointer, _ i: TensorInfo, into out: UnsafeMutablePointer<Float>) throws {
        do {
            try DTypeConversion.toFloat32(raw, dtype: i.dtype, count: i.count, into: out)
        } catch let TensorError.unsupportedDType(d, what) {
            throw BamError(.unsupported, file: i.file, at: .tensor(i.name), "unsupported dtype for \(what)", found: d.rawValue)
        } catch let TensorError.shapeMismatch(what) {
            throw BamError(.format, file: i.file, at: .tensor(i.name), "(shape \(i.shape), \(i.dtype.rawValue)): \(what)")
        }
    }
}

/// An HF safetensors checkpoint: `model.safetensors`, or shards listed by
/// `model.safetensors.index.json`, or (without an index) every `*.safetensors` in the directory.
public final class SafetensorsStore: TensorStore, @unchecked Sendable {
    public let location: String
    public let files: [SafetensorsFile]
    private let map: [String: Int]   // tensor name -> index in `files`
    public let names: [String]

    public init(directory: URL) throws {
        location = directory.path
        let fm = FileManager.default
        let indexURL = directory.appendingPathComponent("model.safetensors.index.json")
        var shardNames: [String]
        var declared: [String: String]? = nil
        if fm.fileExists(atPath: indexURL.path) {
            let index = try readJSONFile(indexURL)
            guard let wm = index["weight_map"]?.objectValue else {
                throw BamError.format(indexURL.path, "missing object `weight_map`")
            }
            var d: [String: String] = [:]
            for (k, v) in wm.pairs {
                guard let f = v.stringValue else { throw BamError.format(indexURL.path, at: .key("weight_map.\(k)"), expected: "a file name", found: v.serialized(indent: nil)) }
                guard !f.contains("/") && f != ".." else {
                    throw BamError.format(indexURL.path, at: .key("weight_map.\(k)"), "the shard lies outside the checkpoint directory", found: f)
                }
                d[k] = f
            }
            declared = d
            shardNames = Array(Set(d.values)).sorted()
        } else {
            let all = (try? fm.contentsOfDirectory(atPath: directory.path)) ?? []
            shardNames = all.filter { $0.hasSuffix(".safetensors") && !$0.hasPrefix(".") }.sorted()
            if shardNames.contains("model.safetensors") { shardNames = ["model.safetensors"] }
        }
        guard !shardNames.isEmpty else {
            throw BamError.format(directory.path, "no *.safetensors files found")
        }
        var files: [SafetensorsFile] = []
        var map: [String: Int] = [:]
        var names: [String] = []
        for (i, s) in shardNames.enumerated() {
            let url = directory.appendingPathComponent(s)
            guard fm.fileExists(atPath: url.path) else {
                throw BamError.format(indexURL.path, "lists shard \(s), which does not exist in \(directory.path)")
            }
            let f = try SafetensorsFile(path: url.path)
            for n in f.names {
                if map[n] != nil {
                    throw BamError.format(url.path, "tensor `\(n)` also appears in \(files[map[n]!].path)")
                }
                map[n] = i
                names.append(n)
            }
            files.append(f)
        }
        if let declared {
            for (n, f) in declared {
                guard let i = map[n] else {
                    throw BamError.format(indexURL.path, "weight_map names `\(n)` in \(f), but that shard does not contain it")
                }
                guard (files[i].path as NSString).lastPathComponent == f else {
                    throw BamError.format(indexURL.path, "weight_map puts `\(n)` in \(f), but it is in \(files[i].path)")
                }
            }
            for n in names where declared[n] == nil {
                throw BamError.format(indexURL.path, "tensor `\(n)` is in a shard but missing from weight_map")
            }
        }
        self.files = files
        self.map = map
        self.names = names
    }

    public func info(_ name: String) -> TensorInfo? { map[name].flatMap { files[$0].entry(name)?.info } }

    public func bytes(_ name: String) throws -> UnsafeRawBufferPointer {
        guard let i = map[name] else { throw BamError.format(location, at: .tensor(name), "the tensor is missing") }
        return try files[i].bytes(name)
    }

    public func tensor(_ name: String) throws -> Tensor {
        guard let i = map[name] else { throw BamError.format(location, at: .tensor(name), "the tensor is missing") }
        return try decodeFloat32(name, owner: files[i].file)
    }

    public func release(_ name: String) {
        if let i = map[name] { files[i].release(name) }
    }
}

/// Tensors held in memory under their names (tests, training checkpoints, conversions).
public final class MemoryStore: TensorStore, @unchecked Sendable {
    public let location: String
    public private(set) var names: [String] = []
    private var tensors: [String: Tensor] = [:]

    public init(location: String = "<memory>", _ pairs: [(String, Tensor)] = []) {
        self.location = location
        for (n, t) in pairs { set(n, t) }
    }

    public func set(_ name: String, _ t: Tensor) {
        if tensors[name] == nil { names.append(name) }
        tensors[name] = t
    }

    public func info(_ name: String) -> TensorInfo? {
        tensors[name].map { TensorInfo(name: name, dtype: .f32, shape: $0.shape, byteCount: $0.byteCount, file: location) }
    }

    public func bytes(_ name: String) throws -> UnsafeRawBufferPointer {
        guard let t = tensors[name] else { throw BamError.format(location, at: .tensor(name), "the tensor is missing") }
        return UnsafeRawBufferPointer(start: t.data, count: t.byteCount)
    }

    public func tensor(_ name: String) throws -> Tensor {
        guard let t = tensors[name] else { throw BamError.format(location, at: .tensor(name), "the tensor is missing") }
        return t
    }

    public func release(_ name: String) {}

    /// `set` may replace a tensor: a borrower holds the tensor itself.
    public func bytesOwner(_ name: String) -> AnyObject { tensors[name] ?? self }
}
