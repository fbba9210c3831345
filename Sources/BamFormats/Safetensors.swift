import BamTensors
import Foundation

/// Where a tensor lives and what it holds, independent of the container format.
public struct TensorInfo: Sendable, Equatable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    public var byteCount: Int
    /// The file holding the bytes (for error messages and provenance).
    public var file: String

    public var count: Int { shape.reduce(1, *) }

    public init(name: String, dtype: DType, shape: [Int], byteCount: Int, file: String) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.byteCount = byteCount
        self.file = file
    }
}

/// safetensors (https://github.com/huggingface/safetensors, "Format" in its README):
/// u64 little-endian header length N, N bytes of UTF-8 JSON, then the byte buffer.
/// Every length and offset is validated before any tensor is touched.
public final class SafetensorsFile: @unchecked Sendable {
    public static let maxHeaderBytes = 100_000_000

    public let path: String
    public let file: MappedFile
    public let metadata: [String: String]
    /// Tensors in the order of their data offsets.
    public let entries: [Entry]
    private let index: [String: Int]
    private let dataStart: Int

    public struct Entry: Sendable {
        public let info: TensorInfo
        public let begin: Int   // relative to the data buffer
        public let end: Int
    }

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        self.file = file
        self.path = file.path
        let path = file.path
        guard file.size >= 8 else {
            throw BamError.format(path, "safetensors file too short for its header length — the file is truncated", expected: "at least 8 bytes", found: "\(file.size) bytes")
        }
        let headerLength64 = file.bytes(at: 0, count: 8).loadUnaligned(as: UInt64.self).littleEndian
        guard headerLength64 <= UInt64(Self.maxHeaderBytes) else {
            throw BamError.format(path, at: .byte(0), "safetensors header length above the spec's limit — not a safetensors file, or corrupt",
                                  expected: "at most \(Self.maxHeaderBytes) bytes", found: "\(headerLength64) bytes")
        }
        let n = Int(headerLength64)
        guard 8 + n <= file.size else {
            throw BamError.format(path, at: .byte(0), "safetensors header runs past the end of the file — the file is truncated",
                                  expected: "a file of at least \(8 + n) bytes", found: "\(file.size) bytes")
        }
        guard n >= 2 else { throw BamError.format(path, "safetensors header of \(n) bytes cannot hold a JSON object") }
        let headerBytes = file.bytes(at: 8, count: n)
        guard headerBytes[0] == UInt8(ascii: "{") else {
            throw BamError.format(path, "safetensors header does not start with `{` — not a safetensors file")
        }
        let header: JSONValue
        do { header = try JSONParser.parse(headerBytes) } catch let f as JSONParser.Failure {
            throw BamError.format(path, at: .byte(8 + f.offset), "safetensors header is not valid JSON: \(f.reason)")
        }
        guard case let .object(obj) = header else { throw BamError.format(path, "safetensors header is not a JSON object") }
        dataStart = 8 + n
        let bufferSize = file.size - dataStart

        var meta: [String: String] = [:]
        var list: [Entry] = []
        for (name, value) in obj.pairs {
            if name == "__metadata__" {
                guard case let .object(m) = value else {
                    throw BamError.format(path, "`__metadata__` must be an object of strings")
                }
                for (k, v) in m.pairs {
                    guard let s = v.stringValue else {
                        throw BamError.format(path, at: .key("__metadata__.\(k)"), "the spec allows only string values", expected: "a string", found: v.serialized(indent: nil))
                    }
                    meta[k] = s
                }
                continue
            }
            guard case let .object(e) = value else { throw BamError.format(path, at: .tensor(name), "entry is not an object") }
            guard let dtypeName = e["dtype"]?.stringValue else {
                throw BamError.format(path, at: .tensor(name), "missing string `dtype`")
            }
            guard let dtype = DType(rawValue: dtypeName), !dtype.isQuantized else {
                if dtypeName.hasPrefix("F8") {
                    throw BamError(.unsupported, file: path, at: .tensor(name), "8-bit float weights are not supported", expected: "F32, F16, BF16 or F64",
                                   found: dtypeName, hint: "convert the checkpoint to bf16 or f16 first")
                }
                throw BamError.format(path, at: .tensor(name), "unknown dtype", found: dtypeName)
            }
            guard let shapeValues = e["shape"]?.arrayValue else {
                throw BamError.format(path, at: .tensor(name), "missing array `shape`")
            }
            var shape: [Int] = []
            var numel = 1
            for d in shapeValues {
                guard let v = d.intValue, v >= 0 else {
                    throw BamError.format(path, at: .tensor(name), "shape \(shapeValues.map { $0.serialized(indent: nil) }) holds a negative or non-integer dimension")
                }
                let (m, o) = numel.multipliedReportingOverflow(by: v)
                guard !o else { throw BamError.format(path, at: .tensor(name), "shape overflows the element count") }
                numel = m
                shape.append(v)
            }
            guard let offs = e["data_offsets"]?.arrayValue, offs.count == 2,
                  let begin = offs[0].intValue, let end = offs[1].intValue, begin >= 0, end >= begin else {
                throw BamError.format(path, at: .tensor(name), "`data_offsets` must be [begin, end] with 0 <= begin <= end")
            }
            guard let expected = dtype.byteCount(elements: numel), end - begin == expected else {
                throw BamError.format(path, at: .tensor(name), "data_offsets do not match the shape and dtype",
                                      expected: "\(dtype.byteCount(elements: numel).map(String.init) ?? "more than addressable") bytes for shape \(shape) of \(dtype.rawValue)",
                                      found: "[\(begin), \(end)) = \(end - begin) bytes")
            }
            guard end <= bufferSize else {
                throw BamError.format(path, at: .tensor(name), "data_offsets run past the data buffer — the file is truncated", expected: "an end of at most \(bufferSize)", found: "\(end)")
            }
            list.append(Entry(info: TensorInfo(name: name, dtype: dtype, shape: shape, byteCount: end - begin, file: path),
                              begin: begin, end: end))
        }
        list.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var cursor = 0
        for e in list {
            if e.begin < cursor {
                throw BamError.format(path, at: .tensor(e.info.name), "data_offsets [\(e.begin), \(e.end)) overlap the previous tensor (which ends at \(cursor))")
            }
            if e.begin > cursor {
                throw BamError.format(path, at: .tensor(e.info.name), "data_offsets start at \(e.begin) but the previous tensor ends at \(cursor); the spec forbids holes")
            }
            cursor = e.end
        }
        guard cursor == bufferSize else {
            throw BamError.format(path, "tensors cover \(cursor) bytes of a \(bufferSize)-byte data buffer; the spec requires them to cover it exactly (trailing bytes or a truncated file)")
        }
        entries = list
        metadata = meta
        var idx: [String: Int] = [:]
        for (i, e) in list.enumerated() { idx[e.info.name] = i }
        index = idx
    }

    public var names: [String] { entries.map(\.info.name) }

    public func entry(_ name: String) -> Entry? { index[name].map { entries[$0] } }

    /// The stored bytes of a tensor (inside the mapping; valid while this object lives).
    public func bytes(_ name: String) throws -> UnsafeRawBufferPointer {
        guard let e = entry(name) else { throw BamError.format(path, at: .tensor(name), "no such tensor in the file") }
        return file.bytes(at: dataStart + e.begin, count: e.end - e.begin)
    }

    public func release(_ name: String) {
        if let e = entry(name) { file.release(offset: dataStart + e.begin, count: e.end - e.begin) }
    }
}

/// One tensor queued for writing: its bytes are produced when the writer reaches it, so a
/// checkpoint can be streamed without holding every tensor in memory.
public struct TensorWriteEntry {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    public var produce: (_ write: (UnsafeRawBufferPointer) throws -> Void) throws -> Void

    public init(name: String, dtype: DType, shape: [Int],
                produce: @escaping (_ write: (UnsafeRawBufferPointer) throws -> Void) throws -> Void) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.produce = produce
    }

    public var byteCount: Int { dtype.byteCount(elements: shape.reduce(1, *)) ?? 0 }

    /// A float32 tensor stored as `dtype` (cast on the way out).
    public static func float(_ name: String, _ tensor: Tensor, as dtype: DType = .f32) -> TensorWriteEntry {
        TensorWriteEntry(name: name, dtype: dtype, shape: tensor.shape) { write in
            if dtype == .f32 {
                try write(UnsafeRawBufferPointer(start: tensor.data, count: tensor.byteCount))
            } else {
                let n = dtype.byteCount(elements: tensor.count)!
                let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: max(n, 1), alignment: 16)
                defer { buf.deallocate() }
                try DTypeConversion.fromFloat32(tensor.data, count: tensor.count, dtype: dtype, into: buf.baseAddress!)
                try write(UnsafeRawBufferPointer(start: buf.baseAddress, count: n))
            }
        }
    }
}

public enum SafetensorsWriter {
    /// The header JSON for `entries` laid out back to back, padded with spaces to a multiple of 8
    /// (so the data buffer is 8-byte aligned), with `__metadata__` first.
    static func header(_ entries: [TensorWriteEntry], metadata: [String: String]) -> [UInt8] {
        var obj = JSONObject()
        if !metadata.isEmpty {
            var m = JSONObject()
            for k in metadata.keys.sorted() { m[k] = .string(metadata[k]!) }
            obj["__metadata__"] = .object(m)
        }
        var offset = 0
        for e in entries {
            let n = e.byteCount
            obj[e.name] = .object(JSONObject([
                ("dtype", .string(e.dtype.rawValue)),
                ("shape", .array(e.shape.map { .int($0) })),
                ("data_offsets", .array([.int(offset), .int(offset + n)])),
            ]))
            offset += n
        }
        var bytes = Array(JSONValue.object(obj).serialized(indent: nil).utf8)
        while bytes.count % 8 != 0 { bytes.append(UInt8(ascii: " ")) }
        return bytes
    }

    /// Writes one safetensors file atomically (temporary name, renamed when complete).
    public static func write(_ entries: [TensorWriteEntry], to url: URL,
                             metadata: [String: String] = ["format": "pt"]) throws {
        for e in entries where e.dtype.isQuantized {
            throw BamError.unsupported("safetensors cannot store \(e.name) as \(e.dtype.rawValue) (a GGUF-only block type); write GGUF or choose f32/f16/bf16")
        }
        var seen = Set<String>()
        for e in entries where !seen.insert(e.name).inserted {
            throw BamError.usage("internal: tensor \(e.name) queued twice for \(url.path)")
        }
        let w = try AtomicFileWriter(url: url)
        let h = header(entries, metadata: metadata)
        try w.write(littleEndian: UInt64(h.count))
        try w.write(h)
        for e in entries {
            var written = 0
            try e.produce { bytes in
                try w.write(bytes)
                written += bytes.count
            }
            guard written == e.byteCount else {
                throw BamError.usage("internal: tensor \(e.name) produced \(written) bytes, \(e.byteCount) expected")
            }
        }
        try w.commit()
    }

    /// Writes a checkpoint's tensors into `directory`: one `model.safetensors` when everything fits
    /// in `shardSize` bytes, else `model-0000i-of-0000n.safetensors` plus
    /// `model.safetensors.index.json` (transformers' naming). Returns the files written.
    @discardableResult
    public static func writeSharded(_ entries: [TensorWriteEntry], directory: URL, shardSize: Int?,
                                    metadata: [String: String] = ["format": "pt"]) throws -> [String] {
        var shards: [[TensorWriteEntry]] = [[]]
        var current = 0
        for e in entries {
            if let limit = shardSize, current > 0, current + e.byteCount > limit {
                shards.append([])
                current = 0
            }
            shards[shards.count - 1].append(e)
            current += e.byteCount
        }
        if shards.count == 1 {
            try write(entries, to: directory.appendingPathComponent("model.safetensors"), metadata: metadata)
            return ["model.safetensors"]
        }
        var files: [String] = []
        var weightMap = JSONObject()
        var total = 0
        for (i, shard) in shards.enumerated() {
            let name = String(format: "model-%05d-of-%05d.safetensors", i + 1, shards.count)
            try write(shard, to: directory.appendingPathComponent(name), metadata: metadata)
            for e in shard {
                weightMap[e.name] = .string(name)
                total += e.byteCount
            }
            files.append(name)
        }
        let index = JSONValue.object(JSONObject([
            ("metadata", .object(JSONObject([("total_size", .int(total))]))),
            ("weight_map", .object(weightMap)),
        ]))
        try writeFileAtomically(Data(index.serialized().utf8), to: directory.appendingPathComponent("model.safetensors.index.json"))
        files.append("model.safetensors.index.json")
        return files
    }
}
