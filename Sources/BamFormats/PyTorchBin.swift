import BamTensors
import Foundation

/// One `torch.save`d state dict (`pytorch_model.bin`, PyTorch >= 1.6's zip format): a ZIP archive
/// holding `<name>/data.pkl` (the pickled dict of tensors, whose storages are persistent ids) and
/// one `<name>/data/<key>` entry per storage with its raw little-endian bytes. The pickle is run by
/// the restricted unpickler in Pickle.swift, so no code from the file is ever executed.
/// Tensors must be contiguous; several tensors may share a storage (tied weights) or view part of
/// one (storage offsets).
public final class PyTorchBinFile: @unchecked Sendable {
    public let path: String
    public let archive: ZipArchive
    /// Tensor names in pickle order.
    public let names: [String]
    private var tensors: [String: (info: TensorInfo, entry: ZipArchive.Entry, byteOffset: Int)] = [:]
    private let lock = NSLock()
    private var inflated: [String: UnsafeMutableRawBufferPointer] = [:]   // deflated storages, by entry name

    public init(path: String) throws {
        self.path = path
        let file = try MappedFile(path: path)
        if file.size >= 2, let b = file.base, b.load(as: UInt8.self) == 0x80 {
            throw BamError.unsupported("this is a legacy (PyTorch < 1.6) torch.save file, not the zip format; load and re-save it with a current torch, or convert it to safetensors", file: path)
        }
        archive = try ZipArchive(file: file)
        let pkls = archive.entries.filter { $0.name.hasSuffix("/data.pkl") && $0.name.split(separator: "/").count == 2 }
        guard pkls.count == 1, let pkl = pkls.first else {
            throw BamError.format(path, "expected exactly one `<archive>/data.pkl` in the zip (a torch.save checkpoint), found \(pkls.count)")
        }
        let prefix = String(pkl.name.dropLast("data.pkl".count))
        if let bo = archive.entry(prefix + "byteorder") {
            let order = String(decoding: try archive.data(bo), as: UTF8.self)
            guard order == "little" else { throw BamError.unsupported("tensors are stored \(order)-endian; bam-mix reads little-endian checkpoints", file: path) }
        }
        guard pkl.uncompressedSize <= 1 << 30 else { throw BamError.format(path, "data.pkl is \(pkl.uncompressedSize) bytes, implausibly large for a state dict") }
        let root = try Pickle.load(try archive.data(pkl), file: path)
        guard case let .dict(box) = root else {
            throw BamError.format(path, "the pickle holds a \(root.kind), a dict of tensors (a state dict) expected")
        }
        var names: [String] = []
        for (k, v) in box.pairs {
            guard case let .string(name) = k else { throw BamError.format(path, "a state dict key is a \(k.kind), strings expected") }
            guard case let .tensor(t) = v else {
                throw BamError.unsupported("`\(name)` is a \(v.kind), not a tensor; bam-mix reads plain state dicts (what save_pretrained writes)", file: path)
            }
            guard tensors[name] == nil else { throw BamError.format(path, "tensor `\(name)` appears twice") }
            let s = t.storage
            guard let entry = archive.entry(prefix + "data/" + s.key) else {
                throw BamError.format(path, "tensor `\(name)`: storage `\(s.key)` has no `data/\(s.key)` entry in the zip")
            }
            let elem = s.dtype.size
            guard s.numel <= Int.max / elem, entry.uncompressedSize == s.numel * elem else {
                throw BamError.format(path, "tensor `\(name)`: storage `\(s.key)` should hold \(s.numel) x \(elem) bytes but its entry has \(entry.uncompressedSize)")
            }
            var numel = 1
            for d in t.shape {
                let (m, o) = numel.multipliedReportingOverflow(by: d)
                guard !o else { throw BamError.format(path, "tensor `\(name)`: size \(t.shape) overflows") }
                numel = m
            }
            // Contiguous row-major strides (dimensions of size 1 may carry any stride).
            var expected = 1
            for i in stride(from: t.shape.count - 1, through: 0, by: -1) {
                if t.shape[i] != 1, numel > 0, t.stride[i] != expected {
                    throw BamError.unsupported("tensor `\(name)` is not contiguous (size \(t.shape), stride \(t.stride)); re-save the state dict with contiguous tensors (`{k: v.contiguous() for k, v in sd.items()}`)", file: path)
                }
                expected *= t.shape[i]
            }
            guard t.offset <= s.numel, numel <= s.numel - t.offset else {
                throw BamError.format(path, "tensor `\(name)`: \(numel) values from offset \(t.offset) run past its storage of \(s.numel)")
            }
            let info = TensorInfo(name: name, dtype: s.dtype, shape: t.shape, byteCount: numel * elem, file: path)
            tensors[name] = (info, entry, t.offset * elem)
            names.append(name)
        }
        self.names = names
    }

    public func info(_ name: String) -> TensorInfo? { tensors[name]?.info }

    public func bytes(_ name: String) throws -> UnsafeRawBufferPointer {
        guard let t = tensors[name] else { throw BamError.format(path, "missing tensor `\(name)`") }
        if let s = archive.storedBytes(t.entry) {
            return UnsafeRawBufferPointer(rebasing: s[t.byteOffset..<(t.byteOffset + t.info.byteCount)])
        }
        // Deflated storages (not what torch.save writes, but valid zips) are inflated once and kept.
        lock.lock()
        defer { lock.unlock() }
        if inflated[t.entry.name] == nil {
            let data = try archive.inflate(t.entry)
            let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: max(data.count, 1), alignment: 64)
            data.withUnsafeBytes { buf.copyMemory(from: $0) }
            inflated[t.entry.name] = buf
        }
        return UnsafeRawBufferPointer(rebasing: inflated[t.entry.name]![t.byteOffset..<(t.byteOffset + t.info.byteCount)])
    }

    deinit {
        for (_, b) in inflated { b.deallocate() }
    }

    public func release(_ name: String) {
        guard let t = tensors[name], t.entry.method == 0 else { return }
        archive.file.release(offset: t.entry.dataOffset + t.byteOffset, count: t.info.byteCount)
    }
}

/// A directory of PyTorch checkpoints: `pytorch_model.bin`, or shards listed by
/// `pytorch_model.bin.index.json` (transformers' layout, same index format as safetensors'), or
/// (without an index) every `pytorch_model*.bin`. Read-only.
public final class PyTorchBinStore: TensorStore, @unchecked Sendable {
    public let location: String
    public let files: [PyTorchBinFile]
    public let names: [String]
    private let map: [String: Int]

    public init(directory: URL) throws {
        location = directory.path
        let fm = FileManager.default
        let indexURL = directory.appendingPathComponent("pytorch_model.bin.index.json")
        var shardNames: [String]
        var declared: [String: String]? = nil
        if fm.fileExists(atPath: indexURL.path) {
            guard let wm = try readJSONFile(indexURL)["weight_map"]?.objectValue else {
                throw BamError.format(indexURL.path, "missing object `weight_map`")
            }
            var d: [String: String] = [:]
            for (k, v) in wm.pairs {
                guard let f = v.stringValue, !f.contains("/"), f != ".." else {
                    throw BamError.format(indexURL.path, "weight_map.\(k) is not a file name in the checkpoint directory")
                }
                d[k] = f
            }
            declared = d
            shardNames = Array(Set(d.values)).sorted()
        } else {
            let all = (try? fm.contentsOfDirectory(atPath: directory.path)) ?? []
            shardNames = all.filter { $0.hasPrefix("pytorch_model") && $0.hasSuffix(".bin") }.sorted()
            if shardNames.contains("pytorch_model.bin") { shardNames = ["pytorch_model.bin"] }
        }
        guard !shardNames.isEmpty else { throw BamError.format(directory.path, "no pytorch_model*.bin files found") }
        var files: [PyTorchBinFile] = []
        var map: [String: Int] = [:]
        var names: [String] = []
        for (i, s) in shardNames.enumerated() {
            let url = directory.appendingPathComponent(s)
            guard fm.fileExists(atPath: url.path) else {
                throw BamError.format(indexURL.path, "lists shard \(s), which does not exist in \(directory.path)")
            }
            let f = try PyTorchBinFile(path: url.path)
            for n in f.names {
                if let j = map[n] { throw BamError.format(url.path, "tensor `\(n)` also appears in \(files[j].path)") }
                map[n] = i
                names.append(n)
            }
            files.append(f)
        }
        if let declared {
            for (n, f) in declared {
                guard let i = map[n] else { throw BamError.format(indexURL.path, "weight_map names `\(n)` in \(f), but that shard does not contain it") }
                guard (files[i].path as NSString).lastPathComponent == f else {
                    throw BamError.format(indexURL.path, "weight_map puts `\(n)` in \(f), but it is in \(files[i].path)")
                }
            }
            for n in names where declared[n] == nil {
                throw BamError.format(indexURL.path, "tensor `\(n)` is in a shard but missing from weight_map")
            }
        }
        self.files = files
        self.names = names
        self.map = map
    }

    public func info(_ name: String) -> TensorInfo? { map[name].flatMap { files[$0].info(name) } }

    public func bytes(_ name: String) throws -> UnsafeRawBufferPointer {
        guard let i = map[name] else { throw BamError.format(location, "missing tensor `\(name)`") }
        return try files[i].bytes(name)
    }

    public func tensor(_ name: String) throws -> Tensor {
        guard let i = map[name] else { throw BamError.format(location, "missing tensor `\(name)`") }
        return try decodeFloat32(name, owner: files[i])
    }

    public func release(_ name: String) {
        if let i = map[name] { files[i].release(name) }
    }
}
