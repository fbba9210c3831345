import Foundation

// Code point classes as llama.cpp's unicode.cpp sees them (`unicode_cpt_flags`): one general
// category group per code point (L, N, P, S, M, Z, C, or undefined for unassigned ones) plus the
// White_Space property. llama.cpp builds its table from UnicodeData.txt; here the same groups come
// from Swift's Unicode properties. Compared over all of U+0000...U+10FFFF against the table of the
// llama.cpp checked for issue 14, they differ only on ~10,000 code points that Swift's newer
// Unicode assigns and llama.cpp's still calls unassigned (new scripts and symbols, no character of
// a common language).

/// llama.cpp's `unicode_cpt_flags` for one code point.
struct LlamaCodepointFlags: OptionSet, Sendable {
    let rawValue: UInt16

    static let undefined = LlamaCodepointFlags(rawValue: 0x0001)
    static let number = LlamaCodepointFlags(rawValue: 0x0002)       // \p{N}
    static let letter = LlamaCodepointFlags(rawValue: 0x0004)       // \p{L}
    static let separator = LlamaCodepointFlags(rawValue: 0x0008)    // \p{Z}
    static let accentMark = LlamaCodepointFlags(rawValue: 0x0010)   // \p{M}
    static let punctuation = LlamaCodepointFlags(rawValue: 0x0020)  // \p{P}
    static let symbol = LlamaCodepointFlags(rawValue: 0x0040)       // \p{S}
    static let control = LlamaCodepointFlags(rawValue: 0x0080)      // \p{C}
    static let whitespace = LlamaCodepointFlags(rawValue: 0x0100)   // White_Space

    static let categories: LlamaCodepointFlags = [.undefined, .number, .letter, .separator, .accentMark,
                                                   .punctuation, .symbol, .control]

    var isLetter: Bool { contains(.letter) }
    var isNumber: Bool { contains(.number) }
    var isWhitespace: Bool { contains(.whitespace) }
    /// The category bits only (llama.cpp's `category_flag()`).
    var category: LlamaCodepointFlags { intersection(.categories) }
}

private func computeLlamaFlags(_ v: UInt32) -> LlamaCodepointFlags {
    if v >= 0xD800 && v <= 0xDFFF { return .control }  // surrogates (Cs); never in valid UTF-8
    guard let s = Unicode.Scalar(v) else { return .undefined }  // beyond U+10FFFF
    let p = s.properties
    var f: LlamaCodepointFlags
    switch p.generalCategory {
    case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: f = .letter
    case .decimalNumber, .letterNumber, .otherNumber: f = .number
    case .spaceSeparator, .lineSeparator, .paragraphSeparator: f = .separator
    case .nonspacingMark, .spacingMark, .enclosingMark: f = .accentMark
    case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
         .finalPunctuation, .otherPunctuation: f = .punctuation
    case .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol: f = .symbol
    case .control, .format, .surrogate, .privateUse: f = .control
    case .unassigned: f = .undefined
    @unknown default: f = .undefined
    }
    if p.isWhitespace { f.insert(.whitespace) }
    return f
}

/// Flags of the Basic Multilingual Plane, computed once on first use.
private let bmpLlamaFlags: [LlamaCodepointFlags] = (0..<0x10000).map { computeLlamaFlags(UInt32($0)) }

@inline(__always)
func llamaFlags(_ v: UInt32) -> LlamaCodepointFlags {
    v < 0x10000 ? bmpLlamaFlags.withUnsafeBufferPointer { $0[Int(v)] } : computeLlamaFlags(v)
}

/// llama.cpp's `unicode_tolower`: the simple lowercase mapping (the code point itself when the
/// full mapping is not a single code point).
func llamaToLower(_ v: UInt32) -> UInt32 {
    if v < 0x80 { return v >= 0x41 && v <= 0x5A ? v + 0x20 : v }
    guard let s = Unicode.Scalar(v) else { return v }
    let lower = s.properties.lowercaseMapping.unicodeScalars
    return lower.count == 1 ? lower.first!.value : v
}

