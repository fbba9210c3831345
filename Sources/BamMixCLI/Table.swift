import BamEvaluation
import BamModels
import Foundation

/// Whether stdout is a colour terminal (not with NO_COLOR set, TERM=dumb, or output to a file or pipe).
var terminalColour: Bool {
    let env = ProcessInfo.processInfo.environment
    if let v = env["NO_COLOR"], !v.isEmpty { return false }
    if env["TERM"] == "dumb" { return false }
    return isatty(STDOUT_FILENO) == 1
}

/// Writes `text` to `path`, or to stdout when `path` is "-".
func writeOutput(_ text: String, to path: String) throws {
    if path == "-" {
        FileHandle.standardOutput.write(Data(text.utf8))
    } else {
        do { try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw BamError.io("\(path): cannot write (\(error.localizedDescription))")
        }
    }
}
