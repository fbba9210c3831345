import Foundation

/// An error from loading or running a tokenizer. The description reads
/// `FILE: JSON.PATH: what is wrong`, e.g.
/// `tokenizer.json: pre_tokenizer.pretokenizers[1]: type "BertPreTokenizer" is not supported`.
public struct TokenizerError: Error, CustomStringConvertible, LocalizedError, Sendable {
    /// The file the problem is in (`tokenizer.json`, `tokenizer_config.json`), when there is one.
    public let file: String?
    /// Where in the JSON document, in dotted form (`model.merges[12]`), when known.
    public let jsonPath: String?
    /// What was expected and what was found.
    public let message: String

    public init(file: String? = nil, jsonPath: String? = nil, _ message: String) {
        self.file = file
        self.jsonPath = jsonPath
        self.message = message
    }

    public var description: String {
        var parts: [String] = []
        if let file { parts.append(file) }
        if let jsonPath, !jsonPath.isEmpty { parts.append(jsonPath) }
        parts.append(message)
        return parts.joined(separator: ": ")
    }

    public var errorDescription: String? { description }
}
