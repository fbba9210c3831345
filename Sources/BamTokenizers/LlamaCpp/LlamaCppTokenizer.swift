import BamFormats
import Foundation

/// A GGUF file's own tokenizer, run as llama.cpp runs it (`llama_vocab::impl::tokenize`), so that
/// the ids equal llama.cpp's (`llama-tokenize`, `llama-perplexity`) for the same file and text:
///
/// 1. special tokens are split out of the text, longest first (`tokenizer_st_partition`):
///    user-defined tokens always, control and unknown tokens only with `parseSpecial`;
/// 2. SentencePiece vocabularies tokenize each remaining piece with a space in front when it
///    starts the text or follows a special token (add_space_prefix), spaces written as U+2581;
///    BPE vocabularies cut each piece with the pre-tokenizer's regexes, map bytes to GPT-2's
///    characters and merge by rank;
/// 3. BOS / EOS are added when the vocabulary says so (`addSpecial`).
public struct LlamaCppTokenizer: Sendable {
    /// llama.cpp's two tokenizers; BPE carries its compiled pre-tokenizer.
    enum Algorithm: Sendable {
        case sentencePiece
        case bytePairEncoding(LlamaRegexSplitter)
    }

    let vocabulary: LlamaVocabulary
    let algorithm: Algorithm

    /// The vocabulary as llama.cpp reads it.
    public var source: GGUFVocabulary { vocabulary.source }

    public init(vocabulary: GGUFVocabulary) throws {
        self.vocabulary = LlamaVocabulary(vocabulary)
        switch vocabulary.model {
        case .sentencePiece: algorithm = .sentencePiece
        case let .bytePairEncoding(pre): algorithm = .bytePairEncoding(try LlamaRegexSplitter(pre))
        }
    }

    public init(gguf file: GGUFFile) throws {
        try self.init(vocabulary: GGUFVocabulary(file: file))
    }

    /// A piece of the text after special tokens are split out.
    enum Fragment: Equatable {
        case text(Range<Int>)
        case token(Int32)
    }

    public func encode(_ text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int] {
        let bytes = Array(text.utf8)
        let fragments = bytes.isEmpty ? [] : partition(bytes, parseSpecial: parseSpecial)
        var output: [Int] = []
        output.reserveCapacity(bytes.count / 3 + 4)
        let v = vocabulary
        let src = v.source
        if addSpecial, src.addBOS, let bos = src.bosId { output.append(bos) }
        switch algorithm {
        case .sentencePiece:
            var previousIsSpecial = true
            for f in fragments {
                switch f {
                case let .text(r):
                    var piece: [UInt8] = []
                    piece.reserveCapacity(r.count + 8)
                    if src.addSpacePrefix, previousIsSpecial { piece.append(contentsOf: [0xE2, 0x96, 0x81]) }
                    for b in bytes[r] {
                        if b == 0x20 { piece.append(contentsOf: [0xE2, 0x96, 0x81]) } else { piece.append(b) }
                    }
                    v.tokenizeSentencePiece(piece, into: &output)
                    previousIsSpecial = false
                case let .token(id):
                    output.append(Int(id))
                    previousIsSpecial = true
                }
            }
        case let .bytePairEncoding(splitter):
            for f in fragments {
                switch f {
                case let .text(r):
                    for word in splitter.split(bytes[r]) {
                        var mapped: [UInt8] = []
                        mapped.reserveCapacity(word.count * 2)
                        for b in word { mapped.append(contentsOf: byteLevelUTF8[Int(b)]) }
                        v.tokenizeBPEWord(mapped, into: &output)
                    }
                case let .token(id):
                    output.append(Int(id))
                }
            }
        }
        if addSpecial, src.addEOS, let eos = src.eosId { output.append(eos) }
        return output
    }

    /// `tokenizer_st_partition`: for each special token in turn (longest first), every occurrence
    /// in every remaining text fragment is cut out, left to right. A token with lstrip / rstrip
    /// also takes the ASCII whitespace before / after it.
    func partition(_ bytes: [UInt8], parseSpecial: Bool) -> [Fragment] {
        var fragments: [Fragment] = [.text(0..<bytes.count)]
        let v = vocabulary
        bytes.withUnsafeBufferPointer { buf in
            let p = buf.baseAddress!
            for special in v.specialTokensLongestFirst {
                let attr = v.attributes[Int(special)]
                if !parseSpecial, !attr.isDisjoint(with: [.control, .unknown]) { continue }
                let needle = v.tokens[Int(special)]
                guard let first = needle.first else { continue }
                var out: [Fragment] = []
                var changed = false
                for f in fragments {
                    guard case let .text(r) = f, r.count >= needle.count else { out.append(f); continue }
                    var base = r.lowerBound
                    let end = r.upperBound
                    var found = false
                    while let m = find(needle, first, p, base, end) {
                        found = true
                        var leftEnd = m
                        if attr.contains(.lstrip) { while leftEnd > base, isCSpace(p[leftEnd - 1]) { leftEnd -= 1 } }
                        if leftEnd > base { out.append(.text(base..<leftEnd)) }
                        out.append(.token(special))
                        var rightStart = m + needle.count
                        if attr.contains(.rstrip) { while rightStart < end, isCSpace(p[rightStart]) { rightStart += 1 } }
                        base = rightStart
                        if base >= end { break }
                    }
                    if !found {
                        out.append(f)
                    } else {
                        changed = true
                        if base < end { out.append(.text(base..<end)) }
                    }
                }
                if changed { fragments = out }
            }
        }
        return fragments
    }

    /// Decodes ids to text as llama.cpp's `token_to_piece` does: normal tokens through the
    /// vocabulary's escaping (U+2581 -> space for SentencePiece, GPT-2's byte characters -> bytes for
    /// BPE), byte tokens as their byte, user-defined tokens as written, control and unknown tokens
    /// as written unless `skipSpecial`. For SentencePiece with add_space_prefix the space in front
    /// of the first token is removed. (llama.cpp's clean_up_tokenization_spaces pass is not applied.)
    public func decode(_ ids: [Int], skipSpecial: Bool) -> String {
        var out: [UInt8] = []
        let v = vocabulary
        var removeSpace = v.source.model == .sentencePiece && v.source.addSpacePrefix
        for id in ids {
            guard let t = v.text(of: id) else { continue }
            let attr = v.attributes[id]
            var piece: [UInt8]
            if !attr.isDisjoint(with: [.control, .unknown]) {
                if skipSpecial { continue }
                piece = t
            } else if attr.contains(.userDefined) {
                piece = t
            } else if attr.contains(.normal) {
                switch v.source.model {
                case .sentencePiece: piece = replaceAll(t, [0xE2, 0x96, 0x81], [0x20])
                case .bytePairEncoding: piece = byteLevelDecode(t) ?? t
                }
            } else if attr.contains(.byte), v.source.model == .sentencePiece, let b = LlamaCppTokenizer.byteValue(t) {
                piece = [b]
            } else {
                continue
            }
            if removeSpace, piece.first == 0x20 { piece.removeFirst() }
            removeSpace = false
            out.append(contentsOf: piece)
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The byte of a <0xXX> token.
    static func byteValue(_ t: [UInt8]) -> UInt8? {
        guard t.count == 6, t[0] == 0x3C, t[1] == 0x30, t[2] == 0x78, t[5] == 0x3E,
              let v = UInt8(String(decoding: t[3...4], as: UTF8.self), radix: 16) else { return nil }
        return v
    }

    /// The token's text as llama.cpp prints it (`llama-tokenize` shows pieces this way).
    public func piece(_ id: Int) -> String? { vocabulary.text(of: id).map { String(decoding: $0, as: UTF8.self) } }
}

/// C's isspace in the "C" locale: what lstrip / rstrip remove.
@inline(__always)
private func isCSpace(_ b: UInt8) -> Bool { b == 0x20 || (b >= 0x09 && b <= 0x0D) }

/// The first occurrence of `needle` in p[from..<end].
@inline(__always)
private func find(_ needle: [UInt8], _ first: UInt8, _ p: UnsafePointer<UInt8>, _ from: Int, _ end: Int) -> Int? {
    let n = needle.count
    var i = from
    while i + n <= end {
        guard let hit = memchr(p + i, Int32(first), end - n + 1 - i) else { return nil }
        let at = p.distance(to: hit.assumingMemoryBound(to: UInt8.self))
        if needle.withUnsafeBufferPointer({ memcmp(p + at, $0.baseAddress!, n) }) == 0 { return at }
        i = at + 1
    }
    return nil
}
