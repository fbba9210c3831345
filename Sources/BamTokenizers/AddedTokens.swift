import Foundation

// Added tokens (tokenizer.json "added_tokens"): split out of the text before the model runs, as
// HF's AddedVocabulary::extract_and_normalize does. Tokens with `normalized: false` are found in
// the raw text; the remaining pieces are normalized, and tokens with `normalized: true` (whose own
// content went through the normalizer) are found in the normalized pieces. Matching is
// leftmost-longest and non-overlapping (HF uses aho-corasick with MatchKind::LeftmostLongest).

struct AddedToken: Sendable {
    let id: Int32
    let content: String
    /// What id -> token gives (and decoding uses): HF returns the normalized content for tokens
    /// with `normalized: true`, the content otherwise.
    var decoded: String
    let singleWord: Bool
    let lstrip: Bool
    let rstrip: Bool
    let normalized: Bool
    let special: Bool
}

/// A byte trie answering "the longest pattern that starts here".
struct TokenTrie: Sendable {
    private struct TrieNode {
        var edges: [(UInt8, Int32)] = []
        var terminal: Int32 = -1  // index into the token list
    }

    private var nodes = [TrieNode()]
    private var firstBytes = [Bool](repeating: false, count: 256)
    private(set) var isEmpty = true

    mutating func insert(_ pattern: [UInt8], token: Int32) {
        guard !pattern.isEmpty else { return }
        isEmpty = false
        firstBytes[Int(pattern[0])] = true
        var node = 0
        for b in pattern {
            if let e = nodes[node].edges.first(where: { $0.0 == b }) {
                node = Int(e.1)
            } else {
                nodes.append(TrieNode())
                nodes[node].edges.append((b, Int32(nodes.count - 1)))
                node = nodes.count - 1
            }
        }
        nodes[node].terminal = token
    }

    /// The next leftmost-longest match in p[from..<end]: (start, end, token index).
    func nextMatch(_ p: UnsafePointer<UInt8>, from: Int, end: Int) -> (Int, Int, Int32)? {
        var i = from
        while i < end {
            if firstBytes[Int(p[i])] {
                var node = 0
                var best: (Int, Int32)?
                var j = i
                while j < end, let e = nodes[node].edges.first(where: { $0.0 == p[j] }) {
                    node = Int(e.1)
                    j += 1
                    if nodes[node].terminal >= 0 { best = (j, nodes[node].terminal) }
                }
                if let best { return (i, best.0, best.1) }
            }
            i += 1
        }
        return nil
    }
}

struct AddedVocabulary: Sendable {
    let tokens: [AddedToken]
    let byId: [Int32: Int]  // id -> index in tokens
    let byContent: ByteStringMap  // content -> id
    /// Contents of special tokens (what decode(skipSpecialTokens:) drops, compared as HF does, by content).
    let specialContents: ByteStringMap
    let rawTrie: TokenTrie
    let normalizedTrie: TokenTrie
    /// The same without the special tokens: for encoding with special-token strings taken as
    /// text (llama.cpp's `parse_special = false`, HF's `split_special_tokens`).
    let rawTrieNonSpecial: TokenTrie
    let normalizedTrieNonSpecial: TokenTrie

    static func parse(_ node: Node?, normalizer: Normalizer?) throws -> AddedVocabulary {
        var tokens: [AddedToken] = []
        var byId: [Int32: Int] = [:]
        var byContent = ByteStringMap()
        var specials = ByteStringMap()
        var raw = TokenTrie(), norm = TokenTrie()
        var rawNonSpecial = TokenTrie(), normNonSpecial = TokenTrie()
        for item in try node?.array() ?? [] {
            let id = try item.required("id").int()
            guard id >= 0 && id < BPEModel.maxId else { throw item.error("token id out of range", expected: "0 ... \(BPEModel.maxId - 1)", found: "\(id)") }
            let content = try item.string("content")
            var t = AddedToken(id: Int32(id), content: content, decoded: content,
                               singleWord: try item.bool("single_word", default: false),
                               lstrip: try item.bool("lstrip", default: false),
                               rstrip: try item.bool("rstrip", default: false),
                               normalized: try item.bool("normalized", default: true),
                               special: try item.bool("special", default: false))
            if content.isEmpty { continue }
            let index = Int32(tokens.count)
            byId[t.id] = Int(index)
            let bytes = Array(content.utf8)
            byContent.set(bytes, UInt64(id))
            if t.special { specials.set(bytes, 1) }
            if t.normalized {
                let normalized = normalizer?.apply(bytes) ?? bytes
                norm.insert(normalized, token: index)
                if !t.special { normNonSpecial.insert(normalized, token: index) }
                t.decoded = String(decoding: normalized, as: UTF8.self)
            } else {
                raw.insert(bytes, token: index)
                if !t.special { rawNonSpecial.insert(bytes, token: index) }
            }
            tokens.append(t)
        }
        return AddedVocabulary(tokens: tokens, byId: byId, byContent: byContent, specialContents: specials,
                               rawTrie: raw, normalizedTrie: norm, rawTrieNonSpecial: rawNonSpecial,
                               normalizedTrieNonSpecial: normNonSpecial)
    }

    func token(id: Int) -> AddedToken? {
        guard let i = byId[Int32(truncatingIfNeeded: id)], id == Int(tokens[i].id) else { return nil }
        return tokens[i]
    }

    /// HF's find_matches: splits p[start..<end] into text and added-token pieces, honouring
    /// single_word, lstrip and rstrip.
    func split(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, first: Bool, trie: TokenTrie,
               into out: inout [Piece]) {
        func text(_ s: Int, _ e: Int) {
            if e > s { out.append(Piece(start: s, end: e, id: -1, first: first && s == start)) }
        }
        if trie.isEmpty { text(start, end); return }
        var startOffset = start
        var searchFrom = start
        while let (ms, me, index) = trie.nextMatch(p, from: searchFrom, end: end) {
            searchFrom = me
            let t = tokens[Int(index)]
            if t.singleWord {
                let startSpace = ms == start || !endsWithWordChar(p, start, ms)
                let stopSpace = me == end || !startsWithWordChar(p, me, end)
                if !startSpace || !stopSpace { continue }
            }
            var s = ms, e = me
            if t.lstrip { s = max(trailingWhitespaceStart(p, start, ms), startOffset) }
            if t.rstrip { e = leadingWhitespaceEnd(p, me, end) }
            text(startOffset, s)
            out.append(Piece(start: s, end: e, id: t.id, first: false))
            startOffset = e
        }
        text(startOffset, end)
    }
}

// Rust regex's \w and \s, as HF's single_word / lstrip / rstrip helpers use them.

private func endsWithWordChar(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
    guard end > start else { return false }
    var i = end - 1
    while i > start, p[i] & 0xC0 == 0x80 { i -= 1 }
    return charClass(decodeUTF8(p, i).scalar) & CharClass.word != 0
}

private func startsWithWordChar(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
    guard end > start else { return false }
    return charClass(decodeUTF8(p, start).scalar) & CharClass.word != 0
}

/// Start of the whitespace run that ends at `end` (`end` itself when there is none).
private func trailingWhitespaceStart(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Int {
    var i = end
    while i > start {
        var k = i - 1
        while k > start, p[k] & 0xC0 == 0x80 { k -= 1 }
        if charClass(decodeUTF8(p, k).scalar) & CharClass.space == 0 { break }
        i = k
    }
    return i
}

/// End of the whitespace run that starts at `start`.
private func leadingWhitespaceEnd(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Int {
    var i = start
    while i < end {
        let (v, n) = decodeUTF8(p, i)
        if charClass(v) & CharClass.space == 0 { break }
        i += n
    }
    return i
}
