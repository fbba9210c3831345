import BamFormats
import BamModels
import BamTokenizers
import Foundation

/// JSONParser in both duplicate-key modes. Property: what it accepts, it writes back in a form it
/// reads again to the same text (serialise -> parse -> serialise is stable).
enum JSONTarget {
    static func run(_ data: UnsafeRawBufferPointer) {
        _ = try? JSONParser.parse(data, duplicateKeys: .reject)
        guard let value = try? JSONParser.parse(data, duplicateKeys: .keepLast) else { return }
        let text = value.serialized(indent: nil)
        let again: JSONValue
        do { again = try JSONParser.parse(text) } catch {
            fatalError("JSON round trip: the serialised form of an accepted document does not parse: \(error)")
        }
        guard again.serialized(indent: nil) == text else {
            fatalError("JSON round trip: serialise -> parse -> serialise changed the text")
        }
    }
}

/// ModelConfig for every architecture: the input is a config.json; whatever it accepts must pass
/// the limits and support `inspect`'s statistics without trapping or allocating without bound.
enum ConfigTarget {
    static func run(_ data: UnsafeRawBufferPointer) {
        guard case let .object(obj)? = try? JSONParser.parse(data) else { return }
        guard let config = try? ModelConfig(json: obj, file: "fuzz/config.json") else { return }
        // `inspect`: parameter counts, FLOPs and the KV cache size at a context.
        let stats = ModelStatistics(config: config, context: 512)
        _ = stats.kvCacheBytesPerToken.multipliedReportingOverflow(by: 512)
        _ = config.architectureName
        try? config.checkSequenceLength(512)
        _ = ModelMemory.requiredBytes(config: config, bytesPerParameter: 4)
    }
}

/// tokenizer.json: loading every component, then encoding text with and without special tokens
/// and decoding the ids back. The texts include one built from the input, so the fuzzer also
/// drives the encoder's input side, and a 4 KB one, so super-linear paths show up as timeouts.
enum TokenizerTarget {
    static let fixedTexts = [
        "", "Hello, world! 123", " leading  and trailing spaces ", "naïve café — ünïcödé 日本語 🤖\n\ttabs",
        "<s>special</s><|endoftext|>[CLS]", String(repeating: "abc def ", count: 512),
    ]

    static func run(_ data: UnsafeRawBufferPointer) {
        guard let tok = try? Tokenizer(jsonData: Data(data)) else { return }
        exercise(tok, inputText: String(decoding: data.prefix(512), as: UTF8.self))
    }

    static func exercise(_ tok: Tokenizer, inputText: String) {
        for text in fixedTexts + [inputText] {
            let ids = tok.encode(text)
            _ = tok.encode(text, addSpecialTokens: false, parseSpecialTokens: false)
            _ = tok.decode(ids)
            _ = tok.decode(ids, skipSpecialTokens: true)
        }
        _ = tok.decode([-1, 0, tok.vocabSize, Int.max, Int.min])
        _ = tok.idToToken(Int.max)
        _ = tok.tokenToId("")
    }
}

/// The vocabulary of a GGUF rebuilt as tokenizer.json (what `Checkpoint.open` does for a .gguf),
/// then loaded and used. The GGUF tokenizer being added on wip/gguftok (a BamTokenizers reader of
/// the GGUF vocabulary itself) gets its call here when it lands.
enum GGUFTokenizerTarget {
    static func run(_ data: UnsafeRawBufferPointer) {
        let url = FuzzScratch.write(data, name: "tokenizer.gguf")
        guard let file = try? GGUFFile(path: url.path),
              let (tokJSON, configJSON) = try? GGUFTokenizer.hfTokenizer(from: file) else { return }
        let tokData = Data(JSONValue.object(tokJSON).serialized(indent: nil).utf8)
        let cfgData = Data(JSONValue.object(configJSON).serialized(indent: nil).utf8)
        guard let tok = try? Tokenizer(jsonData: tokData, configData: cfgData) else { return }
        TokenizerTarget.exercise(tok, inputText: String(decoding: data.suffix(256), as: UTF8.self))
    }
}
