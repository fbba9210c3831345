import BamFormats
import Foundation

/// A GGUF vocabulary (`GGUFVocabulary`, read as llama.cpp reads it) with the lookup tables the
/// tokenizers need: token text -> id, BPE pair -> merge rank, and the special tokens in the order
/// llama.cpp splits them out of text.
struct LlamaVocabulary: Sendable {
    let source: GGUFVocabulary
    let tokens: [[UInt8]]
    var scores: [Float] { source.scores }
    var attributes: [GGUFTokenAttributes] { source.attributes }
    var unkId: Int? { source.unkId }
    var ignoreMerges: Bool { source.ignoreMerges }
    /// Token text -> id (llama.cpp's `token_to_id`).
    let textToId: ByteStringMap
    /// "left" 0xFF "right" -> rank (0xFF never occurs in UTF-8, so the key is unambiguous).
    let mergeRanks: ByteStringMap
    /// Control, user-defined and unknown tokens, longest text first: the order in which
    /// `tokenizer_st_partition` splits them out of the text.
    let specialTokensLongestFirst: [Int32]

    init(_ v: GGUFVocabulary) {
        source = v
        tokens = v.tokens.map { Array($0.utf8) }
        var textToId = ByteStringMap(minimumCapacity: tokens.count)
        for (i, t) in tokens.enumerated() { textToId.set(t, UInt64(i)) }
        self.textToId = textToId
        var ranks = ByteStringMap(minimumCapacity: v.merges.count)
        for (rank, m) in v.merges.enumerated() {
            // llama.cpp splits a merge at its first space after the first byte; one without a space
            // becomes the pair ("", ""). A pair listed twice keeps its first rank.
            let bytes = Array(m.utf8)
            var key: [UInt8] = [0xFF]
            if bytes.count > 1, let space = bytes[1...].firstIndex(of: 0x20) {
                key = Array(bytes[..<space]) + [0xFF] + Array(bytes[(space + 1)...])
            }
            if ranks.get(key) == nil { ranks.set(key, UInt64(rank)) }
        }
        mergeRanks = ranks
        let tokens = self.tokens
        var special = v.attributes.indices.filter { v.attributes[$0].isSpecial }.map { Int32($0) }
        // llama.cpp sorts with std::sort by length only; equal lengths keep id order here (which
        // matters only for two special tokens of one length that overlap in the text).
        special.sort { tokens[Int($0)].count != tokens[Int($1)].count ? tokens[Int($0)].count > tokens[Int($1)].count : $0 < $1 }
        specialTokensLongestFirst = special
    }

    var count: Int { tokens.count }

    func text(of id: Int) -> [UInt8]? { id >= 0 && id < tokens.count ? tokens[id] : nil }

    func id(of text: [UInt8]) -> Int32? { textToId.get(text).map { Int32($0) } }

    @inline(__always)
    func id(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int32? { textToId.get(p, n).map { Int32($0) } }
}
