import Foundation

// The two tokenizers llama.cpp runs on a piece of text that holds no special token: SentencePiece
// (`llm_tokenizer_spm_session`) and byte-level BPE (`llm_tokenizer_bpe_session`). Both start
// from one symbol per UTF-8 character and merge neighbours through a priority queue; they differ in
// what decides the order (token score vs merge rank) and in what happens to leftovers.

/// A symbol of the merge loop: a byte range of the text, linked to its neighbours.
private struct Symbol {
    var start: Int
    var length: Int
    var prev: Int
    var next: Int
}

/// One UTF-8 character per symbol, as llama.cpp cuts them (`unicode_len_utf8` of the lead byte,
/// clamped to the end of the text).
private func characterSymbols(_ text: UnsafeBufferPointer<UInt8>) -> [Symbol] {
    var out: [Symbol] = []
    out.reserveCapacity(text.count)
    var offset = 0
    while offset < text.count {
        let n = min(utf8Length(text[offset]), text.count - offset)
        out.append(Symbol(start: offset, length: n, prev: out.count - 1, next: offset + n == text.count ? -1 : out.count + 1))
        offset += n
    }
    return out
}

/// A binary heap ordered by `before` (the element that comes out first is the one no other is before).
private struct Heap<Element> {
    private var items: [Element] = []
    let before: (Element, Element) -> Bool

    init(before: @escaping (Element, Element) -> Bool) { self.before = before }

    var isEmpty: Bool { items.isEmpty }

    mutating func push(_ e: Element) {
        items.append(e)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard before(items[i], items[parent]) else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Element? {
        guard !items.isEmpty else { return nil }
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var best = i
                if l < items.count, before(items[l], items[best]) { best = l }
                if r < items.count, before(items[r], items[best]) { best = r }
                if best == i { break }
                items.swapAt(i, best)
                i = best
            }
        }
        return top
    }
}

// MARK: - SentencePiece

extension LlamaVocabulary {
    /// `llm_tokenizer_spm_session::tokenize`: repeatedly merges the neighbouring pair whose
    /// concatenation is the vocabulary token with the highest score (the leftmost on ties), then
    /// emits each symbol's token, or its bytes as <0xXX> tokens when it is not one. `text` has its
    /// spaces already escaped to U+2581.
    func tokenizeSentencePiece(_ text: [UInt8], into output: inout [Int]) {
        struct Bigram { var left: Int; var right: Int; var score: Float; var size: Int }
        text.withUnsafeBufferPointer { buf in
            guard let p = buf.baseAddress, buf.count > 0 else { return }
            var symbols = characterSymbols(buf)
            var queue = Heap<Bigram> { a, b in a.score > b.score || (a.score == b.score && a.left < b.left) }
            func tryAdd(_ left: Int, _ right: Int) {
                guard left >= 0, right >= 0 else { return }
                let size = symbols[left].length + symbols[right].length
                guard let id = self.id(p + symbols[left].start, size) else { return }
                queue.push(Bigram(left: left, right: right, score: scores[Int(id)], size: size))
            }
            for i in 1..<max(symbols.count, 1) { tryAdd(i - 1, i) }
            while let b = queue.pop() {
                let l = symbols[b.left], r = symbols[b.right]
                // Stale: one side has been merged since the pair was queued.
                if l.length == 0 || r.length == 0 || l.length + r.length != b.size { continue }
                symbols[b.left].length += r.length
                symbols[b.right].length = 0
                symbols[b.left].next = r.next
                if r.next >= 0 { symbols[r.next].prev = b.left }
                tryAdd(symbols[b.left].prev, b.left)
                tryAdd(b.left, symbols[b.left].next)
            }
            var i = 0
            while i != -1 {
                let s = symbols[i]
                if let id = self.id(p + s.start, s.length) {
                    output.append(Int(id))
                } else {
                    // Every merged symbol is a token, so this is one character the vocabulary lacks.
                    // (llama.cpp's `resegment` also looks for the merge that made the symbol; no
                    // merged symbol gets here.)
                    for k in 0..<s.length { output.append(byteToken(p[s.start + k])) }
                }
                i = s.next
            }
        }
    }

    /// `byte_to_token` for SentencePiece: the <0xXX> token, else the byte itself as a token. llama.cpp
    /// aborts when neither exists; the unknown token stands in here (what SentencePiece itself
    /// emits without byte fallback), else id 0.
    func byteToken(_ b: UInt8) -> Int {
        let hex = Array("0123456789ABCDEF".utf8)
        if let id = id(of: [0x3C, 0x30, 0x78, hex[Int(b >> 4)], hex[Int(b & 15)], 0x3E]) { return Int(id) }
        if let id = id(of: [b]) { return Int(id) }
        return unkId ?? 0
    }
}

// MARK: - BPE

extension LlamaVocabulary {
    /// `llm_tokenizer_bpe_session::tokenize` on one pre-token (already mapped to GPT-2's byte
    /// characters): merges the neighbouring pair of lowest merge rank (the leftmost on ties) until
    /// none is left, then emits each symbol's token. A symbol that is not a token (only possible
    /// with a vocabulary that lacks some byte character) becomes the tokens of its single bytes
    /// where those exist, and is dropped otherwise, as llama.cpp does.
    func tokenizeBPEWord(_ word: [UInt8], into output: inout [Int]) {
        if ignoreMerges, let id = id(of: word) {
            output.append(Int(id))
            return
        }
        struct Bigram { var left: Int; var right: Int; var rank: Int; var size: Int }
        word.withUnsafeBufferPointer { buf in
            guard let p = buf.baseAddress, buf.count > 0 else { return }
            var symbols = characterSymbols(buf)
            var queue = Heap<Bigram> { a, b in a.rank < b.rank || (a.rank == b.rank && a.left < b.left) }
            var key: [UInt8] = []
            func rank(_ l: Symbol, _ r: Symbol) -> Int? {
                key.removeAll(keepingCapacity: true)
                key.append(contentsOf: UnsafeBufferPointer(start: p + l.start, count: l.length))
                key.append(0xFF)
                key.append(contentsOf: UnsafeBufferPointer(start: p + r.start, count: r.length))
                return mergeRanks.get(key).map(Int.init)
            }
            func tryAdd(_ left: Int, _ right: Int) {
                guard left >= 0, right >= 0, let r = rank(symbols[left], symbols[right]) else { return }
                queue.push(Bigram(left: left, right: right, rank: r, size: symbols[left].length + symbols[right].length))
            }
            for i in 1..<max(symbols.count, 1) { tryAdd(i - 1, i) }
            while let b = queue.pop() {
                let l = symbols[b.left], r = symbols[b.right]
                // llama.cpp compares the pair's text with the symbols' current text; as symbols only
                // grow to the right from fixed starts, equal sizes mean equal text.
                if l.length == 0 || r.length == 0 || l.length + r.length != b.size { continue }
                symbols[b.left].length += r.length
                symbols[b.right].length = 0
                symbols[b.left].next = r.next
                if r.next >= 0 { symbols[r.next].prev = b.left }
                tryAdd(symbols[b.left].prev, b.left)
                tryAdd(b.left, symbols[b.left].next)
            }
            var i = 0
            while i != -1 {
                let s = symbols[i]
                if let id = self.id(p + s.start, s.length) {
                    output.append(Int(id))
                } else {
                    for k in 0..<s.length {
                        if let id = self.id(p + s.start + k, 1) { output.append(Int(id)) }
                    }
                }
                i = s.next
            }
        }
    }
}
