import BamTensors
import Foundation

// GGUF, the container of llama.cpp / ggml (spec: ggml's docs/gguf.md; the reference reader is
// ggml's gguf.cpp, the reference writer gguf-py's GGUFWriter):
//
//   "GGUF" u32 version (2 or 3) u64 tensor_count u64 kv_count
//   kv_count x (string key, u32 value_type, value)
//   tensor_count x (string name, u32 n_dims, n_dims x u64 dim (innermost first), u32 ggml_type, u64 offset)
//   zero padding to general.alignment (default 32)
//   tensor data; each offset (relative to the data start) a multiple of the alignment
//
// Strings are u64 length + UTF-8 bytes. Everything is little-endian (big-endian files exist but
// cannot be told apart reliably; we refuse a version number that only makes sense byte-swapped).
// Like ggml's reader, every length, count and offset is checked against the bytes that remain
// before it is used, with hard caps, so a hostile file is a thrown BamError, never a crash.

/// GGUF metadata value types (gguf.md, `gguf_metadata_value_type`).
public enum GGUFValueType: UInt32, Sendable, CaseIterable {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, bool = 7
    case string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    /// Bytes of one scalar value; nil for strings and arrays (variable length).
    var fixedSize: Int? {
        switch self {
        case .uint8, .int8, .bool: 1
        case .uint16, .int16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64: 8
        case .string, .array: nil
        }
    }

    /// The fewest bytes one value of this type can take (a string or array header).
    var minimumSize: Int { fixedSize ?? (self == .string ? 8 : 12) }
}

/// A GGUF metadata value. Arrays carry their element type, so an empty array keeps it too.
/// (Only arrays are boxed: a 24-byte value per element keeps big vocabularies compact.)
public enum GGUFValue: Equatable, Sendable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case float32(Float), bool(Bool), string(String)
    indirect case array(GGUFValueType, [GGUFValue])
    case uint64(UInt64), int64(Int64), float64(Double)

    public var type: GGUFValueType {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .float32: .float32
        case .bool: .bool
        case .string: .string
        case .array: .array
        case .uint64: .uint64
        case .int64: .int64
        case .float64: .float64
        }
    }

    /// Any integer type as Int (nil when out of range or not an integer).
    public var intValue: Int? {
        switch self {
        case let .uint8(v): Int(v)
        case let .int8(v): Int(v)
        case let .uint16(v): Int(v)
        case let .int16(v): Int(v)
        case let .uint32(v): Int(v)
        case let .int32(v): Int(v)
        case let .uint64(v): Int(exactly: v)
        case let .int64(v): Int(v)
        default: nil
        }
    }

    /// Any numeric type as Double.
    public var doubleValue: Double? {
        switch self {
        case let .float32(v): Double(v)
        case let .float64(v): v
        default: intValue.map(Double.init)
        }
    }

    public var stringValue: String? { if case let .string(s) = self { s } else { nil } }
    public var boolValue: Bool? { if case let .bool(b) = self { b } else { nil } }
    public var arrayValue: [GGUFValue]? { if case let .array(_, a) = self { a } else { nil } }
    public var arrayElementType: GGUFValueType? { if case let .array(t, _) = self { t } else { nil } }

    /// An array of strings (tokens, merges), else nil.
    public var stringArray: [String]? {
        guard case let .array(t, a) = self, t == .string else { return nil }
        return a.map { $0.stringValue ?? "" }
    }

    /// A short rendering for messages and `inspect` (long arrays are elided).
    public var summary: String {
        switch self {
        case let .string(s): s.count > 60 ? "\"\(s.prefix(57))...\"" : "\"\(s)\""
        case let .array(t, a): "[\(a.count) x \(t)]"
        case let .bool(b): b ? "true" : "false"
        case let .float32(f): "\(f)"
        case let .float64(d): "\(d)"
        default: intValue.map(String.init) ?? "\(self)"
        }
    }
}

/// ggml tensor types (ggml.h `enum ggml_type`), with the block layout needed to size their data.
/// Every type is recognised (so any GGUF can be opened and inspected); those with a bam-mix
/// `DType` (`dtype` non-nil) can be decoded to float32, the others are refused by name.
public struct GGMLType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let f32 = GGMLType(rawValue: 0)
    public static let f16 = GGMLType(rawValue: 1)
    public static let q4_0 = GGMLType(rawValue: 2)
    public static let q4_1 = GGMLType(rawValue: 3)
    public static let q5_0 = GGMLType(rawValue: 6)
    public static let q5_1 = GGMLType(rawValue: 7)
    public static let q8_0 = GGMLType(rawValue: 8)
    public static let q2_K = GGMLType(rawValue: 10)
    public static let q3_K = GGMLType(rawValue: 11)
    public static let q4_K = GGMLType(rawValue: 12)
    public static let q5_K = GGMLType(rawValue: 13)
    public static let q6_K = GGMLType(rawValue: 14)
    public static let q8_K = GGMLType(rawValue: 15)
    public static let iq4_nl = GGMLType(rawValue: 20)
    public static let iq4_xs = GGMLType(rawValue: 23)
    public static let i8 = GGMLType(rawValue: 24)
    public static let i16 = GGMLType(rawValue: 25)
    public static let i32 = GGMLType(rawValue: 26)
    public static let i64 = GGMLType(rawValue: 27)
    public static let f64 = GGMLType(rawValue: 28)
    public static let bf16 = GGMLType(rawValue: 30)

    /// (name, values per block, bytes per block), from ggml.c's type_traits (also gguf-py's
    /// GGML_QUANT_SIZES). Removed types (4, 5, 31-33, 36-38) are in `removed`.
    static let traits: [UInt32: (String, Int, Int)] = [
        0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
        6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 36),
        10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176),
        14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292), 16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74),
        18: ("IQ3_XXS", 256, 98), 19: ("IQ1_S", 256, 50), 20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110),
        22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136), 24: ("I8", 1, 1), 25: ("I16", 1, 2),
        26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8), 29: ("IQ1_M", 256, 56),
        30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66), 39: ("MXFP4", 32, 17),
        40: ("NVFP4", 64, 36), 41: ("Q1_0", 128, 18),
    ]

    /// Ids ggml once used and has removed (ggml.h keeps them as comments), for error messages.
    static let removed: [UInt32: String] = [
        4: "Q4_2", 5: "Q4_3", 31: "Q4_0_4_4", 32: "Q4_0_4_8", 33: "Q4_0_8_8",
        36: "IQ4_NL_4_4", 37: "IQ4_NL_4_8", 38: "IQ4_NL_8_8",
    ]

    public var isKnown: Bool { Self.traits[rawValue] != nil }
    public var name: String {
        if let t = Self.traits[rawValue] { return t.0 }
        if let r = Self.removed[rawValue] { return "type \(rawValue) (\(r), removed from ggml)" }
        return "type \(rawValue)"
    }
    public var blockSize: Int { Self.traits[rawValue]?.1 ?? 0 }
    public var blockBytes: Int { Self.traits[rawValue]?.2 ?? 0 }
    public var description: String { name }

    /// The bam-mix dtype holding the same bytes, when there is one (every type bam-mix decodes).
    public var dtype: DType? {
        switch rawValue {
        case 0: .f32
        case 1: .f16
        case 2: .q4_0
        case 3: .q4_1
        case 6: .q5_0
        case 7: .q5_1
        case 8: .q8_0
        case 10: .q2_K
        case 11: .q3_K
        case 12: .q4_K
        case 13: .q5_K
        case 14: .q6_K
        case 15: .q8_K
        case 20: .iq4_nl
        case 23: .iq4_xs
        case 24: .i8
        case 25: .i16
        case 26: .i32
        case 27: .i64
        case 28: .f64
        case 30: .bf16
        default: nil
        }
    }

    public init?(dtype: DType) {
        switch dtype {
        case .f32: self = .f32
        case .f16: self = .f16
        case .bf16: self = .bf16
        case .f64: self = .f64
        case .i8: self = .i8
        case .i16: self = .i16
        case .i32: self = .i32
        case .i64: self = .i64
        case .q4_0: self = .q4_0
        case .q4_1: self = .q4_1
        case .q5_0: self = .q5_0
        case .q5_1: self = .q5_1
        case .q8_0: self = .q8_0
        case .q2_K: self = .q2_K
        case .q3_K: self = .q3_K
        case .q4_K: self = .q4_K
        case .q5_K: self = .q5_K
        case .q6_K: self = .q6_K
        case .q8_K: self = .q8_K
        case .iq4_nl: self = .iq4_nl
        case .iq4_xs: self = .iq4_xs
        case .u8, .bool: return nil
        }
    }
}

/// One tensor as a GGUF file describes it.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// ggml order: innermost (contiguous) dimension first. An HF [out, in] weight is [in, out].
    public let dims: [Int]
    public let type: GGMLType
    /// Offset of the data from the start of the data section.
    public let offset: Int
    public let byteCount: Int

    public var count: Int { dims.reduce(1, *) }
    /// Row-major (numpy / HF) order: outermost first.
    public var shape: [Int] { dims.reversed() }
}

/// A GGUF file, memory-mapped and validated on open.
public final class GGUFFile: @unchecked Sendable {
    /// Hard caps (ggml's own reader has similar ones); real files stay far below them.
    public static let maxTensors = 1 << 20
    public static let maxKeys = 1 << 20
    public static let maxKeyBytes = 65_535
    public static let maxTensorNameBytes = 64
    public static let maxStringBytes = 1 << 30
    public static let maxArrayNesting = 8
    /// Total array elements over all keys (a 256k-token vocabulary with merges needs about 1M),
    /// so a hostile file cannot make the reader allocate more than ~200 MB for metadata.
    public static let maxArrayElements = 1 << 23
    public static let maxDims = 4
    public static let defaultAlignment = 32

    public let path: String
    public let file: MappedFile
    public let version: Int
    /// Keys in file order.
    public let keys: [String]
    public let metadata: [String: GGUFValue]
    /// Tensors in file (header) order.
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    /// Absolute offset of the data section.
    public let dataOffset: Int
    private let tensorIndex: [String: Int]

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        self.file = file
        path = file.path
        var r = GGUFCursor(file: file)
        let magic = try r.bytes(4, "the magic number")
        guard Array(magic) == Array("GGUF".utf8) else {
            let shown = magic.map { (0x20..<0x7F).contains($0) ? String(UnicodeScalar($0)) : "." }.joined()
            throw BamError.format(path, at: .byte(0), "not a GGUF file", expected: "`GGUF`", found: "`\(shown)`")
        }
        let v = try r.u32("the version")
        switch v {
        case 2, 3: version = Int(v)
        case 1:
            throw BamError.unsupported("GGUF version 1 (32-bit counts, 2023) is not supported", file: path, at: .byte(4), expected: "version 2 or 3",
                                       found: "version 1", hint: "re-convert the model with a current llama.cpp")
        default:
            if v.byteSwapped == 2 || v.byteSwapped == 3 {
                throw BamError.unsupported("this is a big-endian GGUF; bam-mix reads little-endian files only", file: path, at: .byte(4),
                                           expected: "little-endian version 2 or 3", found: "version \(v.byteSwapped) byte-swapped")
            }
            throw BamError.format(path, at: .byte(4), "unsupported GGUF version", expected: "version 2 or 3", found: "version \(v)")
        }
        let tensorCount = try r.count("the tensor count", minimumBytesEach: 8 + 4 + 4 + 8, cap: Self.maxTensors)
        let kvCount = try r.count("the metadata key count", minimumBytesEach: 8 + 4 + 1, cap: Self.maxKeys)

        var keys: [String] = []
        var metadata: [String: GGUFValue] = [:]
        var arrayBudget = Self.maxArrayElements
        for k in 0..<kvCount {
            let key = try r.string("metadata key #\(k)", cap: Self.maxKeyBytes)
            let whereKey = "metadata key #\(k) (`\(key)`)"
            guard !key.isEmpty, key.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
                throw BamError.format(path, at: .key(key), "GGUF metadata key #\(k): keys must be non-empty printable ASCII")
            }
            guard metadata[key] == nil else {
                throw BamError.format(path, at: .key(key), "GGUF metadata key #\(k): the key appears twice")
            }
            let typeRaw = try r.u32("the value type of \(whereKey)")
            guard let type = GGUFValueType(rawValue: typeRaw) else {
                throw BamError.format(path, at: .key(key), "GGUF metadata key #\(k): unknown value type", expected: "0-12", found: "\(typeRaw)")
            }
            metadata[key] = try r.value(type, whereKey, depth: 0, budget: &arrayBudget)
            keys.append(key)
        }

        var align = Self.defaultAlignment
        if let a = metadata["general.alignment"] {
            // ggml requires a u32 power of two; the spec says a multiple of 8.
            guard case let .uint32(av) = a else {
                throw BamError.format(path, at: .key("general.alignment"), expected: "a uint32", found: "\(a.type)")
            }
            guard av > 0, av & (av - 1) == 0, av <= 1 << 20 else {
                throw BamError.format(path, at: .key("general.alignment"), expected: "a power of two between 1 and 2^20", found: "\(av)")
            }
            align = Int(av)
        }
        alignment = align

        var infos: [GGUFTensorInfo] = []
        var index: [String: Int] = [:]
        var infoFields: [(name: String, dims: [Int], type: GGMLType, offset: Int)] = []
        for t in 0..<tensorCount {
            let name = try r.string("tensor #\(t)'s name", cap: Self.maxTensorNameBytes)
            let whereT = "tensor #\(t) (`\(name)`)"
            guard index[name] == nil else { throw BamError.format(path, at: .tensor(name), "GGUF tensor #\(t): the name appears twice") }
            index[name] = t
            let nd = try r.u32("the dimension count of \(whereT)")
            guard nd >= 1, nd <= UInt32(Self.maxDims) else {
                throw BamError.format(path, at: .tensor(name), "GGUF tensor #\(t): dimension count", expected: "1 to \(Self.maxDims)", found: "\(nd)")
            }
            var dims: [Int] = []
            var numel = 1
            for d in 0..<Int(nd) {
                let v = try r.u64("dimension \(d) of \(whereT)")
                guard v <= UInt64(Int64.max) else {
                    throw BamError.format(path, at: .tensor(name), "GGUF tensor #\(t): dimension \(d)", expected: "at most 2^63-1", found: "\(v)")
                }
                let (m, o) = numel.multipliedReportingOverflow(by: Int(v))
                guard !o else {
                    throw BamError.format(path, at: .tensor(name), "GGUF tensor #\(t): dimensions \(dims + [Int(v)]) overflow the element count (corrupt header)")
                }
                numel = m
                dims.append(Int(v))
            }
            let typeRaw = try r.u32("the type of \(whereT)")
            let type = GGMLType(rawValue: typeRaw)
            guard type.isKnown else {
                throw BamError.format(path, at: .tensor(name), "GGUF tensor #\(t): unknown ggml tensor type", found: type.name,
                                      hint: "re-quantize the model with a current llama.cpp, or the file is corrupt")
            }
            let offset = try r.u64("the data offset of \(whereT)")
            guard offset <= UInt64(Int64.max) else {
                throw BamError.format(path, at: .tensor(name), "GGUF tensor #\(t): data offset", expected: "at most 2^63-1", found: "\(offset)")
            }
            guard dims[0] % type.blockSize == 0 else {
                throw BamError.format(path, at: .tensor(name), "GGUF tensor #\(t): innermost dimension", expected: "a multiple of \(type.name)'s block size \(type.blockSize)",
                                      found: "\(dims[0])")
            }
            guard Int(offset) % align == 0 else {
                throw BamError.format(path, at: .tensor(name), "GGUF tensor #\(t): data offset", expected: "a multiple of the alignment \(align)", found: "\(offset)")
            }
            infoFields.append((name, dims, type, Int(offset)))
        }

        // The data section starts at the next multiple of the alignment.
        let end = r.position
        let (padded, o1) = end.addingReportingOverflow((align - end % align) % align)
        guard !o1 else { throw BamError.format(path, "GGUF: header end overflows") }
        dataOffset = padded
        if tensorCount > 0, dataOffset > file.size {
            throw BamError.format(path, at: .byte(dataOffset), "GGUF: the data section would start past the end of the file — the file is truncated",
                                  expected: "a file of more than \(dataOffset) bytes", found: "\(file.size) bytes")
        }
        let dataSize = max(0, file.size - dataOffset)

        for f in infoFields {
            let numel = f.dims.reduce(1, *)
            let (bytes, o) = (numel / f.type.blockSize).multipliedReportingOverflow(by: f.type.blockBytes)
            guard !o else {
                throw BamError.format(path, at: .tensor(f.name), "GGUF: \(f.dims) of \(f.type.name) needs more bytes than are addressable")
            }
            let (endOfTensor, o2) = f.offset.addingReportingOverflow(bytes)
            guard !o2, endOfTensor <= dataSize else {
                throw BamError.format(path, at: .tensor(f.name), "GGUF: the data lies past the end of the data section — the file is truncated",
                                      expected: "bytes [\(f.offset), \(f.offset) + \(bytes))", found: "a data section of \(dataSize) bytes")
            }
            infos.append(GGUFTensorInfo(name: f.name, dims: f.dims, type: f.type, offset: f.offset, byteCount: bytes))
        }
        // No two tensors may share bytes (ggml's reader goes further and requires them packed in order).
        let sorted = infos.filter { $0.byteCount > 0 }.sorted { $0.offset < $1.offset }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.offset + a.byteCount > b.offset {
            throw BamError.format(path, "GGUF tensors `\(a.name)` [\(a.offset), \(a.offset + a.byteCount)) and `\(b.name)` (from \(b.offset)) overlap")
        }

        self.keys = keys
        self.metadata = metadata
        tensors = infos
        tensorIndex = index
    }

    public func tensor(_ name: String) -> GGUFTensorInfo? { tensorIndex[name].map { tensors[$0] } }

    /// The stored bytes of a tensor (inside the mapping; valid while this object lives).
    public func bytes(_ info: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        file.bytes(at: dataOffset + info.offset, count: info.byteCount)
    }

    public func release(_ info: GGUFTensorInfo) {
        file.release(offset: dataOffset + info.offset, count: info.byteCount)
    }

    public subscript(key: String) -> GGUFValue? { metadata[key] }

    public var architecture: String? { metadata["general.architecture"]?.stringValue }
}

/// Bounds-checked little-endian reads over a mapped file; every failure names what was being read
/// and where.
struct GGUFCursor {
    let file: MappedFile
    var position = 0

    init(file: MappedFile) { self.file = file }

    var remaining: Int { file.size - position }

    func fail(_ what: String, needs n: UInt64) -> BamError {
        BamError.format(file.path, at: .byte(position), "GGUF: \(what) runs past the end of the file — the file is truncated or corrupt",
                        expected: "\(n) bytes", found: "\(remaining) bytes left")
    }

    mutating func bytes(_ n: Int, _ what: String) throws -> UnsafeRawBufferPointer {
        guard n >= 0, n <= remaining else { throw fail(what, needs: UInt64(max(n, 0))) }
        let b = file.bytes(at: position, count: n)
        position += n
        return b
    }

    mutating func load<T: FixedWidthInteger>(_: T.Type, _ what: String) throws -> T {
        let b = try bytes(MemoryLayout<T>.size, what)
        return T(littleEndian: b.loadUnaligned(as: T.self))
    }

    mutating func u32(_ what: String) throws -> UInt32 { try load(UInt32.self, what) }
    mutating func u64(_ what: String) throws -> UInt64 { try load(UInt64.self, what) }

    /// A u64 count whose items take at least `minimumBytesEach` bytes: checked against both the
    /// bytes that remain and a hard cap before anything is allocated for it.
    mutating func count(_ what: String, minimumBytesEach: Int, cap: Int) throws -> Int {
        let at = position
        let n = try u64(what)
        guard n <= UInt64(cap) else {
            throw BamError.format(file.path, at: .byte(at), "GGUF: \(what) is above the limit — corrupt or hostile file", expected: "at most \(cap)", found: "\(n)")
        }
        guard Int(n) <= remaining / max(minimumBytesEach, 1) else {
            throw BamError.format(file.path, at: .byte(at), "GGUF: \(what) is \(n), more items than the rest of the file can hold — the file is truncated or corrupt",
                                  expected: "at least \(UInt64(minimumBytesEach) * n) bytes", found: "\(remaining) bytes left")
        }
        return Int(n)
    }

    mutating func string(_ what: String, cap: Int) throws -> String {
        let at = position
        let n = try u64("the length of \(what)")
        guard n <= UInt64(cap) else {
            throw BamError.format(file.path, at: .byte(at), "GGUF: the length of \(what) is above the limit — corrupt or hostile file",
                                  expected: "at most \(cap) bytes", found: "\(n) bytes")
        }
        guard Int(n) <= remaining else {
            throw BamError.format(file.path, at: .byte(at), "GGUF: \(what) runs past the end of the file — the file is truncated or corrupt",
                                  expected: "\(n) bytes", found: "\(remaining) bytes left")
        }
        let b = try bytes(Int(n), what)
        // Invalid UTF-8 (seen in some converted vocabularies) is replaced rather than refused.
        return String(decoding: b, as: UTF8.self)
    }

    mutating func value(_ type: GGUFValueType, _ what: String, depth: Int, budget: inout Int) throws -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try load(UInt8.self, what))
        case .int8: return .int8(try load(Int8.self, what))
        case .uint16: return .uint16(try load(UInt16.self, what))
        case .int16: return .int16(try load(Int16.self, what))
        case .uint32: return .uint32(try load(UInt32.self, what))
        case .int32: return .int32(try load(Int32.self, what))
        case .float32: return .float32(Float(bitPattern: try load(UInt32.self, what)))
        case .bool:
            let at = position
            let b = try load(UInt8.self, what)
            guard b <= 1 else {
                throw BamError.format(file.path, at: .byte(at), "GGUF: \(what): a bool", expected: "0 or 1", found: "\(b)")
            }
            return .bool(b == 1)
        case .string: return .string(try string(what, cap: GGUFFile.maxStringBytes))
        case .uint64: return .uint64(try load(UInt64.self, what))
        case .int64: return .int64(try load(Int64.self, what))
        case .float64: return .float64(Double(bitPattern: try load(UInt64.self, what)))
        case .array:
            guard depth < GGUFFile.maxArrayNesting else {
                throw BamError.format(file.path, "GGUF: \(what): arrays nested deeper than \(GGUFFile.maxArrayNesting) levels")
            }
            let at = position
            let raw = try u32("the element type of \(what)")
            guard let et = GGUFValueType(rawValue: raw) else {
                throw BamError.format(file.path, at: .byte(at), "GGUF: \(what): unknown array element type", expected: "0-12", found: "\(raw)")
            }
            let n = try count("the element count of \(what)", minimumBytesEach: et.minimumSize, cap: GGUFFile.maxArrayElements)
            guard n <= budget else {
                throw BamError.format(file.path, "GGUF: \(what): arrays hold more than \(GGUFFile.maxArrayElements) elements in total — corrupt or hostile file")
            }
            budget -= n
            var items: [GGUFValue] = []
            items.reserveCapacity(n)
            for i in 0..<n {
                items.append(try value(et, n > 1 ? "\(what)[\(i)]" : what, depth: depth + 1, budget: &budget))
            }
            return .array(et, items)
        }
    }
}

// MARK: - Writing

/// Writes GGUF v3 files (gguf.md; gguf-py's GGUFWriter lays them out the same way): header,
/// metadata, tensor infos, zero padding to the alignment, then each tensor's data padded to the
/// alignment. Tensors are streamed one by one through `TensorWriteEntry.produce`, so memory stays
/// bounded by the largest tensor; the file appears under its final name only when complete.
public enum GGUFWriter {
    /// `entries[i].shape` is row-major (outermost first, as in HF/numpy); the file stores it
    /// reversed. `metadata` must not contain `general.alignment` (it is written from `alignment`).
    public static func write(metadata: [(String, GGUFValue)], tensors entries: [TensorWriteEntry], to url: URL,
                             alignment: Int = GGUFFile.defaultAlignment) throws {
        guard alignment > 0, alignment & (alignment - 1) == 0, alignment % 8 == 0 else {
            throw BamError.usage("GGUF alignment \(alignment) must be a power of two and a multiple of 8")
        }
        var header = GGUFByteBuffer()
        header.append(Array("GGUF".utf8))
        header.append(UInt32(3))
        header.append(UInt64(entries.count))
        let kvs = [("general.alignment", GGUFValue.uint32(UInt32(alignment)))] + metadata.filter { $0.0 != "general.alignment" }
        header.append(UInt64(kvs.count))
        var seen = Set<String>()
        for (k, v) in kvs {
            guard !k.isEmpty, k.utf8.count <= GGUFFile.maxKeyBytes, k.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
                throw BamError.usage("GGUF key `\(k)` must be 1 to \(GGUFFile.maxKeyBytes) bytes of printable ASCII")
            }
            guard seen.insert(k).inserted else { throw BamError.usage("GGUF key `\(k)` given twice") }
            header.appendString(k)
            header.append(v.type.rawValue)
            try header.appendValue(v, key: k)
        }
        var offset = 0
        var names = Set<String>()
        for e in entries {
            // ggml keeps names in a 64-byte buffer with a terminating NUL.
            guard e.name.utf8.count < GGUFFile.maxTensorNameBytes else {
                throw BamError.usage("GGUF tensor name `\(e.name)` is \(e.name.utf8.count) bytes; ggml allows at most \(GGUFFile.maxTensorNameBytes - 1)")
            }
            guard names.insert(e.name).inserted else { throw BamError.usage("internal: GGUF tensor \(e.name) queued twice") }
            guard let type = GGMLType(dtype: e.dtype) else {
                throw BamError.unsupported("GGUF cannot store tensor \(e.name) as \(e.dtype.rawValue)")
            }
            guard (1...GGUFFile.maxDims).contains(e.shape.count) else {
                throw BamError.usage("GGUF tensor \(e.name) has \(e.shape.count) dimensions; ggml supports 1 to \(GGUFFile.maxDims)")
            }
            if let inner = e.shape.last, inner % type.blockSize != 0 {
                throw BamError.usage("GGUF tensor \(e.name): row length \(inner) is not a multiple of \(type.name)'s block size \(type.blockSize)")
            }
            header.appendString(e.name)
            header.append(UInt32(e.shape.count))
            for d in e.shape.reversed() { header.append(UInt64(d)) }
            header.append(type.rawValue)
            header.append(UInt64(offset))
            offset += e.byteCount
            offset += (alignment - offset % alignment) % alignment
        }
        header.pad(to: alignment)

        let w = try AtomicFileWriter(url: url)
        try w.write(header.bytes)
        for e in entries {
            var written = 0
            try e.produce { bytes in
                try w.write(bytes)
                written += bytes.count
            }
            guard written == e.byteCount else {
                throw BamError.usage("internal: tensor \(e.name) produced \(written) bytes, \(e.byteCount) expected")
            }
            try w.writeZeros((alignment - written % alignment) % alignment)
        }
        try w.commit()
    }
}

struct GGUFByteBuffer {
    var bytes: [UInt8] = []

    mutating func append(_ b: [UInt8]) { bytes.append(contentsOf: b) }

    mutating func append<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func appendString(_ s: String) {
        let u = Array(s.utf8)
        append(UInt64(u.count))
        append(u)
    }

    mutating func pad(to alignment: Int) {
        bytes.append(contentsOf: [UInt8](repeating: 0, count: (alignment - bytes.count % alignment) % alignment))
    }

    mutating func appendValue(_ v: GGUFValue, key: String) throws {
        switch v {
        case let .uint8(x): append(x)
        case let .int8(x): append(x)
        case let .uint16(x): append(x)
        case let .int16(x): append(x)
        case let .uint32(x): append(x)
        case let .int32(x): append(x)
        case let .float32(x): append(x.bitPattern)
        case let .bool(b): append(UInt8(b ? 1 : 0))
        case let .string(s): appendString(s)
        case let .uint64(x): append(x)
        case let .int64(x): append(x)
        case let .float64(x): append(x.bitPattern)
        case let .array(t, items):
            append(t.rawValue)
            append(UInt64(items.count))
            for item in items {
                guard item.type == t else {
                    throw BamError.usage("GGUF key `\(key)`: an array of \(t) holds a \(item.type)")
                }
                try appendValue(item, key: key)
            }
        }
    }
}

extension GGUFValue: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
}
