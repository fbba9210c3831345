/// The one error type bam-mix throws to users. The message says what was expected, what was
/// found, where (file, tensor, key) and, where there is one, what to do next; the CLI prints it
/// verbatim to stderr.
public struct BamError: Error, CustomStringConvertible, Equatable {
    public enum Kind: String, Sendable {
        case format       // a file is malformed or truncated
        case config       // config.json holds something missing or unsupported
        case unsupported  // a valid input bam-mix does not handle
        case mismatch     // inputs that must agree do not
        case usage        // the command line asks for something inconsistent
        case numeric      // NaN / Inf where finite values were required
        case io           // the operating system refused
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    public static func format(_ file: String, _ what: String) -> BamError { BamError(.format, "\(file): \(what)") }
    public static func config(_ file: String, key: String, _ what: String) -> BamError {
        BamError(.config, "\(file): key `\(key)`: \(what)")
    }
    public static func unsupported(_ what: String) -> BamError { BamError(.unsupported, what) }
    public static func mismatch(_ what: String) -> BamError { BamError(.mismatch, what) }
    public static func usage(_ what: String) -> BamError { BamError(.usage, what) }
    public static func io(_ what: String) -> BamError { BamError(.io, what) }
}
