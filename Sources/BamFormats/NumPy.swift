import BamTensors
import Foundation

/// NumPy .npy files (format version 1.0, https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
/// magic `\x93NUMPY`, version 1 0, u16 header length, a Python-dict header padded with spaces and
/// ending in `\n` so that the data starts at a multiple of 64, then the data (C order).
public enum NumPy {
    public static func write(_ values: UnsafePointer<Float>, shape: [Int], to url: URL) throws {
        try write(UnsafeRawBufferPointer(start: values, count: shape.reduce(1, *) * 4), descr: "<f4", shape: shape, to: url)
    }

    /// An int32 array (e.g. token batches).
    public static func write(int32 values: [Int32], shape: [Int], to url: URL) throws {
        precondition(values.count == shape.reduce(1, *))
        try values.withUnsafeBytes { try write($0, descr: "<i4", shape: shape, to: url) }
    }

    /// Little-endian data of `descr` (the platforms bam-mix runs on are little-endian), written atomically.
    private static func write(_ data: UnsafeRawBufferPointer, descr: String, shape: [Int], to url: URL) throws {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        bytes += [UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)]
        bytes += Array(header.utf8)
        let w = try AtomicFileWriter(url: url)
        try w.write(bytes)
        try w.write(data)
        try w.commit()
    }

    /// Reads a little-endian float32 or int64/int32 .npy (C order) as float32 values and its shape.
    public static func readFloat(_ url: URL) throws -> (shape: [Int], values: [Float]) {
        let (shape, descr, data) = try readRaw(url)
        let n = shape.reduce(1, *)
        switch descr {
        case "<f4":
            guard data.count == n * 4 else { throw BamError.format(url.path, "data size", expected: "\(n * 4) bytes", found: "\(data.count) bytes") }
            return (shape, data.withUnsafeBytes { p in (0..<n).map { p.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) } })
        default:
            throw BamError.unsupported("dtype", file: url.path, expected: "<f4", found: descr)
        }
    }

    /// Reads an integer .npy (<i8 or <i4) as Ints.
    public static func readInts(_ url: URL) throws -> (shape: [Int], values: [Int]) {
        let (shape, descr, data) = try readRaw(url)
        let n = shape.reduce(1, *)
        switch descr {
        case "<i8":
            guard data.count == n * 8 else { throw BamError.format(url.path, "truncated") }
            return (shape, data.withUnsafeBytes { p in (0..<n).map { Int(p.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) } })
        case "<i4":
            guard data.count == n * 4 else { throw BamError.format(url.path, "truncated") }
            return (shape, data.withUnsafeBytes { p in (0..<n).map { Int(p.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) } })
        default:
            throw BamError.unsupported("dtype", file: url.path, expected: "<i8 or <i4", found: descr)
        }
    }

    private static func readRaw(_ url: URL) throws -> (shape: [Int], descr: String, data: Data) {
        // Mapped, not `Data(contentsOf:)`, which leaks a 4 KB buffer on an empty file in
        // swift-foundation (found by the npy fuzz target).
        let file = try MappedFile(path: url.path)
        let d = Data(file.bytes(at: 0, count: file.size))
        guard d.count >= 10, d.prefix(6) == Data([0x93] + Array("NUMPY".utf8)) else {
            throw BamError.format(url.path, "not a .npy file (bad magic)")
        }
        let major = d[d.startIndex + 6]
        let headerLen: Int
        let headerStart: Int
        if major == 1 {
            headerLen = Int(d[d.startIndex + 8]) | Int(d[d.startIndex + 9]) << 8
            headerStart = 10
        } else {
            guard d.count >= 12 else { throw BamError.format(url.path, "truncated header") }
            headerLen = (0..<4).reduce(0) { $0 | Int(d[d.startIndex + 8 + $1]) << (8 * $1) }
            headerStart = 12
        }
        guard headerStart + headerLen <= d.count else { throw BamError.format(url.path, "header runs past the end") }
        let header = String(decoding: d[(d.startIndex + headerStart)..<(d.startIndex + headerStart + headerLen)], as: UTF8.self)
        guard let dr = header.range(of: "'descr': '"), let de = header[dr.upperBound...].firstIndex(of: "'") else {
            throw BamError.format(url.path, "header has no descr")
        }
        let descr = String(header[dr.upperBound..<de])
        if header.contains("'fortran_order': True") { throw BamError.unsupported("Fortran order", file: url.path) }
        guard let sr = header.range(of: "'shape': ("), let se = header[sr.upperBound...].firstIndex(of: ")") else {
            throw BamError.format(url.path, "header has no shape")
        }
        // Every dimension a non-negative integer, and their product (and its byte count) checked
        // for overflow, before the element count sizes anything.
        var shape: [Int] = []
        var count = 1
        for part in header[sr.upperBound..<se].split(separator: ",") {
            let text = part.trimmingCharacters(in: .whitespaces)
            guard let v = Int(text), v >= 0 else {
                throw BamError.format(url.path, "shape dimension `\(text)` is not a non-negative integer")
            }
            let (m, o) = count.multipliedReportingOverflow(by: v)
            guard !o, m.multipliedReportingOverflow(by: 8).overflow == false else {
                throw BamError.format(url.path, "shape \(header[sr.upperBound..<se]) overflows the element count")
            }
            count = m
            shape.append(v)
        }
        return (shape, descr, d.subdata(in: (d.startIndex + headerStart + headerLen)..<d.endIndex))
    }
}
