import Foundation

/// A tokenizer loaded from a Hugging Face `tokenizer.json`, producing the same ids as HF
/// `tokenizers` for the components it supports (see docs/tokenizers.md). Anything else is
/// refused at load time with an error naming the component and its JSON path.
///
/// Encoding, as in HF: (1) added tokens with `normalized: false` are split out of the raw text;
/// (2) the other pieces are normalized and added tokens with `normalized: true` are split out;
/// (3) the pre-tokenizer splits the remaining pieces; (4) the BPE model turns each pre-token into
/// ids; (5) the post-processor adds special tokens.
public final class Tokenizer: Sendable {
    let model: BPEModel
    let added: AddedVocabulary
    let normalizer: Normalizer?
    let preTokenizer: [PreTokenizerStep]
    /// The pre-tokenizer ends with ByteLevel and the model reads raw bytes (`BPEModel.rawByteIds`).
    let rawByteInput: Bool
    let postProcessor: PostProcessor?
    let decoder: Decoder?

    /// Number of distinct tokens, added tokens included (HF's `get_vocab_size(with_added_tokens=True)`).
    public let vocabSize: Int
    /// From tokenizer_config.json's `bos_token`, else the first special token of the post-processor's
    /// template, else nil.
    public let bosTokenId: Int?
    /// From tokenizer_config.json's `eos_token`, else the last special token of the template, else nil.
    public let eosTokenId: Int?
    /// Whether `encode(_, addSpecialTokens: true)` prepends BOS. Decided by the post-processor, as
    /// HF tokenizers (and transformers 5) do; tokenizer_config.json's `add_bos_token` is not consulted.
    public let addsBOS: Bool
    /// e.g. "BPE (byte-level)", "BPE (SentencePiece-style, byte fallback)".
    public let kindDescription: String

    // MARK: Loading

    /// Loads a `tokenizer.json` file, or a directory holding one. A `tokenizer_config.json` beside
    /// it, when present, supplies the BOS/EOS tokens.
    public static func load(url: URL) throws -> Tokenizer {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw TokenizerError("\(url.path): no such file or directory (expected a tokenizer.json or a model directory holding one)")
        }
        let file = isDir.boolValue ? url.appendingPathComponent("tokenizer.json") : url
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw TokenizerError("\(url.path): the directory has no tokenizer.json")
        }
        let data = try readFile(file)
        let configURL = file.deletingLastPathComponent().appendingPathComponent("tokenizer_config.json")
        let config = FileManager.default.fileExists(atPath: configURL.path) ? try readFile(configURL) : nil
        return try Tokenizer(jsonData: data, configData: config, fileName: file.lastPathComponent)
    }

    private static func readFile(_ url: URL) throws -> Data {
        do { return try Data(contentsOf: url) } catch {
            throw TokenizerError("\(url.path): cannot read: \(error.localizedDescription)")
        }
    }

    /// Builds a tokenizer from the bytes of a tokenizer.json (and optionally a tokenizer_config.json).
    /// `fileName` names the document in errors.
    public init(jsonData: Data, configData: Data? = nil, fileName: String = "tokenizer.json") throws {
        let root = Node(value: try parseTokenizerJSON(jsonData, file: fileName), path: "", file: fileName)
        guard case .object = root.value else { throw root.error("expected a JSON object, found \(root.value.typeName)") }

        let normalizer = try root.optional("normalizer").map(Normalizer.parse)
        var steps: [PreTokenizerStep] = []
        if let pt = root.optional("pre_tokenizer") { try PreTokenizerStep.parse(pt, into: &steps) }
        let endsWithByteLevel: Bool
        if case .byteLevel = steps.last { endsWithByteLevel = true } else { endsWithByteLevel = false }

        guard root.member("model") != nil else {
            throw root.error("missing \"model\" (every tokenizer.json has one, e.g. {\"type\": \"BPE\", ...})")
        }
        let model = try BPEModel.parse(try root.required("model"), byteLevelInput: endsWithByteLevel)
        if endsWithByteLevel, model.rawByteIds != nil, case let .byteLevel(prefix, regex, _) = steps.last {
            steps[steps.count - 1] = .byteLevel(addPrefixSpace: prefix, useRegex: regex, mapBytes: false)
            rawByteInput = true
        } else {
            rawByteInput = false
        }
        self.model = model
        self.normalizer = normalizer
        self.preTokenizer = steps
        let added = try AddedVocabulary.parse(root.optional("added_tokens"), normalizer: normalizer)
        self.added = added
        self.postProcessor = try root.optional("post_processor").map(PostProcessor.parse)
        self.decoder = try root.optional("decoder").map(Decoder.parse)
        // "truncation" and "padding" are ignored on purpose: perplexity and training tokenize whole
        // files, and ids of one text do not depend on them otherwise.

        // Vocabulary size: distinct token strings over the model vocabulary and the added tokens.
        var extra = Set<[UInt8]>()
        for t in added.tokens where model.tokenToId(Array(t.content.utf8)) == nil { extra.insert(Array(t.content.utf8)) }
        vocabSize = model.vocab.count + extra.count

        // BOS / EOS.
        let template = Tokenizer.specialAffixes(postProcessor)
        var bos: Int? = template.prefix.first
        var eos: Int? = template.suffix.last
        if let configData {
            let cfg = Node(value: try parseTokenizerJSON(configData, file: "tokenizer_config.json"), path: "",
                           file: "tokenizer_config.json")
            func configToken(_ key: String) throws -> Int?? {
                guard let n = cfg.optional(key) else { return nil }
                let name: String
                if case .string(let s) = n.value { name = s } else { name = try n.string("content") }
                return .some(Tokenizer.lookup(name, added: added, model: model))
            }
            if let b = try configToken("bos_token") { bos = b ?? bos }
            if let e = try configToken("eos_token") { eos = e ?? eos }
        }
        bosTokenId = bos
        eosTokenId = eos
        addsBOS = bos != nil && template.prefix.first == bos

        // Description.
        var traits: [String] = []
        if steps.contains(where: { if case .byteLevel = $0 { true } else { false } }) {
            traits.append("byte-level")
        } else if model.byteFallback || steps.contains(where: { if case .metaspace = $0 { true } else { false } })
                    || Tokenizer.prepends(normalizer) {
            traits.append("SentencePiece-style")
        }
        if model.byteFallback { traits.append("byte fallback") }
        if model.ignoreMerges { traits.append("ignore_merges") }
        kindDescription = traits.isEmpty ? "BPE" : "BPE (\(traits.joined(separator: ", ")))"
    }

    private static func lookup(_ token: String, added: AddedVocabulary, model: BPEModel) -> Int? {
        let bytes = Array(token.utf8)
        if let id = added.byContent.get(bytes) { return Int(id) }
        return model.tokenToId(bytes).map(Int.init)
    }

    private static func prepends(_ n: Normalizer?) -> Bool {
        switch n {
        case .prepend?: return true
        case let .sequence(items)?: return items.contains { prepends($0) }
        default: return false
        }
    }

    /// The special ids the post-processor puts before and after a single sequence.
    private static func specialAffixes(_ p: PostProcessor?) -> (prefix: [Int], suffix: [Int]) {
        guard let p else { return ([], []) }
        let sentinel = -7_777_777
        let ids = p.apply([sentinel])
        guard let at = ids.firstIndex(of: sentinel) else { return (ids, []) }
        return (Array(ids[..<at]), Array(ids[(at + 1)...]).filter { $0 != sentinel })
    }

    // MARK: Encoding and decoding

    /// Token ids of `text`. With `addSpecialTokens`, the post-processor adds its special tokens (BOS...).
    /// Added tokens written in the text are recognised, as in HF. With `parseSpecialTokens: false`
    /// the *special* ones (`"special": true`, such as a literal `<s>` in the text) are not: their
    /// text is tokenised like any other, as llama.cpp does with `parse_special = false` (what
    /// `llama-perplexity` uses) and HF with `split_special_tokens=True`.
    public func encode(_ text: String, addSpecialTokens: Bool = true, parseSpecialTokens: Bool = true) -> [Int] {
        var input = Array(text.utf8)
        let inputCount = input.count
        input.append(0)  // keeps the base address valid for empty text; never inside a piece

        // 1. Added tokens in the raw text.
        var pieces = Pieces(buf: input, list: [])
        input.withUnsafeBufferPointer { b in
            added.split(b.baseAddress!, 0, inputCount, first: true,
                        trie: parseSpecialTokens ? added.rawTrie : added.rawTrieNonSpecial, into: &pieces.list)
        }

        // 2. Normalize the text pieces, then split out normalized added tokens.
        let normalizedTrie = parseSpecialTokens ? added.normalizedTrie : added.normalizedTrieNonSpecial
        if normalizer != nil || !normalizedTrie.isEmpty {
            var out = Pieces(buf: [], list: [])
            for piece in pieces.list {
                if piece.id >= 0 { out.list.append(piece); continue }
                var bytes = Array(pieces.buf[piece.start..<piece.end])
                if let normalizer { bytes = normalizer.apply(bytes) }
                if bytes.isEmpty { continue }
                let start = out.buf.count
                out.buf.append(contentsOf: bytes)
                let end = out.buf.count
                out.buf.append(0)
                out.buf.withUnsafeBufferPointer { b in
                    added.split(b.baseAddress!, start, end, first: piece.first, trie: normalizedTrie, into: &out.list)
                }
            }
            pieces = out
        }

        // 3. Pre-tokenize.
        for step in preTokenizer { pieces = step.apply(pieces) }

        // 4. Model.
        var ids: [Int] = []
        ids.reserveCapacity(pieces.buf.count / 3 + 8)
        var scratch = BPEModel.Scratch(textBytes: pieces.buf.count)
        pieces.buf.append(0)
        pieces.buf.withUnsafeBufferPointer { b in
            let p = b.baseAddress!
            for piece in pieces.list {
                if piece.id >= 0 {
                    ids.append(Int(piece.id))
                } else {
                    model.tokenize(p, piece.start, piece.end, raw: rawByteInput, scratch: &scratch, into: &ids)
                }
            }
        }

        // 5. Post-process.
        if addSpecialTokens, let postProcessor { ids = postProcessor.apply(ids) }
        return ids
    }

    /// Text of `ids` through the decoder (tokens joined with spaces when there is none, as in HF).
    /// Unknown ids are skipped.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for id in ids {
            guard let t = idToToken(id) else { continue }
            if skipSpecialTokens, added.specialContents.get(Array(t.utf8)) != nil { continue }
            tokens.append(t)
        }
        guard let decoder else { return tokens.joined(separator: " ") }
        return decoder.decodeChain(tokens).joined()
    }

    /// The id of a token string (added tokens first, then the model vocabulary), compared byte for byte.
    public func tokenToId(_ token: String) -> Int? {
        Tokenizer.lookup(token, added: added, model: model)
    }

    /// The token string of an id. Like HF's `id_to_token`, an added token with `normalized: true`
    /// comes back normalized (so tokenToId(idToToken(i)) can differ from i for those).
    public func idToToken(_ id: Int) -> String? {
        if let t = added.token(id: id) { return t.decoded }
        return model.idToTokenString(id)
    }
}
