import Foundation

// Normalizers (tokenizer.json "normalizer"). Each maps the UTF-8 of one piece of text to new UTF-8.
// HF also tracks alignments to the original text; ids do not depend on them, so we do not.

enum Normalizer: Sendable {
    case sequence([Normalizer])
    case prepend([UInt8])
    case replace(pattern: TextPattern, content: [UInt8])
    case unicode(UnicodeForm)
    case lowercase
    case strip(left: Bool, right: Bool)
    case stripAccents

    enum UnicodeForm: Sendable { case nfc, nfd, nfkc, nfkd }

    static let supported = "Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD, Lowercase, Strip, StripAccents"

    static func parse(_ node: Node) throws -> Normalizer {
        let type = try node.typeTag()
        switch type {
        case "Sequence":
            let items = try node.required("normalizers").array()
            return .sequence(try items.map(parse))
        case "Prepend":
            return .prepend(Array(try node.string("prepend").utf8))
        case "Replace":
            return .replace(pattern: try TextPattern.parse(try node.required("pattern")),
                            content: Array(try node.string("content").utf8))
        case "NFC": return .unicode(.nfc)
        case "NFD": return .unicode(.nfd)
        case "NFKC": return .unicode(.nfkc)
        case "NFKD": return .unicode(.nfkd)
        case "Lowercase": return .lowercase
        case "Strip":
            return .strip(left: try node.bool("strip_left", default: true), right: try node.bool("strip_right", default: true))
        case "StripAccents": return .stripAccents
        default:
            throw node.unsupported(type, supported: supported)
        }
    }

    func apply(_ bytes: [UInt8]) -> [UInt8] {
        switch self {
        case let .sequence(items):
            var b = bytes
            for n in items { b = n.apply(b) }
            return b
        case let .prepend(s):
            return bytes.isEmpty ? bytes : s + bytes
        case let .replace(pattern, content):
            return pattern.replaceAll(in: bytes, with: content)
        case let .unicode(form):
            let s = String(decoding: bytes, as: UTF8.self)
            let out: String
            switch form {
            case .nfc: out = s.precomposedStringWithCanonicalMapping
            case .nfd: out = s.decomposedStringWithCanonicalMapping
            case .nfkc: out = s.precomposedStringWithCompatibilityMapping
            case .nfkd: out = s.decomposedStringWithCompatibilityMapping
            }
            return Array(out.utf8)
        case .lowercase:
            // Rust's char::to_lowercase, one scalar at a time (no context-sensitive final sigma).
            var out: [UInt8] = []
            out.reserveCapacity(bytes.count)
            for v in scalars(of: bytes) {
                if v < 0x80 {
                    out.append(v >= 0x41 && v <= 0x5A ? UInt8(v + 0x20) : UInt8(v))
                } else if let s = Unicode.Scalar(v) {
                    out.append(contentsOf: s.properties.lowercaseMapping.utf8)
                }
            }
            return out
        case let .strip(left, right):
            let sc = scalars(of: bytes)
            var lo = 0, hi = sc.count
            if left { while lo < hi, charClass(sc[lo]) & CharClass.space != 0 { lo += 1 } }
            if right { while hi > lo, charClass(sc[hi - 1]) & CharClass.space != 0 { hi -= 1 } }
            return lo == 0 && hi == sc.count ? bytes : utf8(of: Array(sc[lo..<hi]))
        case .stripAccents:
            return utf8(of: scalars(of: bytes).filter { charClass($0) & CharClass.nonspacingMark == 0 })
        }
    }
}

/// The `pattern` of Split / Replace: `{"String": "..."}` (literal) or `{"Regex": "..."}`.
enum TextPattern: Sendable {
    case literal([UInt8])
    case regex(CompiledPattern)

    static func parse(_ node: Node) throws -> TextPattern {
        if let s = node.member("String") {
            return .literal(Array(try s.string().utf8))
        }
        if let r = node.member("Regex") {
            let pattern = try r.string()
            do {
                return .regex(try CompiledPattern.compile(pattern))
            } catch {
                throw r.error("invalid regular expression \(jsonQuoted(pattern)): \(error.localizedDescription)")
            }
        }
        throw node.error("expected {\"String\": ...} or {\"Regex\": ...}")
    }

    /// Non-overlapping matches in p[start..<end], left to right.
    func matches(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> [(Int, Int)] {
        switch self {
        case let .literal(s):
            return findAll(p, start, end, s)
        case let .regex(re):
            var out: [(Int, Int)] = []
            re.matches(p, start, end, into: &out)
            return out
        }
    }

    func replaceAll(in bytes: [UInt8], with content: [UInt8]) -> [UInt8] {
        if case let .literal(s) = self { return BamTokenizers.replaceAll(bytes, s, content) }
        guard !bytes.isEmpty else { return bytes }
        return bytes.withUnsafeBufferPointer { b in
            let ms = matches(b.baseAddress!, 0, b.count)
            if ms.isEmpty { return bytes }
            var out: [UInt8] = []
            out.reserveCapacity(bytes.count)
            var last = 0
            for (s, e) in ms {
                out.append(contentsOf: b[last..<s])
                out.append(contentsOf: content)
                last = e
            }
            out.append(contentsOf: b[last..<b.count])
            return out
        }
    }
}

/// `s` as a JSON string literal, for error messages and the tokenizer.json writer.
func jsonQuoted(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 {
                out += String(format: "\\u%04x", u.value)
            } else {
                out.unicodeScalars.append(u)
            }
        }
    }
    return out + "\""
}
