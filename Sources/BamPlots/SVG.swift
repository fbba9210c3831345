import Foundation

// A small SVG writer for the project's plots (no plotting library exists in the package mirror).
// Every chart is a value type with a `svg()` method returning one standalone SVG document:
// titles, axis labels, legends, and a `<title>` on every mark so a browser shows the number on
// hover. Text is XML-escaped, so any model or domain name is safe. Each series is drawn inside
// `<g class="series" data-series="NAME">` so tests (and scripts) can find it.

/// Escapes text for XML character data and attribute values. Characters XML 1.0 forbids even
/// escaped (C0 controls other than tab, newline, carriage return; U+FFFE/U+FFFF; lone
/// surrogates cannot occur in a Swift String) are replaced by U+FFFD.
public func xmlEscaped(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.utf8.count)
    for scalar in s.unicodeScalars {
        switch scalar {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&apos;"
        case "\t", "\n", "\r": out.unicodeScalars.append(scalar)
        default:
            if scalar.value < 0x20 || scalar.value == 0xFFFE || scalar.value == 0xFFFF || (0x7F...0x9F).contains(scalar.value) {
                out += "\u{FFFD}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out
}

/// Formats a number for labels: up to `digits` significant digits, no exponent for ordinary
/// magnitudes, thousands as "12.3k"-style only when asked.
public func formatNumber(_ v: Double, digits: Int = 4) -> String {
    guard v.isFinite else { return v.isNaN ? "NaN" : (v > 0 ? "inf" : "-inf") }
    if v == 0 { return "0" }
    let a = abs(v)
    if a >= 1e6 || a < 1e-3 { return String(format: "%.\(max(1, digits - 1))e", v) }
    let decimals = max(0, digits - 1 - Int(floor(log10(a))))
    var s = String(format: "%.\(decimals)f", v)
    if s.contains(".") {
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
    }
    return s
}

/// Colours: a categorical palette (Tableau 10, readable on white and distinguishable by most
/// colour-blind readers in pairs) and a sequential scale (viridis, perceptually uniform).
public enum Palette {
    public static let categorical = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                     "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]

    public static func category(_ i: Int) -> String { categorical[((i % categorical.count) + categorical.count) % categorical.count] }

    /// How series `i` of a chart is drawn. The colour cycles through the ten categories; each
    /// further cycle gets a second cue — a dash pattern on lines, a hatch on bars — so that the
    /// reproduction's 12 finetuning curves and 18 bar series stay distinct (up to 30 series;
    /// beyond that the styles repeat).
    public static func series(_ i: Int) -> SeriesStyle {
        let n = categorical.count
        let k = ((i % (3 * n)) + 3 * n) % (3 * n)
        return SeriesStyle(colour: categorical[k % n], variant: k / n)
    }

    /// A light tint of category `i` (for token backgrounds, where text must stay readable).
    public static func tint(_ i: Int, amount: Double = 0.55) -> String {
        let (r, g, b) = rgb(category(i))
        func mix(_ c: Int) -> Int { Int((Double(c) + (255 - Double(c)) * amount).rounded()) }
        return hex(mix(r), mix(g), mix(b))
    }

    static let viridis: [(Int, Int, Int)] = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]

    /// Viridis at t in [0, 1] (clamped), linearly interpolated between five stops.
    public static func sequential(_ t: Double) -> String {
        let x = min(1, max(0, t.isFinite ? t : 0)) * Double(viridis.count - 1)
        let i = min(viridis.count - 2, Int(x))
        let f = x - Double(i)
        let a = viridis[i], b = viridis[i + 1]
        func lerp(_ u: Int, _ v: Int) -> Int { Int((Double(u) + (Double(v) - Double(u)) * f).rounded()) }
        return hex(lerp(a.0, b.0), lerp(a.1, b.1), lerp(a.2, b.2))
    }

    /// Black or white, whichever reads better on `background` (#rrggbb).
    public static func textColour(on background: String) -> String {
        let (r, g, b) = rgb(background)
        let luminance = 0.299 * Double(r) + 0.587 * Double(g) + 0.114 * Double(b)
        return luminance > 140 ? "#000000" : "#ffffff"
    }

    static func rgb(_ hex: String) -> (Int, Int, Int) {
        let digits = hex.hasPrefix("#") ? String(hex.dropFirst()) : hex
        let v = Int(digits, radix: 16) ?? 0
        return ((v >> 16) & 0xFF, (v >> 8) & 0xFF, v & 0xFF)
    }

    static func hex(_ r: Int, _ g: Int, _ b: Int) -> String { String(format: "#%02x%02x%02x", r, g, b) }
}

/// The look of one chart series: its colour and, past the first ten series, a variant
/// (1: dashed line / hatched bar, 2: dotted line / cross-hatched bar).
public struct SeriesStyle: Equatable, Sendable {
    public let colour: String
    public let variant: Int

    /// The line's stroke-dasharray (nil: solid).
    public var dash: String? { [nil, "7 3", "2 2"][variant] }

    /// The id of the bar fill pattern (nil: the plain colour).
    var patternID: String? { variant == 0 ? nil : "hatch-\(variant)-\(colour.dropFirst())" }

    /// What a bar's `fill` attribute says.
    public var fill: String { patternID.map { "url(#\($0))" } ?? colour }

    /// The <pattern> element behind `fill` (nil for a plain colour): white stripes over the colour,
    /// one direction for variant 1, both for variant 2.
    var patternDefinition: String? {
        guard let id = patternID else { return nil }
        var stripes = "<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#ffffff\" stroke-width=\"2\"/>"
        if variant == 2 { stripes += "<line x1=\"0\" y1=\"3\" x2=\"6\" y2=\"3\" stroke=\"#ffffff\" stroke-width=\"2\"/>" }
        return "<defs><pattern id=\"\(id)\" patternUnits=\"userSpaceOnUse\" width=\"6\" height=\"6\" patternTransform=\"rotate(45)\">"
            + "<rect width=\"6\" height=\"6\" fill=\"\(colour)\"/>\(stripes)</pattern></defs>"
    }
}

/// Accumulates SVG elements; every text goes through `xmlEscaped`.
public struct SVGBuilder {
    public let width: Double
    public let height: Double
    private var body: [String] = []

    public init(width: Double, height: Double) {
        self.width = width
        self.height = height
    }

    static func n(_ v: Double) -> String {
        let r = (v * 100).rounded() / 100
        return r == r.rounded() ? String(Int(r)) : String(format: "%.2f", r)
    }

    private static func titleElement(_ title: String?) -> String {
        title.map { "<title>\(xmlEscaped($0))</title>" } ?? ""
    }

    public mutating func raw(_ s: String) { body.append(s) }

    /// Defines the fill pattern of every style that has one (once each), before the bars use them.
    mutating func define(_ styles: [SeriesStyle]) {
        var seen = Set<String>()
        for style in styles {
            guard let id = style.patternID, let definition = style.patternDefinition, seen.insert(id).inserted else { continue }
            body.append(definition)
        }
    }

    public mutating func beginGroup(attributes: [(String, String)] = [], title: String? = nil) {
        let attrs = attributes.map { " \($0.0)=\"\(xmlEscaped($0.1))\"" }.joined()
        body.append("<g\(attrs)>" + Self.titleElement(title))
    }

    public mutating func endGroup() { body.append("</g>") }

    public mutating func rect(x: Double, y: Double, width: Double, height: Double, fill: String,
                              stroke: String? = nil, title: String? = nil, extra: String = "") {
        let s = stroke.map { " stroke=\"\($0)\" stroke-width=\"0.5\"" } ?? ""
        let t = Self.titleElement(title)
        let open = "<rect x=\"\(Self.n(x))\" y=\"\(Self.n(y))\" width=\"\(Self.n(max(0, width)))\" height=\"\(Self.n(max(0, height)))\" fill=\"\(fill)\"\(s)\(extra)"
        body.append(t.isEmpty ? open + "/>" : open + ">" + t + "</rect>")
    }

    public mutating func line(x1: Double, y1: Double, x2: Double, y2: Double, stroke: String = "#000000",
                              width: Double = 1, dash: String? = nil) {
        let d = dash.map { " stroke-dasharray=\"\($0)\"" } ?? ""
        body.append("<line x1=\"\(Self.n(x1))\" y1=\"\(Self.n(y1))\" x2=\"\(Self.n(x2))\" y2=\"\(Self.n(y2))\" stroke=\"\(stroke)\" stroke-width=\"\(Self.n(width))\"\(d)/>")
    }

    public mutating func polyline(_ points: [(Double, Double)], stroke: String, width: Double = 1.5, dash: String? = nil,
                                  title: String? = nil) {
        let p = points.map { "\(Self.n($0.0)),\(Self.n($0.1))" }.joined(separator: " ")
        let t = Self.titleElement(title)
        let d = dash.map { " stroke-dasharray=\"\($0)\"" } ?? ""
        let open = "<polyline points=\"\(p)\" fill=\"none\" stroke=\"\(stroke)\" stroke-width=\"\(Self.n(width))\" stroke-linejoin=\"round\"\(d)"
        body.append(t.isEmpty ? open + "/>" : open + ">" + t + "</polyline>")
    }

    public mutating func circle(cx: Double, cy: Double, r: Double, fill: String, title: String? = nil) {
        let t = Self.titleElement(title)
        let open = "<circle cx=\"\(Self.n(cx))\" cy=\"\(Self.n(cy))\" r=\"\(Self.n(r))\" fill=\"\(fill)\""
        body.append(t.isEmpty ? open + "/>" : open + ">" + t + "</circle>")
    }

    public enum Anchor: String { case start, middle, end }

    public mutating func text(_ s: String, x: Double, y: Double, size: Double = 12, anchor: Anchor = .start,
                              bold: Bool = false, fill: String = "#222222", rotate: Double? = nil,
                              monospace: Bool = false, title: String? = nil) {
        var attrs = "x=\"\(Self.n(x))\" y=\"\(Self.n(y))\" font-size=\"\(Self.n(size))\""
        if anchor != .start { attrs += " text-anchor=\"\(anchor.rawValue)\"" }
        if bold { attrs += " font-weight=\"bold\"" }
        if fill != "#222222" { attrs += " fill=\"\(fill)\"" }
        if monospace { attrs += " font-family=\"monospace\" xml:space=\"preserve\"" }
        if let rotate { attrs += " transform=\"rotate(\(Self.n(rotate)) \(Self.n(x)) \(Self.n(y)))\"" }
        body.append("<text \(attrs)>\(Self.titleElement(title))\(xmlEscaped(s))</text>")
    }

    /// The whole document.
    public func document(title: String) -> String {
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Self.n(width))\" height=\"\(Self.n(height))\" viewBox=\"0 0 \(Self.n(width)) \(Self.n(height))\" font-family=\"Helvetica, Arial, sans-serif\" fill=\"#222222\">\n"
        out += "<title>\(xmlEscaped(title))</title>\n"
        out += "<rect x=\"0\" y=\"0\" width=\"\(Self.n(width))\" height=\"\(Self.n(height))\" fill=\"#ffffff\"/>\n"
        out += body.joined(separator: "\n")
        out += "\n</svg>\n"
        return out
    }
}

/// Approximate rendered width of `s` at `size` px (no font metrics here: 0.6 em per character,
/// which over-estimates most proportional fonts and equals common monospace fonts).
func textWidth(_ s: String, size: Double) -> Double { Double(s.count) * size * 0.6 }

/// "Nice" axis ticks (steps of 1, 2 or 5 times a power of ten) covering [lo, hi].
public func niceTicks(_ lo: Double, _ hi: Double, count: Int = 5) -> [Double] {
    guard lo.isFinite, hi.isFinite else { return [0, 1] }
    var a = lo, b = hi
    if a == b { a -= a == 0 ? 1 : abs(a) * 0.1; b += b == 0 ? 1 : abs(b) * 0.1 }
    let raw = (b - a) / Double(max(1, count))
    let magnitude = pow(10, floor(log10(raw)))
    let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
    let start = floor(a / step) * step, end = ceil(b / step) * step
    var ticks: [Double] = []
    var v = start
    while v <= end + step * 1e-9 {
        ticks.append(abs(v) < step * 1e-9 ? 0 : v)
        v += step
    }
    return ticks
}

/// Draws a legend of swatches at (x, y), one entry per line, each in its series' style (a bar
/// chart's fills must be defined, `SVGBuilder.define`).
func drawLegend(_ svg: inout SVGBuilder, entries: [(name: String, style: SeriesStyle)], x: Double, y: Double,
                line: Bool = false) {
    for (i, e) in entries.enumerated() {
        let yy = y + Double(i) * 18
        if line {
            svg.line(x1: x, y1: yy + 6, x2: x + 22, y2: yy + 6, stroke: e.style.colour, width: 2.5, dash: e.style.dash)
        } else {
            svg.rect(x: x, y: yy, width: 12, height: 12, fill: e.style.fill)
        }
        svg.text(e.name, x: x + (line ? 28 : 20), y: yy + 10, size: 12)
    }
}

/// Height the legend needs, and its width.
func legendSize(_ names: [String]) -> (width: Double, height: Double) {
    (32 + (names.map { textWidth($0, size: 12) }.max() ?? 0), Double(names.count) * 18)
}
