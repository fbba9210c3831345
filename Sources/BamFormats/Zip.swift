import BamTensors
import CZlib
import Foundation

/// A read-only ZIP archive over a memory-mapped file (PKWARE APPNOTE.TXT 6.3: end of central
/// directory, central directory headers, local headers, ZIP64 extensions). torch.save writes its
/// checkpoints as ZIP files of *stored* entries whose data is 64-byte aligned, so stored entries are
/// returned as zero-copy views of the mapping; deflated entries are inflated through zlib.
/// Every size and offset is validated against the file before use.
public final class ZipArchive: @unchecked Sendable {
    public struct Entry: Sendable {
        public let name: String
        public let method: UInt16          // 0 stored, 8 deflated
        public let compressedSize: Int
        public let uncompressedSize: Int
        public let crc32: UInt32
        /// Absolute offset of the entry's (compressed) data.
        public let dataOffset: Int
    }

    /// Entries larger than this are refused (no checkpoint tensor comes close).
    public static let maxEntryBytes = 1 << 40
    public static let maxEntries = 1 << 20
    public static let maxDeflateRatio = 1032

    public let path: String
    public let file: MappedFile
    public let entries: [Entry]
    private let index: [String: Int]

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        self.file = file
        path = file.path
        let path = file.path
        let size = file.size
        func fail(_ what: String, entry: String? = nil) -> BamError { BamError.format(path, at: entry.map { .entry($0) }, "ZIP: \(what)") }
        func u16(_ o: Int) -> Int { Int(UInt16(littleEndian: file.bytes(at: o, count: 2).loadUnaligned(as: UInt16.self))) }
        func u32(_ o: Int) -> Int { Int(UInt32(littleEndian: file.bytes(at: o, count: 4).loadUnaligned(as: UInt32.self))) }
        func u64(_ o: Int) throws -> Int {
            let v = UInt64(littleEndian: file.bytes(at: o, count: 8).loadUnaligned(as: UInt64.self))
            guard v <= UInt64(Int.max / 2) else { throw fail("a 64-bit size or offset (\(v)) at byte \(o) is implausibly large") }
            return Int(v)
        }

        // End of central directory: 22 bytes + a comment of up to 65535 bytes, at the very end.
        guard size >= 22 else { throw fail("the file is \(size) bytes, too small for a ZIP archive (a torch.save checkpoint is one)") }
        var eocd = -1
        var p = size - 22
        let lowest = max(0, size - 22 - 65_535)
        while p >= lowest {
            if u32(p) == 0x0605_4b50, p + 22 + u16(p + 20) == size { eocd = p; break }
            p -= 1
        }
        guard eocd >= 0 else { throw fail("no end-of-central-directory record; the file is not a ZIP archive or is truncated") }
        var count = u16(eocd + 10)
        var cdSize = u32(eocd + 12)
        var cdOffset = u32(eocd + 16)
        // ZIP64: a locator 20 bytes before the EOCD points at the ZIP64 end record.
        if eocd >= 20, u32(eocd - 20) == 0x0706_4b50 {
            let recOffset = try u64(eocd - 20 + 8)
            guard recOffset >= 0, recOffset + 56 <= eocd else { throw fail("the ZIP64 end record offset \(recOffset) lies outside the file") }
            guard u32(recOffset) == 0x0606_4b50 else { throw fail("no ZIP64 end record at byte \(recOffset)") }
            count = try u64(recOffset + 32)
            cdSize = try u64(recOffset + 40)
            cdOffset = try u64(recOffset + 48)
        }
        guard count <= Self.maxEntries else { throw fail("\(count) entries, above the limit of \(Self.maxEntries)") }
        guard cdOffset <= size, cdSize <= size - cdOffset, count <= cdSize / 46 + (count == 0 ? 1 : 0) else {
            throw fail("the central directory (\(count) entries, \(cdSize) bytes at \(cdOffset)) does not fit in the \(size)-byte file — truncated or corrupt")
        }

        var list: [Entry] = []
        var idx: [String: Int] = [:]
        var q = cdOffset
        let cdEnd = cdOffset + cdSize
        for i in 0..<count {
            guard q + 46 <= cdEnd else { throw fail("central directory entry #\(i) runs past the directory's end") }
            guard u32(q) == 0x0201_4b50 else { throw fail("central directory entry #\(i) at byte \(q) has a bad signature") }
            let flags = u16(q + 8)
            let method = UInt16(u16(q + 10))
            let crc = UInt32(u32(q + 16))
            var csize = u32(q + 20)
            var usize = u32(q + 24)
            let nameLen = u16(q + 28), extraLen = u16(q + 30), commentLen = u16(q + 32)
            var localOffset = u32(q + 42)
            guard q + 46 + nameLen + extraLen + commentLen <= cdEnd else {
                throw fail("central directory entry #\(i)'s name/extra/comment run past the directory's end")
            }
            let name = String(decoding: file.bytes(at: q + 46, count: nameLen), as: UTF8.self)
            // ZIP64 extended information (header id 1): only the fields whose 32-bit value is 0xFFFFFFFF.
            var e = q + 46 + nameLen
            let extraEnd = e + extraLen
            while e + 4 <= extraEnd {
                let id = u16(e), len = u16(e + 2)
                guard e + 4 + len <= extraEnd else { throw fail("an extra field runs past its end", entry: name) }
                if id == 1 {
                    var f = e + 4
                    func next() throws -> Int {
                        guard f + 8 <= e + 4 + len else { throw fail("ZIP64 extra field too short", entry: name) }
                        defer { f += 8 }
                        return try u64(f)
                    }
                    if usize == 0xFFFF_FFFF { usize = try next() }
                    if csize == 0xFFFF_FFFF { csize = try next() }
                    if localOffset == 0xFFFF_FFFF { localOffset = try next() }
                }
                e += 4 + len
            }
            guard flags & 1 == 0 else { throw BamError.unsupported("ZIP: the entry is encrypted", file: path, at: .entry(name)) }
            guard method == 0 || method == 8 else {
                throw BamError.unsupported("ZIP: unsupported compression method", file: path, at: .entry(name), expected: "stored (0) or deflated (8)", found: "\(method)")
            }
            guard usize <= Self.maxEntryBytes, csize <= Self.maxEntryBytes else { throw fail("the entry is larger than \(Self.maxEntryBytes) bytes", entry: name) }
            if method == 0, csize != usize { throw fail("stored entry has compressed size \(csize) != size \(usize)", entry: name) }
            // Deflate cannot expand data more than 1032:1 (RFC 1951's longest match per shortest
            // code), so a larger claim is corrupt — and would otherwise size the inflate buffer.
            if method == 8, usize > Self.maxDeflateRatio * csize + 1024 {
                throw fail("deflated entry claims \(usize) bytes from \(csize) compressed, beyond deflate's 1032:1 limit — corrupt or hostile", entry: name)
            }
            guard localOffset + 30 <= size, u32(localOffset) == 0x0403_4b50 else {
                throw fail("no local header at byte \(localOffset)", entry: name)
            }
            let dataOffset = localOffset + 30 + u16(localOffset + 26) + u16(localOffset + 28)
            guard dataOffset <= size, csize <= size - dataOffset else {
                throw fail("its \(csize) bytes of data at byte \(dataOffset) run past the end of the file (\(size) bytes) — truncated", entry: name)
            }
            guard idx[name] == nil else { throw fail("the entry appears twice", entry: name) }
            idx[name] = list.count
            list.append(Entry(name: name, method: method, compressedSize: csize, uncompressedSize: usize, crc32: crc, dataOffset: dataOffset))
            q += 46 + nameLen + extraLen + commentLen
        }
        entries = list
        index = idx
    }

    public func entry(_ name: String) -> Entry? { index[name].map { entries[$0] } }

    /// A stored entry's bytes, zero-copy (valid while the archive lives); nil for deflated entries.
    public func storedBytes(_ e: Entry) -> UnsafeRawBufferPointer? {
        e.method == 0 ? file.bytes(at: e.dataOffset, count: e.compressedSize) : nil
    }

    /// An entry's bytes, inflated if needed, with the CRC-32 checked (use for small entries).
    public func data(_ e: Entry) throws -> [UInt8] {
        let out: [UInt8]
        if let s = storedBytes(e) { out = Array(s) } else { out = try inflate(e) }
        let crc = out.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt(out.count))) }
        guard crc == e.crc32 else {
            throw BamError.format(path, at: .entry(e.name), "ZIP: CRC-32 mismatch — the file is corrupt", expected: String(e.crc32, radix: 16), found: String(crc, radix: 16))
        }
        return out
    }

    /// Inflates a deflated entry into exactly `uncompressedSize` bytes.
    public func inflate(_ e: Entry) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: max(e.uncompressedSize, 1))
        let src = file.bytes(at: e.dataOffset, count: e.compressedSize)
        var stream = z_stream()
        // Negative window bits: raw deflate, no zlib header (ZIP's format).
        guard inflateInit2_(&stream, -MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw BamError.io("zlib inflateInit failed", file: path)
        }
        defer { inflateEnd(&stream) }
        var result: Int32 = Z_OK
        let total = e.uncompressedSize
        out.withUnsafeMutableBufferPointer { dst in
            var inPos = 0, outPos = 0
            let chunk = 1 << 30   // avail_in / avail_out are 32-bit
            while true {
                if stream.avail_in == 0, inPos < src.count {
                    let n = min(src.count - inPos, chunk)
                    stream.next_in = UnsafeMutablePointer(mutating: src.baseAddress!.assumingMemoryBound(to: Bytef.self)) + inPos
                    stream.avail_in = uInt(n)
                    inPos += n
                }
                if stream.avail_out == 0 {
                    let n = min(total - outPos, chunk)
                    stream.next_out = dst.baseAddress! + outPos
                    stream.avail_out = uInt(n)
                    outPos += n
                }
                let before = (stream.avail_in, stream.avail_out)
                result = CZlib.inflate(&stream, Z_NO_FLUSH)
                if result != Z_OK { break }
                if (stream.avail_in, stream.avail_out) == before { result = Z_BUF_ERROR; break }
            }
        }
        let produced = Int(stream.total_out)
        guard result == Z_STREAM_END, produced == total else {
            let why = result == Z_STREAM_END ? "inflates to \(produced) bytes, \(total) recorded"
                : result == Z_BUF_ERROR ? "is truncated or inflates to more than the \(total) bytes recorded"
                : "is corrupt (zlib error \(result))"
            throw BamError.format(path, at: .entry(e.name), "ZIP: deflate data \(why)")
        }
        if total == 0 { return [] }
        return out
    }
}
