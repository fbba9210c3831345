import BamTensors
import Foundation

/// The pre-tokenizers of GGUF's byte-level BPE vocabularies (`tokenizer.ggml.model = "gpt2"`),
/// named by `tokenizer.ggml.pre` and defined by llama.cpp (llama-vocab.cpp, `llm_tokenizer_bpe`):
/// each is a list of regexes applied one after the other, plus two flags llama.cpp sets by name.
///
/// The regexes are llama.cpp's own strings, character for character: where llama.cpp rewrote a
/// model's tokenizer.json regex for its regex engine (Llama 3's `(?i:'s|...)` as `(?:'[sS]|...)`,
/// Tekken's case classes as look-aheads), the rewritten form is the one that decides its ids, so it
/// is the one here. Cases group the names whose tokenization is identical; names that only change
/// how llama.cpp detokenizes share a case.
public enum GGUFPreTokenizer: String, Sendable, CaseIterable {
    /// llama.cpp's fallback for "default" and for a file without `tokenizer.ggml.pre`.
    case defaultRegexes = "default"
    /// GPT-2's regex alone (GPT-2, MPT, OLMo, Phi-2, ...).
    case gpt2 = "gpt-2"
    /// Llama 3: its regex, whole-word tokens taken before merging, BOS by default.
    case llama3 = "llama-bpe"
    /// Llama 3's regex without Llama 3's flags (DBRX, Smaug).
    case dbrx = "dbrx"
    /// Qwen2's regex (Llama 3's with single digits).
    case qwen2 = "qwen2"
    case deepseekLLM = "deepseek-llm"
    case deepseekCoder = "deepseek-coder"
    case falcon = "falcon"
    /// Single digits, then GPT-2's regex (StarCoder, Refact, Command-R, SmolLM, ...).
    case starcoder = "starcoder"
    /// Mistral's Tekken: case-aware words, single digits, whole-word tokens first, BOS by default.
    case tekken = "tekken"

    /// The `tokenizer.ggml.pre` values llama.cpp gives this tokenization (the raw value first).
    public var ggufNames: [String] {
        switch self {
        case .defaultRegexes: ["default"]
        case .gpt2: ["gpt-2", "phi-2", "gigachat", "a.x-4.0", "mellum", "exaone4", "mpt", "olmo", "jais", "trillion",
                     "granite-docling"]
        case .llama3: ["llama-bpe", "llama3", "llama-v3", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"]
        case .dbrx: ["dbrx", "smaug-bpe"]
        case .qwen2: ["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez", "stablelm2", "hunyuan", "solar-open"]
        case .deepseekLLM: ["deepseek-llm"]
        case .deepseekCoder: ["deepseek-coder"]
        case .falcon: ["falcon"]
        case .starcoder: ["starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b", "mellum2"]
        case .tekken: ["tekken"]
        }
    }

    /// The pre-tokenizer llama.cpp runs for `name`; a missing `tokenizer.ggml.pre` ("") is
    /// llama.cpp's "default". Unknown names are refused, naming the ones bam-mix knows.
    public init(name: String, file: String) throws {
        if name.isEmpty { self = .defaultRegexes; return }
        guard let found = GGUFPreTokenizer.allCases.first(where: { $0.ggufNames.contains(name) }) else {
            let known = GGUFPreTokenizer.allCases.flatMap(\.ggufNames).joined(separator: ", ")
            throw BamError.unsupported("not a GGUF pre-tokenizer bam-mix implements", file: file, at: .key("tokenizer.ggml.pre"), expected: "one of \(known)",
                                       found: name, hint: "give the model's tokenizer.json instead")
        }
        self = found
    }

    /// llama.cpp's regexes, applied in order.
    public var regexes: [String] {
        switch self {
        case .defaultRegexes:
            [#"[\p{P}\$\+<=>\^~\|]+"#, GGUFPreTokenizer.gpt2Regex, #"\p{N}+"#, #"[0-9][0-9][0-9]"#]
        case .gpt2:
            [GGUFPreTokenizer.gpt2Regex]
        case .llama3, .dbrx:
            [GGUFPreTokenizer.llama3Regex]
        case .qwen2:
            [GGUFPreTokenizer.qwen2Regex]
        case .deepseekLLM:
            [
                "[\r\n]",
                "\\s?[A-Za-z\u{B5}\u{C0}-\u{D6}\u{D8}-\u{F6}\u{F8}-\u{1BA}\u{1BC}-\u{1BF}\u{1C4}-\u{293}\u{295}-\u{2AF}\u{370}-\u{373}\u{376}\u{377}\u{37B}-\u{37D}\u{37F}\u{386}\u{388}-\u{38A}\u{38C}\u{38E}-\u{3A1}\u{3A3}-\u{3F5}\u{3F7}-\u{481}\u{48A}-\u{52F}\u{531}-\u{556}\u{10A0}-\u{10C5}\u{13A0}-\u{13F5}\u{13F8}-\u{13FD}\u{1C90}-\u{1CBA}\u{1CBD}-\u{1CBF}\u{1D00}-\u{1D2B}\u{1D6B}-\u{1D77}\u{1D79}-\u{1D9A}\u{1E00}-\u{1F15}\u{1F18}-\u{1F1D}\u{1F20}-\u{1F45}\u{1F48}-\u{1F4D}\u{1F50}-\u{1F57}\u{1F59}\u{1F5B}\u{1F5D}\u{1F5F}-\u{1F7D}\u{1F80}-\u{1FB4}\u{1FB6}-\u{1FBC}\u{1FBE}\u{1FC2}-\u{1FC4}\u{1FC6}-\u{1FCC}\u{1FD0}-\u{1FD3}\u{1FD6}-\u{1FDB}\u{1FE0}-\u{1FEC}\u{1FF2}-\u{1FF4}\u{1FF6}-\u{1FFC}\u{2102}\u{2107}\u{210A}-\u{2113}\u{2115}\u{2119}-\u{211D}\u{2124}\u{2126}\u{2128}\u{212A}-\u{212D}\u{212F}-\u{2134}\u{2139}\u{213C}-\u{213F}\u{2145}-\u{2149}\u{214E}\u{2183}\u{2184}\u{2C00}-\u{2C7B}\u{2C7E}-\u{2CE4}\u{2CEB}-\u{2CEE}\u{2CF2}\u{2CF3}\u{A640}-\u{A66D}\u{A680}-\u{A69B}\u{A722}-\u{A76F}\u{A771}-\u{A787}\u{A78B}-\u{A78E}\u{AB70}-\u{ABBF}\u{FB00}-\u{FB06}\u{FB13}-\u{FB17}\u{FF21}-\u{FF3A}\u{FF41}-\u{FF5A}\u{10400}-\u{1044F}\u{104B0}-\u{104D3}\u{104D8}-\u{104FB}\u{10C80}-\u{10CB2}\u{10CC0}-\u{10CF2}\u{118A0}-\u{118DF}\u{1E900}-\u{1E943}]+",
                "\\s?[!-/:-~\u{FF01}-\u{FF0F}\u{FF1A}-\u{FF5E}\u{2018}-\u{201F}\u{3000}-\u{3002}]+",
                #"\s+$"#,
                "[\u{4E00}-\u{9FA5}\u{800}-\u{4E00}\u{AC00}-\u{D7FF}]+",
                #"\p{N}+"#,
            ]
        case .deepseekCoder:
            ["[\r\n]", #"\s?\p{L}+"#, #"\s?\p{P}+"#, "[\u{4E00}-\u{9FA5}\u{800}-\u{4E00}\u{AC00}-\u{D7FF}]+", #"\p{N}"#]
        case .falcon:
            [#"[\p{P}\$\+<=>\^~\|`]+"#, GGUFPreTokenizer.gpt2Regex, #"[0-9][0-9][0-9]"#]
        case .starcoder:
            [#"\p{N}"#, GGUFPreTokenizer.gpt2Regex]
        case .tekken:
            [#"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#]
        }
    }

    /// GPT-2's regex as llama.cpp writes it (without the final `|\s+`: llama.cpp keeps unmatched
    /// text as pieces anyway, and runs its own matcher for this exact string).
    public static let gpt2Regex = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#
    /// Llama 3's regex as llama.cpp adapted it (contractions matched by explicit case classes).
    public static let llama3Regex =
        #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    /// Qwen2's regex as llama.cpp adapted it.
    public static let qwen2Regex =
        #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// llama.cpp's `ignore_merges`: a pre-token that is a vocabulary token is emitted whole.
    public var ignoresMerges: Bool { self == .llama3 || self == .tekken }

    /// llama.cpp's add_bos default for the name (a file's `tokenizer.ggml.add_bos_token` overrides it).
    public var addsBOSByDefault: Bool { self == .llama3 || self == .tekken }
}
