import BamTensors
import Foundation

/// Tokenizer metadata between an HF `tokenizer.json` (+ `tokenizer_config.json`) and GGUF's
/// `tokenizer.ggml.*` keys (gguf.md "Tokenizer"; llama.cpp's convert_hf_to_gguf.py `_set_vocab_gpt2`
/// and `_set_vocab_llama_hf`, gguf-py's `SpecialVocab`).
///
/// Two HF tokenizer kinds are handled, the two bam-mix's models use:
/// - byte-level BPE (GPT-2, Llama 3, Qwen2) -> `tokenizer.ggml.model = "gpt2"`: tokens, token_type,
///   merges, `tokenizer.ggml.pre` from the pre-tokenizer's regex;
/// - SentencePiece-style BPE with byte_fallback (Llama 2, Mistral) -> `"llama"`: tokens, scores,
///   token_type (llama.cpp runs its SentencePiece tokenizer on these; it does not use merges).
public enum GGUFTokenizer {
    /// gguf-py's TokenType.
    public enum TokenType: Int32 { case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6 }

    /// Pre-tokenizer regexes of the tokenizers llama.cpp knows by name (as in their tokenizer.json).
    static let llama3Regex = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Regex = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    static let specialTypes = ["bos", "eos", "unk", "sep", "pad", "mask"]
    static let specialKeys = ["bos": "tokenizer.ggml.bos_token_id", "eos": "tokenizer.ggml.eos_token_id",
                              "unk": "tokenizer.ggml.unknown_token_id", "sep": "tokenizer.ggml.seperator_token_id",
                              "pad": "tokenizer.ggml.padding_token_id", "mask": "tokenizer.ggml.mask_token_id"]

    // MARK: HF -> GGUF

    /// The `tokenizer.*` keys for the tokenizer in `directory`, or nil when it has no tokenizer.json.
    /// `vocabSize` is config.json's (llama.cpp pads the token list to it with `[PADn]` tokens).
    public static func ggufMetadata(directory: URL, vocabSize: Int) throws -> [(String, GGUFValue)]? {
        let url = directory.appendingPathComponent("tokenizer.json")
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        guard case let .object(tok) = try readJSONFile(url) else { throw BamError.format(url.path, "not a JSON object") }
        var tcfg: JSONObject? = nil
        let tcURL = directory.appendingPathComponent("tokenizer_config.json")
        if FileManager.default.fileExists(atPath: tcURL.path) { tcfg = try readJSONFile(tcURL).objectValue }
        var hfConfig: JSONObject? = nil
        let cURL = directory.appendingPathComponent("config.json")
        if FileManager.default.fileExists(atPath: cURL.path) { hfConfig = try readJSONFile(cURL).objectValue }
        return try ggufMetadata(tokenizer: tok, tokenizerConfig: tcfg, config: hfConfig, vocabSize: vocabSize, file: url.path)
    }

    static func ggufMetadata(tokenizer tok: JSONObject, tokenizerConfig tcfg: JSONObject?, config: JSONObject?,
                             vocabSize: Int, file: String) throws -> [(String, GGUFValue)] {
        guard let model = tok["model"]?.objectValue, let type = model["type"]?.stringValue else {
            throw BamError.format(file, "missing `model.type`")
        }
        guard type == "BPE" else {
            throw BamError.unsupported("tokenizer model `\(type)` cannot be written to GGUF by bam-mix (BPE only: byte-level like GPT-2/Llama 3, or SentencePiece-style with byte_fallback like Llama 2)", file: file)
        }
        guard let vocabObj = model["vocab"]?.objectValue else { throw BamError.format(file, "missing `model.vocab`") }
        let byteFallback = model["byte_fallback"]?.boolValue ?? false

        // id -> token text, from the model's vocab and the added tokens.
        var tokens = [String?](repeating: nil, count: vocabSize)
        func place(_ id: Int, _ text: String, _ what: String) throws {
            guard id >= 0, id < vocabSize else {
                throw BamError.mismatch("\(what) `\(text)` has id \(id), outside config.json's vocab_size \(vocabSize)", file: file)
            }
            tokens[id] = text
        }
        for (text, v) in vocabObj.pairs {
            guard let id = v.intValue else { throw BamError.format(file, "model.vocab[\(text)] is not an integer id") }
            try place(id, text, "token")
        }
        struct Added { let id: Int; let content: String; let special: Bool; let normalized: Bool }
        var added: [Added] = []
        for a in tok["added_tokens"]?.arrayValue ?? [] {
            guard let o = a.objectValue, let id = o["id"]?.intValue, let c = o["content"]?.stringValue else {
                throw BamError.format(file, "an entry of `added_tokens` lacks an integer `id` or a string `content`")
            }
            try place(id, c, "added token")
            added.append(Added(id: id, content: c, special: o["special"]?.boolValue ?? false,
                               normalized: o["normalized"]?.boolValue ?? !(o["special"]?.boolValue ?? false)))
        }
        let addedById = Dictionary(added.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })

        // Special ids and add_* flags, the way gguf-py's SpecialVocab finds them.
        var ids: [String: Int] = [:]
        var addFlags: [String: Bool] = [:]
        func tokenText(_ v: JSONValue?) -> String? { v?.stringValue ?? v?.objectValue?["content"]?.stringValue }
        var names: [String: String] = [:]
        for t in specialTypes { if let s = tokenText(tcfg?["\(t)_token"]) { names[t] = s } }
        if let pp = tok["post_processor"]?.objectValue {
            let procs = pp["type"]?.stringValue == "Sequence" ? (pp["processors"]?.arrayValue ?? []).compactMap(\.objectValue) : [pp]
            for p in procs where p["type"]?.stringValue == "TemplateProcessing" {
                let single = p["single"]?.arrayValue ?? []
                guard single.count > 1 else { continue }
                if let first = single.first?["SpecialToken"]?["id"]?.stringValue {
                    if tcfg == nil { names["bos"] = first }
                    addFlags["bos"] = first == names["bos"]
                }
                if let last = single.last?["SpecialToken"]?["id"]?.stringValue {
                    if tcfg == nil { names["eos"] = last }
                    addFlags["eos"] = last == names["eos"]
                }
            }
        }
        for t in specialTypes {
            if let b = tcfg?["add_\(t)_token"]?.boolValue { addFlags[t] = b }
            if let n = names[t], let a = added.first(where: { $0.content == n }) { ids[t] = a.id }
        }
        for t in specialTypes where ids[t] == nil {
            if let i = config?["\(t)_token_id"]?.intValue, i >= 0, i < vocabSize { ids[t] = i }
        }

        // does_token_look_special in convert_hf_to_gguf.py: some models leave control tokens unflagged.
        func looksSpecial(_ s: String) -> Bool {
            ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].contains(s) || (s.hasPrefix("<|") && s.hasSuffix("|>"))
                || (s.hasPrefix("<｜") && s.hasSuffix("｜>")) || (s.hasPrefix("<unused") && s.hasSuffix(">"))
        }

        var meta: [(String, GGUFValue)] = []
        var texts: [GGUFValue] = []
        var types: [GGUFValue] = []
        texts.reserveCapacity(vocabSize)
        types.reserveCapacity(vocabSize)

        if byteFallback {
            // SentencePiece-style. llama.cpp's LlamaHfVocab writes placeholder scores (-1000 for
            // every token); we write what a SentencePiece BPE model's scores encode instead, the merge
            // order: a token made by merge r scores -r, so llama.cpp's highest-score-first merging
            // follows the BPE ranks. Tokens no merge makes score below every merged one.
            let merges = try mergePairs(model["merges"], file: file)
            var rank: [String: Int] = [:]
            for (r, m) in merges.enumerated() where rank[m.0 + m.1] == nil { rank[m.0 + m.1] = r }
            var scores: [GGUFValue] = []
            for id in 0..<vocabSize {
                guard let t = tokens[id] else {
                    texts.append(.string("[PAD\(id)]"))
                    scores.append(.float32(-1000))
                    types.append(.int32(TokenType.unused.rawValue))
                    continue
                }
                var type = TokenType.normal
                var text = t
                if isByteToken(t) {
                    type = .byte
                } else if let a = addedById[id] {
                    if a.special || looksSpecial(t) { type = id == ids["unk"] ? .unknown : .control }
                    else { type = .userDefined; text = t.replacingOccurrences(of: "\u{2581}", with: " ") }
                } else if id == ids["unk"] {
                    type = .unknown
                }
                let score: Float = type == .normal ? Float(-(rank[t] ?? (merges.count + id))) : 0
                texts.append(.string(text))
                scores.append(.float32(score))
                types.append(.int32(type.rawValue))
            }
            meta.append(("tokenizer.ggml.model", "llama"))
            meta.append(("tokenizer.ggml.pre", "default"))
            meta.append(("tokenizer.ggml.tokens", .array(.string, texts)))
            meta.append(("tokenizer.ggml.scores", .array(.float32, scores)))
            meta.append(("tokenizer.ggml.token_type", .array(.int32, types)))
        } else {
            let pre = try preTokenizerName(tok, file: file)
            for id in 0..<vocabSize {
                guard var t = tokens[id] else {
                    texts.append(.string("[PAD\(id)]"))
                    types.append(.int32(TokenType.unused.rawValue))
                    continue
                }
                var type = TokenType.normal
                if let a = addedById[id] {
                    if a.special || looksSpecial(t) { type = .control }
                    else { type = .userDefined; t = t.replacingOccurrences(of: "\u{2581}", with: " ") }
                }
                texts.append(.string(t))
                types.append(.int32(type.rawValue))
            }
            // Merges as "left right"; a space inside a part is written as U+0120 (gguf-py does the same).
            // (A scalar-level replacement: Foundation's replacingOccurrences costs ~10 % of a 32k-vocabulary conversion.)
            func spaceToG(_ s: String) -> String {
                guard s.utf8.contains(0x20) else { return s }
                var out = String.UnicodeScalarView()
                for u in s.unicodeScalars { out.append(u == " " ? "\u{120}" : u) }
                return String(out)
            }
            let merges = try mergePairs(model["merges"], file: file).map { m in
                GGUFValue.string(spaceToG(m.0) + " " + spaceToG(m.1))
            }
            meta.append(("tokenizer.ggml.model", "gpt2"))
            meta.append(("tokenizer.ggml.pre", .string(pre)))
            meta.append(("tokenizer.ggml.tokens", .array(.string, texts)))
            meta.append(("tokenizer.ggml.token_type", .array(.int32, types)))
            meta.append(("tokenizer.ggml.merges", .array(.string, merges)))
        }
        for t in specialTypes { if let i = ids[t] { meta.append((specialKeys[t]!, .uint32(UInt32(i)))) } }
        for t in ["bos", "eos", "sep"] { if let b = addFlags[t] { meta.append(("tokenizer.ggml.add_\(t)_token", .bool(b))) } }
        if let ct = tcfg?["chat_template"]?.stringValue { meta.append(("tokenizer.chat_template", .string(ct))) }
        return meta
    }

    static func isByteToken(_ t: String) -> Bool {
        let u = Array(t.utf8)
        guard u.count == 6, t.hasPrefix("<0x"), t.hasSuffix(">") else { return false }
        return u[3...4].allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x46) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    /// `model.merges` as pairs: either "a b" strings or (tokenizers >= 0.20) ["a", "b"] arrays.
    static func mergePairs(_ v: JSONValue?, file: String) throws -> [(String, String)] {
        guard let v else { return [] }
        guard let arr = v.arrayValue else { throw BamError.format(file, "`model.merges` is not an array") }
        var out: [(String, String)] = []
        out.reserveCapacity(arr.count)
        for (i, m) in arr.enumerated() {
            if let s = m.stringValue {
                let parts = s.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw BamError.format(file, "merge #\(i) `\(s)` is not two space-separated parts") }
                out.append((String(parts[0]), String(parts[1])))
            } else if let p = m.arrayValue, p.count == 2, let a = p[0].stringValue, let b = p[1].stringValue {
                out.append((a, b))
            } else {
                throw BamError.format(file, "merge #\(i) is neither \"a b\" nor [\"a\", \"b\"]")
            }
        }
        return out
    }

    /// llama.cpp's name for a byte-level pre-tokenizer (`tokenizer.ggml.pre`). llama.cpp's own
    /// converter recognises tokenizers by hashing the ids of a test text, which needs the real
    /// tokenizer; we look at the pre-tokenizer instead: GPT-2's ByteLevel regex -> "gpt-2", Llama
    /// 3's and Qwen2's splits (as in their tokenizer.json) -> "llama-bpe" and "qwen2", digits then
    /// GPT-2's regex -> "starcoder", and the Split lists bam-mix writes for every GGUF pre-tokenizer
    /// (`GGUFPreTokenizer.regexes`) -> that pre-tokenizer. Anything else is refused (llama.cpp would
    /// tokenize it with the wrong regex).
    static func preTokenizerName(_ tok: JSONObject, file: String) throws -> String {
        guard let pre = tok["pre_tokenizer"]?.objectValue, let type = pre["type"]?.stringValue else {
            throw BamError.unsupported("a byte-level BPE tokenizer without a pre_tokenizer cannot be described to llama.cpp", file: file)
        }
        if type == "ByteLevel", pre["use_regex"]?.boolValue ?? true { return "gpt-2" }
        if type == "Sequence" {
            let items = (pre["pretokenizers"]?.arrayValue ?? []).compactMap(\.objectValue)
            let types = items.compactMap { $0["type"]?.stringValue }
            let regexes = items.filter { $0["type"]?.stringValue == "Split" }.compactMap { $0["pattern"]?["Regex"]?.stringValue }
            let last = items.last
            let endsWithByteLevel = last?["type"]?.stringValue == "ByteLevel"
            let byteLevelRegex = endsWithByteLevel && (last?["use_regex"]?.boolValue ?? true)
            let ignoreMerges = tok["model"]?["ignore_merges"]?.boolValue ?? false
            func same(_ a: String, _ b: String) -> Bool { a.unicodeScalars.elementsEqual(b.unicodeScalars) }
            if endsWithByteLevel, !byteLevelRegex, regexes.count == 1, types.count == 2 {
                if same(regexes[0], llama3Regex) { return GGUFPreTokenizer.llama3.rawValue }
                if same(regexes[0], qwen2Regex) { return GGUFPreTokenizer.qwen2.rawValue }
            }
            if endsWithByteLevel, !byteLevelRegex, regexes.count == types.count - 1 {
                for p in GGUFPreTokenizer.allCases where p != .gpt2 && p.regexes.count == regexes.count
                    && zip(p.regexes, regexes).allSatisfy(same) {
                    // Llama 3's regex names two tokenizations; ignore_merges tells them apart.
                    if p == .llama3 || p == .dbrx { return ignoreMerges ? GGUFPreTokenizer.llama3.rawValue : GGUFPreTokenizer.dbrx.rawValue }
                    return p.rawValue
                }
            }
            if byteLevelRegex, types.count == 1 { return GGUFPreTokenizer.gpt2.rawValue }
            // StarCoder's (and SmolLM's, Command-R's...) tokenizer.json: single digits, then ByteLevel's regex.
            if byteLevelRegex, types == ["Digits", "ByteLevel"], items[0]["individual_digits"]?.boolValue == true {
                return GGUFPreTokenizer.starcoder.rawValue
            }
        }
        throw BamError.unsupported("the byte-level pre-tokenizer (\(JSONValue.object(pre).serialized(indent: nil).prefix(200))) is not one llama.cpp knows by name (\(GGUFPreTokenizer.allCases.map(\.rawValue).joined(separator: ", ")))", file: file)
    }

    // MARK: GGUF -> HF

    /// tokenizer.json and tokenizer_config.json rebuilt from a GGUF's vocabulary, read as llama.cpp
    /// reads it (`GGUFVocabulary`), so that HF tokenizers on the result gives llama.cpp's ids:
    /// - SentencePiece (`llama`): a BPE model with byte fallback whose merges follow the token
    ///   scores, a normalizer writing spaces as U+2581 (with a U+2581 in front of every piece of
    ///   text when add_space_prefix is on, which is where llama.cpp puts a space: at the start and
    ///   after every special token);
    /// - byte-level BPE (`gpt2`): the merges, and the pre-tokenizer as a Split per llama.cpp regex
    ///   (GPT-2's as HF's ByteLevel regex, which is the same), ignore_merges as llama.cpp sets it.
    /// Control and unknown tokens become special added tokens, user-defined ones plain added tokens,
    /// all matched on the raw text as llama.cpp does. BOS / EOS are added as the vocabulary says.
    public static func hfTokenizer(from file: GGUFFile) throws -> (tokenizer: JSONObject, config: JSONObject) {
        let v = try GGUFVocabulary(file: file)
        let tokens = v.tokens
        let isLlama = v.model == .sentencePiece

        var vocab = JSONObject()
        var addedTokens: [JSONValue] = []
        for (id, t) in tokens.enumerated() {
            let attr = v.attributes[id]
            if attr == .unused, t == "[PAD\(id)]" { continue }
            if attr.isSpecial {
                let isControl = !attr.isDisjoint(with: [.control, .unknown])
                addedTokens.append(.object(JSONObject([
                    ("id", .int(id)), ("content", .string(t)), ("single_word", false),
                    ("lstrip", .bool(attr.contains(.lstrip))), ("rstrip", .bool(attr.contains(.rstrip))),
                    ("normalized", false), ("special", .bool(isControl)),
                ])))
            }
            // Every token is also in the model's vocab: the tokenizers library gives an added token
            // that is missing from it the next free id, whatever its `id` says, so an added token
            // inside the vocab's id range must be in the vocab to keep its id.
            if vocab[t] == nil { vocab[t] = .int(id) }
        }

        var merges: [(String, String)]
        if isLlama {
            let types = v.attributes.map { a -> Int in
                a.contains(.normal) ? Int(TokenType.normal.rawValue) : a.contains(.userDefined) ? Int(TokenType.userDefined.rawValue) : 0
            }
            merges = spmMerges(tokens: tokens, scores: v.scores.map(Double.init), types: types)
        } else {
            merges = []
            merges.reserveCapacity(v.merges.count)
            for (i, m) in v.merges.enumerated() {
                let p = m.split(separator: " ", omittingEmptySubsequences: false)
                guard p.count == 2 else { throw BamError.format(file.path, "`tokenizer.ggml.merges`[\(i)] `\(m)` is not two space-separated parts") }
                merges.append((String(p[0]), String(p[1])))
            }
        }
        let pairForm = merges.contains { $0.0.contains(" ") || $0.1.contains(" ") }
        let mergeValues: [JSONValue] = merges.map {
            pairForm ? .array([.string($0.0), .string($0.1)]) : .string("\($0.0) \($0.1)")
        }

        let addBos = v.addBOS, addEos = v.addEOS
        let bosText = v.bosId.map { tokens[$0] }
        let eosText = v.eosId.map { tokens[$0] }
        var single: [JSONValue] = []
        var pair: [JSONValue] = []
        var specialTokens = JSONObject()
        func specialEntry(_ text: String, _ typeId: Int) -> JSONValue {
            .object(JSONObject([("SpecialToken", .object(JSONObject([("id", .string(text)), ("type_id", .int(typeId))])))]))
        }
        func seq(_ id: String, _ typeId: Int) -> JSONValue {
            .object(JSONObject([("Sequence", .object(JSONObject([("id", .string(id)), ("type_id", .int(typeId))])))]))
        }
        if addBos, let b = bosText, let id = v.bosId {
            single.append(specialEntry(b, 0))
            pair.append(specialEntry(b, 0))
            specialTokens[b] = .object(JSONObject([("id", .string(b)), ("ids", .array([.int(id)])), ("tokens", .array([.string(b)]))]))
        }
        single.append(seq("A", 0))
        pair.append(seq("A", 0))
        if addEos, let e = eosText, let id = v.eosId {
            single.append(specialEntry(e, 0))
            pair.append(specialEntry(e, 0))
            specialTokens[e] = .object(JSONObject([("id", .string(e)), ("ids", .array([.int(id)])), ("tokens", .array([.string(e)]))]))
        }
        if addBos, let b = bosText { pair.append(specialEntry(b, 1)) }
        pair.append(seq("B", 1))
        if addEos, let e = eosText { pair.append(specialEntry(e, 1)) }
        let template: JSONValue = .object(JSONObject([
            ("type", "TemplateProcessing"), ("single", .array(single)), ("pair", .array(pair)), ("special_tokens", .object(specialTokens)),
        ]))

        var tok = JSONObject()
        tok["version"] = "1.0"
        tok["truncation"] = .null
        tok["padding"] = .null
        tok["added_tokens"] = .array(addedTokens)
        let unkText = v.unkId.map { tokens[$0] } ?? tokens.indices.first { v.attributes[$0].contains(.unknown) }.map { tokens[$0] }
        switch v.model {
        case .sentencePiece:
            var steps: [JSONValue] = []
            if v.addSpacePrefix { steps.append(.object(JSONObject([("type", "Prepend"), ("prepend", "\u{2581}")]))) }
            steps.append(.object(JSONObject([("type", "Replace"), ("pattern", .object(JSONObject([("String", " ")]))), ("content", "\u{2581}")])))
            tok["normalizer"] = .object(JSONObject([("type", "Sequence"), ("normalizers", .array(steps))]))
            tok["pre_tokenizer"] = .null
            tok["post_processor"] = template
            var decoders: [JSONValue] = [
                .object(JSONObject([("type", "Replace"), ("pattern", .object(JSONObject([("String", "\u{2581}")]))), ("content", " ")])),
                .object(JSONObject([("type", "ByteFallback")])),
                .object(JSONObject([("type", "Fuse")])),
            ]
            if v.addSpacePrefix {
                decoders.append(.object(JSONObject([("type", "Strip"), ("content", " "), ("start", 1), ("stop", 0)])))
            }
            tok["decoder"] = .object(JSONObject([("type", "Sequence"), ("decoders", .array(decoders))]))
            tok["model"] = .object(JSONObject([
                ("type", "BPE"), ("dropout", .null), ("unk_token", unkText.map { .string($0) } ?? .null),
                ("continuing_subword_prefix", .null), ("end_of_word_suffix", .null), ("fuse_unk", true),
                ("byte_fallback", true), ("ignore_merges", false), ("vocab", .object(vocab)), ("merges", .array(mergeValues)),
            ]))
        case let .bytePairEncoding(pre):
            let byteLevel = { (useRegex: Bool) -> JSONValue in
                .object(JSONObject([("type", "ByteLevel"), ("add_prefix_space", false), ("trim_offsets", true), ("use_regex", .bool(useRegex))]))
            }
            tok["normalizer"] = .null
            if pre == .gpt2 {
                tok["pre_tokenizer"] = byteLevel(true)
            } else {
                let splits: [JSONValue] = pre.regexes.map { r in
                    .object(JSONObject([("type", "Split"), ("pattern", .object(JSONObject([("Regex", .string(r))]))),
                                        ("behavior", "Isolated"), ("invert", false)]))
                }
                tok["pre_tokenizer"] = .object(JSONObject([("type", "Sequence"), ("pretokenizers", .array(splits + [byteLevel(false)]))]))
            }
            tok["post_processor"] = (addBos || addEos) ? template
                : .object(JSONObject([("type", "ByteLevel"), ("add_prefix_space", true), ("trim_offsets", false), ("use_regex", true)]))
            tok["decoder"] = .object(JSONObject([("type", "ByteLevel"), ("add_prefix_space", true), ("trim_offsets", true), ("use_regex", true)]))
            tok["model"] = .object(JSONObject([
                ("type", "BPE"), ("dropout", .null), ("unk_token", .null), ("continuing_subword_prefix", .null),
                ("end_of_word_suffix", .null), ("fuse_unk", false), ("byte_fallback", false),
                ("ignore_merges", .bool(v.ignoreMerges)), ("vocab", .object(vocab)), ("merges", .array(mergeValues)),
            ]))
        }

        var cfg = JSONObject()
        cfg["add_bos_token"] = .bool(addBos)
        cfg["add_eos_token"] = .bool(addEos)
        if let b = bosText { cfg["bos_token"] = .string(b) }
        if let e = eosText { cfg["eos_token"] = .string(e) }
        if let u = unkText { cfg["unk_token"] = .string(u) }
        if let p = v.padId { cfg["pad_token"] = .string(tokens[p]) }
        cfg["clean_up_tokenization_spaces"] = false
        cfg["tokenizer_class"] = isLlama ? "LlamaTokenizerFast" : "PreTrainedTokenizerFast"
        if isLlama { cfg["legacy"] = true }
        if let ctx = file["\(file.architecture ?? "").context_length"]?.intValue { cfg["model_max_length"] = .int(ctx) }
        if let ct = file["tokenizer.chat_template"]?.stringValue { cfg["chat_template"] = .string(ct) }
        return (tok, cfg)
    }

    /// Merges of a SentencePiece BPE vocabulary from its pieces and scores, the way transformers'
    /// SentencePieceExtractor derives them: every split of a piece into two pieces of the vocabulary
    /// is a merge; merges are ordered by the merged piece's score (highest first), ties by id.
    static func spmMerges(tokens: [String], scores: [Double], types: [Int]) -> [(String, String)] {
        var ids: [String: Int] = [:]
        for (i, t) in tokens.enumerated() where ids[t] == nil && types[i] != Int(TokenType.userDefined.rawValue) { ids[t] = i }
        var all: [(l: String, r: String, score: Double, order: Int)] = []
        var order = 0
        for (id, piece) in tokens.enumerated() where types[id] == Int(TokenType.normal.rawValue) {
            let scalars = Array(piece.unicodeScalars)
            guard scalars.count > 1 else { continue }
            var local: [(String, String, Int, Int)] = []
            for cut in 1..<scalars.count {
                var l = String.UnicodeScalarView()
                l.append(contentsOf: scalars[..<cut])
                var r = String.UnicodeScalarView()
                r.append(contentsOf: scalars[cut...])
                let ls = String(l), rs = String(r)
                if let li = ids[ls], let ri = ids[rs] { local.append((ls, rs, li, ri)) }
            }
            local.sort { ($0.2, $0.3) < ($1.2, $1.3) }
            for m in local {
                all.append((m.0, m.1, scores[id], order))
                order += 1
            }
        }
        all.sort { $0.score != $1.score ? $0.score > $1.score : $0.order < $1.order }
        return all.map { ($0.l, $0.r) }
    }
}

extension GGUFTokenizer {
    /// tokenizer.json (+ tokenizer_config.json) rebuilt from a GGUF's vocabulary into a cache
    /// directory keyed by the file's path, size and modification time, so the tokenizer code
    /// (which reads tokenizer.json) works on GGUF models. nil when the vocabulary cannot be rebuilt
    /// or the cache cannot be written; `convert` reports why.
    public static func cachedTokenizerURL(for file: GGUFFile) -> URL? {
        guard file["tokenizer.ggml.model"] != nil else { return nil }
        let attrs = try? FileManager.default.attributesOfItem(atPath: file.path)
        let mtime = (attrs?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        var h: UInt64 = 0xcbf2_9ce4_8422_2325   // FNV-1a of the absolute path
        for b in file.path.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        let key = String(format: "%016llx-%d-%.0f", h, file.file.size, mtime)
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("bam-mix-gguf-tokenizers/\(key)")
        let url = dir.appendingPathComponent("tokenizer.json")
        if FileManager.default.fileExists(atPath: url.path) { return url }
        do {
            let (tok, cfg) = try hfTokenizer(from: file)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try writeFileAtomically(Data(JSONValue.object(cfg).serialized().utf8), to: dir.appendingPathComponent("tokenizer_config.json"))
            try writeFileAtomically(Data(JSONValue.object(tok).serialized().utf8), to: url)
            return url
        } catch {
            return nil
        }
    }
}
