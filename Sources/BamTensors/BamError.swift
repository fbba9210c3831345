/// The one error type bam-mix throws. An error is a record, not a sentence: what kind of failure it
/// is, the file it is about, where in that file (a tensor, a JSON or GGUF key, a byte offset, a
/// line), what was expected, what was found and what to do next. `description` (= `message`)
/// renders those fields as one sentence, e.g.
///
///     config.json: key `num_key_value_heads`: expected a divisor of num_attention_heads = 32, found 5
///
/// Tests assert on the fields; people read the sentence. Library errors never name a command-line
/// flag: a rule about an option names the option of the library's API (`MixOptions.numExperts`,
/// an `Option` inside `what` or `hint`), and the CLI renders the same error with its flag
/// (`--num-experts`) through `rendered(optionWording:)`.
public struct BamError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The failure's category. The CLI exits 1 for every kind (docs/cli.md); the kind is for callers
    /// that react differently to, say, a corrupt file and an unsupported one.
    public enum Kind: String, Sendable {
        case format       // a file is malformed or truncated (including tokenizer.json)
        case config       // config.json holds something missing or unsupported
        case unsupported  // a valid input bam-mix does not handle
        case mismatch     // inputs that must agree do not
        case usage        // the options ask for something inconsistent
        case numeric      // NaN / Inf where finite values were required
        case io           // the operating system refused
    }

    /// Where in `file` the problem is.
    public enum Location: Equatable, Sendable, CustomStringConvertible {
        /// A key of a JSON document or of GGUF metadata, dotted, with `[i]` for array items:
        /// `rope_scaling.factor`, `pre_tokenizer.pretokenizers[1]`, `tokenizer.ggml.pre`. The empty
        /// path is the document's top level.
        case key(String)
        /// A tensor, by its name in the file.
        case tensor(String)
        /// A byte offset from the start of the file (or of the archive entry named in `file`).
        case byte(Int)
        /// A line (1-based) and, when known, a column (1-based) of a text file.
        case line(Int, column: Int?)
        /// A member of an archive (a ZIP entry of a PyTorch checkpoint).
        case entry(String)
        /// An expert of a mixture, by index (0-based, in the order the experts were given).
        case expert(Int)
        /// An optimizer step of a training run (1-based).
        case step(Int)

        public var description: String {
            switch self {
            case .key(let k): k.isEmpty ? "top level" : "key `\(k)`"
            case .tensor(let t): "tensor `\(t)`"
            case .byte(let b): "byte \(b)"
            case .line(let l, let c): c.map { "line \(l), column \($0)" } ?? "line \(l)"
            case .entry(let e): "entry `\(e)`"
            case .expert(let e): "expert \(e)"
            case .step(let s): "step \(s)"
            }
        }
    }

    /// An option of a library API, e.g. `MixOptions.numExperts`. Errors about options carry these
    /// instead of flag names; the CLI maps each to its flag. Modules declare theirs beside the
    /// options type (`MixOptions.Field.numExperts`), built from a key path so that a renamed
    /// property breaks the build rather than the message.
    public struct Option: Hashable, Sendable, CustomStringConvertible {
        /// The API type that holds the option: `MixOptions`.
        public let owner: String
        /// The property's name: `numExperts`.
        public let name: String

        public init(owner: String, name: String) {
            self.owner = owner
            self.name = name
        }

        /// `Option(\MixOptions.numExperts, "numExperts")`: the key path only proves the property
        /// exists (Swift cannot print a key path's name portably).
        public init<Root>(_ keyPath: PartialKeyPath<Root>, _ name: String) {
            self.init(owner: String(describing: Root.self), name: name)
        }

        /// `MixOptions.numExperts`
        public var description: String { "\(owner).\(name)" }

        /// How a library caller sees an option: "`MixOptions.numExperts`", or with a value
        /// "`MixOptions.method` = upcycle".
        public static func apiWording(_ option: Option, value: String?) -> String {
            value.map { "`\(option)` = \($0)" } ?? "`\(option)`"
        }
    }

    /// Text that may mention options. Written as a string literal with interpolations:
    /// `"\(MixOptions.Field.numExperts) must be at least 2"`, or `\(option, value)` for an option
    /// set to a value. Plain values interpolate as with `String`.
    public struct Text: Equatable, Sendable, CustomStringConvertible, ExpressibleByStringInterpolation {
        public enum Piece: Equatable, Sendable {
            case text(String)
            case option(Option, value: String?)
        }

        public var pieces: [Piece]

        public init(_ string: String) { pieces = string.isEmpty ? [] : [.text(string)] }
        public init(stringLiteral value: String) { self.init(value) }
        public init(stringInterpolation: Interpolation) { pieces = stringInterpolation.pieces }

        public struct Interpolation: StringInterpolationProtocol {
            var pieces: [Piece] = []
            public init(literalCapacity: Int, interpolationCount: Int) {}
            public mutating func appendLiteral(_ literal: String) { appendText(literal) }
            public mutating func appendInterpolation<T>(_ value: T) { appendText(String(describing: value)) }
            public mutating func appendInterpolation(_ option: Option) { pieces.append(.option(option, value: nil)) }
            public mutating func appendInterpolation(_ option: Option, _ value: String) { pieces.append(.option(option, value: value)) }
            mutating func appendText(_ s: String) {
                guard !s.isEmpty else { return }
                if case .text(let t)? = pieces.last { pieces[pieces.count - 1] = .text(t + s) } else { pieces.append(.text(s)) }
            }
        }

        public var isEmpty: Bool { pieces.isEmpty }

        /// The options mentioned, in order.
        public var options: [Option] {
            pieces.compactMap { if case .option(let o, _) = $0 { o } else { nil } }
        }

        public func rendered(optionWording: (Option, String?) -> String) -> String {
            pieces.map {
                switch $0 {
                case .text(let t): t
                case .option(let o, let v): optionWording(o, v)
                }
            }.joined()
        }

        public var description: String { rendered(optionWording: Option.apiWording) }

        /// Joins two texts (to prefix context to an error's `what`).
        public static func + (lhs: Text, rhs: Text) -> Text {
            var t = lhs
            for p in rhs.pieces {
                if case .text(let s) = p, case .text(let last)? = t.pieces.last { t.pieces[t.pieces.count - 1] = .text(last + s) } else { t.pieces.append(p) }
            }
            return t
        }
    }

    public let kind: Kind
    /// The file the error is about (a path as the caller gave it), when there is one.
    public var file: String?
    /// Where in `file` (or, without a file, in the inputs) the problem is.
    public var location: Location?
    /// What is wrong, as a clause: "the data section would start past the end of the file".
    /// Empty when `expected` / `found` say it all.
    public var what: Text
    /// What a valid input holds there: "a non-negative integer", "[4096, 4096]".
    public var expected: String?
    /// What this input holds there: "-3", "[4096, 1024]".
    public var found: String?
    /// What to do about it: "re-convert the model with a current llama.cpp".
    public var hint: Text?

    public init(_ kind: Kind, file: String? = nil, at location: Location? = nil, _ what: Text = "",
                expected: String? = nil, found: String? = nil, hint: Text? = nil) {
        self.kind = kind
        self.file = file
        self.location = location
        self.what = what
        self.expected = expected
        self.found = found
        self.hint = hint
    }

    /// Every option the error mentions (in `what`, then `hint`).
    public var options: [Option] { what.options + (hint?.options ?? []) }

    /// The sentence: `FILE: LOCATION: WHAT: expected E, found F; HINT`, each part only when present,
    /// with options worded by `optionWording` (the CLI passes its flags).
    public func rendered(optionWording: (Option, String?) -> String) -> String {
        var body = what.rendered(optionWording: optionWording)
        let comparison: String? = switch (expected, found) {
        case let (e?, f?): "expected \(e), found \(f)"
        case let (e?, nil): "expected \(e)"
        case let (nil, f?): "found \(f)"
        case (nil, nil): nil
        }
        if let comparison { body = body.isEmpty ? comparison : "\(body): \(comparison)" }
        if let hint, !hint.isEmpty { body += "; " + hint.rendered(optionWording: optionWording) }
        let prefix = [file, location?.description].compactMap { $0 }
        return (prefix + [body]).joined(separator: ": ")
    }

    /// The sentence with options named as in the library's API.
    public var message: String { rendered(optionWording: Option.apiWording) }
    public var description: String { message }

    // The common shapes. Sites that know more (a location, expected / found, a hint) pass it.

    /// A malformed or truncated file.
    public static func format(_ file: String, at location: Location? = nil, _ what: Text = "",
                              expected: String? = nil, found: String? = nil, hint: Text? = nil) -> BamError {
        BamError(.format, file: file, at: location, what, expected: expected, found: found, hint: hint)
    }
    /// A config.json key that is missing, malformed or unsupported.
    public static func config(_ file: String, key: String, _ what: Text = "",
                              expected: String? = nil, found: String? = nil, hint: Text? = nil) -> BamError {
        BamError(.config, file: file, at: .key(key), what, expected: expected, found: found, hint: hint)
    }
    public static func unsupported(_ what: Text, file: String? = nil, at location: Location? = nil,
                                   expected: String? = nil, found: String? = nil, hint: Text? = nil) -> BamError {
        BamError(.unsupported, file: file, at: location, what, expected: expected, found: found, hint: hint)
    }
    public static func mismatch(_ what: Text, file: String? = nil, at location: Location? = nil,
                                expected: String? = nil, found: String? = nil, hint: Text? = nil) -> BamError {
        BamError(.mismatch, file: file, at: location, what, expected: expected, found: found, hint: hint)
    }
    public static func usage(_ what: Text, file: String? = nil, at location: Location? = nil,
                             expected: String? = nil, found: String? = nil, hint: Text? = nil) -> BamError {
        BamError(.usage, file: file, at: location, what, expected: expected, found: found, hint: hint)
    }
    public static func io(_ what: Text, file: String? = nil, hint: Text? = nil) -> BamError {
        BamError(.io, file: file, what, hint: hint)
    }
}

import Foundation

/// `error.localizedDescription` of a BamError is its sentence (Foundation's default is a generic
/// "The operation could not be completed").
extension BamError: LocalizedError {
    public var errorDescription: String? { message }
}
