import BamFormats
import BamTokenizers
import Foundation
import Testing

// Fixtures come from tools/make_tokenizer_fixtures.py (HF tokenizers 0.23.3): one directory per
// tokenizer family with tokenizer.json, tokenizer_config.json and cases.json (HF's ids and
// decoded text for each test string).

private let fixturesDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/tokenizers")

private struct Fixture: Decodable {
    struct Case: Decodable {
        let text: String
        let ids: [Int]
        let ids_no_special: [Int]
        let decoded: String
        let decoded_skip_special: String
        let lossless: Bool
    }

    struct DecodeCase: Decodable {
        let ids: [Int]
        let decoded: String
        let decoded_skip_special: String
    }

    struct Lookup: Decodable {
        let token: String
        let id: Int
    }

    struct AddedLookup: Decodable {
        let id: Int
        let content: String
        let token_to_id: Int?
        let id_to_token: String?
    }

    let name: String
    let vocab_size: Int
    let bos_token_id: Int?
    let eos_token_id: Int?
    let adds_bos: Bool
    let cases: [Case]
    let decode_cases: [DecodeCase]
    let lookups: [Lookup]
    let added_tokens: [AddedLookup]
}

private func loadFixture(_ name: String) throws -> (Tokenizer, Fixture) {
    let dir = fixturesDir.appendingPathComponent(name)
    let tokenizer = try Tokenizer.load(url: dir)
    let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: dir.appendingPathComponent("cases.json")))
    return (tokenizer, fixture)
}

/// "" when equal, else where the two id sequences first differ.
private func difference(_ got: [Int], _ want: [Int]) -> String {
    if got == want { return "" }
    let i = (0..<min(got.count, want.count)).first { got[$0] != want[$0] } ?? min(got.count, want.count)
    let lo = max(0, i - 3)
    return "first difference at position \(i) (lengths \(got.count) vs \(want.count)): "
        + "got \(Array(got[lo..<min(got.count, i + 4)])), HF has \(Array(want[lo..<min(want.count, i + 4)])) from position \(lo)"
}

/// Swift's String == compares by canonical equivalence; tokenizers must match scalar for scalar.
private func sameScalars(_ a: String, _ b: String) -> Bool { a.unicodeScalars.elementsEqual(b.unicodeScalars) }

private func tokenizer(json: String) throws -> Tokenizer { try Tokenizer(jsonData: Data(json.utf8)) }

/// A minimal valid tokenizer.json around the given components.
private func document(model: String = #"{"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}"#,
                      normalizer: String = "null", preTokenizer: String = "null", postProcessor: String = "null",
                      decoder: String = "null", addedTokens: String = "[]") -> String {
    """
    {"version": "1.0", "added_tokens": \(addedTokens), "normalizer": \(normalizer), "pre_tokenizer": \(preTokenizer),
     "post_processor": \(postProcessor), "decoder": \(decoder), "model": \(model)}
    """
}

/// Deterministic pseudo-random numbers (SplitMix64).
private struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

@Suite("Tokenizer")
struct TokenizerTests {
    static let families = ["gpt2", "llama3", "llama2", "llama2-metaspace", "added", "misc-a", "misc-b", "misc-c", "bytes"]

    @Test("encode gives HF's ids, with and without special tokens", arguments: families)
    func idsMatchHF(name: String) throws {
        let (tok, fixture) = try loadFixture(name)
        for c in fixture.cases {
            let got = tok.encode(c.text)
            #expect(got == c.ids, "\(name) \(c.text.debugDescription): \(difference(got, c.ids))")
            let plain = tok.encode(c.text, addSpecialTokens: false)
            #expect(plain == c.ids_no_special,
                    "\(name) \(c.text.debugDescription) without specials: \(difference(plain, c.ids_no_special))")
        }
    }

    @Test("decode gives HF's text", arguments: families)
    func decodeMatchesHF(name: String) throws {
        let (tok, fixture) = try loadFixture(name)
        for c in fixture.cases {
            let d = tok.decode(c.ids)
            #expect(sameScalars(d, c.decoded), "\(name) decode of \(c.text.debugDescription): \(d.debugDescription)")
            let s = tok.decode(c.ids, skipSpecialTokens: true)
            #expect(sameScalars(s, c.decoded_skip_special),
                    "\(name) decode(skip) of \(c.text.debugDescription): \(s.debugDescription) vs \(c.decoded_skip_special.debugDescription)")
        }
        for c in fixture.decode_cases {
            let d = tok.decode(c.ids)
            #expect(sameScalars(d, c.decoded), "\(name) decode \(c.ids): \(d.debugDescription) vs \(c.decoded.debugDescription)")
            let s = tok.decode(c.ids, skipSpecialTokens: true)
            #expect(sameScalars(s, c.decoded_skip_special), "\(name) decode(skip) \(c.ids): \(s.debugDescription)")
        }
    }

    @Test("decode(encode(x)) == x wherever HF is lossless", arguments: families)
    func roundTrip(name: String) throws {
        let (tok, fixture) = try loadFixture(name)
        var lossless = 0
        for c in fixture.cases where c.lossless {
            lossless += 1
            let back = tok.decode(tok.encode(c.text, addSpecialTokens: false))
            #expect(sameScalars(back, c.text), "\(name): \(c.text.debugDescription) came back as \(back.debugDescription)")
        }
        if ["gpt2", "llama3", "bytes"].contains(name) {
            #expect(lossless == fixture.cases.count, "byte-level tokenizers are lossless")
        }
    }

    @Test("vocabulary size, BOS/EOS and token lookups", arguments: families)
    func metadata(name: String) throws {
        let (tok, fixture) = try loadFixture(name)
        #expect(tok.vocabSize == fixture.vocab_size)
        #expect(tok.bosTokenId == fixture.bos_token_id)
        #expect(tok.eosTokenId == fixture.eos_token_id)
        #expect(tok.addsBOS == fixture.adds_bos)
        for l in fixture.lookups {
            #expect(tok.tokenToId(l.token) == l.id, "\(name): tokenToId(\(l.token.debugDescription))")
            let back = tok.idToToken(l.id)
            #expect(back.map { sameScalars($0, l.token) } == true, "\(name): idToToken(\(l.id)) = \(back.debugDescription)")
        }
        for a in fixture.added_tokens {
            #expect(tok.tokenToId(a.content) == a.token_to_id, "\(name): tokenToId(\(a.content.debugDescription))")
            let back = tok.idToToken(a.id)
            #expect(back.map { t in a.id_to_token.map { sameScalars(t, $0) } ?? false } ?? (a.id_to_token == nil),
                    "\(name): idToToken(\(a.id)) = \(back.debugDescription), HF \(a.id_to_token.debugDescription)")
        }
        #expect(tok.idToToken(-1) == nil)
        #expect(tok.idToToken(1 << 30) == nil)
    }

    @Test("kind descriptions")
    func kinds() throws {
        #expect(try loadFixture("gpt2").0.kindDescription == "BPE (byte-level)")
        #expect(try loadFixture("llama3").0.kindDescription == "BPE (byte-level, ignore_merges)")
        #expect(try loadFixture("llama2").0.kindDescription == "BPE (SentencePiece-style, byte fallback)")
        #expect(try loadFixture("llama2-metaspace").0.kindDescription == "BPE (SentencePiece-style, byte fallback)")
        #expect(try loadFixture("misc-c").0.kindDescription == "BPE")
    }

    @Test("loads a tokenizer.json file directly, with its sibling tokenizer_config.json")
    func loadsFile() throws {
        let file = fixturesDir.appendingPathComponent("llama2/tokenizer.json")
        let tok = try Tokenizer.load(url: file)
        #expect(tok.bosTokenId == 1 && tok.eosTokenId == 2 && tok.addsBOS)
        let nope = fixturesDir.appendingPathComponent("nope")
        let missing = bamError { _ = try Tokenizer.load(url: nope) }
        #expect(missing?.kind == .io && missing?.file == nope.path && missing?.hint != nil)
        let emptyDir = bamError { _ = try Tokenizer.load(url: fixturesDir) }
        #expect(emptyDir?.kind == .format && emptyDir?.file == fixturesDir.path && emptyDir?.what == "the directory has no tokenizer.json")
    }

    // MARK: Dedicated regex matchers

    @Test("the GPT-2 / Llama 3 / Qwen 2 matchers (and llama.cpp's rewrites) agree with NSRegularExpression")
    func fastMatchersAgreeWithFoundation() throws {
        let gpt2 = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
        let llama3 = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
        let qwen2 = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
        let names = ["gpt2", "llama3", "qwen2", "llama3 (llama.cpp)", "qwen2 (llama.cpp)"]
        let patterns = try [gpt2, llama3, qwen2, GGUFPreTokenizer.llama3Regex, GGUFPreTokenizer.qwen2Regex]
            .map { try PreTokenizerPattern($0) }
        for p in patterns { #expect(p.hasDedicatedMatcher) }
        #expect(try !PreTokenizerPattern(#"\p{L}+"#).hasDedicatedMatcher)

        let alphabet = ["a", "b", "Z", "é", "ß", "s", "S", "t", "T", "l", "L", "r", "R", "e", "E", "v", "m", "M", "d", "D",
                        "ſ", "'", "'", " ", " ", " ", "  ", "\t", "\n", "\r", "\r\n", "\n\n", "0", "1", "23", "456", "٣",
                        "½", "Ⅷ", ".", ",", "!", "?", "-", "_", "(", ")", "\"", "中", "文", "日本", "한", "🚀", "👍🏽", "🇫🇷",
                        "\u{200D}", "\u{0301}", "\u{00A0}", "\u{3000}", "\u{2028}", "\u{000B}", "\u{0085}", "\u{200B}",
                        "\u{001C}", "\u{000C}", "hello", " world", "'ll", "'S", "'Re", "'VE", " 's", "x'", "#"]
        var rng = SplitMix(state: 42)
        var texts = ["", " ", "  ", "a", "'", "'s", "'ſ", " \n", "\n ", " \n \n  x", "a  b", "a \t\tb", "x\r\n\r\n y",
                     "12345", "1 2", "\u{3000}\u{3000}x", "Hello world!  It's   fine\n\n\tok"]
        for _ in 0..<3000 {
            texts.append((0..<rng.below(24)).map { _ in alphabet[rng.below(alphabet.count)] }.joined())
        }
        var checked = 0
        for text in texts {
            for (name, p) in zip(names, patterns) {
                let fast = p.matches(in: text)
                let reference = p.matches(in: text, useDedicatedMatcher: false)
                #expect(fast == reference, "\(name) on \(text.debugDescription): \(fast) vs NSRegularExpression \(reference)")
                checked += 1
            }
        }
        #expect(checked == texts.count * names.count)
    }

    // MARK: Errors

    @Test("malformed tokenizer.json: errors name the file and JSON path, with what was expected and found")
    func malformed() {
        func check(_ json: String, at path: String, what: String = "", expected: String? = nil, found: String? = nil,
                   sourceLocation: SourceLocation = #_sourceLocation) {
            let e = bamError { _ = try tokenizer(json: json) }
            #expect(e?.kind == .format, sourceLocation: sourceLocation)
            #expect(e?.file == "tokenizer.json" && e?.location == .key(path), "\(String(describing: e))", sourceLocation: sourceLocation)
            #expect(e?.what == BamError.Text(what), sourceLocation: sourceLocation)
            #expect(e?.expected == expected && e?.found == found, "\(String(describing: e))", sourceLocation: sourceLocation)
        }
        let syntax = bamError { _ = try tokenizer(json: #"{"model": "#) }
        #expect(syntax?.kind == .format && syntax?.file == "tokenizer.json" && syntax?.location == .line(1, column: 11))
        check("[1, 2]", at: "", expected: "a JSON object", found: "an array")
        #expect(bamError { _ = try tokenizer(json: "[1, 2]") }?.message == "tokenizer.json: top level: expected a JSON object, found an array")
        check(#"{"added_tokens": []}"#, at: "", what: #"missing "model" (every tokenizer.json has one, e.g. {"type": "BPE", ...})"#)
        check(document(model: #"{"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b", "a c"]}"#), at: "model.merges[0]",
              what: "the merge needs a token that is not in model.vocab", expected: "a token of model.vocab", found: #""ab""#)
        check(document(model: #"{"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b", ["a", "c"]]}"#), at: "model.merges[1]",
              what: "the merge needs a token that is not in model.vocab", expected: "a token of model.vocab", found: #""c""#)
        check(document(model: #"{"type": "BPE", "vocab": {"a": 0}, "merges": ["a  a"]}"#), at: "model.merges[0]",
              expected: #""LEFT RIGHT" (two tokens separated by one space)"#, found: #""a  a""#)
        check(document(model: #"{"type": "BPE", "vocab": {"a": "zero"}, "merges": []}"#), at: #"model.vocab["a"]"#,
              expected: "a token id (an integer from 0 to \((1 << 22) - 1))", found: "a string")
        check(document(model: #"{"type": "BPE", "vocab": {"a": 0}}"#), at: "model", what: #"missing "merges""#)
        check(document(model: #"{"type": "BPE", "vocab": {"a": 0}, "merges": [], "unk_token": "<unk>"}"#), at: "model.unk_token",
              what: "the unk token is not in model.vocab", expected: "a token of model.vocab", found: #""<unk>""#)
        let regex = bamError {
            _ = try tokenizer(json: document(preTokenizer: #"{"type": "Split", "pattern": {"Regex": "(ab"}, "behavior": "Isolated", "invert": false}"#))
        }
        #expect(regex?.location == .key("pre_tokenizer.pattern.Regex") && regex?.kind == .format)
        check(document(preTokenizer: #"{"type": "Split", "pattern": {"Regex": "a"}, "behavior": "Sideways"}"#), at: "pre_tokenizer.behavior",
              what: "unknown split behavior", expected: "Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous", found: #""Sideways""#)
        check(document(addedTokens: #"[{"content": "<s>"}]"#), at: "added_tokens[0]", what: #"missing "id""#)
        check(document(postProcessor: #"{"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}], "special_tokens": {}}"#),
              at: "post_processor.single[0].SpecialToken", what: "the special token is not listed in special_tokens", found: #""<s>""#)
        check(document(model: #"{"type": "BPE", "dropout": 0.1, "vocab": {"a": 0}, "merges": []}"#), at: "model.dropout",
              what: "BPE dropout is not supported (it makes encoding random)", expected: "null", found: "0.1")
        check(document(normalizer: #"{"prepend": "x"}"#), at: "normalizer", what: #"missing "type""#)
    }

    @Test("unsupported components are refused by type and JSON path")
    func unsupported() throws {
        func check(_ json: String, at path: String, type: String, supported: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
            let e = bamError { _ = try tokenizer(json: json) }
            #expect(e?.kind == .unsupported && e?.file == "tokenizer.json", sourceLocation: sourceLocation)
            #expect(e?.location == .key(path) && e?.found == "\"\(type)\"", "\(String(describing: e))", sourceLocation: sourceLocation)
            if let supported { #expect(e?.expected == supported, sourceLocation: sourceLocation) }
        }
        check(document(preTokenizer: #"{"type": "Sequence", "pretokenizers": [{"type": "ByteLevel"}, {"type": "BertPreTokenizer"}]}"#),
              at: "pre_tokenizer.pretokenizers[1]", type: "BertPreTokenizer")
        check(document(model: #"{"type": "WordPiece", "vocab": {}}"#), at: "model", type: "WordPiece", supported: "BPE")
        check(document(model: #"{"type": "Unigram", "vocab": []}"#), at: "model", type: "Unigram", supported: "BPE")
        check(document(normalizer: #"{"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Precompiled", "precompiled_charsmap": ""}]}"#),
              at: "normalizer.normalizers[1]", type: "Precompiled")
        check(document(decoder: #"{"type": "Sequence", "decoders": [{"type": "CTC"}]}"#), at: "decoder.decoders[0]", type: "CTC")
        check(document(postProcessor: #"{"type": "Sequence", "processors": [{"type": "ByteLevel"}, {"type": "Fancy"}]}"#),
              at: "post_processor.processors[1]", type: "Fancy")
    }

    // MARK: The project's own tokenizer

    @Test("ByteLevelTokenizerBuilder writes the tokenizer the fixture script checked against HF")
    func builderMatchesFixture() throws {
        // Compared as data: the same keys and values, whatever the order or spacing.
        func canonical(_ object: Any) throws -> Data { try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) }
        let expected = try JSONSerialization.jsonObject(
            with: Data(contentsOf: fixturesDir.appendingPathComponent("bytes/expected_builder_output.json"))) as! [String: Any]
        let written = try JSONSerialization.jsonObject(with: Data(ByteLevelTokenizerBuilder.tokenizerJSON().utf8))
        let config = try JSONSerialization.jsonObject(with: Data(ByteLevelTokenizerBuilder.tokenizerConfigJSON().utf8))
        #expect(try canonical(written) == canonical(expected["tokenizer"]!))
        #expect(try canonical(config) == canonical(expected["config"]!))

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bam-tok-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try ByteLevelTokenizerBuilder.write(to: dir)
        let tok = try Tokenizer.load(url: dir)
        #expect(tok.vocabSize == 259 && tok.bosTokenId == 256 && tok.eosTokenId == 257 && tok.addsBOS)
        #expect(tok.kindDescription == "BPE (byte-level)")

        var rng = SplitMix(state: 7)
        let pieces = ["a", " ", "é", "中", "🚀", "👩‍👩‍👧‍👦", "\n", "\r\n", "\u{0}", "\u{7F}", "\u{FFFD}", "\u{10FFFF}", "ſ", "<", "s>"]
        for _ in 0..<300 {
            let text = (0..<rng.below(30)).map { _ in pieces[rng.below(pieces.count)] }.joined()
            let ids = tok.encode(text)
            #expect(ids.first == 256)
            // "<s>" in the text is the BOS token, as in HF; elsewhere the ids are the UTF-8 bytes.
            guard !text.contains("<s>") else { continue }
            #expect(Array(ids.dropFirst()) == text.utf8.map { Int($0) })
            #expect(sameScalars(tok.decode(ids, skipSpecialTokens: true), text))
            #expect(sameScalars(tok.decode(Array(ids.dropFirst())), text))
        }
        let noSpecials = try Tokenizer(jsonData: Data(ByteLevelTokenizerBuilder.tokenizerJSON(specialTokens: []).utf8))
        #expect(noSpecials.encode("hi") == [104, 105] && !noSpecials.addsBOS && noSpecials.bosTokenId == nil)
    }

    @Test("one tokenizer encodes from many threads at once")
    func concurrentEncoding() throws {
        let (tok, fixture) = try loadFixture("gpt2")
        final class Mismatches: @unchecked Sendable {
            let lock = NSLock()
            var count = 0
            func add() { lock.lock(); count += 1; lock.unlock() }
        }
        let mismatches = Mismatches()
        let cases = fixture.cases.map { ($0.text, $0.ids) }
        DispatchQueue.concurrentPerform(iterations: 64) { i in
            let (text, ids) = cases[i % cases.count]
            if tok.encode(text) != ids { mismatches.add() }
        }
        #expect(mismatches.count == 0)
    }

    @Test("encodes a long text quickly and decodes it back")
    func longText() throws {
        let (tok, fixture) = try loadFixture("llama3")
        let paragraph = fixture.cases.map(\.text).filter { !$0.contains("<|") }.joined(separator: "\n")
        let text = String(repeating: paragraph + "\n", count: 40)
        let start = Date()
        let ids = tok.encode(text, addSpecialTokens: false)
        #expect(Date().timeIntervalSince(start) < 5)
        #expect(sameScalars(tok.decode(ids), text))
    }
}
