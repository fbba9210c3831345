import Foundation

/// A grouped bar chart: one group per category (a domain), one bar per series (a model) in each,
/// optional error bars (± one standard error). `compare --svg` draws perplexity with it.
public struct BarChart: Sendable {
    public struct Series: Sendable {
        public var name: String
        /// One value per category; nil leaves a gap (a model without that domain).
        public var values: [Double?]
        /// Half-widths of the error bars, one per category (nil: none).
        public var errors: [Double?]?

        public init(name: String, values: [Double?], errors: [Double?]? = nil) {
            self.name = name
            self.values = values
            self.errors = errors
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var categories: [String]
    public var series: [Series]
    /// Print each bar's value above it (when the bars are wide enough to hold it).
    public var showValues = true

    public init(title: String, xLabel: String, yLabel: String, categories: [String], series: [Series]) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.categories = categories
        self.series = series
    }

    public func svg() -> String {
        let nS = max(1, series.count), nC = max(1, categories.count)
        let barWidth = max(10, min(36, 360 / Double(nS * nC)))
        let groupGap = barWidth * 1.2
        let groupWidth = Double(nS) * barWidth
        let plotWidth = max(320, Double(nC) * (groupWidth + groupGap))
        let legend = legendSize(series.map(\.name))
        let longestCategory = categories.map { textWidth($0, size: 12) }.max() ?? 0
        let rotateLabels = longestCategory > groupWidth + groupGap - 4
        let labelHeight = rotateLabels ? min(120, longestCategory * 0.75 + 10) : 18
        let left = 72.0, top = 44.0, plotHeight = 300.0
        let width = max(left + plotWidth + 24 + legend.width + 16, textWidth(title, size: 16) + 32)
        let height = top + plotHeight + labelHeight + 40
        var svg = SVGBuilder(width: width, height: max(height, top + legend.height + 20))

        var hi = 0.0
        for s in series {
            for (i, v) in s.values.enumerated() {
                guard let v, v.isFinite else { continue }
                hi = max(hi, v + ((s.errors?[safe: i] ?? nil) ?? 0))
            }
        }
        let ticks = niceTicks(0, hi > 0 ? hi : 1)
        let yMax = ticks.last ?? 1
        func y(_ v: Double) -> Double { top + plotHeight - v / yMax * plotHeight }

        svg.text(title, x: width / 2, y: 24, size: 16, anchor: .middle, bold: true)
        // Axes, grid and tick labels.
        for t in ticks {
            svg.line(x1: left, y1: y(t), x2: left + plotWidth, y2: y(t), stroke: "#e0e0e0", width: 1)
            svg.text(formatNumber(t), x: left - 6, y: y(t) + 4, size: 11, anchor: .end)
        }
        svg.line(x1: left, y1: top, x2: left, y2: top + plotHeight)
        svg.line(x1: left, y1: top + plotHeight, x2: left + plotWidth, y2: top + plotHeight)
        svg.text(yLabel, x: 18, y: top + plotHeight / 2, size: 12, anchor: .middle, rotate: -90)
        svg.text(xLabel, x: left + plotWidth / 2, y: height - 10, size: 12, anchor: .middle)

        let slot = plotWidth / Double(nC)
        for (c, name) in categories.enumerated() {
            let cx = left + slot * (Double(c) + 0.5)
            if rotateLabels {
                svg.text(name, x: cx, y: top + plotHeight + 14, size: 12, anchor: .end, rotate: -35)
            } else {
                svg.text(name, x: cx, y: top + plotHeight + 16, size: 12, anchor: .middle)
            }
        }
        let styles = series.indices.map(Palette.series)
        svg.define(styles)
        for (s, series) in series.enumerated() {
            let fill = styles[s].fill   // a colour, or the hatch pattern of a later series
            svg.beginGroup(attributes: [("class", "series"), ("data-series", series.name)])
            for c in 0..<nC {
                guard let v = series.values[safe: c] ?? nil, v.isFinite else { continue }
                let x0 = left + slot * Double(c) + (slot - groupWidth) / 2 + Double(s) * barWidth
                let err = (series.errors?[safe: c] ?? nil).flatMap { $0.isFinite ? $0 : nil }
                let label = "\(series.name), \(categories[safe: c] ?? ""): \(formatNumber(v))" + (err.map { " ± \(formatNumber($0, digits: 2))" } ?? "")
                svg.rect(x: x0 + 1, y: y(v), width: barWidth - 2, height: top + plotHeight - y(v), fill: fill,
                         title: label, extra: " data-category=\"\(xmlEscaped(categories[safe: c] ?? ""))\" data-value=\"\(v)\"")
                if let err, err > 0 {
                    let mid = x0 + barWidth / 2
                    svg.line(x1: mid, y1: y(v + err), x2: mid, y2: y(max(0, v - err)), stroke: "#333333", width: 1)
                    svg.line(x1: mid - 3, y1: y(v + err), x2: mid + 3, y2: y(v + err), stroke: "#333333", width: 1)
                }
                if showValues, textWidth(formatNumber(v, digits: 3), size: 9) <= barWidth + 4 {
                    svg.text(formatNumber(v, digits: 3), x: x0 + barWidth / 2, y: y(v + (err ?? 0)) - 3, size: 9, anchor: .middle)
                }
            }
            svg.endGroup()
        }
        drawLegend(&svg, entries: series.enumerated().map { ($1.name, styles[$0]) },
                   x: left + plotWidth + 24, y: top)
        return svg.document(title: title)
    }
}

extension Array {
    subscript(safe i: Int) -> Element? { indices.contains(i) ? self[i] : nil }
}
