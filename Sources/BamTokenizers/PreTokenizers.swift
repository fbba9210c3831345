import Foundation

// Pre-tokenizers (tokenizer.json "pre_tokenizer"), applied to the pieces of text that are not
// added tokens. Sequences are flattened into a list of steps.
//
// Text flows through encoding as `Pieces`: one UTF-8 buffer and a list of byte ranges into it.
// Steps that only split (Split, Digits, the ByteLevel regex...) subdivide the ranges; steps that
// rewrite text (ByteLevel's prefix space and byte mapping, Metaspace) build a new buffer.

struct Piece {
    var start: Int
    var end: Int
    /// An added token's id, or -1 for text still to be tokenized.
    var id: Int32
    /// Whether the piece starts at offset 0 of the original input (HF's
    /// `offsets_original().0 == 0`, which Metaspace's prepend_scheme "first" tests).
    var first: Bool
}

struct Pieces {
    var buf: [UInt8]
    var list: [Piece]
}

enum SplitBehavior: Sendable {
    case removed, isolated, mergedWithPrevious, mergedWithNext, contiguous

    static func parse(_ node: Node) throws -> SplitBehavior {
        switch try node.string() {
        case "Removed": return .removed
        case "Isolated": return .isolated
        case "MergedWithPrevious": return .mergedWithPrevious
        case "MergedWithNext": return .mergedWithNext
        case "Contiguous": return .contiguous
        case let other:
            throw node.error("unknown split behavior", expected: "Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous",
                             found: jsonQuoted(other))
        }
    }
}

enum PrependScheme: Sendable { case always, first, never }

enum PreTokenizerStep: Sendable {
    /// `mapBytes == false` when this is the last step and the model reads raw bytes instead of
    /// byte-level characters (see `BPEModel.rawByteIds`).
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool, mapBytes: Bool)
    case split(TextPattern, SplitBehavior, invert: Bool)
    case metaspace(replacement: UInt32, replacementUTF8: [UInt8], prepend: PrependScheme, split: Bool)
    case digits(individual: Bool)
    case whitespace
    case whitespaceSplit
    case punctuation(SplitBehavior)
    case charDelimiter(UInt32)

    static let supported = "Sequence, ByteLevel, Split, Metaspace, Digits, Whitespace, WhitespaceSplit, "
        + "Punctuation, CharDelimiterSplit"

    static func parse(_ node: Node, into steps: inout [PreTokenizerStep]) throws {
        let type = try node.typeTag()
        switch type {
        case "Sequence":
            for item in try node.required("pretokenizers").array() { try parse(item, into: &steps) }
        case "ByteLevel":
            steps.append(.byteLevel(addPrefixSpace: try node.bool("add_prefix_space", default: true),
                                    useRegex: try node.bool("use_regex", default: true), mapBytes: true))
        case "Split":
            let pattern = try TextPattern.parse(try node.required("pattern"))
            let behavior = try SplitBehavior.parse(try node.required("behavior"))
            steps.append(.split(pattern, behavior, invert: try node.bool("invert", default: false)))
        case "Metaspace":
            let (replacement, scheme, split) = try parseMetaspace(node)
            var utf8: [UInt8] = []
            appendUTF8(replacement, to: &utf8)
            steps.append(.metaspace(replacement: replacement, replacementUTF8: utf8, prepend: scheme, split: split))
        case "Digits":
            steps.append(.digits(individual: try node.bool("individual_digits", default: false)))
        case "Whitespace":
            steps.append(.whitespace)
        case "WhitespaceSplit":
            steps.append(.whitespaceSplit)
        case "Punctuation":
            let behavior = try node.optional("behavior").map(SplitBehavior.parse) ?? .isolated
            steps.append(.punctuation(behavior))
        case "CharDelimiterSplit":
            steps.append(.charDelimiter(try singleScalar(node.required("delimiter"))))
        default:
            throw node.unsupported(type, supported: supported)
        }
    }

    func apply(_ input: Pieces) -> Pieces {
        switch self {
        case let .byteLevel(addPrefixSpace, useRegex, mapBytes):
            var pieces = input
            if addPrefixSpace {
                pieces = transform(pieces) { bytes, _ in bytes.first == 0x20 ? bytes : [0x20] + bytes }
            }
            if useRegex {
                pieces = splitPieces(pieces, behavior: .isolated) { p, s, e, out in
                    var ms: [(Int, Int)] = []
                    CompiledPattern.gpt2.matches(p, s, e, into: &ms)
                    appendWithGaps(ms, s, e, invert: false, into: &out)
                }
            }
            if mapBytes {
                pieces = transform(pieces) { bytes, _ in
                    var out: [UInt8] = []
                    out.reserveCapacity(bytes.count * 2)
                    for b in bytes { out.append(contentsOf: byteLevelUTF8[Int(b)]) }
                    return out
                }
            }
            return pieces
        case let .split(pattern, behavior, invert):
            return splitPieces(input, behavior: behavior) { p, s, e, out in
                appendWithGaps(pattern.matches(p, s, e), s, e, invert: invert, into: &out)
            }
        case let .metaspace(replacement, replacementUTF8, prepend, split):
            let replaced = transform(input) { bytes, first in
                var b = replaceAll(bytes, [0x20], replacementUTF8)
                switch prepend {
                case .always: if !b.hasPrefix(replacementUTF8) { b = replacementUTF8 + b }
                case .first: if first && !b.hasPrefix(replacementUTF8) { b = replacementUTF8 + b }
                case .never: break
                }
                return b
            }
            guard split else { return replaced }
            return splitPieces(replaced, behavior: .mergedWithNext) { p, s, e, out in
                charMatches(p, s, e, into: &out) { $0 == replacement }
            }
        case let .digits(individual):
            return splitPieces(input, behavior: individual ? .isolated : .contiguous) { p, s, e, out in
                charMatches(p, s, e, into: &out) { charClass($0) & CharClass.number != 0 }
            }
        case .whitespace:
            // \w+|[^\w\s]+ with Invert + Removed: the regex matches are kept (flagged as
            // non-matches here), the whitespace between them is removed.
            return splitPieces(input, behavior: .removed) { p, s, e, out in
                var i = s
                while i < e {
                    let (v, n) = decodeUTF8(p, i)
                    let c = charClass(v)
                    if c & CharClass.space != 0 { out.append((i, i + n, true)); i += n; continue }
                    let isWord = c & CharClass.word != 0
                    var j = i + n
                    while j < e {
                        let (v2, n2) = decodeUTF8(p, j)
                        let c2 = charClass(v2)
                        if c2 & CharClass.space != 0 || (c2 & CharClass.word != 0) != isWord { break }
                        j += n2
                    }
                    out.append((i, j, false))
                    i = j
                }
            }
        case .whitespaceSplit:
            return splitPieces(input, behavior: .removed) { p, s, e, out in
                charMatches(p, s, e, into: &out) { charClass($0) & CharClass.space != 0 }
            }
        case let .punctuation(behavior):
            return splitPieces(input, behavior: behavior) { p, s, e, out in
                charMatches(p, s, e, into: &out) { isPunctuation($0) }
            }
        case let .charDelimiter(delimiter):
            return splitPieces(input, behavior: .removed) { p, s, e, out in
                charMatches(p, s, e, into: &out) { $0 == delimiter }
            }
        }
    }
}

func parseMetaspace(_ node: Node) throws -> (UInt32, PrependScheme, Bool) {
    let replacement = try singleScalar(node.required("replacement"))
    let scheme: PrependScheme
    if let s = node.optional("prepend_scheme") {
        switch try s.string() {
        case "always": scheme = .always
        case "first": scheme = .first
        case "never": scheme = .never
        case let other: throw s.error("unknown prepend_scheme", expected: "always, first or never", found: jsonQuoted(other))
        }
    } else {
        // Files written before prepend_scheme existed carry add_prefix_space.
        scheme = try node.bool("add_prefix_space", default: true) ? .always : .never
    }
    return (replacement, scheme, try node.bool("split", default: true))
}

func singleScalar(_ node: Node) throws -> UInt32 {
    let s = try node.string()
    let sc = Array(s.unicodeScalars)
    guard sc.count == 1 else { throw node.error(expected: "a single character", found: jsonQuoted(s)) }
    return sc[0].value
}

// MARK: - Split machinery (HF's NormalizedString::split)

/// Appends (start, end, isMatch) covering p[s..<e]: gaps as non-matches, each match as a match,
/// as HF's `Pattern::find_matches` does for regexes and strings. `invert` flips isMatch.
func appendWithGaps(_ matches: [(Int, Int)], _ s: Int, _ e: Int, invert: Bool, into out: inout [(Int, Int, Bool)]) {
    var prev = s
    for (ms, me) in matches {
        if prev != ms { out.append((prev, ms, invert)) }
        out.append((ms, me, !invert))
        prev = me
    }
    if prev != e { out.append((prev, e, invert)) }
}

/// HF's `Pattern` for a char predicate: every matching character is a match of its own.
@inline(__always)
func charMatches(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int, into out: inout [(Int, Int, Bool)],
                 _ predicate: (UInt32) -> Bool) {
    var last = s
    var i = s
    while i < e {
        let (v, n) = decodeUTF8(p, i)
        if predicate(v) {
            if last < i { out.append((last, i, false)) }
            out.append((i, i + n, true))
            last = i + n
        }
        i += n
    }
    if last < e { out.append((last, e, false)) }
}

/// Applies a split behaviour to (start, end, isMatch) spans and appends the pieces to keep.
func applyBehavior(_ spans: [(Int, Int, Bool)], _ behavior: SplitBehavior, into out: inout [(Int, Int)]) {
    switch behavior {
    case .removed:
        for (s, e, m) in spans where !m { out.append((s, e)) }
    case .isolated:
        for (s, e, _) in spans { out.append((s, e)) }
    case .mergedWithPrevious:
        var previousMatch = false
        let base = out.count
        for (s, e, m) in spans {
            if m && !previousMatch && out.count > base {
                out[out.count - 1].1 = e
            } else {
                out.append((s, e))
            }
            previousMatch = m
        }
    case .mergedWithNext:
        var previousMatch = false
        var rev: [(Int, Int)] = []
        for (s, e, m) in spans.reversed() {
            if m && !previousMatch && !rev.isEmpty {
                rev[rev.count - 1].0 = s
            } else {
                rev.append((s, e))
            }
            previousMatch = m
        }
        out.append(contentsOf: rev.reversed())
    case .contiguous:
        var previousMatch = false
        let base = out.count
        for (s, e, m) in spans {
            if m == previousMatch && out.count > base {
                out[out.count - 1].1 = e
            } else {
                out.append((s, e))
            }
            previousMatch = m
        }
    }
}

/// Splits every text piece; empty results are dropped (as HF's PreTokenizedString::split does).
func splitPieces(_ input: Pieces, behavior: SplitBehavior,
                 _ find: (UnsafePointer<UInt8>, Int, Int, inout [(Int, Int, Bool)]) -> Void) -> Pieces {
    var out = Pieces(buf: input.buf, list: [])
    out.list.reserveCapacity(input.list.count * 2)
    var spans: [(Int, Int, Bool)] = []
    var kept: [(Int, Int)] = []
    input.buf.withUnsafeBufferPointer { b in
        guard let p = b.baseAddress else { out.list = input.list; return }
        for piece in input.list {
            if piece.id >= 0 { out.list.append(piece); continue }
            spans.removeAll(keepingCapacity: true)
            kept.removeAll(keepingCapacity: true)
            find(p, piece.start, piece.end, &spans)
            applyBehavior(spans, behavior, into: &kept)
            for (s, e) in kept where e > s {
                out.list.append(Piece(start: s, end: e, id: -1, first: piece.first && s == piece.start))
            }
        }
    }
    return out
}

/// Rewrites every text piece into a new buffer; empty results are dropped.
func transform(_ input: Pieces, _ f: ([UInt8], Bool) -> [UInt8]) -> Pieces {
    var out = Pieces(buf: [], list: [])
    out.buf.reserveCapacity(input.buf.count + input.buf.count / 8)
    out.list.reserveCapacity(input.list.count)
    for piece in input.list {
        if piece.id >= 0 { out.list.append(piece); continue }
        let bytes = f(Array(input.buf[piece.start..<piece.end]), piece.first)
        if bytes.isEmpty { continue }
        let start = out.buf.count
        out.buf.append(contentsOf: bytes)
        out.list.append(Piece(start: start, end: out.buf.count, id: -1, first: piece.first))
    }
    return out
}
