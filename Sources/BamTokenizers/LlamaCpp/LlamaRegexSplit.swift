import BamFormats
import Foundation

// llama.cpp's `unicode_regex_split`: the pre-tokenizer of its BPE vocabularies. A pre-tokenizer is
// a list of regexes applied in turn; each one cuts every piece left by the previous ones into its
// matches and the gaps between them (gaps are kept as pieces, as HF's Split with Isolated does).
//
// llama.cpp does not run the regexes on the text as a Unicode regex engine would. Two of them have
// hand-written matchers (GPT-2's and Llama 3's); every other one goes to std::regex, either
// - on a "collapsed" copy of the text, when the regex names a category (\p{L}, \p{N}, \p{P},
//   \p{M}, \p{S}): every non-ASCII code point becomes one placeholder character per category (or a
//   vertical tab when it is whitespace) and each \p{X} in the regex becomes
//   [placeholder + the ASCII members of X]; or
// - on the code points with non-ASCII whitespace replaced by a vertical tab, otherwise.
// Both are reproduced here with NSRegularExpression on the same rewritten text and regex, with
// std::regex's ECMAScript meaning of \s, \S, \d and $ spelled out, so that the pieces are the ones
// llama.cpp cuts, including where that differs from a Unicode-aware engine (a non-ASCII letter is
// both "upper" and "lower" case to Tekken's adapted regex, for instance).

/// One regex of a llama.cpp pre-tokenizer, compiled the way llama.cpp runs it.
enum LlamaSplitRegex: Sendable {
    /// `unicode_regex_split_custom_gpt2`.
    case gpt2
    /// `unicode_regex_split_custom_llama3` (maxDigits 3) and `unicode_regex_split_custom_qwen2` (1).
    case llama3(maxDigits: Int)
    /// std::regex on the collapsed text.
    case collapsed(RegexBox)
    /// std::wregex on the code points.
    case wide(RegexBox)

    /// The regex strings llama.cpp hands to its hand-written matchers (`unicode_regex_split_custom`).
    static let custom: [String: LlamaSplitRegex] = [
        #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#: .gpt2,
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#:
            .llama3(maxDigits: 3),
        #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#:
            .llama3(maxDigits: 3),
        #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#:
            .llama3(maxDigits: 1),
    ]

    static func compile(_ pattern: String) throws -> LlamaSplitRegex {
        // Compared scalar by scalar: String's == would also accept canonically equivalent text.
        if let c = custom.first(where: { $0.key.unicodeScalars.elementsEqual(pattern.unicodeScalars) })?.value { return c }
        let usesCategories = LlamaCollapse.categories.contains { pattern.contains($0.escape) }
        if usesCategories, pattern.unicodeScalars.contains(where: { $0.value >= 0x80 }) {
            // llama.cpp refuses this combination too ("Regex includes both unicode categories and
            // non-ASCII characters - not supported").
            throw BamError.unsupported("pre-tokenizer regex \(jsonQuoted(pattern)) mixes \\p{..} categories with non-ASCII characters, which llama.cpp cannot run")
        }
        let rewritten = try LlamaCollapse.rewrite(pattern, collapseCategories: usesCategories)
        let regex: NSRegularExpression
        do { regex = try NSRegularExpression(pattern: rewritten, options: []) } catch {
            throw BamError.unsupported("pre-tokenizer regex \(jsonQuoted(pattern)) does not compile (rewritten as \(jsonQuoted(rewritten)): \(error.localizedDescription))")
        }
        return usesCategories ? .collapsed(RegexBox(regex)) : .wide(RegexBox(regex))
    }
}

/// The collapsed-text machinery of `unicode_regex_split`.
enum LlamaCollapse {
    struct Category {
        let escape: String
        let flag: LlamaCodepointFlags
        /// The character that stands for every non-ASCII code point of the category. llama.cpp uses
        /// the bytes 0xD1...0xD5 (0xD0 for code points of no listed category); a private-use code
        /// point plays that part here, since NSRegularExpression works on Unicode text.
        let placeholder: UInt32
        /// The ASCII members of the category, as regex class content.
        let asciiMembers: String
    }

    static let otherPlaceholder: UInt32 = 0xE0D0
    static let categories = [
        Category(escape: #"\p{N}"#, flag: .number, placeholder: 0xE0D1, asciiMembers: "0-9"),
        Category(escape: #"\p{L}"#, flag: .letter, placeholder: 0xE0D2, asciiMembers: "A-Za-z"),
        Category(escape: #"\p{P}"#, flag: .punctuation, placeholder: 0xE0D3,
                 asciiMembers: #"!-#%-*,-/:-;?-@\[-\]_\{\}"#),
        Category(escape: #"\p{M}"#, flag: .accentMark, placeholder: 0xE0D4, asciiMembers: ""),
        Category(escape: #"\p{S}"#, flag: .symbol, placeholder: 0xE0D5, asciiMembers: #"\$\+<->\^`\|~"#),
        // llama.cpp maps the letter subcategories to \p{L} as a whole.
        Category(escape: #"\p{Lu}"#, flag: .letter, placeholder: 0xE0D2, asciiMembers: "A-Za-z"),
        Category(escape: #"\p{Ll}"#, flag: .letter, placeholder: 0xE0D2, asciiMembers: "A-Za-z"),
        Category(escape: #"\p{Lt}"#, flag: .letter, placeholder: 0xE0D2, asciiMembers: "A-Za-z"),
        Category(escape: #"\p{Lm}"#, flag: .letter, placeholder: 0xE0D2, asciiMembers: "A-Za-z"),
        Category(escape: #"\p{Lo}"#, flag: .letter, placeholder: 0xE0D2, asciiMembers: "A-Za-z"),
    ]

    /// ECMAScript's \s in std::regex's "C" locale, as class content.
    static let spaceMembers = #"\t\n\x{0B}\f\r\x{20}"#

    /// The collapsed code point of `v`.
    @inline(__always)
    static func collapse(_ v: UInt32) -> UInt32 {
        if v < 0x80 { return v }
        let f = llamaFlags(v)
        if f.isWhitespace { return 0x0B }
        let c = f.category
        for cat in categories where cat.flag == c { return cat.placeholder }
        return otherPlaceholder
    }

    /// The regex in ICU syntax with std::regex's ECMAScript meaning: \s, \S and \d are the ASCII
    /// classes, `$` is the end of the piece only, and (when `collapseCategories`) each \p{X}
    /// becomes its placeholder plus its ASCII members, as llama.cpp rewrites it.
    static func rewrite(_ pattern: String, collapseCategories: Bool) throws -> String {
        let s = Array(pattern.unicodeScalars)
        var out = ""
        var inClass = false
        var i = 0
        func unsupported(_ what: String) -> BamError {
            BamError.unsupported("pre-tokenizer regex \(jsonQuoted(pattern)): \(what) is not supported")
        }
        while i < s.count {
            let c = s[i]
            if c == "\\", i + 1 < s.count {
                let n = s[i + 1]
                if n == "p", collapseCategories, i + 3 < s.count, s[i + 2] == "{",
                   let close = s[(i + 3)..<min(s.count, i + 11)].firstIndex(of: "}") {
                    let escape = String(String.UnicodeScalarView(s[i...close]))
                    guard let cat = categories.first(where: { $0.escape == escape }) else {
                        throw unsupported("the category \(escape)")
                    }
                    let members = String(format: "\\x{%X}", cat.placeholder) + cat.asciiMembers
                    out += inClass ? members : "[" + members + "]"
                    i = close + 1
                    continue
                }
                switch n {
                case "s": out += inClass ? spaceMembers : "[" + spaceMembers + "]"
                case "S":
                    guard !inClass else { throw unsupported("\\S inside a character class") }
                    out += "[^" + spaceMembers + "]"
                case "d": out += inClass ? "0-9" : "[0-9]"
                case "D":
                    guard !inClass else { throw unsupported("\\D inside a character class") }
                    out += "[^0-9]"
                case "w", "W", "b", "B", "p", "P":
                    throw unsupported("\\\(n)")
                default:
                    out.unicodeScalars.append(c)
                    out.unicodeScalars.append(n)
                }
                i += 2
                continue
            }
            if !inClass, c == "[" {
                inClass = true
                out += "["
                // A ']' right after '[' or '[^' is a literal in neither ECMAScript nor ICU; both
                // read it as the end of an empty class, so there is nothing to special-case.
                i += 1
                continue
            }
            if inClass, c == "]" {
                inClass = false
                out += "]"
                i += 1
                continue
            }
            if inClass, c == "[" || c == "&" || c == "-" && i + 1 < s.count && s[i + 1] == "-" {
                // ICU gives these a meaning inside a class (nested sets, && and --); ECMAScript does not.
                out += "\\"
                out.unicodeScalars.append(c)
                i += 1
                continue
            }
            if !inClass, c == "$" {
                // ECMAScript without multiline: the end of the piece only.
                out += #"(?![\x{0}-\x{10FFFF}])"#
                i += 1
                continue
            }
            out.unicodeScalars.append(c)
            i += 1
        }
        return out
    }
}

/// Splits text the way llama.cpp's `unicode_regex_split` does, piece lengths in code points.
struct LlamaRegexSplitter: Sendable {
    let regexes: [LlamaSplitRegex]

    init(_ pre: GGUFPreTokenizer) throws { regexes = try pre.regexes.map(LlamaSplitRegex.compile) }

    /// The pieces of `text`, as UTF-8 byte strings.
    func split(_ text: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
        let cpts = scalars(of: text)
        var offsets = [cpts.count]
        var collapsed: [UInt32]?
        var wide: [UInt32]?
        for regex in regexes {
            switch regex {
            case .gpt2: offsets = splitGPT2(cpts, offsets)
            case let .llama3(maxDigits): offsets = splitLlama3(cpts, offsets, maxDigits: maxDigits)
            case let .collapsed(box):
                if collapsed == nil { collapsed = cpts.map(LlamaCollapse.collapse) }
                offsets = splitWithRegex(box.regex, collapsed!, offsets)
            case let .wide(box):
                if wide == nil { wide = cpts.map { $0 > 0x7F && llamaFlags($0).isWhitespace ? 0x0B : $0 } }
                offsets = splitWithRegex(box.regex, wide!, offsets)
            }
        }
        // Code point lengths -> byte ranges of the text.
        var out: [ArraySlice<UInt8>] = []
        out.reserveCapacity(offsets.count)
        var byte = text.startIndex
        for len in offsets {
            let start = byte
            for _ in 0..<len { byte += utf8Length(text[byte]) }
            out.append(text[start..<byte])
        }
        return out
    }

    /// `unicode_regex_split_stl`: each piece is searched on its own (so `$` and look-aheads end at
    /// the piece's end); matches and the gaps between them become pieces.
    private func splitWithRegex(_ regex: NSRegularExpression, _ cpts: [UInt32], _ offsets: [Int]) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(offsets.count)
        var start = 0
        var utf16ToCpt: [Int] = []
        for len in offsets {
            defer { start += len }
            guard len > 0 else { continue }
            var view = String.UnicodeScalarView()
            utf16ToCpt.removeAll(keepingCapacity: true)
            for k in 0..<len {
                let scalar = Unicode.Scalar(cpts[start + k]) ?? "\u{FFFD}"
                for _ in 0..<scalar.utf16.count { utf16ToCpt.append(k) }
                view.append(scalar)
            }
            utf16ToCpt.append(len)
            let piece = String(view)
            var last = 0  // code points of the piece already emitted
            for m in regex.matches(in: piece, options: [], range: NSRange(location: 0, length: utf16ToCpt.count - 1)) {
                let r = m.range
                guard r.location != NSNotFound else { continue }
                let ms = utf16ToCpt[r.location], me = utf16ToCpt[r.location + r.length]
                if ms > last { out.append(ms - last) }
                // std::regex reports an empty match as an empty piece, which tokenizes to nothing.
                if me > ms { out.append(me - ms) }
                last = me
            }
            if last < len { out.append(len - last) }
        }
        return out
    }
}

// MARK: - llama.cpp's hand-written matchers

/// `unicode_regex_split_custom_gpt2`: GPT-2's regex
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` on llama.cpp's classes.
func splitGPT2(_ cpts: [UInt32], _ offsets: [Int]) -> [Int] {
    var out: [Int] = []
    out.reserveCapacity(offsets.count)
    var start = 0
    for len in offsets {
        let ini = start, end = start + len
        start = end
        @inline(__always) func flags(_ p: Int) -> LlamaCodepointFlags { p >= ini && p < end ? llamaFlags(cpts[p]) : [] }
        var prev = ini
        @inline(__always) func add(_ e: Int) {
            if e > prev { out.append(e - prev) }
            prev = e
        }
        var pos = ini
        while pos < end {
            let c = cpts[pos]
            let f = flags(pos)
            // 's|'t|'re|'ve|'m|'ll|'d, case-sensitive
            if c == 0x27, pos + 1 < end {
                let n = cpts[pos + 1]
                if n == 0x73 || n == 0x74 || n == 0x6D || n == 0x64 { pos += 2; add(pos); continue }
                if pos + 2 < end {
                    let nn = cpts[pos + 2]
                    if (n == 0x72 && nn == 0x65) || (n == 0x76 && nn == 0x65) || (n == 0x6C && nn == 0x6C) {
                        pos += 3; add(pos); continue
                    }
                }
            }
            var f2 = c == 0x20 ? flags(pos + 1) : f
            //  ?\p{L}+
            if f2.isLetter {
                if c == 0x20 { pos += 1 }
                while f2.isLetter { pos += 1; f2 = flags(pos) }
                add(pos); continue
            }
            //  ?\p{N}+
            if f2.isNumber {
                if c == 0x20 { pos += 1 }
                while f2.isNumber { pos += 1; f2 = flags(pos) }
                add(pos); continue
            }
            //  ?[^\s\p{L}\p{N}]+
            if !(f2.isWhitespace || f2.isLetter || f2.isNumber), !f2.isEmpty {
                if c == 0x20 { pos += 1 }
                while !(f2.isWhitespace || f2.isLetter || f2.isNumber), !f2.isEmpty { pos += 1; f2 = flags(pos) }
                add(pos); continue
            }
            var spaces = 0
            while flags(pos + spaces).isWhitespace { spaces += 1 }
            // \s+(?!\S)
            if spaces > 1, pos + spaces < end { pos += spaces - 1; add(pos); continue }
            // \s+
            if spaces > 0 { pos += spaces; add(pos); continue }
            pos += 1
            add(pos)
        }
    }
    return out
}

/// `unicode_regex_split_custom_llama3`: Llama 3's regex
/// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
/// on llama.cpp's classes (its case folding is `unicode_tolower`, so U+017F is not an s here);
/// with `maxDigits` 1, `unicode_regex_split_custom_qwen2` (\p{N} instead of \p{N}{1,3}).
func splitLlama3(_ cpts: [UInt32], _ offsets: [Int], maxDigits: Int) -> [Int] {
    var out: [Int] = []
    out.reserveCapacity(offsets.count)
    var start = 0
    for len in offsets {
        let ini = start, end = start + len
        start = end
        @inline(__always) func flags(_ p: Int) -> LlamaCodepointFlags { p >= ini && p < end ? llamaFlags(cpts[p]) : [] }
        @inline(__always) func cpt(_ p: Int) -> UInt32 { p >= ini && p < end ? cpts[p] : 0xFFFF_FFFF }
        var prev = ini
        @inline(__always) func add(_ e: Int) {
            if e > prev { out.append(e - prev) }
            prev = e
        }
        var pos = ini
        while pos < end {
            let c = cpts[pos]
            let f = flags(pos)
            // (?i:'s|'t|'re|'ve|'m|'ll|'d)
            if c == 0x27, pos + 1 < end {
                let n = llamaToLower(cpts[pos + 1])
                if n == 0x73 || n == 0x74 || n == 0x6D || n == 0x64 { pos += 2; add(pos); continue }
                if pos + 2 < end {
                    let nn = llamaToLower(cpts[pos + 2])
                    if (n == 0x72 && nn == 0x65) || (n == 0x76 && nn == 0x65) || (n == 0x6C && nn == 0x6C) {
                        pos += 3; add(pos); continue
                    }
                }
            }
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if !(c == 0x0D || c == 0x0A || f.isNumber) {
                if f.isLetter || flags(pos + 1).isLetter {
                    pos += 1
                    while flags(pos).isLetter { pos += 1 }
                    add(pos); continue
                }
            }
            // \p{N}{1,maxDigits}
            if f.isNumber {
                var run = pos
                while flags(pos).isNumber {
                    pos += 1
                    if pos - run >= maxDigits { add(pos); run = pos }
                }
                add(pos); continue
            }
            //  ?[^\s\p{L}\p{N}]+[\r\n]*
            var f2 = c == 0x20 ? flags(pos + 1) : f
            // (llama.cpp tests the current code point's flags here, not f2's, unlike its GPT-2 matcher.)
            if !(f2.isWhitespace || f2.isLetter || f2.isNumber), !f.isEmpty {
                if c == 0x20 { pos += 1 }
                while !(f2.isWhitespace || f2.isLetter || f2.isNumber), !f2.isEmpty { pos += 1; f2 = flags(pos) }
                while cpt(pos) == 0x0D || cpt(pos) == 0x0A { pos += 1 }
                add(pos); continue
            }
            var spaces = 0
            var afterLastNewline = 0
            while flags(pos + spaces).isWhitespace {
                let w = cpt(pos + spaces)
                if w == 0x0D || w == 0x0A { afterLastNewline = pos + spaces + 1 }
                spaces += 1
            }
            // \s*[\r\n]+
            if afterLastNewline > 0 { pos = afterLastNewline; add(pos); continue }
            // \s+(?!\S)
            if spaces > 1, pos + spaces < end { pos += spaces - 1; add(pos); continue }
            // \s+
            if spaces > 0 { pos += spaces; add(pos); continue }
            pos += 1
            add(pos)
        }
    }
    return out
}
