import Foundation

/// A JSON document kept as a tree, so that configs we rewrite (mixing, conversion) keep every key
/// we do not model, in a stable order. Strings and keys compare byte for byte: Swift's `String`
/// equality is canonical equivalence, but tokenizer vocabularies hold NFC and NFD spellings of the
/// same text as different tokens.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    /// An integer literal (no fraction or exponent) that fits in an Int.
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    public subscript(key: String) -> JSONValue? {
        if case let .object(o) = self { return o[key] }
        return nil
    }

    public var intValue: Int? {
        switch self {
        case let .int(i): i
        case let .double(d) where d == d.rounded() && abs(d) < 9e15: Int(d)
        default: nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case let .int(i): Double(i)
        case let .double(d): d
        default: nil
        }
    }

    public var stringValue: String? { if case let .string(s) = self { s } else { nil } }
    public var boolValue: Bool? { if case let .bool(b) = self { b } else { nil } }
    public var arrayValue: [JSONValue]? { if case let .array(a) = self { a } else { nil } }
    public var objectValue: JSONObject? { if case let .object(o) = self { o } else { nil } }
    public var isNull: Bool { self == .null }

    /// "a string", "an object", ... for error messages.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .int, .double: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): true
        case let (.bool(x), .bool(y)): x == y
        case let (.int(x), .int(y)): x == y
        case let (.double(x), .double(y)): x == y
        case let (.int(x), .double(y)), let (.double(y), .int(x)): Double(x) == y
        case let (.string(x), .string(y)): x.utf8.elementsEqual(y.utf8)
        case let (.array(x), .array(y)): x == y
        case let (.object(x), .object(y)): x == y
        default: false
        }
    }
}

/// An object key compared and hashed by its UTF-8 bytes (see `JSONValue`).
struct ExactKey: Hashable, Sendable {
    let string: String
    init(_ s: String) { string = s }
    static func == (a: ExactKey, b: ExactKey) -> Bool { a.string.utf8.elementsEqual(b.string.utf8) }
    func hash(into h: inout Hasher) {
        var s = string
        s.withUTF8 { h.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}

/// A JSON object that remembers key order; keys are exact (byte-for-byte).
public struct JSONObject: Equatable, Sendable {
    public private(set) var keys: [String] = []
    /// values[i] belongs to keys[i]; `index` finds i from a key (one hash per lookup or insertion).
    private var values: [JSONValue] = []
    private var index: [ExactKey: Int] = [:]

    public init() {}

    public init(_ pairs: [(String, JSONValue)]) {
        for (k, v) in pairs { self[k] = v }
    }

    public subscript(key: String) -> JSONValue? {
        get { index[ExactKey(key)].map { values[$0] } }
        set {
            let k = ExactKey(key)
            if let newValue {
                if !insertNew(k, newValue), let i = index[k] { values[i] = newValue }
            } else if let i = index.removeValue(forKey: k) {
                keys.remove(at: i)
                values.remove(at: i)
                for j in i..<keys.count { index[ExactKey(keys[j])] = j }
            }
        }
    }

    /// Appends `key` with `value` unless the key is present (then nothing changes): true if appended.
    mutating func insertNew(_ key: ExactKey, _ value: JSONValue) -> Bool {
        let i = keys.count
        if let existing = index.updateValue(i, forKey: key) {
            index[key] = existing
            return false
        }
        keys.append(key.string)
        values.append(value)
        return true
    }

    /// Replaces the value of a key that is present (the key keeps its first position).
    mutating func replace(_ key: ExactKey, _ value: JSONValue) {
        if let i = index[key] { values[i] = value }
    }

    public var pairs: [(String, JSONValue)] { Array(zip(keys, values)) }
    public var count: Int { keys.count }

    /// Order-insensitive, exact comparison (a JSON object is a map).
    public static func == (a: JSONObject, b: JSONObject) -> Bool {
        guard a.count == b.count else { return false }
        for (k, v) in zip(a.keys, a.values) {
            guard let w = b.index[ExactKey(k)].map({ b.values[$0] }), w == v else { return false }
        }
        return true
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByFloatLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
}

// MARK: - Parsing

/// What to do when an object names a key twice.
public enum DuplicateKeys: Sendable {
    /// An error: a checkpoint header naming a tensor twice is corrupt, not "last one wins".
    case reject
    /// The last value wins, as serde_json (and so HF tokenizers) reads a map.
    case keepLast
}

/// A strict, small JSON parser (RFC 8259) that keeps object key order and reports where the first
/// problem is (line, column and byte offset). It reads the bytes in place, without copying them.
public struct JSONParser {
    private let bytes: UnsafeBufferPointer<UInt8>
    private let duplicates: DuplicateKeys
    private var i = 0
    private var depth = 0
    private let maxDepth = 512

    public static func parse(_ data: Data, duplicateKeys: DuplicateKeys = .reject) throws -> JSONValue {
        try data.withUnsafeBytes { try parse($0, duplicateKeys: duplicateKeys) }
    }

    public static func parse(_ bytes: UnsafeRawBufferPointer, duplicateKeys: DuplicateKeys = .reject) throws -> JSONValue {
        var p = JSONParser(bytes: bytes.bindMemory(to: UInt8.self), duplicates: duplicateKeys)
        return try p.parseDocument()
    }

    public static func parse(_ string: String, duplicateKeys: DuplicateKeys = .reject) throws -> JSONValue {
        try parse(Data(string.utf8), duplicateKeys: duplicateKeys)
    }

    private init(bytes: UnsafeBufferPointer<UInt8>, duplicates: DuplicateKeys) {
        self.bytes = bytes
        self.duplicates = duplicates
    }

    public struct Failure: Error, CustomStringConvertible {
        public let offset: Int
        public let line: Int
        public let column: Int
        public let reason: String
        public var description: String { "invalid JSON at line \(line), column \(column) (byte \(offset)): \(reason)" }
    }

    private func fail(_ reason: String, at offset: Int? = nil) -> Failure {
        let o = offset ?? i
        var line = 1, column = 1
        for k in 0..<min(o, bytes.count) {
            if bytes[k] == 0x0A { line += 1; column = 1 } else { column += 1 }
        }
        return Failure(offset: o, line: line, column: column, reason: reason)
    }

    private mutating func parseDocument() throws -> JSONValue {
        // A UTF-8 byte-order mark is tolerated (some editors write one into config.json).
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { i = 3 }
        skipWhitespace()
        let v = try parseValue()
        skipWhitespace()
        guard i == bytes.count else { throw fail("unexpected data after the JSON document") }
        return v
    }

    private mutating func skipWhitespace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
    }

    private mutating func parseValue() throws -> JSONValue {
        guard i < bytes.count else { throw fail("unexpected end of input") }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectWord("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectWord("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectWord("null"); return .null
        case UInt8(ascii: "N"): try expectWord("NaN"); return .double(.nan)  // Python's json writes these
        case UInt8(ascii: "I"): try expectWord("Infinity"); return .double(.infinity)
        default: return try parseNumber()
        }
    }

    private mutating func expectWord(_ w: StaticString) throws {
        let start = i
        for k in 0..<w.utf8CodeUnitCount {
            guard i < bytes.count, bytes[i] == w.utf8Start[k] else { throw fail("expected `\(w)`", at: start) }
            i += 1
        }
    }

    private mutating func parseObject() throws -> JSONValue {
        depth += 1
        guard depth <= maxDepth else { throw fail("nesting deeper than \(maxDepth)") }
        defer { depth -= 1 }
        i += 1
        var obj = JSONObject()
        skipWhitespace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(obj) }
        while true {
            skipWhitespace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
            let keyOffset = i
            let key = try parseString()
            skipWhitespace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected `:`") }
            i += 1
            skipWhitespace()
            let value = try parseValue()
            let k = ExactKey(key)
            if !obj.insertNew(k, value) {
                if duplicates == .reject { throw fail("duplicate key \"\(key)\"", at: keyOffset) }
                obj.replace(k, value)
            }
            skipWhitespace()
            guard i < bytes.count else { throw fail("unexpected end of input in an object") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(obj) }
            throw fail("expected `,` or `}`")
        }
    }

    private mutating func parseArray() throws -> JSONValue {
        depth += 1
        guard depth <= maxDepth else { throw fail("nesting deeper than \(maxDepth)") }
        defer { depth -= 1 }
        i += 1
        var arr = [JSONValue]()
        skipWhitespace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(arr) }
        while true {
            skipWhitespace()
            arr.append(try parseValue())
            skipWhitespace()
            guard i < bytes.count else { throw fail("unexpected end of input in an array") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(arr) }
            throw fail("expected `,` or `]`")
        }
    }

    private mutating func parseHex4() throws -> UInt32 {
        guard i + 4 <= bytes.count else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[i]
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw fail("bad hex digit in \\u escape")
            }
            v = v * 16 + d
            i += 1
        }
        return v
    }

    private mutating func parseString() throws -> String {
        i += 1
        // Fast path: no escapes — the string is the bytes up to the closing quote.
        let start = i
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: "\"") {
                guard let s = String(validating: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self) else {
                    throw fail("string is not valid UTF-8", at: start)
                }
                i += 1
                return s
            }
            if c == UInt8(ascii: "\\") || c < 0x20 { break }
            i += 1
        }
        var out = [UInt8](UnsafeBufferPointer(rebasing: bytes[start..<i]))
        while true {
            guard i < bytes.count else { throw fail("unterminated string") }
            let c = bytes[i]
            if c == UInt8(ascii: "\"") { i += 1; break }
            if c < 0x20 { throw fail("control character in a string") }
            if c == UInt8(ascii: "\\") {
                i += 1
                guard i < bytes.count else { throw fail("unterminated escape") }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try parseHex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        // A high surrogate must be followed by an escaped low surrogate.
                        if i + 6 <= bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") {
                            i += 2
                            let low = try parseHex4()
                            guard (0xDC00..<0xE000).contains(low) else { throw fail("unpaired surrogate") }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            scalar = 0xFFFD
                        }
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        scalar = 0xFFFD
                    }
                    out.append(contentsOf: Array(String(Character(Unicode.Scalar(scalar)!)).utf8))
                default: throw fail("unknown escape \\\(Character(Unicode.Scalar(e)))")
                }
            } else {
                out.append(c)
                i += 1
            }
        }
        guard let s = String(validating: out, as: UTF8.self) else { throw fail("string is not valid UTF-8", at: start) }
        return s
    }

    private mutating func parseNumber() throws -> JSONValue {
        let start = i
        if i < bytes.count, bytes[i] == UInt8(ascii: "-") {
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "I") { try expectWord("Infinity"); return .double(-.infinity) }
        }
        var isInteger = true
        guard i < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]) else {
            throw fail("unexpected character", at: start)
        }
        while i < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]) { i += 1 }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            isInteger = false
            i += 1
            while i < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]) { i += 1 }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            isInteger = false
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            while i < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]) { i += 1 }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
        if isInteger, let v = Int(text) { return .int(v) }
        guard let d = Double(text) else { throw fail("bad number `\(text)`", at: start) }
        return .double(d)
    }
}

// MARK: - Writing

extension JSONValue {
    /// Serialises with keys in stored order. `indent` nil gives the compact form.
    public func serialized(indent: Int? = 2) -> String {
        var out = ""
        write(into: &out, indent: indent, level: 0)
        return out
    }

    private static func escape(_ s: String) -> String {
        var r = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": r += "\\\""
            case "\\": r += "\\\\"
            case "\n": r += "\\n"
            case "\r": r += "\\r"
            case "\t": r += "\\t"
            default:
                if u.value < 0x20 { r += String(format: "\\u%04x", u.value) } else { r.unicodeScalars.append(u) }
            }
        }
        return r + "\""
    }

    private static func format(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d > 0 ? "Infinity" : "-Infinity" }
        if d == d.rounded(), abs(d) < 1e15 { return String(format: "%.1f", d) }
        return "\(d)"
    }

    private func write(into out: inout String, indent: Int?, level: Int) {
        let nl = indent == nil ? "" : "\n"
        let pad = { (n: Int) in String(repeating: " ", count: (indent ?? 0) * n) }
        let sep = indent == nil ? ":" : ": "
        switch self {
        case .null: out += "null"
        case let .bool(b): out += b ? "true" : "false"
        case let .int(i): out += String(i)
        case let .double(d): out += JSONValue.format(d)
        case let .string(s): out += JSONValue.escape(s)
        case let .array(a):
            if a.isEmpty { out += "[]"; return }
            out += "[" + nl
            for (n, v) in a.enumerated() {
                out += pad(level + 1)
                v.write(into: &out, indent: indent, level: level + 1)
                out += (n + 1 < a.count ? "," : "") + nl
            }
            out += pad(level) + "]"
        case let .object(o):
            if o.count == 0 { out += "{}"; return }
            out += "{" + nl
            for (n, (k, v)) in o.pairs.enumerated() {
                out += pad(level + 1) + JSONValue.escape(k) + sep
                v.write(into: &out, indent: indent, level: level + 1)
                out += (n + 1 < o.count ? "," : "") + nl
            }
            out += pad(level) + "}"
        }
    }
}

/// Reads and parses a JSON file, naming the file in any error.
/// (Mapped rather than read with `Data(contentsOf:)`, which leaks a 4 KB buffer on an empty file
/// in swift-foundation, found by the safetensors-index fuzz target.)
public func readJSONFile(_ url: URL) throws -> JSONValue {
    let file = try MappedFile(path: url.path)
    do { return try JSONParser.parse(file.bytes(at: 0, count: file.size)) } catch let f as JSONParser.Failure {
        throw BamError.json(url.path, f)
    }
}

extension BamError {
    /// A JSON document that does not parse, located at the failure's line and column.
    public static func json(_ file: String, _ failure: JSONParser.Failure) -> BamError {
        .format(file, at: .line(failure.line, column: failure.column), "invalid JSON (byte \(failure.offset)): \(failure.reason)")
    }
}
