import BamModels
import Foundation

/// A table for the terminal and for Markdown, with some cells marked as the best of their column:
/// `*` after the value always (readable without colour), and optionally bold green.
public struct Table: Sendable {
    public struct Cell: Sendable {
        public var text: String
        public var best = false
        public init(_ text: String, best: Bool = false) {
            self.text = text
            self.best = best
        }
    }

    public var header: [String]
    /// Columns aligned left (the others right: numbers).
    public var leftAligned: Set<Int> = [0]
    public var rows: [[Cell]] = []

    public init(header: [String], leftAligned: Set<Int> = [0]) {
        self.header = header
        self.leftAligned = leftAligned
    }

    /// Plain text, columns padded; `colour` adds ANSI bold green to the best cells (the CLI
    /// decides whether its stdout is a colour terminal).
    public func render(colour: Bool = false) -> String {
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
    public func markdown() -> String {
        func escape(_ s: String) -> String { s.replacingOccurrences(of: "|", with: "\\|") }
        var lines = ["| " + header.map(escape).joined(separator: " | ") + " |"]
        lines.append("|" + header.indices.map { leftAligned.contains($0) ? "---|" : "---:|" }.joined())
        for row in rows {
            lines.append("| " + row.map { $0.best ? "**\(escape($0.text))**" : escape($0.text) }.joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n")
    }
}


/// Human-readable counts, bytes and durations for tables and logs.
public func formatCount(_ n: Int) -> String {
    let d = Double(n)
    if d >= 1e9 { return String(format: "%.2fB", d / 1e9) }
    if d >= 1e6 { return String(format: "%.2fM", d / 1e6) }
    if d >= 1e3 { return String(format: "%.1fK", d / 1e3) }
    return "\(n)"
}

public func formatBytes(_ n: Int) -> String {
    let d = Double(n)
    if d >= 1_073_741_824 { return String(format: "%.2f GiB", d / 1_073_741_824) }
    if d >= 1_048_576 { return String(format: "%.1f MiB", d / 1_048_576) }
    if d >= 1024 { return String(format: "%.1f KiB", d / 1024) }
    return "\(n) B"
}

public func formatDuration(_ s: Double) -> String {
    if !s.isFinite { return "?" }
    if s < 60 { return String(format: "%.1f s", s) }
    if s < 3600 { return String(format: "%dm%02ds", Int(s) / 60, Int(s) % 60) }
    return String(format: "%dh%02dm", Int(s) / 3600, (Int(s) % 3600) / 60)
}

extension ComparisonReport {
    static func pplCell(_ r: DomainPerplexity?) -> String {
        guard let r else { return "-" }
        return String(format: "%.3f ±%.3f", r.ppl, r.pplStderr)
    }

    /// The comparison as a table: perplexity ± stderr per domain, the average, size, compute,
    /// speed and memory, the best of each column marked.
    public func table() -> Table {
        let report = self
        var header = ["model"] + report.domains.map(\.name)
        if report.domains.count > 1 { header.append("average") }
        header += ["params", "active", "GFLOP/tok", "tok/s", "peak mem"]
        var table = Table(header: header)
        var best: [Int: Set<Int>] = [:]   // column -> the best models
        for (d, domain) in report.domains.enumerated() {
            best[1 + d] = report.best({ $0.result(domain.name)?.ppl }, .lower, perplexity: true)
        }
        var column = 1 + report.domains.count
        if report.domains.count > 1 {
            best[column] = report.best({ $0.averagePPL }, .lower, perplexity: true)
            column += 1
        }
        let rest: [((ComparedModel) -> Double, ComparisonReport.Better)] = [
            ({ Double($0.totalParameters) }, .lower), ({ Double($0.activeParameters) }, .lower),
            ({ $0.flopsPerToken }, .lower), ({ $0.tokensPerSecond }, .higher), ({ Double($0.peakMemoryBytes) }, .lower),
        ]
        for (i, r) in rest.enumerated() { best[column + i] = report.best(r.0, r.1, perplexity: false) }
        for (m, model) in report.models.enumerated() {
            var cells = [model.name + (model.ownTokenization ? " †" : "")]
            cells += report.domains.map { Self.pplCell(model.result($0.name)) }
            if report.domains.count > 1 { cells.append(String(format: "%.3f ±%.3f", model.averagePPL, model.averagePPLStderr)) }
            cells += [formatCount(model.totalParameters), formatCount(model.activeParameters),
                      String(format: "%.3g", model.flopsPerToken / 1e9), String(format: "%.0f", model.tokensPerSecond),
                      formatBytes(model.peakMemoryBytes)]
            table.rows.append(cells.enumerated().map { Table.Cell($1, best: best[$0]?.contains(m) == true) })
        }
        return table
    }

    /// The lines printed under the table (what was measured how; flags and BTM choices).
    public func notes() -> [String] {
        let report = self
        var lines = [""]
        lines.append("PPL ± standard error; ctx \(report.ctx), \(report.scoring.rawValue) scoring\(report.scoring == .half ? " (llama-perplexity)" : ""); "
                     + report.domains.map { "\($0.name): \($0.chunks) chunks, \($0.tokensScored) tokens scored" }.joined(separator: ", ")
                     + "; * best in column.")
        for m in report.models {
            var line = "\(m.name): \(m.kind)"
            if m.ownTokenization { line += "; † its tokenizer (\(m.tokenizer)) differs from the others': scored on its own tokens, perplexity not comparable" }
            if let s = m.btmSelections, s.reduce(0, +) > 0 {
                let total = Double(s.reduce(0, +))
                line += "; BTM expert choices " + s.map { String(format: "%.0f%%", Double($0) / total * 100) }.joined(separator: " / ")
            }
            lines.append(line)
        }
        lines.append("peak mem: the process's peak resident memory while the model was loaded and evaluated (\(report.models.first?.memoryMethod ?? "")); "
                     + String(format: "%.1f s in total.", report.seconds))
        return lines
    }

    /// The table and its notes as Markdown.
    public func markdownDocument() -> String {
        table().markdown() + "\n\n" + notes().dropFirst().map { "- " + $0 }.joined(separator: "\n") + "\n"
    }
}
