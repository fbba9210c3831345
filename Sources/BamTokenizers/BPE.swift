import BamFormats
import Foundation

// The BPE model (tokenizer.json "model" with type "BPE"), a port of HF's `BPE::merge_word` and
// `Word::merge_all`: initial symbols are the characters of the pre-token (with byte fallback or
// unk for characters not in the vocabulary), then the lowest-ranked adjacent pair is merged, the
// leftmost first, until no pair has a merge. A min-heap of (rank, position) entries with lazy
// deletion gives O(n log n) per word, which matters for SentencePiece-style tokenizers where a
// whole text can be one pre-token.

struct BPEModel: Sendable {
    /// Token UTF-8 -> id.
    let vocab: ByteStringMap
    /// Id -> token (nil for ids the vocabulary does not use).
    let idToToken: [String?]
    let merges: PairMap
    let unkId: Int32?
    let fuseUnk: Bool
    let byteFallback: Bool
    let ignoreMerges: Bool
    let continuingSubwordPrefix: [UInt8]?
    let endOfWordSuffix: [UInt8]?
    /// `<0xXX>` token id per byte, -1 when absent.
    let byteFallbackIds: [Int32]
    /// For byte-level tokenizers: the id of each byte's byte-level character, when all 256 are in
    /// the vocabulary and no prefix/suffix is configured. The pre-tokenizer then leaves the bytes
    /// unmapped and the model starts from these ids (and a word cache keyed by raw bytes).
    let rawByteIds: [Int32]?
    /// Raw bytes -> id for every byte-level token, for `ignore_merges` lookups in raw mode.
    let rawVocab: ByteStringMap?

    /// Words longer than this are not cached (HF's MAX_LENGTH).
    static let cacheMaxWordBytes = 256
    static let cacheMaxEntries = 200_000
    /// Ids above this are refused (real vocabularies stay below 300k; this bounds the id table).
    static let maxId = 1 << 22

    static func parse(_ node: Node, byteLevelInput: Bool) throws -> BPEModel {
        let type = try node.member("type").map { try $0.string() } ?? (node.member("merges") != nil ? "BPE" : "")
        guard type == "BPE" else {
            throw node.unsupported(type.isEmpty ? "(none)" : type, supported: "BPE")
        }
        if let d = node.optional("dropout"), try d.double() != 0 {
            throw d.error("BPE dropout is not supported (it makes encoding random)", expected: "null", found: "\(try d.double())")
        }

        // Vocabulary.
        let vocabNode = try node.required("vocab")
        let fields = try vocabNode.fields()
        var vocab = ByteStringMap(minimumCapacity: fields.keys.count)
        var largestId = -1
        var entries: [(String, Int)] = []
        entries.reserveCapacity(fields.keys.count)
        for (k, v) in fields.pairs {
            guard case let .int(id) = v, id >= 0, id < BPEModel.maxId else {
                throw Node(value: v, path: "\(vocabNode.path)[\(jsonQuoted(k))]", file: node.file)
                    .error(expected: "a token id (an integer from 0 to \(BPEModel.maxId - 1))", found: v.typeName)
            }
            vocab.set(Array(k.utf8), UInt64(id))
            entries.append((k, id))
            largestId = max(largestId, id)
        }
        var idToToken = [String?](repeating: nil, count: largestId + 1)
        for (k, id) in entries { idToToken[id] = k }

        func lookup(_ s: [UInt8]) -> Int32? { vocab.get(s).map { Int32($0) } }

        let prefix = try node.optional("continuing_subword_prefix").map { Array(try $0.string().utf8) }
        let suffix = try node.optional("end_of_word_suffix").map { Array(try $0.string().utf8) }

        // Merges: "left right" strings or ["left", "right"] pairs, rank = position.
        let mergesNode = try node.required("merges")
        let mergeItems = try mergesNode.array()
        var merges = PairMap(minimumCapacity: mergeItems.count)
        var rank: Int32 = 0
        for item in mergeItems {
            let left: [UInt8], right: [UInt8]
            switch item.value {
            case let .string(line):
                if line.hasPrefix("#version") { continue }
                let parts = Array(line.utf8).split(separator: 0x20, omittingEmptySubsequences: false)
                guard parts.count == 2 else {
                    throw item.error(expected: "\"LEFT RIGHT\" (two tokens separated by one space)", found: jsonQuoted(line))
                }
                left = Array(parts[0])
                right = Array(parts[1])
            case let .array(pair):
                guard pair.count == 2, case let .string(a) = pair[0], case let .string(b) = pair[1] else {
                    throw item.error(expected: "a pair of two token strings", found: item.value.serialized(indent: nil))
                }
                left = Array(a.utf8)
                right = Array(b.utf8)
            default:
                throw item.error(expected: "\"LEFT RIGHT\" or [\"LEFT\", \"RIGHT\"]", found: item.value.typeName)
            }
            func missing(_ t: [UInt8]) -> BamError {
                item.error("the merge needs a token that is not in model.vocab", expected: "a token of model.vocab",
                           found: jsonQuoted(String(decoding: t, as: UTF8.self)))
            }
            guard let a = lookup(left) else { throw missing(left) }
            guard let b = lookup(right) else { throw missing(right) }
            var rightTail = right[...]
            if let prefix, right.hasPrefix(prefix) { rightTail = right[prefix.count...] }
            let merged = left + rightTail
            guard let m = lookup(merged) else { throw missing(merged) }
            merges.set(a, b, rank: rank, newId: m)
            rank += 1
        }

        var unkId: Int32?
        if let u = node.optional("unk_token") {
            let s = try u.string()
            guard let id = lookup(Array(s.utf8)) else { throw u.error("the unk token is not in model.vocab", expected: "a token of model.vocab", found: jsonQuoted(s)) }
            unkId = id
        }

        var byteFallbackIds = [Int32](repeating: -1, count: 256)
        for b in 0..<256 {
            byteFallbackIds[b] = lookup(Array(String(format: "<0x%02X>", b).utf8)) ?? -1
        }

        let ignoreMerges = try node.bool("ignore_merges", default: false)
        var rawByteIds: [Int32]?
        var rawVocab: ByteStringMap?
        if byteLevelInput && prefix == nil && suffix == nil {
            let ids = byteLevelUTF8.map { lookup($0) ?? -1 }
            if !ids.contains(-1) {
                rawByteIds = ids
                if ignoreMerges {
                    var raw = ByteStringMap(minimumCapacity: entries.count)
                    for (k, id) in entries {
                        if let bytes = byteLevelDecode(Array(k.utf8)) { raw.set(bytes, UInt64(id)) }
                    }
                    rawVocab = raw
                }
            }
        }

        return BPEModel(vocab: vocab, idToToken: idToToken, merges: merges, unkId: unkId,
                        fuseUnk: try node.bool("fuse_unk", default: false),
                        byteFallback: try node.bool("byte_fallback", default: false),
                        ignoreMerges: ignoreMerges, continuingSubwordPrefix: prefix, endOfWordSuffix: suffix,
                        byteFallbackIds: byteFallbackIds, rawByteIds: rawByteIds, rawVocab: rawVocab)
    }

    func tokenToId(_ token: [UInt8]) -> Int32? { vocab.get(token).map { Int32($0) } }

    func idToTokenString(_ id: Int) -> String? {
        id >= 0 && id < idToToken.count ? idToToken[id] : nil
    }

    // MARK: Encoding

    /// Per-call mutable state: the word cache and the merge loop's arrays.
    struct Scratch {
        var cache: ByteStringMap
        var cachedIds: [Int32] = []
        var symbols: [Int32] = []
        var prev: [Int32] = []
        var next: [Int32] = []
        var alive: [Bool] = []
        var heap = MergeHeap()
        var key: [UInt8] = []

        /// Sized for a text of `bytes` bytes (about one distinct word per 40 bytes to start with).
        init(textBytes bytes: Int) {
            cache = ByteStringMap(minimumCapacity: min(4096, max(8, bytes / 40)))
        }
    }

    /// Appends the ids of the pre-token p[start..<end]. With `raw`, the bytes are unmapped
    /// byte-level input (see `rawByteIds`).
    func tokenize(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, raw: Bool, scratch s: inout Scratch,
                  into out: inout [Int]) {
        let n = end - start
        if n == 0 { return }
        let w = p + start
        if ignoreMerges {
            if let id = (raw ? rawVocab! : vocab).get(w, n) { out.append(Int(id)); return }
        }
        let cacheable = n < BPEModel.cacheMaxWordBytes
        if cacheable, let v = s.cache.get(w, n) {
            let offset = Int(v >> 32), count = Int(v & 0xFFFF_FFFF)
            s.cachedIds.withUnsafeBufferPointer { c in
                for k in offset..<offset + count { out.append(Int(c[k])) }
            }
            return
        }

        s.symbols.removeAll(keepingCapacity: true)
        if raw {
            let table = rawByteIds!
            for k in 0..<n { s.symbols.append(table[Int(w[k])]) }
        } else {
            initialSymbols(w, n, &s)
        }
        mergeAll(&s)

        let first = s.cachedIds.count
        for (k, id) in s.symbols.enumerated() where s.alive[k] {
            out.append(Int(id))
            if cacheable { s.cachedIds.append(id) }
        }
        if cacheable && s.cache.count < BPEModel.cacheMaxEntries {
            s.cache.set(w, n, (UInt64(first) << 32) | UInt64(s.cachedIds.count - first))
        } else if cacheable {
            s.cachedIds.removeLast(s.cachedIds.count - first)
        }
    }

    /// HF's merge_word up to the merge loop: characters (with prefix/suffix) to ids, byte fallback,
    /// unk fusing. Note that HF does not flush a pending unk before byte-fallback ids; neither do we.
    private func initialSymbols(_ w: UnsafePointer<UInt8>, _ n: Int, _ s: inout Scratch) {
        var pendingUnk = false
        var i = 0
        while i < n {
            let len = utf8Length(w[i])
            let isFirst = i == 0
            let isLast = i + len >= n
            s.key.removeAll(keepingCapacity: true)
            if !isFirst, let prefix = continuingSubwordPrefix { s.key.append(contentsOf: prefix) }
            s.key.append(contentsOf: UnsafeBufferPointer(start: w + i, count: len))
            if isLast, let suffix = endOfWordSuffix { s.key.append(contentsOf: suffix) }
            i += len
            if let id = vocab.get(s.key) {
                if pendingUnk { s.symbols.append(unkId!); pendingUnk = false }
                s.symbols.append(Int32(id))
                continue
            }
            if byteFallback {
                var ok = true
                for b in s.key where byteFallbackIds[Int(b)] < 0 { ok = false; break }
                if ok {
                    for b in s.key { s.symbols.append(byteFallbackIds[Int(b)]) }
                    continue
                }
            }
            if let unk = unkId {
                if pendingUnk && !fuseUnk { s.symbols.append(unk) }
                pendingUnk = true
            }
        }
        if pendingUnk { s.symbols.append(unkId!) }
    }

    /// HF's Word::merge_all without dropout.
    private func mergeAll(_ s: inout Scratch) {
        let count = s.symbols.count
        s.alive.removeAll(keepingCapacity: true)
        s.alive.append(contentsOf: repeatElement(true, count: count))
        if count < 2 { return }
        s.prev.removeAll(keepingCapacity: true)
        s.next.removeAll(keepingCapacity: true)
        for k in 0..<count {
            s.prev.append(Int32(k - 1))
            s.next.append(k + 1 < count ? Int32(k + 1) : -1)
        }
        s.heap.clear()
        for k in 0..<count - 1 {
            if let m = merges.get(s.symbols[k], s.symbols[k + 1]) {
                s.heap.push(rank: m.rank, pos: Int32(k), newId: m.newId)
            }
        }
        while let top = s.heap.pop() {
            let pos = Int(top.pos)
            if !s.alive[pos] { continue }
            let nextPos = Int(s.next[pos])
            if nextPos < 0 { continue }
            // Skip entries made stale by an earlier merge.
            guard let current = merges.get(s.symbols[pos], s.symbols[nextPos]), current.newId == top.newId else {
                continue
            }
            s.symbols[pos] = top.newId
            s.alive[nextPos] = false
            let after = s.next[nextPos]
            s.next[pos] = after
            if after >= 0 { s.prev[Int(after)] = Int32(pos) }
            let before = s.prev[pos]
            if before >= 0, let m = merges.get(s.symbols[Int(before)], top.newId) {
                s.heap.push(rank: m.rank, pos: before, newId: m.newId)
            }
            if after >= 0, let m = merges.get(top.newId, s.symbols[Int(after)]) {
                s.heap.push(rank: m.rank, pos: Int32(pos), newId: m.newId)
            }
        }
    }
}

/// A binary min-heap on (rank, position), the order HF's `Merge` compares in.
struct MergeHeap {
    struct Entry {
        var key: UInt64  // rank << 32 | position
        var newId: Int32
        var pos: Int32 { Int32(truncatingIfNeeded: key & 0xFFFF_FFFF) }
    }

    private var items: [Entry] = []

    mutating func clear() { items.removeAll(keepingCapacity: true) }

    mutating func push(rank: Int32, pos: Int32, newId: Int32) {
        let e = Entry(key: (UInt64(UInt32(bitPattern: rank)) << 32) | UInt64(UInt32(bitPattern: pos)), newId: newId)
        items.append(e)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) >> 1
            if items[parent].key <= e.key { break }
            items[i] = items[parent]
            i = parent
        }
        items[i] = e
    }

    mutating func pop() -> Entry? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if items.isEmpty { return top }
        var i = 0
        let n = items.count
        while true {
            let l = 2 * i + 1
            if l >= n { break }
            let r = l + 1
            let c = r < n && items[r].key < items[l].key ? r : l
            if items[c].key >= last.key { break }
            items[i] = items[c]
            i = c
        }
        items[i] = last
        return top
    }
}
