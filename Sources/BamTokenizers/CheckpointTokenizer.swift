import BamFormats
import Foundation

/// Which tokenizer a checkpoint tokenises with.
public enum CheckpointTokenizerSource: Sendable {
    /// A tokenizer.json: the one in an HF directory, or one beside a .gguf file (which then wins
    /// over the file's own vocabulary).
    case tokenizerJSON(URL)
    /// The vocabulary inside a .gguf file, run as llama.cpp runs it.
    case ggufVocabulary(GGUFFile)
    /// Neither.
    case none
}

extension Checkpoint {
    /// Where this checkpoint's tokenizer comes from: a .gguf without a tokenizer.json beside it
    /// tokenises with its own vocabulary (so that its ids are llama.cpp's), anything else with its
    /// tokenizer.json.
    public var tokenizerSource: CheckpointTokenizerSource {
        if container == .gguf {
            let beside = directory.appendingPathComponent("tokenizer.json")
            if FileManager.default.fileExists(atPath: beside.path) { return .tokenizerJSON(beside) }
            if let g = store as? GGUFStore, GGUFVocabulary.hasVocabulary(g.file) { return .ggufVocabulary(g.file) }
            return .none
        }
        return tokenizerURL.map { .tokenizerJSON($0) } ?? .none
    }

    /// The checkpoint's tokenizer, with an error that says what to do when there is none.
    public func loadTokenizer() throws -> Tokenizer {
        switch tokenizerSource {
        case let .tokenizerJSON(url): return try Tokenizer.load(url: url.deletingLastPathComponent())
        case let .ggufVocabulary(file): return try Tokenizer(gguf: file)
        case .none:
            let what = container == .gguf ? "carries no vocabulary (no tokenizer.ggml.* keys) and has no tokenizer.json beside it"
                : "has no tokenizer.json"
            throw BamError.usage("the model \(what)", file: path.path,
                                 hint: "pass token ids instead of text, or add the tokenizer files of the model it came from")
        }
    }

    /// Bytes that decide how this checkpoint tokenises (nil without a tokenizer): tokenizer.json and
    /// tokenizer_config.json, or a GGUF's tokenizer.* metadata. Equal bytes, equal tokenisation.
    public func tokenizerIdentity() -> Data? {
        switch tokenizerSource {
        case let .tokenizerJSON(url):
            guard var data = try? Data(contentsOf: url) else { return nil }
            let config = url.deletingLastPathComponent().appendingPathComponent("tokenizer_config.json")
            if let c = try? Data(contentsOf: config) { data.append(0); data.append(c) }
            return data
        case let .ggufVocabulary(file):
            var data = Data("gguf-vocabulary".utf8)
            for key in file.keys.sorted() where key.hasPrefix("tokenizer.") && key != "tokenizer.chat_template" {
                data.append(0)
                data.append(contentsOf: key.utf8)
                data.append(0)
                appendIdentity(file[key]!, to: &data)
            }
            return data
        case .none:
            return nil
        }
    }
}

/// A GGUF value's type and content, unambiguously.
private func appendIdentity(_ v: GGUFValue, to data: inout Data) {
    data.append(UInt8(v.type.rawValue))
    switch v {
    case let .array(t, items):
        data.append(UInt8(t.rawValue))
        withUnsafeBytes(of: UInt64(items.count).littleEndian) { data.append(contentsOf: $0) }
        for item in items { appendIdentity(item, to: &data) }
    case let .string(s):
        withUnsafeBytes(of: UInt64(s.utf8.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: s.utf8)
    default:
        data.append(contentsOf: v.summary.utf8)
        data.append(0)
    }
}
