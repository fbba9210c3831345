import BamTensors
import CShims
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A whole file mapped into memory, unmapped on deinit. Foundation's `.mappedIfSafe` reads the
/// whole file on Linux (docs/architecture.md), so this calls mmap directly. The mapping is private
/// (copy-on-write): tensors borrowed from it may be written (e.g. by the optimiser) without ever
/// touching the file.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let size: Int
    public let base: UnsafeMutableRawPointer?

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw BamError.io("cannot open: \(String(cString: strerror(errno)))", file: path) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw BamError.io("cannot stat: \(String(cString: strerror(errno)))", file: path) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw BamError.io("not a regular file", file: path) }
        size = Int(st.st_size)
        if size == 0 {
            base = nil
            return
        }
        let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else {
            throw BamError.io("mmap of \(size) bytes failed: \(String(cString: strerror(errno)))", file: path)
        }
        base = p
    }

    deinit {
        if let base { munmap(base, size) }
    }

    /// Bytes [offset, offset + count), which the caller has validated against `size`.
    public func bytes(at offset: Int, count: Int) -> UnsafeRawBufferPointer {
        precondition(offset >= 0 && count >= 0 && offset + count <= size, "MappedFile: range outside \(path)")
        guard let base else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + offset, count: count)
    }

    /// Tells the kernel the given range will not be needed soon (streaming readers call this so
    /// resident memory stays bounded by what is in flight).
    public func release(offset: Int, count: Int) {
        guard let base, count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (offset / page) * page
        let end = min(size, offset + count)
        madvise(base + start, end - start, MADV_DONTNEED)
    }
}

/// Fills the page-table entries of `bytes` (part of a file mapping) now, reading the file where
/// the page cache does not hold it, so that the first forward pass does not take a page fault per
/// page of weights: on a 232 MB f32 model already in the page cache, touching every page cost
/// 25 ms, about a tenth of a 512-token prefill, against 17 ms for this one call made at load.
/// (llama.cpp maps its model files with MAP_POPULATE for the same reason; MAP_POPULATE on this
/// writable private mapping would copy every page instead.) Linux's MADV_POPULATE_READ (5.14 and
/// later); elsewhere, or when the kernel refuses, nothing happens and the pages fault in on first
/// use as before.
public func prefaultMappedPages(_ bytes: UnsafeRawBufferPointer) {
    #if os(Linux)
    guard let start = bytes.baseAddress, bytes.count > 0 else { return }
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let first = Int(bitPattern: start) / page * page
    let end = Int(bitPattern: start) + bytes.count
    // MADV_POPULATE_READ = 22 (glibc names it from 2.35 on; the number is the kernel's ABI).
    _ = madvise(UnsafeMutableRawPointer(bitPattern: first), end - first, 22)
    #endif
}

/// Writes a file under a temporary name in the same directory and renames it into place when
/// `commit()` is called, so an interrupted run never leaves a file that looks complete.
public final class AtomicFileWriter {
    public let finalURL: URL
    public let temporaryURL: URL
    private let handle: FileHandle
    private var buffer = [UInt8]()
    private let bufferLimit = 1 << 22
    private var committed = false
    public private(set) var bytesWritten = 0

    public init(url: URL) throws {
        finalURL = url
        // What a run killed earlier left for this output goes first (TemporaryOutputs.swift).
        TemporaryOutputs.cleanUpDeadRuns(for: url)
        temporaryURL = url.deletingLastPathComponent()
            .appendingPathComponent(TemporaryOutputs.temporaryName(for: url.lastPathComponent))
        TemporaryOutputs.register(temporaryURL)
        guard FileManager.default.createFile(atPath: temporaryURL.path, contents: nil) else {
            TemporaryOutputs.unregister(temporaryURL)
            throw BamError.io("cannot create (is the directory writable?)", file: temporaryURL.path)
        }
        handle = try FileHandle(forWritingTo: temporaryURL)
        buffer.reserveCapacity(bufferLimit)
    }

    deinit {
        if !committed {
            writebackQueue.sync {}   // no writeback call may outlive the descriptor
            try? handle.close()
            try? FileManager.default.removeItem(at: temporaryURL)
            TemporaryOutputs.unregister(temporaryURL)
        }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        if buffer.count + bytes.count > bufferLimit { try flush() }
        if bytes.count >= bufferLimit {
            try handle.write(contentsOf: Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: bytes.baseAddress!),
                                              count: bytes.count, deallocator: .none))
            bytesWritten += bytes.count
            startWriteback()
            return
        } else {
            buffer.append(contentsOf: bytes)
        }
        bytesWritten += bytes.count
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    public func write(_ string: String) throws { try write(Array(string.utf8)) }

    public func writeZeros(_ count: Int) throws { try write([UInt8](repeating: 0, count: count)) }

    public func write<T: FixedWidthInteger>(littleEndian value: T) throws {
        try withUnsafeBytes(of: value.littleEndian) { try write($0) }
    }

    private func flush() throws {
        guard !buffer.isEmpty else { return }
        try handle.write(contentsOf: buffer)
        buffer.removeAll(keepingCapacity: true)
        startWriteback()
    }

    /// Starts the kernel's writeback of what has been written since the last call, every 32 MiB,
    /// so that the fsync in `commit` waits only for the tail instead of the whole file (Linux
    /// sync_file_range; elsewhere the final fsync does all the work). The call itself can block
    /// on the device queue, so it runs on a background queue while the writer keeps producing.
    private var writebackOffset = 0
    private let writebackQueue = DispatchQueue(label: "bam-mix.writeback")
    private func startWriteback() {
        let pending = bytesWritten - buffer.count - writebackOffset
        guard pending >= 32 << 20 else { return }
        let fd = handle.fileDescriptor, offset = writebackOffset
        writebackQueue.async { _ = bam_start_writeback(fd, Int64(offset), Int64(pending)) }
        writebackOffset += pending
    }

    /// Flushes, syncs and renames onto the final name (replacing what was there).
    public func commit() throws {
        try flush()
        writebackQueue.sync {}
        try handle.synchronize()
        try handle.close()
        // rename(2) replaces an existing file atomically. (swift-corelibs-foundation's
        // FileManager.replaceItemAt fails on Linux with "The file doesn't exist" whenever the
        // destination exists, so rewriting a file through it never worked here.)
        guard rename(temporaryURL.path, finalURL.path) == 0 else {
            throw BamError.io("cannot move \(temporaryURL.lastPathComponent) into place: \(String(cString: strerror(errno)))",
                              file: finalURL.path)
        }
        committed = true
        TemporaryOutputs.unregister(temporaryURL)
    }
}

/// Writes a whole small file atomically (configs, JSON, .npy).
public func writeFileAtomically(_ data: Data, to url: URL) throws {
    let w = try AtomicFileWriter(url: url)
    try data.withUnsafeBytes { try w.write($0) }
    try w.commit()
}
