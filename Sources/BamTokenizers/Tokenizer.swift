import Foundation
import BamFormats

/// A tokenizer: either one loaded from a Hugging Face `tokenizer.json`, producing the same ids as
/// HF `tokenizers` for the components it supports (see docs/tokenizers.md; anything else is
/// refused at load time with an error naming the component and its JSON path), or a GGUF file's
/// own vocabulary, producing the same ids as llama.cpp (`LlamaCppTokenizer`).
///
/// Encoding with tokenizer.json, as in HF: (1) added tokens with `normalized: false` are split out
/// of the raw text; (2) the other pieces are normalized and added tokens with `normalized: true`
/// are split out; (3) the pre-tokenizer splits the remaining pieces; (4) the BPE model turns each
/// pre-token into ids; (5) the post-processor adds special tokens.
public final class Tokenizer: Sendable {
    /// The two tokenizer families, with their own encoding rules.
    enum Engine: Sendable {
        case huggingFace(HuggingFaceEngine)
        case llamaCpp(LlamaCppTokenizer)
    }

    let engine: Engine

    /// Number of distinct tokens, added tokens included (HF's `get_vocab_size(with_added_tokens=True)`;
    /// a GGUF vocabulary's token count).
    public let vocabSize: Int
    /// tokenizer.json: from tokenizer_config.json's `bos_token`, else the first special token of the
    /// post-processor's template, else nil. GGUF: `tokenizer.ggml.bos_token_id` (llama.cpp's default).
    public let bosTokenId: Int?
    /// tokenizer.json: from tokenizer_config.json's `eos_token`, else the last special token of the
    /// template, else nil. GGUF: `tokenizer.ggml.eos_token_id`.
    public let eosTokenId: Int?
    /// Whether `encode(_, addSpecialTokens: true)` prepends BOS. tokenizer.json: decided by the
    /// post-processor, as HF tokenizers (and transformers 5) do; tokenizer_config.json's
    /// `add_bos_token` is not consulted. GGUF: `tokenizer.ggml.add_bos_token`, else llama.cpp's
    /// default for the tokenizer (SentencePiece, Llama 3 and Tekken add it).
    public let addsBOS: Bool
    /// e.g. "BPE (byte-level)", "BPE (SentencePiece-style, byte fallback)", "GGUF SentencePiece (llama.cpp)".
    public let kindDescription: String

    // MARK: Loading

    /// Loads a `tokenizer.json` file, or a directory holding one, or a `.gguf` file's vocabulary.
    /// A `tokenizer_config.json` beside tokenizer.json, when present, supplies the BOS/EOS tokens.
    public static func load(url: URL) throws -> Tokenizer {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw BamError.io("no such file or directory", file: url.path,
                              hint: "give a tokenizer.json, a model directory holding one, or a .gguf file")
        }
        if !isDir.boolValue, url.pathExtension.lowercased() == "gguf" {
            let file = try GGUFFile(path: url.path)
            return try Tokenizer(gguf: file)
        }
        let file = isDir.boolValue ? url.appendingPathComponent("tokenizer.json") : url
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw BamError.format(url.path, "the directory has no tokenizer.json")
        }
        let data = try readFile(file)
        let configURL = file.deletingLastPathComponent().appendingPathComponent("tokenizer_config.json")
        let config = FileManager.default.fileExists(atPath: configURL.path) ? try readFile(configURL) : nil
        return try Tokenizer(jsonData: data, configData: config, fileName: file.lastPathComponent)
    }

    private static func readFile(_ url: URL) throws -> Data {
        do { return try Data(contentsOf: url) } catch {
            throw BamError.io("cannot read: \(error.localizedDescription)", file: url.path)
        }
    }

    /// Builds a tokenizer from the bytes of a tokenizer.json (and optionally a tokenizer_config.json).
    /// `fileName` names the document in errors.
    public init(jsonData: Data, configData: Data? = nil, fileName: String = "tokenizer.json") throws {
        let root = Node(value: try parseTokenizerJSON(jsonData, file: fileName), path: "", file: fileName)
        guard case .object = root.value else { throw root.error(expected: "a JSON object", found: root.value.typeName) }

        let normalizer = try root.optional("normalizer").map(Normalizer.parse)
        var steps: [PreTokenizerStep] = []
        if let pt = root.optional("pre_tokenizer") { try PreTokenizerStep.parse(pt, into: &steps) }
        let endsWithByteLevel: Bool
        if case .byteLevel = steps.last { endsWithByteLevel = true } else { endsWithByteLevel = false }

        guard root.member("model") != nil else {
            throw root.error("missing \"model\" (every tokenizer.json has one, e.g. {\"type\": \"BPE\", ...})")
        }
        let model = try BPEModel.parse(try root.required("model"), byteLevelInput: endsWithByteLevel)
        let rawByteInput: Bool
        if endsWithByteLevel, model.rawByteIds != nil, case let .byteLevel(prefix, regex, _) = steps.last {
            steps[steps.count - 1] = .byteLevel(addPrefixSpace: prefix, useRegex: regex, mapBytes: false)
            rawByteInput = true
        } else {
            rawByteInput = false
        }
        let added = try AddedVocabulary.parse(root.optional("added_tokens"), normalizer: normalizer)
        let postProcessor = try root.optional("post_processor").map(PostProcessor.parse)
        let decoder = try root.optional("decoder").map(Decoder.parse)
        // "truncation" and "padding" are ignored on purpose: perplexity and training tokenize whole
        // files, and ids of one text do not depend on them otherwise.
        engine = .huggingFace(HuggingFaceEngine(model: model, added: added, normalizer: normalizer, preTokenizer: steps,
                                                rawByteInput: rawByteInput, postProcessor: postProcessor, decoder: decoder))

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
                return .some(HuggingFaceEngine.lookup(name, added: added, model: model))
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

    /// The vocabulary a GGUF file carries (`tokenizer.ggml.*`), tokenizing as llama.cpp does.
    public init(gguf file: GGUFFile) throws {
        let t: LlamaCppTokenizer
        t = try LlamaCppTokenizer(gguf: file)
        let v = t.source
        engine = .llamaCpp(t)
        vocabSize = v.tokens.count
        bosTokenId = v.bosId
        eosTokenId = v.eosId
        addsBOS = v.addBOS && v.bosId != nil
        switch v.model {
        case .sentencePiece:
            kindDescription = "GGUF SentencePiece (llama.cpp's `llama` tokenizer\(v.addSpacePrefix ? ", add_space_prefix" : ""))"
        case .bytePairEncoding:
            kindDescription = "GGUF byte-level BPE (llama.cpp's `gpt2` tokenizer, pre-tokenizer `\(v.preName.isEmpty ? "default" : v.preName)`)"
        }
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

    /// Token ids of `text`. With `addSpecialTokens`, special tokens are added (tokenizer.json: by
    /// the post-processor; GGUF: BOS / EOS as the vocabulary's add_bos / add_eos say). Special
    /// tokens written in the text are recognised, as in HF and llama.cpp. With
    /// `parseSpecialTokens: false` the *special* ones (tokenizer.json: `"special": true`; GGUF:
    /// control and unknown tokens, such as a literal `<s>`) are not: their text is tokenised like any
    /// other, as llama.cpp does with `parse_special = false` (what `llama-perplexity` uses) and HF
    /// with `split_special_tokens=True`.
    public func encode(_ text: String, addSpecialTokens: Bool = true, parseSpecialTokens: Bool = true) -> [Int] {
        switch engine {
        case let .huggingFace(e): e.encode(text, addSpecialTokens: addSpecialTokens, parseSpecialTokens: parseSpecialTokens)
        case let .llamaCpp(t): t.encode(text, addSpecial: addSpecialTokens, parseSpecial: parseSpecialTokens)
        }
    }

    /// Text of `ids` through the decoder (tokenizer.json: tokens joined with spaces when there is
    /// none, as in HF; GGUF: llama.cpp's token pieces). Unknown ids are skipped.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        switch engine {
        case let .huggingFace(e): e.decode(ids, skipSpecialTokens: skipSpecialTokens)
        case let .llamaCpp(t): t.decode(ids, skipSpecial: skipSpecialTokens)
        }
    }

    /// The id of a token string (added tokens first, then the model vocabulary), compared byte for byte.
    public func tokenToId(_ token: String) -> Int? {
        switch engine {
        case let .huggingFace(e): HuggingFaceEngine.lookup(token, added: e.added, model: e.model)
        case let .llamaCpp(t): t.vocabulary.id(of: Array(token.utf8)).map(Int.init)
        }
    }

    /// The token string of an id. Like HF's `id_to_token`, an added token with `normalized: true`
    /// comes back normalized (so tokenToId(idToToken(i)) can differ from i for those).
    public func idToToken(_ id: Int) -> String? {
        switch engine {
        case let .huggingFace(e): e.idToToken(id)
        case let .llamaCpp(t): t.piece(id)
        }
    }
}

/// The parts of a tokenizer.json and how HF tokenizers runs them.
struct HuggingFaceEngine: Sendable {
    let model: BPEModel
    let added: AddedVocabulary
    let normalizer: Normalizer?
    let preTokenizer: [PreTokenizerStep]
    /// The pre-tokenizer ends with ByteLevel and the model reads raw bytes (`BPEModel.rawByteIds`).
    let rawByteInput: Bool
    let postProcessor: PostProcessor?
    let decoder: Decoder?

    static func lookup(_ token: String, added: AddedVocabulary, model: BPEModel) -> Int? {
        let bytes = Array(token.utf8)
        if let id = added.byContent.get(bytes) { return Int(id) }
        return model.tokenToId(bytes).map(Int.init)
    }

    func encode(_ text: String, addSpecialTokens: Bool, parseSpecialTokens: Bool) -> [Int] {
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

    func decode(_ ids: [Int], skipSpecialTokens: Bool) -> String {
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

    func idToToken(_ id: Int) -> String? {
        if let t = added.token(id: id) { return t.decoded }
        return model.idToTokenString(id)
    }
}
