import Foundation

/// A line chart of several series over a shared x axis (training loss per step, for example).
public struct LineChart: Sendable {
    public struct Series: Sendable {
        public var name: String
        public var points: [Point]

        public init(name: String, points: [Point]) {
            self.name = name
            self.points = points
        }

        public init(name: String, x: [Double], y: [Double]) {
            self.name = name
            points = zip(x, y).map { Point(x: $0, y: $1) }
        }

        /// The series with each y replaced by the mean of the last `window` values up to it
        /// (fewer at the start): per-step training losses vary from batch to batch by more than
        /// the differences between models, and the trailing mean shows the trend without
        /// shifting it forward.
        public func trailingMean(window: Int) -> Series {
            let w = max(1, window)
            var sum = 0.0
            var out: [Point] = []
            out.reserveCapacity(points.count)
            for (i, p) in points.enumerated() {
                sum += p.y
                if i >= w { sum -= points[i - w].y }
                out.append(Point(x: p.x, y: sum / Double(min(i + 1, w))))
            }
            return Series(name: name, points: out)
        }
    }

    public struct Point: Sendable, Equatable {
        public var x: Double
        public var y: Double
        public init(x: Double, y: Double) {
            self.x = x
            self.y = y
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    /// A logarithmic y axis (base 10); non-positive values are left out.
    public var logY = false
    /// Series with at most this many points also get a dot per point, each with its value on hover.
    public var markerLimit = 120

    public init(title: String, xLabel: String, yLabel: String, series: [Series], logY: Bool = false) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
        self.logY = logY
    }

    public func svg() -> String {
        let legend = legendSize(series.map(\.name))
        let left = 72.0, top = 44.0, plotWidth = 520.0, plotHeight = 300.0
        let width = max(left + plotWidth + 24 + legend.width + 16, textWidth(title, size: 16) + 32)
        let height = top + plotHeight + 56
        var svg = SVGBuilder(width: width, height: max(height, top + legend.height + 20))

        func yValue(_ v: Double) -> Double? {
            guard v.isFinite else { return nil }
            if logY { return v > 0 ? log10(v) : nil }
            return v
        }
        let usable = series.flatMap { s in s.points.compactMap { p in yValue(p.y).map { (p.x, $0) } } }.filter { $0.0.isFinite }
        let xs = usable.map(\.0), ys = usable.map(\.1)
        let xTicks = niceTicks(xs.min() ?? 0, xs.max() ?? 1)
        let yTicks: [Double]
        if logY {
            let lo = floor(ys.min() ?? 0), hi = ceil(ys.max() ?? 1)
            yTicks = stride(from: lo, through: max(hi, lo + 1), by: 1).map { $0 }
        } else {
            yTicks = niceTicks(ys.min() ?? 0, ys.max() ?? 1)
        }
        let x0 = xTicks.first!, x1 = xTicks.last!, y0 = yTicks.first!, y1 = yTicks.last!
        func px(_ v: Double) -> Double { left + (v - x0) / (x1 - x0) * plotWidth }
        func py(_ v: Double) -> Double { top + plotHeight - (v - y0) / (y1 - y0) * plotHeight }

        svg.text(title, x: width / 2, y: 24, size: 16, anchor: .middle, bold: true)
        for t in yTicks {
            svg.line(x1: left, y1: py(t), x2: left + plotWidth, y2: py(t), stroke: "#e0e0e0", width: 1)
            svg.text(logY ? formatNumber(pow(10, t)) : formatNumber(t), x: left - 6, y: py(t) + 4, size: 11, anchor: .end)
        }
        for t in xTicks {
            svg.line(x1: px(t), y1: top + plotHeight, x2: px(t), y2: top + plotHeight + 4)
            svg.text(formatNumber(t), x: px(t), y: top + plotHeight + 18, size: 11, anchor: .middle)
        }
        svg.line(x1: left, y1: top, x2: left, y2: top + plotHeight)
        svg.line(x1: left, y1: top + plotHeight, x2: left + plotWidth, y2: top + plotHeight)
        svg.text(yLabel + (logY ? " (log scale)" : ""), x: 18, y: top + plotHeight / 2, size: 12, anchor: .middle, rotate: -90)
        svg.text(xLabel, x: left + plotWidth / 2, y: height - 12, size: 12, anchor: .middle)

        let styles = series.indices.map(Palette.series)
        for (s, series) in series.enumerated() {
            let colour = styles[s].colour
            let points = series.points.compactMap { p -> (Double, Double, Point)? in
                guard p.x.isFinite, let v = yValue(p.y) else { return nil }
                return (px(p.x), py(v), p)
            }
            svg.beginGroup(attributes: [("class", "series"), ("data-series", series.name)])
            let last = series.points.last.map { " (last: \(formatNumber($0.y)) at \(formatNumber($0.x)))" } ?? ""
            svg.polyline(points.map { ($0.0, $0.1) }, stroke: colour, dash: styles[s].dash, title: series.name + last)
            if points.count <= markerLimit {
                for p in points {
                    svg.circle(cx: p.0, cy: p.1, r: 2.5, fill: colour,
                               title: "\(series.name): \(xLabel) \(formatNumber(p.2.x)), \(yLabel) \(formatNumber(p.2.y))")
                }
            }
            svg.endGroup()
        }
        drawLegend(&svg, entries: series.enumerated().map { ($1.name, styles[$0]) },
                   x: left + plotWidth + 24, y: top, line: true)
        return svg.document(title: title)
    }
}
