import Foundation

/// Text coloured token by token (the BTX paper's routing figure): each token's background is the
/// colour of its category (the expert it was routed to), and hovering shows its tooltip (every
/// layer's choice and probability). Renders as SVG or as a fragment of an HTML page.
public struct TokenText: Sendable {
    public struct Token: Sendable {
        public var text: String
        /// Index into `legend` (nil: uncoloured).
        public var category: Int?
        public var tooltip: String
        public init(text: String, category: Int?, tooltip: String) {
            self.text = text
            self.category = category
            self.tooltip = tooltip
        }
    }

    public struct Block: Sendable {
        public var label: String
        public var tokens: [Token]
        public init(label: String, tokens: [Token]) {
            self.label = label
            self.tokens = tokens
        }
    }

    public var title: String
    public var legend: [String]
    public var blocks: [Block]
    /// Characters per line before wrapping (SVG only; HTML wraps by itself).
    public var lineCharacters = 90

    public init(title: String, legend: [String], blocks: [Block]) {
        self.title = title
        self.legend = legend
        self.blocks = blocks
    }

    /// How a token is shown: newlines as ↵ and tabs as → (they would be invisible otherwise),
    /// spaces as no-break spaces so SVG keeps them. `newline` says the line breaks after it.
    static func visible(_ s: String) -> (text: String, newline: Bool) {
        var out = ""
        var newline = false
        for ch in s {
            switch ch {
            case "\n", "\r\n": out += "↵"; newline = true
            case "\r": out += "↵"
            case "\t": out += "→"
            case " ": out += "\u{00A0}"
            default: out.append(ch)
            }
        }
        return (out.isEmpty ? "∅" : out, newline)
    }

    public func svg() -> String {
        let size = 12.0, charW = size * 0.6, lineH = 20.0
        let left = 16.0
        let width = max(left * 2 + Double(lineCharacters) * charW, textWidth(title, size: 16) + 32)
        // Lay out first to know the height.
        struct Placed { var x: Double; var y: Double; var w: Double; var text: String; var token: Token }
        var placed: [[Placed]] = []
        var labels: [(String, Double)] = []
        var y = 44.0 + Double(legend.isEmpty ? 0 : 24)
        for block in blocks {
            labels.append((block.label, y + 14))
            y += 24
            var x = left
            var row: [Placed] = []
            for token in block.tokens {
                let (text, newline) = Self.visible(token.text)
                let w = Double(text.count) * charW
                if x + w > width - left, x > left { x = left; y += lineH }
                row.append(Placed(x: x, y: y, w: w, text: text, token: token))
                x += w
                if newline { x = left; y += lineH }
            }
            placed.append(row)
            y += lineH + 16
        }
        var svg = SVGBuilder(width: width, height: y + 8)
        svg.text(title, x: width / 2, y: 24, size: 16, anchor: .middle, bold: true)
        var lx = left
        for (i, name) in legend.enumerated() {
            svg.rect(x: lx, y: 36, width: 12, height: 12, fill: Palette.tint(i))
            svg.text(name, x: lx + 16, y: 46, size: 12)
            lx += 28 + textWidth(name, size: 12)
        }
        for (b, row) in placed.enumerated() {
            svg.text(labels[b].0, x: left, y: labels[b].1, size: 13, bold: true)
            svg.beginGroup(attributes: [("class", "series"), ("data-series", blocks[b].label)])
            for p in row {
                let fill = p.token.category.map { Palette.tint($0) } ?? "#ffffff"
                svg.beginGroup(attributes: [("class", "token"), ("data-category", p.token.category.map(String.init) ?? "")],
                               title: p.token.tooltip)
                svg.rect(x: p.x, y: p.y, width: p.w, height: lineH - 2, fill: fill)
                svg.text(p.text, x: p.x, y: p.y + lineH - 7, size: size, monospace: true)
                svg.endGroup()
            }
            svg.endGroup()
        }
        return svg.document(title: title)
    }

    /// An HTML fragment (well-formed XML): a legend and one paragraph per block, each token a
    /// `<span>` with its tooltip in `title`.
    public func htmlFragment() -> String {
        var out = "<div class=\"token-text\">\n<h3>\(xmlEscaped(title))</h3>\n<p class=\"legend\">"
        for (i, name) in legend.enumerated() {
            out += "<span class=\"tok\" style=\"background:\(Palette.tint(i))\">\(xmlEscaped(name))</span> "
        }
        out += "</p>\n"
        for block in blocks {
            out += "<h4>\(xmlEscaped(block.label))</h4>\n<p class=\"tokens\">"
            for token in block.tokens {
                let bg = token.category.map { Palette.tint($0) } ?? "#ffffff"
                var text = xmlEscaped(token.text.replacingOccurrences(of: "\t", with: "→"))
                if text.isEmpty { text = "∅" }
                text = text.replacingOccurrences(of: "\r\n", with: "↵<br/>").replacingOccurrences(of: "\n", with: "↵<br/>")
                out += "<span class=\"tok\" style=\"background:\(bg)\" title=\"\(xmlEscaped(token.tooltip))\">\(text)</span>"
            }
            out += "</p>\n"
        }
        return out + "</div>\n"
    }
}

/// A self-contained HTML page that is also well-formed XML (XHTML serialisation), so tests parse
/// it with XMLParser. Sections hold HTML fragments or inline SVG documents.
public struct HTMLPage: Sendable {
    public var title: String
    public var sections: [String] = []

    public init(title: String) { self.title = title }

    public mutating func heading(_ s: String) { sections.append("<h2>\(xmlEscaped(s))</h2>\n") }
    public mutating func paragraph(_ s: String) { sections.append("<p>\(xmlEscaped(s))</p>\n") }
    public mutating func fragment(_ html: String) { sections.append(html) }

    /// Inlines an SVG document (its XML declaration dropped).
    public mutating func svg(_ document: String) {
        var s = document
        if s.hasPrefix("<?xml"), let end = s.range(of: "?>") { s = String(s[end.upperBound...]) }
        sections.append("<div class=\"figure\">\(s)</div>\n")
    }

    /// A table; `header` and each row are cell texts.
    public mutating func table(header: [String], rows: [[String]]) {
        var out = "<table>\n<tr>" + header.map { "<th>\(xmlEscaped($0))</th>" }.joined() + "</tr>\n"
        for r in rows { out += "<tr>" + r.map { "<td>\(xmlEscaped($0))</td>" }.joined() + "</tr>\n" }
        sections.append(out + "</table>\n")
    }

    public func document() -> String {
        """
        <!DOCTYPE html>
        <html xmlns="http://www.w3.org/1999/xhtml" lang="en">
        <head>
        <meta charset="utf-8"/>
        <title>\(xmlEscaped(title))</title>
        <style>
        body { font-family: Helvetica, Arial, sans-serif; margin: 24px; color: #222; max-width: 1100px; }
        .tokens { font-family: monospace; white-space: pre-wrap; line-height: 1.8; }
        .tok { padding: 1px 0; border-radius: 2px; }
        .legend .tok { padding: 2px 6px; margin-right: 6px; }
        table { border-collapse: collapse; margin: 8px 0 16px; }
        th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; font-size: 13px; }
        th:first-child, td:first-child { text-align: left; }
        </style>
        </head>
        <body>
        <h1>\(xmlEscaped(title))</h1>
        \(sections.joined())</body>
        </html>

        """
    }
}
