import Foundation

/// Writes the tokenizer of this project's own small models: a byte-level BPE with no merges, whose
/// vocabulary is the 256 bytes (ids 0...255 equal the byte values, spelled with GPT-2's
/// byte-to-unicode table) followed by the special tokens (ids 256...). Any UTF-8 text round-trips.
/// The first special token is BOS, added by a TemplateProcessing post-processor; the second is EOS;
/// the third is the padding token. HF `tokenizers` loads the file and produces the same ids
/// (tools/make_tokenizer_fixtures.py checks this).
public enum ByteLevelTokenizerBuilder {
    public static let defaultSpecialTokens = ["<s>", "</s>", "<pad>"]

    /// The tokenizer.json text.
    public static func tokenizerJSON(specialTokens: [String] = defaultSpecialTokens) -> String {
        let specials = specialTokens.enumerated().map { (content: $1, id: 256 + $0) }
        var out = "{\n"
        out += "  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n"
        out += "  \"added_tokens\": ["
        out += specials.map { t in
            "\n    {\"id\": \(t.id), \"content\": \(jsonQuoted(t.content)), \"single_word\": false, \"lstrip\": false, "
                + "\"rstrip\": false, \"normalized\": false, \"special\": true}"
        }.joined(separator: ",")
        out += specials.isEmpty ? "],\n" : "\n  ],\n"
        out += "  \"normalizer\": null,\n"
        out += "  \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": false},\n"
        if let bos = specials.first {
            let name = jsonQuoted(bos.content)
            out += "  \"post_processor\": {\"type\": \"TemplateProcessing\", "
            out += "\"single\": [{\"SpecialToken\": {\"id\": \(name), \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], "
            out += "\"pair\": [{\"SpecialToken\": {\"id\": \(name), \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}, "
            out += "{\"SpecialToken\": {\"id\": \(name), \"type_id\": 1}}, {\"Sequence\": {\"id\": \"B\", \"type_id\": 1}}], "
            out += "\"special_tokens\": {\(name): {\"id\": \(name), \"ids\": [\(bos.id)], \"tokens\": [\(name)]}}},\n"
        } else {
            out += "  \"post_processor\": null,\n"
        }
        out += "  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": false},\n"
        out += "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": null,\n"
        out += "    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n    \"fuse_unk\": false,\n"
        out += "    \"byte_fallback\": false,\n    \"ignore_merges\": false,\n    \"vocab\": {"
        for b in 0..<256 {
            var s = String.UnicodeScalarView()
            s.append(Unicode.Scalar(byteToUnicode[b])!)
            out += (b == 0 ? "\n      " : ",\n      ") + "\(jsonQuoted(String(s))): \(b)"
        }
        out += "\n    },\n    \"merges\": []\n  }\n}\n"
        return out
    }

    /// The matching tokenizer_config.json text.
    public static func tokenizerConfigJSON(specialTokens: [String] = defaultSpecialTokens) -> String {
        func token(_ i: Int) -> String { i < specialTokens.count ? jsonQuoted(specialTokens[i]) : "null" }
        return """
            {
              "add_bos_token": \(specialTokens.isEmpty ? "false" : "true"),
              "add_eos_token": false,
              "bos_token": \(token(0)),
              "eos_token": \(token(1)),
              "pad_token": \(token(2)),
              "unk_token": null,
              "clean_up_tokenization_spaces": false,
              "model_max_length": 1000000000,
              "tokenizer_class": "PreTrainedTokenizerFast"
            }

            """
    }

    /// Writes tokenizer.json and tokenizer_config.json into `directory` (created if needed).
    public static func write(to directory: URL, specialTokens: [String] = defaultSpecialTokens) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data(tokenizerJSON(specialTokens: specialTokens).utf8)
            .write(to: directory.appendingPathComponent("tokenizer.json"), options: .atomic)
        try Data(tokenizerConfigJSON(specialTokens: specialTokens).utf8)
            .write(to: directory.appendingPathComponent("tokenizer_config.json"), options: .atomic)
    }
}
