import Foundation

// Post-processors (special tokens added around the ids) and decoders (ids back to text).

indirect enum PostProcessor: Sendable {
    /// TemplateProcessing's `single` template (BertProcessing / RobertaProcessing become one too).
    case template([TemplateItem])
    /// ByteLevel only trims offsets, which ids do not carry.
    case byteLevel
    case sequence([PostProcessor])

    enum TemplateItem: Sendable, Equatable {
        case sequence
        case special([Int])
    }

    static let supported = "TemplateProcessing, ByteLevel, BertProcessing, RobertaProcessing, Sequence"

    static func parse(_ node: Node) throws -> PostProcessor {
        let type = try node.typeTag()
        switch type {
        case "TemplateProcessing":
            return .template(try parseTemplate(node))
        case "ByteLevel":
            return .byteLevel
        case "BertProcessing", "RobertaProcessing":
            func tokenId(_ key: String) throws -> Int {
                let n = try node.required(key)
                let pair = try n.array()
                guard pair.count == 2, case .string = pair[0].value else {
                    throw n.error("expected [\"TOKEN\", ID]")
                }
                return try pair[1].int()
            }
            return .template([.special([try tokenId("cls")]), .sequence, .special([try tokenId("sep")])])
        case "Sequence":
            return .sequence(try node.required("processors").array().map(parse))
        default:
            throw node.unsupported(type, supported: supported)
        }
    }

    private static func parseTemplate(_ node: Node) throws -> [TemplateItem] {
        // special_tokens: {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}
        var specials: [String: [Int]] = [:]
        if let st = node.optional("special_tokens") {
            let fields = try st.fields()
            for (name, value) in fields.pairs {
                let entry = Node(value: value, path: "\(st.path)[\(jsonQuoted(name))]", file: node.file)
                specials[name] = try entry.required("ids").array().map { try $0.int() }
            }
        }
        let single = try node.required("single")
        func special(_ name: String, _ at: Node) throws -> TemplateItem {
            guard let ids = specials[name] else {
                throw at.error("the special token is not listed in special_tokens", found: jsonQuoted(name))
            }
            return .special(ids)
        }
        if case let .string(template) = single.value {
            // The string form "<s> $A:0" (what the Python API accepts).
            return try template.split(separator: " ").map { word in
                let name = String(word.split(separator: ":", maxSplits: 1).first ?? word[...])
                if name.hasPrefix("$") {
                    guard ["$", "$A", "$0"].contains(name) else { throw single.error("\(name) cannot appear in a single-sequence template") }
                    return .sequence
                }
                return try special(name, single)
            }
        }
        return try single.array().map { item in
            if let seq = item.member("Sequence") {
                let id = try seq.string("id")
                guard id == "A" else { throw seq.error("sequence \(id) cannot appear in a single-sequence template") }
                return .sequence
            }
            if let sp = item.member("SpecialToken") {
                return try special(try sp.string("id"), sp)
            }
            throw item.error("expected {\"SpecialToken\": ...} or {\"Sequence\": ...}")
        }
    }

    func apply(_ ids: [Int]) -> [Int] {
        switch self {
        case let .template(items):
            var out: [Int] = []
            out.reserveCapacity(ids.count + 4)
            for item in items {
                switch item {
                case .sequence: out.append(contentsOf: ids)
                case let .special(s): out.append(contentsOf: s)
                }
            }
            return out
        case .byteLevel:
            return ids
        case let .sequence(items):
            var out = ids
            for p in items { out = p.apply(out) }
            return out
        }
    }
}

indirect enum Decoder: Sendable {
    case byteLevel
    case replace(TextPattern, [UInt8])
    case byteFallback
    case fuse
    case strip(content: UInt32, start: Int, stop: Int)
    case metaspace(replacement: UInt32, prependScheme: PrependScheme)
    case bpe(suffix: [UInt8])
    case sequence([Decoder])

    static let supported = "ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, BPEDecoder, Sequence"

    static func parse(_ node: Node) throws -> Decoder {
        let type = try node.typeTag()
        switch type {
        case "ByteLevel": return .byteLevel
        case "Replace":
            return .replace(try TextPattern.parse(try node.required("pattern")), Array(try node.string("content").utf8))
        case "ByteFallback": return .byteFallback
        case "Fuse": return .fuse
        case "Strip":
            return .strip(content: try singleScalar(try node.required("content")),
                          start: try node.required("start").int(), stop: try node.required("stop").int())
        case "Metaspace":
            let (replacement, scheme, _) = try parseMetaspace(node)
            return .metaspace(replacement: replacement, prependScheme: scheme)
        case "BPEDecoder":
            return .bpe(suffix: Array((try node.optional("suffix")?.string() ?? "</w>").utf8))
        case "Sequence":
            return .sequence(try node.required("decoders").array().map(parse))
        default:
            throw node.unsupported(type, supported: supported)
        }
    }

    /// HF's `decode_chain`.
    func decodeChain(_ tokens: [String]) -> [String] {
        switch self {
        case .byteLevel:
            var bytes: [UInt8] = []
            for t in tokens {
                let utf8 = Array(t.utf8)
                if let raw = byteLevelDecode(utf8) { bytes.append(contentsOf: raw) } else { bytes.append(contentsOf: utf8) }
            }
            return [String(decoding: bytes, as: UTF8.self)]  // lossy, as from_utf8_lossy
        case let .replace(pattern, content):
            return tokens.map { String(decoding: pattern.replaceAll(in: Array($0.utf8), with: content), as: UTF8.self) }
        case .byteFallback:
            var out: [String] = []
            var pending: [UInt8] = []
            func flush() {
                guard !pending.isEmpty else { return }
                if let s = String(validating: pending, as: UTF8.self) {
                    out.append(s)
                } else {
                    out.append(contentsOf: repeatElement("\u{FFFD}", count: pending.count))
                }
                pending.removeAll()
            }
            for t in tokens {
                let u = Array(t.utf8)
                if u.count == 6, u.hasPrefix(Array("<0x".utf8)), u[5] == UInt8(ascii: ">"),
                   let b = UInt8(String(decoding: u[3..<5], as: UTF8.self), radix: 16) {
                    pending.append(b)
                } else {
                    flush()
                    out.append(t)
                }
            }
            flush()
            return out
        case .fuse:
            return [tokens.joined()]
        case let .strip(content, start, stop):
            return tokens.map { t in
                let sc = Array(t.unicodeScalars)
                var lo = 0, hi = sc.count
                while lo < min(start, sc.count), sc[lo].value == content { lo += 1 }
                var k = 0
                while k < stop, hi > lo, sc[hi - 1].value == content { hi -= 1; k += 1 }
                var s = String.UnicodeScalarView()
                s.append(contentsOf: sc[lo..<hi])
                return String(s)
            }
        case let .metaspace(replacement, scheme):
            return tokens.enumerated().map { i, t in
                var s = String.UnicodeScalarView()
                for u in t.unicodeScalars {
                    if u.value == replacement {
                        // HF drops every replacement char of the first token, not only a leading one.
                        if i == 0 && scheme != .never { continue }
                        s.append(" ")
                    } else {
                        s.append(u)
                    }
                }
                return String(s)
            }
        case let .bpe(suffix):
            return tokens.enumerated().map { i, t in
                String(decoding: replaceAll(Array(t.utf8), suffix, i == tokens.count - 1 ? [] : [0x20]), as: UTF8.self)
            }
        case let .sequence(items):
            var t = tokens
            for d in items { t = d.decodeChain(t) }
            return t
        }
    }
}
