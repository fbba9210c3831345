import BamFormats
import Foundation

// tokenizer.json is read with the project's JSON parser (BamFormats.JSONParser): it keeps object
// order, reports line and column, and compares strings and keys byte for byte — tokenizer
// vocabularies hold both NFC and NFD spellings of some tokens, which Swift's String equality
// (canonical equivalence) would merge. Repeated keys keep the last value, as serde_json (and so
// HF tokenizers) reads a map.

typealias JSON = JSONValue
typealias JSONFields = JSONObject

/// Parses a tokenizer JSON document; `file` names it in errors.
func parseTokenizerJSON(_ data: Data, file: String) throws -> JSON {
    do {
        return try JSONParser.parse(data, duplicateKeys: .keepLast)
    } catch let f as JSONParser.Failure {
        throw BamError.json(file, f)
    }
}

// MARK: - Typed access with JSON paths for errors

/// A JSON value together with its path in the document, so that every error can say where.
struct Node {
    let value: JSON
    let path: String
    let file: String

    /// A format error at this node's JSON path.
    func error(_ what: BamError.Text = "", expected: String? = nil, found: String? = nil) -> BamError {
        BamError.format(file, at: .key(path), what, expected: expected, found: found)
    }

    func childPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// The member `key`, or nil when absent. A JSON null is returned as a node holding `.null`.
    func member(_ key: String) -> Node? {
        guard case let .object(fields) = value, let v = fields[key] else { return nil }
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
            throw error(expected: "an object", found: value.typeName)
        }
        guard m.value != .null else { throw m.error("must not be null", found: "null") }
        return m
    }

    func string() throws -> String {
        guard case let .string(s) = value else { throw error(expected: "a string", found: value.typeName) }
        return s
    }

    func int() throws -> Int {
        guard case let .int(integer) = value else {
            throw error(expected: "an integer", found: value.typeName)
        }
        return integer
    }

    func double() throws -> Double {
        guard let d = value.doubleValue else { throw error(expected: "a number", found: value.typeName) }
        return d
    }

    func bool() throws -> Bool {
        guard case let .bool(b) = value else { throw error(expected: "true or false", found: value.typeName) }
        return b
    }

    func array() throws -> [Node] {
        guard case let .array(items) = value else { throw error(expected: "an array", found: value.typeName) }
        return items.enumerated().map { Node(value: $1, path: "\(path)[\($0)]", file: file) }
    }

    func fields() throws -> JSONFields {
        guard case let .object(f) = value else { throw error(expected: "an object", found: value.typeName) }
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

    /// A component `type` bam-mix does not implement.
    func unsupported(_ type: String, supported: String) -> BamError {
        BamError.unsupported("this component type is not supported", file: file, at: .key(path), expected: supported, found: "\"\(type)\"")
    }
}
