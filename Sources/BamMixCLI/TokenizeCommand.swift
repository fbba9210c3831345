import ArgumentParser
import BamTokenizers
import Foundation

/// `bam-mix tokenize`: token ids from a tokenizer.json or a GGUF vocabulary, or text from ids with --decode.
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Token ids of a text from a tokenizer.json or a .gguf file (with --decode: the text of token ids).",
        discussion: """
            The tokenizer PATH is a tokenizer.json, a model directory holding one, or a .gguf file. With \
            tokenizer.json (a tokenizer_config.json beside it names BOS/EOS) the ids are those of Hugging Face \
            `tokenizers` (BPE models; see docs/tokenizers.md for the supported components) and special tokens \
            (BOS...) are added as the post-processor says. With a .gguf file the ids are llama.cpp's (its \
            `llama` SentencePiece and `gpt2` BPE tokenizers with their pre-tokenizers) and BOS/EOS are added \
            as the file's add_bos/add_eos say. --no-special adds none. Special tokens written in the text are \
            recognised unless --no-parse-special (llama.cpp's parse_special = false, what perplexity uses). \
            With --decode the input is token ids separated by commas or whitespace, and --no-special leaves \
            special tokens out of the text.
            """)

    @Option(help: ArgumentHelp("A tokenizer.json file, a model directory containing one, or a .gguf file.", valueName: "path"))
    var tokenizer: String

    @Option(help: "The text to tokenize (with --decode: the ids).")
    var text: String?

    @Option(name: .customLong("text-file"), help: ArgumentHelp("Read the text (with --decode: the ids) from this file.",
                                                               valueName: "file"))
    var textFile: String?

    @Flag(name: .customLong("no-special"),
          help: "Do not add special tokens (with --decode: leave special tokens out of the text).")
    var noSpecial = false

    @Flag(name: .customLong("no-parse-special"),
          help: "Tokenise special-token strings written in the text (such as <s>) as plain text.")
    var noParseSpecial = false

    @Flag(help: "Print a JSON array of ids (with --decode: a JSON string).")
    var json = false

    @Flag(help: "Decode token ids into text instead of encoding.")
    var decode = false

    func validate() throws {
        if (text == nil) == (textFile == nil) {
            throw ValidationError("give exactly one of --text S or --text-file F")
        }
    }

    func run() throws {
        let tok = try Tokenizer.load(url: URL(fileURLWithPath: tokenizer))
        let input: String
        if let text {
            input = text
        } else {
            let path = textFile!
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ValidationError("--text-file \(path): cannot read the file")
            }
            guard let s = String(data: data, encoding: .utf8) else {
                throw ValidationError("--text-file \(path): the file is not valid UTF-8")
            }
            input = s
        }

        if decode {
            let ids = try Self.parseTokenIds(input)
            let unknown = ids.filter { tok.idToToken($0) == nil }
            if !unknown.isEmpty {
                let shown = unknown.prefix(10).map(String.init).joined(separator: ", ")
                FileHandle.standardError.write(Data(
                    "warning: \(unknown.count) id(s) not in the vocabulary (size \(tok.vocabSize)) were skipped: \(shown)\n".utf8))
            }
            let decoded = tok.decode(ids, skipSpecialTokens: noSpecial)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.withoutEscapingSlashes]
                FileHandle.standardOutput.write(try encoder.encode(decoded) + Data("\n".utf8))
            } else {
                print(decoded)
            }
        } else {
            let ids = tok.encode(input, addSpecialTokens: !noSpecial, parseSpecialTokens: !noParseSpecial).map(String.init)
            print(json ? "[" + ids.joined(separator: ", ") + "]" : ids.joined(separator: " "))
        }
    }

    /// "1,2,3", "1 2 3" or one id per line.
    static func parseTokenIds(_ s: String) throws -> [Int] {
        try s.split(whereSeparator: { $0 == "," || $0.isWhitespace }).map { part in
            guard let id = Int(part), id >= 0 else {
                throw ValidationError("--decode expects token ids separated by commas or whitespace; `\(part)` is not one")
            }
            return id
        }
    }
}
