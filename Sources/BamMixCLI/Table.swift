import Foundation
import BamModels

/// A table for the terminal and for Markdown, with some cells marked as the best of their column:
/// `*` after the value always (readable without colour), bold green as well when stdout is a
/// colour terminal (not with NO_COLOR set, TERM=dumb, or output to a file or pipe).
struct Table {
    struct Cell {
        var text: String
        var best = false
        init(_ text: String, best: Bool = false) {
            self.text = text
            self.best = best
        }
    }

    var header: [String]
    /// Columns aligned left (the others right: numbers).
    var leftAligned: Set<Int> = [0]
    var rows: [[Cell]] = []

    init(header: [String], leftAligned: Set<Int> = [0]) {
        self.header = header
        self.leftAligned = leftAligned
    }

    static var colourEnabled: Bool {
        let env = ProcessInfo.processInfo.environment
        if let v = env["NO_COLOR"], !v.isEmpty { return false }
        if env["TERM"] == "dumb" { return false }
        return isatty(STDOUT_FILENO) == 1
    }

    func render(colour: Bool = Table.colourEnabled) -> String {
        let texts = rows.map { $0.map { $0.text + ($0.best ? " *" : "") } }
        var widths = header.map(\.count)
        for r in texts { for (i, t) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], t.count) } }
        func pad(_ s: String, _ i: Int) -> String {
            let n = max(0, widths[i] - s.count)
            return leftAligned.contains(i) ? s + String(repeating: " ", count: n) : String(repeating: " ", count: n) + s
        }
        var lines = [header.indices.map { pad(header[$0], $0) }.joined(separator: "  ")]
        lines.append(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  "))
        for (r, row) in rows.enumerated() {
            lines.append(row.indices.map { i in
                let s = pad(texts[r][i], i)
                return colour && row[i].best ? "\u{1B}[1;32m" + s + "\u{1B}[0m" : s
            }.joined(separator: "  "))
        }
        return lines.joined(separator: "\n")
    }

    /// GitHub-flavoured Markdown; best cells in bold.
    func markdown() -> String {
        func escape(_ s: String) -> String { s.replacingOccurrences(of: "|", with: "\\|") }
        var lines = ["| " + header.map(escape).joined(separator: " | ") + " |"]
        lines.append("|" + header.indices.map { leftAligned.contains($0) ? "---|" : "---:|" }.joined())
        for row in rows {
            lines.append("| " + row.map { $0.best ? "**\(escape($0.text))**" : escape($0.text) }.joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n")
    }
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
