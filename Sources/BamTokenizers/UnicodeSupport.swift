import Foundation

// Character classes, UTF-8 decoding and the GPT-2 byte <-> unicode table.
//
// HF tokenizers works on Rust `char`s (Unicode scalars) and UTF-8 byte offsets; everything here
// does the same, on [UInt8] buffers that always hold valid UTF-8 (they come from a Swift String or
// from our own transformations of one).

/// Bit flags for one scalar.
enum CharClass {
    /// \p{L}: general category Lu, Ll, Lt, Lm, Lo.
    static let letter: UInt8 = 1
    /// \p{N}: Nd, Nl, No (also Rust's `char::is_numeric`).
    static let number: UInt8 = 2
    /// \s in Oniguruma, ICU and Rust's regex: the White_Space property (includes U+000B, U+0085,
    /// U+3000; excludes U+001C..U+001F and U+200B).
    static let space: UInt8 = 4
    /// \w in Rust's regex: Alphabetic, M, Nd, Pc, Join_Control.
    static let word: UInt8 = 8
    /// General category P* (HF's `is_punctuation` adds ASCII punctuation, see `isPunctuation`).
    static let punctuation: UInt8 = 16
    /// Mn (what HF's StripAccents removes).
    static let nonspacingMark: UInt8 = 32
}

private func computeClass(_ v: UInt32) -> UInt8 {
    guard let s = Unicode.Scalar(v) else { return 0 }
    let p = s.properties
    var c: UInt8 = 0
    switch p.generalCategory {
    case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
        c |= CharClass.letter
    case .decimalNumber, .letterNumber, .otherNumber:
        c |= CharClass.number
    case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
         .finalPunctuation, .otherPunctuation:
        c |= CharClass.punctuation
    case .nonspacingMark:
        c |= CharClass.nonspacingMark
    default:
        break
    }
    if p.isWhitespace { c |= CharClass.space }
    switch p.generalCategory {
    case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation:
        c |= CharClass.word
    default:
        if p.isAlphabetic || p.isJoinControl { c |= CharClass.word }
    }
    return c
}

/// Classes of the Basic Multilingual Plane, computed once on first use (~65k property lookups).
private let bmpClasses: [UInt8] = (0..<0x10000).map { computeClass(UInt32($0)) }

@inline(__always)
func charClass(_ v: UInt32) -> UInt8 {
    v < 0x10000 ? bmpClasses.withUnsafeBufferPointer { $0[Int(v)] } : computeClass(v)
}

/// HF's `is_punctuation`: ASCII punctuation or a Unicode P* character.
@inline(__always)
func isPunctuation(_ v: UInt32) -> Bool {
    if v < 0x80 {
        let b = UInt8(v)
        return (b >= 0x21 && b <= 0x2F) || (b >= 0x3A && b <= 0x40) || (b >= 0x5B && b <= 0x60) || (b >= 0x7B && b <= 0x7E)
    }
    return charClass(v) & CharClass.punctuation != 0
}

/// Decodes the scalar starting at `i` of valid UTF-8.
@inline(__always)
func decodeUTF8(_ p: UnsafePointer<UInt8>, _ i: Int) -> (scalar: UInt32, length: Int) {
    let b0 = UInt32(p[i])
    if b0 < 0x80 { return (b0, 1) }
    if b0 < 0xE0 { return (((b0 & 0x1F) << 6) | (UInt32(p[i + 1]) & 0x3F), 2) }
    if b0 < 0xF0 {
        return (((b0 & 0x0F) << 12) | ((UInt32(p[i + 1]) & 0x3F) << 6) | (UInt32(p[i + 2]) & 0x3F), 3)
    }
    return (((b0 & 0x07) << 18) | ((UInt32(p[i + 1]) & 0x3F) << 12) | ((UInt32(p[i + 2]) & 0x3F) << 6)
        | (UInt32(p[i + 3]) & 0x3F), 4)
}

/// Length in bytes of the UTF-8 sequence that starts with `b0`.
@inline(__always)
func utf8Length(_ b0: UInt8) -> Int {
    b0 < 0x80 ? 1 : b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : 4
}

/// Scalars of a valid UTF-8 buffer.
func scalars(of bytes: [UInt8]) -> [UInt32] { scalars(of: bytes[...]) }

/// Scalars of a valid UTF-8 slice (a Swift string's bytes, or bytes built from one).
func scalars(of bytes: ArraySlice<UInt8>) -> [UInt32] {
    var out: [UInt32] = []
    out.reserveCapacity(bytes.count)
    bytes.withUnsafeBufferPointer { b in
        guard let p = b.baseAddress else { return }
        var i = 0
        while i < b.count {
            let (v, n) = decodeUTF8(p, i)
            out.append(v)
            i += n
        }
    }
    return out
}

func utf8(of scalars: [UInt32]) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(scalars.count)
    for v in scalars { appendUTF8(v, to: &out) }
    return out
}

// MARK: - GPT-2 byte-level alphabet

/// GPT-2's `bytes_to_unicode`: printable Latin-1 bytes map to themselves, the other 68 bytes to
/// U+0100.. in byte order, so that every byte is a visible character in the vocabulary.
let byteToUnicode: [UInt32] = {
    var table = [UInt32](repeating: 0, count: 256)
    var n: UInt32 = 0
    for b in 0..<256 {
        if (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b) {
            table[b] = UInt32(b)
        } else {
            table[b] = 0x100 + n
            n += 1
        }
    }
    return table
}()

/// The inverse of `byteToUnicode`, indexed by scalar (all are below U+0144); -1 when not a byte char.
let unicodeToByte: [Int16] = {
    var table = [Int16](repeating: -1, count: 0x144)
    for b in 0..<256 { table[Int(byteToUnicode[b])] = Int16(b) }
    return table
}()

/// UTF-8 of the byte-level character of each byte.
let byteLevelUTF8: [[UInt8]] = (0..<256).map { b in
    var out: [UInt8] = []
    appendUTF8(byteToUnicode[b], to: &out)
    return out
}

/// The raw bytes a byte-level token stands for, or nil if some character is not in the alphabet.
func byteLevelDecode(_ token: [UInt8]) -> [UInt8]? {
    var out: [UInt8] = []
    out.reserveCapacity(token.count)
    var ok = true
    token.withUnsafeBufferPointer { b in
        guard let p = b.baseAddress else { return }
        var i = 0
        while i < b.count {
            let (v, n) = decodeUTF8(p, i)
            i += n
            guard v < 0x144, unicodeToByte[Int(v)] >= 0 else { ok = false; return }
            out.append(UInt8(unicodeToByte[Int(v)]))
        }
    }
    return ok ? out : nil
}

// MARK: - Byte-string helpers

extension Array where Element == UInt8 {
    func hasPrefix(_ prefix: [UInt8]) -> Bool {
        count >= prefix.count && self[0..<prefix.count].elementsEqual(prefix)
    }
}

/// Replaces every non-overlapping occurrence of `pattern` (scanning left to right) by `content`.
func replaceAll(_ bytes: [UInt8], _ pattern: [UInt8], _ content: [UInt8]) -> [UInt8] {
    guard !pattern.isEmpty, bytes.count >= pattern.count else { return bytes }
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count)
    var i = 0
    let first = pattern[0]
    let n = pattern.count
    while i < bytes.count {
        if bytes[i] == first, i + n <= bytes.count, bytes[i..<i + n].elementsEqual(pattern) {
            out.append(contentsOf: content)
            i += n
        } else {
            out.append(bytes[i])
            i += 1
        }
    }
    return out
}

/// Byte offsets of every non-overlapping occurrence of `pattern` in bytes[start..<end].
func findAll(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, _ pattern: [UInt8]) -> [(Int, Int)] {
    var out: [(Int, Int)] = []
    let n = pattern.count
    guard n > 0 else { return out }
    let first = pattern[0]
    var i = start
    while i + n <= end {
        if p[i] == first, pattern.withUnsafeBufferPointer({ memcmp(p + i, $0.baseAddress!, n) == 0 }) {
            out.append((i, i + n))
            i += n
        } else {
            i += 1
        }
    }
    return out
}

/// Appends the UTF-8 encoding of scalar value `v`.
func appendUTF8(_ v: UInt32, to out: inout [UInt8]) {
    if v < 0x80 {
        out.append(UInt8(v))
    } else if v < 0x800 {
        out.append(UInt8(0xC0 | (v >> 6)))
        out.append(UInt8(0x80 | (v & 0x3F)))
    } else if v < 0x10000 {
        out.append(UInt8(0xE0 | (v >> 12)))
        out.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
        out.append(UInt8(0x80 | (v & 0x3F)))
    } else {
        out.append(UInt8(0xF0 | (v >> 18)))
        out.append(UInt8(0x80 | ((v >> 12) & 0x3F)))
        out.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
        out.append(UInt8(0x80 | (v & 0x3F)))
    }
}
