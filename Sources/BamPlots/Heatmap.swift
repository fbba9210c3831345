import Foundation

/// Heatmaps side by side (small multiples) on one shared colour scale: `routes --svg` draws one
/// panel per domain, rows = layers, columns = experts, colour = the share of tokens an expert
/// receives.
public struct Heatmap: Sendable {
    public struct Panel: Sendable {
        public var title: String
        /// values[row][column]
        public var values: [[Double]]
        public init(title: String, values: [[Double]]) {
            self.title = title
            self.values = values
        }
    }

    public var title: String
    public var rowLabels: [String]
    public var columnLabels: [String]
    public var xLabel: String
    public var yLabel: String
    /// What a cell's number is, for the colour bar and the hover text ("share of tokens").
    public var valueLabel: String
    public var panels: [Panel]
    /// The colour scale's ends (default: 0 and the largest value).
    public var minimum: Double?
    public var maximum: Double?
    /// Panels per row of the figure.
    public var columnsOfPanels = 4

    public init(title: String, rowLabels: [String], columnLabels: [String], xLabel: String, yLabel: String,
                valueLabel: String, panels: [Panel]) {
        self.title = title
        self.rowLabels = rowLabels
        self.columnLabels = columnLabels
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.valueLabel = valueLabel
        self.panels = panels
    }

    public func svg() -> String {
        let nR = max(1, rowLabels.count), nC = max(1, columnLabels.count)
        let cellW = max(18, min(48, 260 / Double(nC)))
        let cellH = max(10, min(28, 320 / Double(nR)))
        let rowLabelWidth = max(30, (rowLabels.map { textWidth($0, size: 10) }.max() ?? 0) + 8)
        let panelW = rowLabelWidth + Double(nC) * cellW + 24
        let panelH = 22 + Double(nR) * cellH + 34
        let perRow = max(1, min(columnsOfPanels, panels.count))
        let panelRows = (panels.count + perRow - 1) / perRow
        let left = 34.0, top = 44.0
        let colourBarWidth = 90.0
        let width = max(left + Double(perRow) * panelW + colourBarWidth, textWidth(title, size: 16) + 32)
        let colourBarHeight = 160.0
        // Tall enough for the panels and for the colour bar with its labels.
        let height = max(top + Double(max(1, panelRows)) * panelH + 24, top + 22 + colourBarHeight + 30)
        var svg = SVGBuilder(width: width, height: height)

        let all = panels.flatMap { $0.values.flatMap { $0 } }.filter(\.isFinite)
        let lo = minimum ?? min(0, all.min() ?? 0)
        let hi = maximum ?? max(lo + 1e-12, all.max() ?? 1)
        func colour(_ v: Double) -> String { Palette.sequential((v - lo) / (hi - lo)) }

        svg.text(title, x: width / 2, y: 24, size: 16, anchor: .middle, bold: true)
        svg.text(yLabel, x: 14, y: top + Double(max(1, panelRows)) * panelH / 2, size: 12, anchor: .middle, rotate: -90)
        let showNumbers = cellW >= 34 && cellH >= 14
        for (p, panel) in panels.enumerated() {
            let ox = left + Double(p % perRow) * panelW, oy = top + Double(p / perRow) * panelH
            let gx = ox + rowLabelWidth
            svg.beginGroup(attributes: [("class", "series"), ("data-series", panel.title)])
            svg.text(panel.title, x: gx + Double(nC) * cellW / 2, y: oy + 14, size: 13, anchor: .middle, bold: true)
            for (r, label) in rowLabels.enumerated() {
                svg.text(label, x: gx - 4, y: oy + 22 + (Double(r) + 0.5) * cellH + 3.5, size: 10, anchor: .end)
            }
            for (c, label) in columnLabels.enumerated() {
                svg.text(label, x: gx + (Double(c) + 0.5) * cellW, y: oy + 22 + Double(nR) * cellH + 13, size: 10, anchor: .middle)
            }
            svg.text(xLabel, x: gx + Double(nC) * cellW / 2, y: oy + 22 + Double(nR) * cellH + 28, size: 11, anchor: .middle)
            for r in 0..<min(nR, panel.values.count) {
                for c in 0..<min(nC, panel.values[r].count) {
                    let v = panel.values[r][c]
                    let fill = v.isFinite ? colour(v) : "#dddddd"
                    let x = gx + Double(c) * cellW, y = oy + 22 + Double(r) * cellH
                    svg.rect(x: x, y: y, width: cellW, height: cellH, fill: fill, stroke: "#ffffff",
                             title: "\(panel.title), \(rowLabels[safe: r] ?? "\(r)"), \(columnLabels[safe: c] ?? "\(c)"): \(valueLabel) \(formatNumber(v, digits: 3))",
                             extra: " data-row=\"\(r)\" data-column=\"\(c)\" data-value=\"\(v)\"")
                    if showNumbers {
                        svg.text(formatNumber(v, digits: 2), x: x + cellW / 2, y: y + cellH / 2 + 3.5, size: 9,
                                 anchor: .middle, fill: Palette.textColour(on: fill))
                    }
                }
            }
            svg.endGroup()
        }
        // Colour bar.
        // Right of the panels (the figure may be wider than them, for a long title).
        let bx = left + Double(perRow) * panelW + 20, by = top + 22, bh = colourBarHeight
        let steps = 32
        for i in 0..<steps {
            let t = Double(i) / Double(steps - 1)
            svg.rect(x: bx, y: by + bh - Double(i + 1) * bh / Double(steps), width: 14, height: bh / Double(steps) + 0.5,
                     fill: Palette.sequential(t))
        }
        svg.text(formatNumber(hi, digits: 3), x: bx + 18, y: by + 8, size: 10)
        svg.text(formatNumber(lo, digits: 3), x: bx + 18, y: by + bh, size: 10)
        svg.text(valueLabel, x: bx + 7, y: by + bh + 18, size: 10, anchor: .middle)
        return svg.document(title: title)
    }
}
