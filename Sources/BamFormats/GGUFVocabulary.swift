import BamTensors
import Foundation

/// llama.cpp's per-token attributes (`llama_token_attr`): GGUF's `tokenizer.ggml.token_type` plus
/// the overrides llama.cpp applies by token text.
public struct GGUFTokenAttributes: OptionSet, Sendable, Hashable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let unknown = GGUFTokenAttributes(rawValue: 1 << 0)
    public static let unused = GGUFTokenAttributes(rawValue: 1 << 1)
    public static let normal = GGUFTokenAttributes(rawValue: 1 << 2)
    public static let control = GGUFTokenAttributes(rawValue: 1 << 3)
    public static let userDefined = GGUFTokenAttributes(rawValue: 1 << 4)
    public static let byte = GGUFTokenAttributes(rawValue: 1 << 5)
    /// Takes the whitespace before it when split out of text.
    public static let lstrip = GGUFTokenAttributes(rawValue: 1 << 7)
    /// Takes the whitespace after it when split out of text.
    public static let rstrip = GGUFTokenAttributes(rawValue: 1 << 8)

    /// gguf-py's TokenType -> attribute; 0 and unknown values are "undefined" (no attribute).
    public init(tokenType: Int) {
        switch tokenType {
        case 1: self = .normal
        case 2: self = .unknown
        case 3: self = .control
        case 4: self = .userDefined
        case 5: self = .unused
        case 6: self = .byte
        default: self = []
        }
    }

    /// Split out of text before tokenizing (control and unknown ones only when special tokens are parsed).
    public var isSpecial: Bool { !isDisjoint(with: [.control, .userDefined, .unknown]) }
}

/// The vocabulary of a GGUF file as llama.cpp loads it (`llama_vocab::impl::load`): the tokenizer
/// model (SentencePiece `llama`, or byte-level BPE `gpt2` with its pre-tokenizer), every token
/// with its score and attributes, the BPE merges, the special ids and the add_bos / add_eos /
/// add_space_prefix flags, with llama.cpp's defaults where the file says nothing. Both the GGUF
/// tokenizer (BamTokenizers' LlamaCppTokenizer) and the tokenizer.json export read this one
/// interpretation, so they agree with each other and with llama.cpp.
public struct GGUFVocabulary: Sendable {
    /// Which of llama.cpp's tokenizers runs on the vocabulary.
    public enum Model: Sendable, Equatable {
        /// `tokenizer.ggml.model = "llama"`: SentencePiece merging by token score, byte fallback.
        case sentencePiece
        /// `tokenizer.ggml.model = "gpt2"`: byte-level BPE with a pre-tokenizer.
        case bytePairEncoding(GGUFPreTokenizer)
    }

    public let model: Model
    /// `tokenizer.ggml.pre` as written in the file ("" when absent).
    public let preName: String
    /// Token texts by id (an empty one renamed `[EMPTY_i]`, as llama.cpp does).
    public let tokens: [String]
    public let scores: [Float]
    public let attributes: [GGUFTokenAttributes]
    /// `tokenizer.ggml.merges` ("left right", ranked by position); empty for SentencePiece.
    public let merges: [String]
    public let bosId: Int?
    public let eosId: Int?
    public let unkId: Int?
    public let padId: Int?
    public let addBOS: Bool
    public let addEOS: Bool
    /// SentencePiece: a space goes before the text and after every special token.
    public let addSpacePrefix: Bool
    /// BPE: a pre-token that is itself a token is taken whole, without merging (Llama 3, Tekken).
    public let ignoreMerges: Bool

    /// Whether the file has tokenizer metadata at all.
    public static func hasVocabulary(_ file: GGUFFile) -> Bool { file["tokenizer.ggml.model"] != nil }

    public init(file: GGUFFile) throws {
        let path = file.path
        func fail(_ message: String) -> BamError { BamError.format(path, BamError.Text(message)) }
        /// A metadata key that holds the wrong kind of value.
        func wrong(_ key: String, _ value: GGUFValue, expected: String) -> BamError {
            BamError.format(path, at: .key(key), expected: expected, found: value.summary)
        }
        guard let modelValue = file["tokenizer.ggml.model"] else {
            throw BamError.unsupported("the GGUF carries no vocabulary", file: path, at: .key("tokenizer.ggml.model"), found: "no such key",
                                       hint: "give a tokenizer.json")
        }
        guard let modelName = modelValue.stringValue else { throw wrong("tokenizer.ggml.model", modelValue, expected: "a string") }
        let preValue = file["tokenizer.ggml.pre"]
        if let preValue, preValue.stringValue == nil { throw wrong("tokenizer.ggml.pre", preValue, expected: "a string") }
        preName = preValue?.stringValue ?? ""

        func bool(_ key: String) throws -> Bool? {
            guard let v = file[key] else { return nil }
            guard let b = v.boolValue else { throw wrong(key, v, expected: "a bool") }
            return b
        }
        func strings(_ key: String) throws -> [String]? {
            guard let v = file[key] else { return nil }
            guard v.arrayElementType == .string, let a = v.stringArray else { throw wrong(key, v, expected: "an array of strings") }
            return a
        }

        // The tokenizer model and llama.cpp's defaults for it.
        var bos: Int?, eos: Int?, unk: Int?
        var addBOS = false, addSpacePrefix = false, ignoreMerges = false
        switch modelName {
        case "llama":
            model = .sentencePiece
            bos = 1; eos = 2; unk = 0
            addBOS = true
            addSpacePrefix = true
            merges = []
        case "gpt2":
            let pre = try GGUFPreTokenizer(name: preName, file: path)
            model = .bytePairEncoding(pre)
            bos = 11; eos = 11
            addBOS = pre.addsBOSByDefault
            ignoreMerges = pre.ignoresMerges
            guard let m = try strings("tokenizer.ggml.merges") else {
                throw BamError.format(path, at: .key("tokenizer.ggml.merges"), "a gpt2 (BPE) vocabulary needs merges", expected: "an array of strings", found: "no such key")
            }
            merges = m
        default:
            throw BamError.unsupported("not a GGUF tokenizer model bam-mix runs", file: path, at: .key("tokenizer.ggml.model"),
                                       expected: "llama (SentencePiece) or gpt2 (BPE)", found: modelName, hint: "give a tokenizer.json instead")
        }
        if let b = try bool("tokenizer.ggml.add_space_prefix") { addSpacePrefix = b }

        // Tokens, scores, types.
        guard let texts = try strings("tokenizer.ggml.tokens") else { throw BamError.format(path, at: .key("tokenizer.ggml.tokens"), expected: "an array of strings", found: "no such key") }
        let n = texts.count
        var scores = [Float](repeating: 0, count: n)
        if let s = file["tokenizer.ggml.scores"] {
            guard let a = s.arrayValue, s.arrayElementType == .float32 || s.arrayElementType == .int32 else {
                throw wrong("tokenizer.ggml.scores", s, expected: "an array of float32 (or int32)")
            }
            guard a.count >= n else { throw BamError.format(path, at: .key("tokenizer.ggml.scores"), "one score per token", expected: "\(n) entries", found: "\(a.count)") }
            for i in 0..<n { scores[i] = Float(a[i].doubleValue ?? 0) }
        }
        var attrs = [GGUFTokenAttributes](repeating: .normal, count: n)
        if let t = file["tokenizer.ggml.token_type"] {
            guard let a = t.arrayValue, t.arrayElementType == .int32 else {
                throw wrong("tokenizer.ggml.token_type", t, expected: "an array of int32")
            }
            guard a.count >= n else { throw BamError.format(path, at: .key("tokenizer.ggml.token_type"), "one type per token", expected: "\(n) entries", found: "\(a.count)") }
            for i in 0..<n { attrs[i] = GGUFTokenAttributes(tokenType: a[i].intValue ?? 0) }
        }
        var tokens: [String] = []
        tokens.reserveCapacity(n)
        var seen: [[UInt8]: Int] = [:]
        seen.reserveCapacity(n)
        for (i, t) in texts.enumerated() {
            // llama.cpp renames an empty token so that it cannot match text.
            let text = t.isEmpty ? "[EMPTY_\(i)]" : t
            // Compared as bytes: String's == would merge canonically equivalent tokens.
            if let other = seen.updateValue(i, forKey: Array(text.utf8)) {
                // llama.cpp stops on this too (its text -> id map would lose one of them).
                throw BamError.format(path, at: .key("tokenizer.ggml.tokens[\(i)]"), "every token text must be unique; this one repeats token \(other)", found: "`\(text)`")
            }
            tokens.append(text)
        }
        self.tokens = tokens
        self.scores = scores

        // Special ids: a default outside the vocabulary is dropped; a key outside it is ignored.
        func special(_ key: String, _ fallback: Int?) throws -> Int? {
            var id = fallback.flatMap { $0 < n ? $0 : nil }
            if let v = file[key] {
                guard let k = v.intValue else { throw wrong(key, v, expected: "an integer id") }
                if k >= 0 && k < n { id = k }
            }
            return id
        }
        bosId = try special("tokenizer.ggml.bos_token_id", bos)
        eosId = try special("tokenizer.ggml.eos_token_id", eos)
        unkId = try special("tokenizer.ggml.unknown_token_id", unk)
        padId = try special("tokenizer.ggml.padding_token_id", nil)
        if let b = try bool("tokenizer.ggml.add_bos_token") { addBOS = b }
        var addEOS = false
        if let b = try bool("tokenizer.ggml.add_eos_token") { addEOS = b }
        if addBOS, bosId == nil { throw BamError.format(path, at: .key("tokenizer.ggml.bos_token_id"), "BOS is to be added but the key names no token") }
        if addEOS, eosId == nil { throw BamError.format(path, at: .key("tokenizer.ggml.eos_token_id"), "EOS is to be added but the key names no token") }
        self.addBOS = addBOS
        self.addEOS = addEOS
        self.addSpacePrefix = addSpacePrefix
        self.ignoreMerges = ignoreMerges

        GGUFVocabulary.applyTextOverrides(&attrs, byText: seen, tokens: tokens, eosId: eosId, file: file)
        attributes = attrs
    }

    /// The attribute changes llama.cpp makes by token text after reading token_type, in its order:
    /// tokens that look like end-of-turn, fill-in-the-middle or end-of-generation markers become
    /// control tokens even when the file calls them normal (so they are split out of text like any
    /// control token); a few chat markers of gpt-oss-style vocabularies become user-defined; and
    /// Phi-3 models (by general.name) strip the whitespace after their special tokens.
    static func applyTextOverrides(_ attrs: inout [GGUFTokenAttributes], byText: [[UInt8]: Int], tokens: [String],
                                   eosId: Int?, file: GGUFFile) {
        func id(_ t: String) -> Int? { byText[Array(t.utf8)] }
        // Looked for only when the file does not give the id. (llama.cpp marks the first match it
        // meets in hash order; a vocabulary holding two spellings of one marker gets both here.)
        let byKey: [(String, [String])] = [
            ("tokenizer.ggml.eot_token_id", GGUFControlLooking.endOfTurn),
            ("tokenizer.ggml.eom_token_id", GGUFControlLooking.endOfMessage),
            ("tokenizer.ggml.fim_pre_token_id", GGUFControlLooking.fimPrefix),
            ("tokenizer.ggml.fim_suf_token_id", GGUFControlLooking.fimSuffix),
            ("tokenizer.ggml.fim_mid_token_id", GGUFControlLooking.fimMiddle),
            ("tokenizer.ggml.fim_pad_token_id", GGUFControlLooking.fimPad),
            ("tokenizer.ggml.fim_rep_token_id", GGUFControlLooking.fimRepo),
            ("tokenizer.ggml.fim_sep_token_id", GGUFControlLooking.fimSeparator),
        ]
        for (key, candidates) in byKey where file[key] == nil {
            for c in candidates { if let i = id(c) { attrs[i].insert(.control) } }
        }
        for c in GGUFControlLooking.endOfGeneration { if let i = id(c) { attrs[i].insert(.control) } }
        for c in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] { if let i = id(c) { attrs[i] = .userDefined } }
        if let end = id("<|end|>"), id("<|call|>") != nil || id("<|calls|>") != nil,
           id("<|return|>") != nil || id("<|flush|>") != nil {
            attrs[end] = .userDefined
        }
        if let s = id("</s>"), id("<|tool_response>") != nil || eosId.map({ tokens[$0] == "<|plamo:eos|>" }) == true {
            attrs[s] = .normal
        }
        let name = (file["general.name"]?.stringValue ?? "").lowercased()
        if name.contains("phi-3") || name.contains("phi3") {
            for i in attrs.indices where attrs[i].isSpecial { attrs[i].insert(.rstrip) }
            if let i = id("</s>") { attrs[i].insert(.rstrip) }
            for t in ["<unk>", "<s>", "<|endoftext|>"] { if let i = id(t) { attrs[i].remove(.rstrip) } }
        }
    }
}

/// Token texts llama.cpp treats as control tokens whatever their type in the file (llama-vocab.cpp).
enum GGUFControlLooking {
    static let endOfTurn = ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
                            "<EOT>", "_<EOT>", "[EOT]", "<\u{FF5C}end\u{2581}of\u{2581}sentence\u{FF5C}>", "<end_of_utterance>"]
    static let endOfMessage = ["<|eom_id|>"]
    static let fimPrefix = ["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\u{FF5C}fim\u{2581}begin\u{FF5C}>", "<PRE>",
                            "\u{2581}<PRE>", "<|code_prefix|>", "<|prefix|>"]
    static let fimSuffix = ["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\u{FF5C}fim\u{2581}hole\u{FF5C}>", "<SUF>",
                            "\u{2581}<SUF>", "<|code_suffix|>", "<|suffix|>"]
    static let fimMiddle = ["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\u{FF5C}fim\u{2581}end\u{FF5C}>", "<MID>",
                            "\u{2581}<MID>", "<|code_middle|>", "<|middle|>"]
    static let fimPad = ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"]
    static let fimRepo = ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"]
    static let fimSeparator = ["<|file_sep|>"]
    static let endOfGeneration = ["<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
                                  "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
                                  "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
                                  "<\u{FF5C}end\u{2581}of\u{2581}sentence\u{FF5C}>", "[e~["]
}
