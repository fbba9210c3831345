import Foundation

// Regular expressions for Split pre-tokenizers, Replace normalizers and decoders.
//
// HF runs these with Oniguruma on UTF-8. Foundation's NSRegularExpression (ICU, UTF-16) is slow on
// Linux, so the patterns that every byte-level tokenizer uses (GPT-2's, Llama 3's, Qwen 2's) get
// a hand-written matcher, chosen by exact pattern string. Each is a direct transcription of the
// backtracking semantics of its pattern (leftmost alternative wins; see the comments inline) and is
// held to NSRegularExpression by the tests. Any other pattern goes to NSRegularExpression, with
// offsets converted from UTF-16 back to UTF-8.

/// NSRegularExpression is immutable and documented thread-safe; it is not marked Sendable.
final class RegexBox: @unchecked Sendable {
    let regex: NSRegularExpression
    init(_ regex: NSRegularExpression) { self.regex = regex }
}

enum CompiledPattern: Sendable {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// Llama 3's pattern (maxDigits 3) and Qwen 2's (maxDigits 1). `foldLongS`: the contractions
    /// are `(?i:...)`, whose case folding also takes U+017F (long s) for an s; llama.cpp's rewrites
    /// (`(?:'[sS]|...)`) spell the cases out and do not.
    case llama3(maxDigits: Int, foldLongS: Bool)
    case foundation(RegexBox)

    static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3Pattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Pattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    /// llama.cpp's rewrites of the two (what bam-mix writes into tokenizer.json for GGUF vocabularies).
    static let llama3CasePattern =
        #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2CasePattern =
        #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// Compiles `pattern`, using a dedicated matcher when one exists and `allowFast` is set.
    static func compile(_ pattern: String, allowFast: Bool = true) throws -> CompiledPattern {
        if allowFast {
            if pattern.utf8.elementsEqual(gpt2Pattern.utf8) { return .gpt2 }
            if pattern.utf8.elementsEqual(llama3Pattern.utf8) { return .llama3(maxDigits: 3, foldLongS: true) }
            if pattern.utf8.elementsEqual(qwen2Pattern.utf8) { return .llama3(maxDigits: 1, foldLongS: true) }
            if pattern.utf8.elementsEqual(llama3CasePattern.utf8) { return .llama3(maxDigits: 3, foldLongS: false) }
            if pattern.utf8.elementsEqual(qwen2CasePattern.utf8) { return .llama3(maxDigits: 1, foldLongS: false) }
        }
        // Oniguruma's default (Ruby) syntax makes ^ and $ line anchors.
        return .foundation(RegexBox(try NSRegularExpression(pattern: pattern, options: [.anchorsMatchLines])))
    }

    var isFast: Bool {
        if case .foundation = self { return false }
        return true
    }

    /// Appends the (start, end) byte offsets of the matches found in p[start..<end], left to right,
    /// non-overlapping, as a find-all would.
    func matches(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, into out: inout [(Int, Int)]) {
        switch self {
        case .gpt2:
            var i = start
            while i < end {
                let e = gpt2Match(p, i, end)
                out.append((i, e))
                i = e
            }
        case let .llama3(maxDigits, foldLongS):
            var i = start
            while i < end {
                let e = llama3Match(p, i, end, maxDigits, foldLongS)
                out.append((i, e))
                i = e
            }
        case let .foundation(box):
            foundationMatches(box.regex, p, start, end, into: &out)
        }
    }
}

private func foundationMatches(_ regex: NSRegularExpression, _ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int,
                               into out: inout [(Int, Int)]) {
    guard end > start else { return }
    let string = String(decoding: UnsafeBufferPointer(start: p + start, count: end - start), as: UTF8.self)
    // UTF-16 offset -> UTF-8 offset, for every scalar boundary.
    var u16ToU8 = [Int](repeating: 0, count: string.utf16.count + 1)
    var u16 = 0, u8 = 0
    for s in string.unicodeScalars {
        u16ToU8[u16] = u8
        let w = s.value >= 0x10000 ? 2 : 1
        if w == 2 { u16ToU8[u16 + 1] = u8 }
        u16 += w
        u8 += s.utf8.count
    }
    u16ToU8[u16] = u8
    for m in regex.matches(in: string, options: [], range: NSRange(location: 0, length: u16)) {
        let r = m.range
        guard r.location != NSNotFound else { continue }
        out.append((start + u16ToU8[r.location], start + u16ToU8[r.location + r.length]))
    }
}

// MARK: - Hand-written matchers

@inline(__always) private func cls(_ p: UnsafePointer<UInt8>, _ i: Int) -> (UInt8, Int) {
    let b = p[i]
    if b < 0x80 { return (asciiClass[Int(b)], 1) }
    let (v, n) = decodeUTF8(p, i)
    return (charClass(v), n)
}

private let asciiClass: [UInt8] = (0..<128).map { charClass(UInt32($0)) }

private let L = CharClass.letter, N = CharClass.number, S = CharClass.space

/// End of the run of characters whose class intersects `want` (when `want != 0`) or has none of
/// L, N, \s (when `want == 0`: the "other" class [^\s\p{L}\p{N}]).
@inline(__always) private func run(_ p: UnsafePointer<UInt8>, _ i: Int, _ end: Int, _ want: UInt8) -> Int {
    var j = i
    while j < end {
        let (c, n) = cls(p, j)
        if want == 0 ? (c & (L | N | S)) != 0 : (c & want) == 0 { break }
        j += n
    }
    return j
}

/// `\s+(?!\S)|\s+` at a whitespace character: the longest whitespace run, minus its last character
/// when a non-space follows and the run is longer than one (the look-ahead forces the backtrack).
@inline(__always) private func whitespaceMatch(_ p: UnsafePointer<UInt8>, _ i: Int, _ end: Int) -> Int {
    var j = i, lastStart = i, count = 0
    while j < end {
        let (c, n) = cls(p, j)
        if c & S == 0 { break }
        lastStart = j
        j += n
        count += 1
    }
    if j == end || count < 2 { return j }
    return lastStart
}

/// One match of GPT-2's pattern starting at `i` (the pattern matches at every position).
private func gpt2Match(_ p: UnsafePointer<UInt8>, _ i: Int, _ end: Int) -> Int {
    let b = p[i]
    // 's|'t|'re|'ve|'m|'ll|'d  (case-sensitive)
    if b == 0x27, i + 1 < end {
        let c1 = p[i + 1]
        if c1 == 0x73 || c1 == 0x74 || c1 == 0x6D || c1 == 0x64 { return i + 2 }  // s t m d
        if i + 2 < end {
            let c2 = p[i + 2]
            if (c1 == 0x72 && c2 == 0x65) || (c1 == 0x76 && c2 == 0x65) || (c1 == 0x6C && c2 == 0x6C) { return i + 3 }
        }
    }
    //  ?\p{L}+ |  ?\p{N}+ |  ?[^\s\p{L}\p{N}]+  with the optional leading space
    if b == 0x20, i + 1 < end {
        let (c1, _) = cls(p, i + 1)
        if c1 & L != 0 { return run(p, i + 1, end, L) }
        if c1 & N != 0 { return run(p, i + 1, end, N) }
        if c1 & (L | N | S) == 0 { return run(p, i + 1, end, 0) }
    }
    let (c, _) = cls(p, i)
    if c & L != 0 { return run(p, i, end, L) }
    if c & N != 0 { return run(p, i, end, N) }
    if c & S == 0 { return run(p, i, end, 0) }
    return whitespaceMatch(p, i, end)
}

@inline(__always) private func lower(_ v: UInt32) -> UInt32 { v >= 0x41 && v <= 0x5A ? v + 0x20 : v }

/// One match of Llama 3's pattern (Qwen 2's when maxDigits == 1) starting at `i`.
private func llama3Match(_ p: UnsafePointer<UInt8>, _ i: Int, _ end: Int, _ maxDigits: Int, _ foldLongS: Bool) -> Int {
    // (?i:'s|'t|'re|'ve|'m|'ll|'d). Case folding also maps U+017F (long s) to s.
    if p[i] == 0x27, i + 1 < end {
        let (v1, n1) = decodeUTF8(p, i + 1)
        let c1 = v1 == 0x17F && foldLongS ? 0x73 : lower(v1)
        if c1 == 0x73 || c1 == 0x74 || c1 == 0x6D || c1 == 0x64 { return i + 1 + n1 }
        if i + 1 + n1 < end {
            let (v2, n2) = decodeUTF8(p, i + 1 + n1)
            let c2 = v2 == 0x17F && foldLongS ? 0x73 : lower(v2)
            if (c1 == 0x72 && c2 == 0x65) || (c1 == 0x76 && c2 == 0x65) || (c1 == 0x6C && c2 == 0x6C) {
                return i + 1 + n1 + n2
            }
        }
    }
    let (v0, n0) = decodeUTF8(p, i)
    let c0 = charClass(v0)
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if c0 & (L | N) == 0, v0 != 0x0D, v0 != 0x0A, i + n0 < end {
        let (c1, n1) = cls(p, i + n0)
        if c1 & L != 0 { return run(p, i + n0 + n1, end, L) }
    }
    if c0 & L != 0 { return run(p, i + n0, end, L) }
    // \p{N}{1,maxDigits}
    if c0 & N != 0 {
        var j = i + n0, k = 1
        while k < maxDigits, j < end {
            let (c, n) = cls(p, j)
            if c & N == 0 { break }
            j += n
            k += 1
        }
        return j
    }
    //  ?[^\s\p{L}\p{N}]+[\r\n]*
    var otherStart = -1
    if v0 == 0x20, i + 1 < end {
        let (c1, _) = cls(p, i + 1)
        if c1 & (L | N | S) == 0 { otherStart = i + 1 }
    }
    if otherStart < 0, c0 & S == 0 { otherStart = i }
    if otherStart >= 0 {
        var j = run(p, otherStart, end, 0)
        while j < end, p[j] == 0x0D || p[j] == 0x0A { j += 1 }
        return j
    }
    // \s*[\r\n]+ : the whitespace run up to and including its last \r or \n, if it has one.
    var j = i, lastNewline = -1
    while j < end {
        let (c, n) = cls(p, j)
        if c & S == 0 { break }
        if p[j] == 0x0D || p[j] == 0x0A { lastNewline = j + 1 }
        j += n
    }
    if lastNewline >= 0 { return lastNewline }
    // \s+(?!\S)|\s+
    return whitespaceMatch(p, i, end)
}

// MARK: - Public testing hook

/// A pre-tokenizer regex as BamTokenizers runs it: the dedicated matcher for the GPT-2, Llama 3 and
/// Qwen 2 patterns (and llama.cpp's rewrites of the last two), NSRegularExpression otherwise. Public so that tests and tools can hold the
/// dedicated matchers to NSRegularExpression.
public struct PreTokenizerPattern: Sendable {
    let fast: CompiledPattern?
    let slow: CompiledPattern

    public init(_ pattern: String) throws {
        let compiledFast = try CompiledPattern.compile(pattern)
        fast = compiledFast.isFast ? compiledFast : nil
        slow = try CompiledPattern.compile(pattern, allowFast: false)
    }

    /// Whether a dedicated matcher exists for this pattern.
    public var hasDedicatedMatcher: Bool { fast != nil }

    /// The matches in `text` as UTF-8 byte ranges.
    public func matches(in text: String, useDedicatedMatcher: Bool = true) -> [Range<Int>] {
        let m = (useDedicatedMatcher ? fast : nil) ?? slow
        var bytes = Array(text.utf8)
        bytes.append(0)  // keep baseAddress non-nil for the empty string
        var out: [(Int, Int)] = []
        bytes.withUnsafeBufferPointer { m.matches($0.baseAddress!, 0, $0.count - 1, into: &out) }
        return out.map { $0.0..<$0.1 }
    }
}
