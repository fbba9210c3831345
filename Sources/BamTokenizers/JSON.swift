import Foundation

// A small strict JSON reader for tokenizer.json. BamTokenizers depends on nothing but Foundation,
// and Foundation's JSONSerialization would hand back NSNumber booleans and lose the byte offset of
// a syntax error, so the module carries its own (~200 lines). Strings keep their exact Unicode
// scalars: tokenizer vocabularies hold both NFC and NFD spellings of some tokens, so nothing here
// compares Swift Strings (which compare by canonical equivalence).

enum JSON: Sendable, Equatable {
    case null
    case bool(Bool)
    /// A number; `integer` is set when the literal had no fraction or exponent and fits in an Int.
    case number(Double, integer: Int?)
    case string(String)
    case array([JSON])
    case object(JSONFields)

    var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

/// Object members in document order. Lookups are linear: tokenizer.json objects are small except
/// `model.vocab`, which is only ever iterated.
struct JSONFields: Sendable {
    var keys: [String] = []
    var values: [JSON] = []

    /// The last member with this key (serde's map semantics when a key repeats).
    func value(for key: String) -> JSON? {
        let target = Array(key.utf8)
        var i = keys.count - 1
        while i >= 0 {
            if keys[i].utf8.elementsEqual(target) { return values[i] }
            i -= 1
        }
        return nil
    }

    static func == (a: JSONFields, b: JSONFields) -> Bool {
        // Order-insensitive, exact (scalar-by-scalar) key comparison.
        guard a.keys.count == b.keys.count else { return false }
        for (k, v) in zip(a.keys, a.values) {
            guard let w = b.value(for: k), w == v else { return false }
        }
        return true
    }
}

extension JSON {
    static func == (a: JSON, b: JSON) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.number(x, _), .number(y, _)): return x == y
        case let (.string(x), .string(y)): return x.utf8.elementsEqual(y.utf8)
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)): return x == y
        default: return false
        }
    }
}

struct JSONParser {
    static let maxDepth = 256

    /// Parses a complete JSON document; `file` names it in errors.
    static func parse(_ data: Data, file: String) throws -> JSON {
        try data.withUnsafeBytes { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            var p = JSONParser(bytes: bytes, file: file)
            p.skipSpace()
            let value = try p.parseValue(depth: 0)
            p.skipSpace()
            if p.i != bytes.count { throw p.error("unexpected data after the JSON document") }
            return value
        }
    }

    let bytes: UnsafeBufferPointer<UInt8>
    let file: String
    var i = 0

    init(bytes: UnsafeBufferPointer<UInt8>, file: String) {
        self.bytes = bytes
        self.file = file
    }

    func error(_ what: String) -> TokenizerError {
        var line = 1, column = 1
        for k in 0..<min(i, bytes.count) {
            if bytes[k] == 0x0A { line += 1; column = 1 } else { column += 1 }
        }
        return TokenizerError(file: file, "invalid JSON at line \(line), column \(column) (byte \(i)): \(what)")
    }

    mutating func skipSpace() {
        while i < bytes.count {
            let b = bytes[i]
            if b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { i += 1 } else { break }
        }
    }

    mutating func parseValue(depth: Int) throws -> JSON {
        guard depth < JSONParser.maxDepth else { throw error("nesting deeper than \(JSONParser.maxDepth) levels") }
        guard i < bytes.count else { throw error("unexpected end of data, expected a value") }
        switch bytes[i] {
        case UInt8(ascii: "{"):
            i += 1
            var fields = JSONFields()
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(fields) }
            while true {
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw error("expected a string key") }
                let key = try parseString()
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw error("expected ':' after key \"\(key)\"") }
                i += 1
                skipSpace()
                let value = try parseValue(depth: depth + 1)
                fields.keys.append(key)
                fields.values.append(value)
                skipSpace()
                guard i < bytes.count else { throw error("unexpected end of data inside an object") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(fields) }
                throw error("expected ',' or '}' in an object")
            }
        case UInt8(ascii: "["):
            i += 1
            var items: [JSON] = []
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            while true {
                skipSpace()
                items.append(try parseValue(depth: depth + 1))
                skipSpace()
                guard i < bytes.count else { throw error("unexpected end of data inside an array") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                throw error("expected ',' or ']' in an array")
            }
        case UInt8(ascii: "\""):
            return .string(try parseString())
        case UInt8(ascii: "t"):
            try literal("true"); return .bool(true)
        case UInt8(ascii: "f"):
            try literal("false"); return .bool(false)
        case UInt8(ascii: "n"):
            try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try parseNumber()
        default:
            throw error("unexpected character '\(Character(Unicode.Scalar(bytes[i])))'")
        }
    }

    mutating func literal(_ word: StaticString) throws {
        let n = word.utf8CodeUnitCount
        guard i + n <= bytes.count,
              memcmp(bytes.baseAddress! + i, word.utf8Start, n) == 0 else { throw error("expected \(word)") }
        i += n
    }

    mutating func parseNumber() throws -> JSON {
        let start = i
        var isInteger = true
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 else { throw error("expected a digit") }
        if bytes[i] == 0x30 { i += 1 } else { while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1 } }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            isInteger = false
            i += 1
            guard i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 else { throw error("expected a digit after '.'") }
            while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1 }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            isInteger = false
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 else { throw error("expected a digit in the exponent") }
            while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1 }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
        guard let d = Double(text) else { throw error("bad number \(text)") }
        return .number(d, integer: isInteger ? Int(text) : nil)
    }

    mutating func parseString() throws -> String {
        i += 1  // opening quote
        let start = i
        // Fast path: no escapes.
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                let s = try makeString(UnsafeBufferPointer(rebasing: bytes[start..<i]))
                i += 1
                return s
            }
            if b == UInt8(ascii: "\\") { break }
            if b < 0x20 { throw error("control character in a string (must be escaped)") }
            i += 1
        }
        var out = [UInt8](UnsafeBufferPointer(rebasing: bytes[start..<i]))
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                i += 1
                return try makeString(out)
            }
            if b < 0x20 { throw error("control character in a string (must be escaped)") }
            if b != UInt8(ascii: "\\") { out.append(b); i += 1; continue }
            i += 1
            guard i < bytes.count else { break }
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
                var code = try hex4()
                if code >= 0xD800 && code < 0xDC00 {
                    guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                        throw error("unpaired UTF-16 surrogate escape")
                    }
                    i += 2
                    let low = try hex4()
                    guard low >= 0xDC00 && low < 0xE000 else { throw error("unpaired UTF-16 surrogate escape") }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                } else if code >= 0xDC00 && code < 0xE000 {
                    throw error("unpaired UTF-16 surrogate escape")
                }
                appendUTF8(UInt32(code), to: &out)
            default:
                throw error("bad escape '\\\(Character(Unicode.Scalar(e)))'")
            }
        }
        throw error("unterminated string")
    }

    mutating func hex4() throws -> Int {
        guard i + 4 <= bytes.count else { throw error("truncated \\u escape") }
        var v = 0
        for _ in 0..<4 {
            let b = bytes[i]
            let d: Int
            switch b {
            case 0x30...0x39: d = Int(b) - 0x30
            case 0x41...0x46: d = Int(b) - 0x41 + 10
            case 0x61...0x66: d = Int(b) - 0x61 + 10
            default: throw error("bad hex digit in \\u escape")
            }
            v = v * 16 + d
            i += 1
        }
        return v
    }

    func makeString<C: Collection>(_ utf8: C) throws -> String where C.Element == UInt8 {
        guard let s = String(validating: utf8, as: UTF8.self) else { throw error("string is not valid UTF-8") }
        return s
    }
}

func appendUTF8(_ v: UInt32, to out: inout [UInt8]) {
    if v < 0x80 {
        out.append(UInt8(v))
    } else if v < 0x800 {
        out.append(UInt8(0xC0 | (v >> 6)))
        out.append(UInt8(0x80 | (v & 0x3F)))
    } else if v < 0x10000 {
        out.append(UInt8(0xE0 | (v >> 12)))
        out.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
        out.append(UInt8(0x80 | (v & 0x3F)))
    } else {
        out.append(UInt8(0xF0 | (v >> 18)))
        out.append(UInt8(0x80 | ((v >> 12) & 0x3F)))
        out.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
        out.append(UInt8(0x80 | (v & 0x3F)))
    }
}

// MARK: - Typed access with JSON paths for errors

/// A JSON value together with its path in the document, so that every error can say where.
struct Node {
    let value: JSON
    let path: String
    let file: String

    func error(_ message: String) -> TokenizerError {
        TokenizerError(file: file, jsonPath: path.isEmpty ? "(root)" : path, message)
    }

    func childPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// The member `key`, or nil when absent. A JSON null is returned as a node holding `.null`.
    func member(_ key: String) -> Node? {
        guard case let .object(fields) = value, let v = fields.value(for: key) else { return nil }
        return Node(value: v, path: childPath(key), file: file)
    }

    /// The member `key`, or nil when absent or null.
    func optional(_ key: String) -> Node? {
        guard let m = member(key), m.value != .null else { return nil }
        return m
    }

    func required(_ key: String) throws -> Node {
        guard let m = member(key) else {
            if case .object = value { throw error("missing \"\(key)\"") }
            throw error("expected an object, found \(value.typeName)")
        }
        guard m.value != .null else { throw m.error("must not be null") }
        return m
    }

    func string() throws -> String {
        guard case let .string(s) = value else { throw error("expected a string, found \(value.typeName)") }
        return s
    }

    func int() throws -> Int {
        guard case let .number(_, integer) = value, let integer else {
            throw error("expected an integer, found \(value.typeName)")
        }
        return integer
    }

    func double() throws -> Double {
        guard case let .number(d, _) = value else { throw error("expected a number, found \(value.typeName)") }
        return d
    }

    func bool() throws -> Bool {
        guard case let .bool(b) = value else { throw error("expected true or false, found \(value.typeName)") }
        return b
    }

    func array() throws -> [Node] {
        guard case let .array(items) = value else { throw error("expected an array, found \(value.typeName)") }
        return items.enumerated().map { Node(value: $1, path: "\(path)[\($0)]", file: file) }
    }

    func fields() throws -> JSONFields {
        guard case let .object(f) = value else { throw error("expected an object, found \(value.typeName)") }
        return f
    }

    func bool(_ key: String, default d: Bool) throws -> Bool {
        guard let m = optional(key) else { return d }
        return try m.bool()
    }

    func string(_ key: String) throws -> String { try required(key).string() }

    /// The `"type"` tag of a component.
    func typeTag() throws -> String {
        guard let t = member("type") else { throw error("missing \"type\"") }
        return try t.string()
    }

    func unsupported(_ type: String, supported: String) -> TokenizerError {
        error("type \"\(type)\" is not supported (supported: \(supported))")
    }
}
