import BamEvaluation
import BamFormats
import BamTokenizers
import Foundation
import Testing

/// The fixtures of tools/make_gguf_tokenizer_fixtures.py: vocab-only GGUF files (one per
/// llama.cpp pre-tokenizer, SentencePiece variants) and the ids llama.cpp's `llama-tokenize` gave
/// for each corpus text, with special tokens parsed and not.
private struct LlamaCppFixtures {
    struct Case {
        let name: String
        let file: URL
        let ids: [[Int]]
        let idsNoParseSpecial: [[Int]]
    }

    let texts: [String]
    let cases: [Case]

    static let directory = Fixtures.url("gguf/llamacpp_tokenizers")

    static func load() throws -> LlamaCppFixtures {
        let root = try JSONParser.parse(Data(contentsOf: directory.appendingPathComponent("expected.json")))
        let textValues = try #require(root["texts"]?.arrayValue)
        let texts = textValues.compactMap { $0.stringValue }
        var cases: [Case] = []
        for (name, v) in try #require(root["cases"]?.objectValue).pairs {
            func ids(_ key: String) throws -> [[Int]] {
                let rows = try #require(v[key]?.arrayValue)
                return try rows.map { row in
                    let values = try #require(row.arrayValue)
                    return values.compactMap { $0.intValue }
                }
            }
            cases.append(Case(name: name, file: directory.appendingPathComponent(try #require(v["file"]?.stringValue)),
                              ids: try ids("ids"), idsNoParseSpecial: try ids("ids_no_parse_special")))
        }
        return LlamaCppFixtures(texts: texts, cases: cases)
    }
}

@Suite("GGUF vocabularies tokenize as llama.cpp")
struct GGUFVocabularyTests {
    /// llama-tokenize adds special tokens when the vocabulary adds BOS (and not otherwise).
    private func encode(_ t: Tokenizer, _ text: String, parseSpecial: Bool) -> [Int] {
        t.encode(text, addSpecialTokens: t.addsBOS, parseSpecialTokens: parseSpecial)
    }

    @Test("every pre-tokenizer and SentencePiece variant gives llama-tokenize's ids on every text")
    func idsEqualLlamaCpp() throws {
        let f = try LlamaCppFixtures.load()
        #expect(f.cases.count >= 20 && f.texts.count >= 30, "fixtures: \(f.cases.count) vocabularies, \(f.texts.count) texts")
        for c in f.cases {
            let t = try Tokenizer.load(url: c.file)
            for (i, text) in f.texts.enumerated() {
                #expect(encode(t, text, parseSpecial: true) == c.ids[i], "\(c.name), text \(i) \(text.debugDescription)")
                #expect(encode(t, text, parseSpecial: false) == c.idsNoParseSpecial[i],
                        "\(c.name), text \(i) \(text.debugDescription), special tokens not parsed")
            }
        }
    }

    @Test("the tokenizer.json written for each vocabulary gives the same ids")
    func exportedTokenizerJSON() throws {
        let f = try LlamaCppFixtures.load()
        let dir = try TemporaryDirectory()
        for c in f.cases {
            let (tok, cfg) = try GGUFTokenizer.hfTokenizer(from: GGUFFile(path: c.file.path))
            let out = dir.file(c.name)
            try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
            try Data(JSONValue.object(tok).serialized().utf8).write(to: out.appendingPathComponent("tokenizer.json"))
            try Data(JSONValue.object(cfg).serialized().utf8).write(to: out.appendingPathComponent("tokenizer_config.json"))
            let hf = try Tokenizer.load(url: out)
            let gguf = try Tokenizer.load(url: c.file)
            #expect(hf.addsBOS == gguf.addsBOS && hf.bosTokenId == gguf.bosTokenId, "\(c.name)")
            for (i, text) in f.texts.enumerated() {
                #expect(encode(hf, text, parseSpecial: true) == c.ids[i], "\(c.name) tokenizer.json, text \(i) \(text.debugDescription)")
                #expect(encode(hf, text, parseSpecial: false) == c.idsNoParseSpecial[i],
                        "\(c.name) tokenizer.json, text \(i) \(text.debugDescription), special tokens not parsed")
            }
        }
    }

    @Test("add_bos: llama.cpp's defaults (SentencePiece, Llama 3 on; GPT-2, DBRX off) unless the file says")
    func bosRule() throws {
        let expected = ["spm": true, "spm-no-prefix-no-bos": false, "gpt-2": false, "gpt-2+bos": true, "llama-bpe": true,
                        "llama3": true, "llama-bpe-bos-off": false, "dbrx": false, "tekken": true, "qwen2": false]
        for (name, adds) in expected {
            let t = try Tokenizer.load(url: LlamaCppFixtures.directory.appendingPathComponent("\(name).gguf"))
            #expect(t.addsBOS == adds, "\(name)")
            #expect(t.encode("x", addSpecialTokens: true).first == (adds ? t.bosTokenId : t.encode("x", addSpecialTokens: false).first),
                    "\(name)")
        }
    }

    @Test("decoding gives the text back (SentencePiece drops the space it put in front)")
    func decodeRoundTrip() throws {
        let f = try LlamaCppFixtures.load()
        for c in f.cases where ["spm", "gpt-2", "llama-bpe", "qwen2", "deepseek-llm", "tekken"].contains(c.name) {
            let t = try Tokenizer.load(url: c.file)
            // SentencePiece also puts a space after every user-defined token (as llama.cpp does), which
            // no decoder can tell from a space of the text.
            for text in f.texts where !(c.name == "spm" && text.contains("<tool_call>")) {
                let ids = t.encode(text, addSpecialTokens: false, parseSpecialTokens: false)
                #expect(t.decode(ids) == text, "\(c.name): \(text.debugDescription)")
            }
        }
    }

    @Test("a GGUF checkpoint without tokenizer.json tokenises with its own vocabulary, as llama-perplexity does; one beside it wins")
    func checkpointSource() throws {
        let root = try JSONParser.parse(Data(contentsOf: LlamaCppFixtures.directory.appendingPathComponent("expected.json")))
        let text = try #require(root["checkpoint"]?["text"]?.stringValue)
        let idValues = try #require(root["checkpoint"]?["ids"]?.arrayValue)
        let expected = idValues.compactMap { $0.intValue }
        let dir = try TemporaryDirectory()
        let model = dir.file("m.gguf")
        try FileManager.default.copyItem(at: Fixtures.url("gguf/tiny_llama.llamacpp.gguf"), to: model)
        let ck = try Checkpoint.open(model.path)
        guard case .ggufVocabulary = ck.tokenizerSource else { Issue.record("\(ck.tokenizerSource)"); return }
        let t = try ck.loadTokenizer()
        #expect(t.kindDescription.hasPrefix("GGUF SentencePiece"))
        #expect(t.addsBOS && t.bosTokenId == 1)
        #expect(perplexityTokens(text, tokenizer: t) == expected)

        try FileManager.default.copyItem(at: Fixtures.url("gguf/tiny_llama/tokenizer.json"), to: dir.file("tokenizer.json"))
        let beside = try Checkpoint.open(model.path)
        guard case let .tokenizerJSON(url) = beside.tokenizerSource else { Issue.record("\(beside.tokenizerSource)"); return }
        #expect(url.lastPathComponent == "tokenizer.json" && url.deletingLastPathComponent().path == dir.url.path)
        #expect(try beside.loadTokenizer().kindDescription.hasPrefix("BPE"))
    }

    @Test("unknown pre-tokenizers and tokenizer models are refused, naming them")
    func refusals() throws {
        let dir = try TemporaryDirectory()
        let source = try GGUFFile(path: LlamaCppFixtures.directory.appendingPathComponent("gpt-2.gguf").path)
        func variant(_ name: String, _ edit: (inout [(String, GGUFValue)]) -> Void) throws -> URL {
            var meta = source.keys.filter { $0 != "general.alignment" }.map { ($0, source[$0]!) }
            edit(&meta)
            let url = dir.file("\(name).gguf")
            try GGUFWriter.write(metadata: meta, tensors: [], to: url)
            return url
        }
        let unknownPre = try variant("pre") { m in m = m.map { $0.0 == "tokenizer.ggml.pre" ? ($0.0, .string("made-up-pre")) : $0 } }
        let pre = bamError { _ = try Tokenizer.load(url: unknownPre) }
        #expect(pre?.kind == .unsupported && pre?.file == unknownPre.path && pre?.location == .key("tokenizer.ggml.pre"))
        #expect(pre?.found == "made-up-pre" && pre?.expected?.contains("llama-bpe") == true && pre?.hint != nil)
        let unknownModel = try variant("model") { m in m = m.map { $0.0 == "tokenizer.ggml.model" ? ($0.0, .string("bert")) : $0 } }
        let model = bamError { _ = try Tokenizer.load(url: unknownModel) }
        #expect(model?.kind == .unsupported && model?.location == .key("tokenizer.ggml.model") && model?.found == "bert")
        let noMerges = try variant("merges") { m in m.removeAll { $0.0 == "tokenizer.ggml.merges" } }
        let merges = bamError { _ = try Tokenizer.load(url: noMerges) }
        #expect(merges?.kind == .format && merges?.location == .key("tokenizer.ggml.merges") && merges?.found == "no such key")
        let duplicate = try variant("dup") { m in
            m = m.map { kv in
                guard kv.0 == "tokenizer.ggml.tokens", case .array(let t, var a) = kv.1 else { return kv }
                a[300] = a[301]
                return (kv.0, .array(t, a))
            }
        }
        let dup = bamError { _ = try Tokenizer.load(url: duplicate) }
        #expect(dup?.location == .key("tokenizer.ggml.tokens[301]") && dup?.what == "every token text must be unique; this one repeats token 300")
        // The export refuses the same files with the same error.
        let export = bamError { _ = try GGUFTokenizer.hfTokenizer(from: GGUFFile(path: unknownPre.path)) }
        #expect(export?.location == pre?.location && export?.found == pre?.found && export?.expected == pre?.expected)
    }

    @Test("a missing tokenizer.ggml.pre is llama.cpp's default pre-tokenizer")
    func missingPreIsDefault() throws {
        let dir = try TemporaryDirectory()
        let source = try GGUFFile(path: LlamaCppFixtures.directory.appendingPathComponent("default.gguf").path)
        let meta = source.keys.filter { $0 != "tokenizer.ggml.pre" && $0 != "general.alignment" }.map { ($0, source[$0]!) }
        try GGUFWriter.write(metadata: meta, tensors: [], to: dir.file("nopre.gguf"))
        let f = try LlamaCppFixtures.load()
        let expected = try #require(f.cases.first { $0.name == "default" })
        let t = try Tokenizer.load(url: dir.file("nopre.gguf"))
        for (i, text) in f.texts.enumerated() { #expect(encode(t, text, parseSpecial: true) == expected.ids[i]) }
    }
}
