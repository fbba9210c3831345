import BamFormats
import Foundation
import Testing

@Suite("safetensors reading and writing")
struct SafetensorsTests {
    /// Writes a safetensors file whose header and data are given verbatim.
    func rawFile(_ dir: TemporaryDirectory, header: String, data: [UInt8], declaredLength: UInt64? = nil,
                 name: String = "x.safetensors") throws -> URL {
        var bytes: [UInt8] = []
        let h = Array(header.utf8)
        withUnsafeBytes(of: (declaredLength ?? UInt64(h.count)).littleEndian) { bytes += $0 }
        bytes += h
        bytes += data
        let url = dir.file(name)
        try Data(bytes).write(to: url)
        return url
    }

    /// The error opening `url`; it names the file. `needle` is for messages whose subject has no
    /// field of its own (the `what` clause).
    @discardableResult
    func expectFormatError(_ url: URL, mentioning needle: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) -> BamError? {
        let e = bamError(sourceLocation: sourceLocation) { _ = try SafetensorsFile(path: url.path) }
        if let needle { #expect(e?.what.description.contains(needle) == true, "what was: \(e?.what.description ?? "")", sourceLocation: sourceLocation) }
        #expect(e?.file == url.path, "the error names the file", sourceLocation: sourceLocation)
        return e
    }

    @Test("round trip of every float dtype, with metadata and 8-byte aligned data")
    func roundTrip() throws {
        let dir = try TemporaryDirectory()
        var r = TestRandom(seed: 11)
        let a = r.tensor([3, 5]), b = r.tensor([7]), c = r.tensor([2, 2, 2])
        let url = dir.file("m.safetensors")
        try SafetensorsWriter.write([.float("a", a), .float("b.half", b, as: .f16), .float("c.bf", c, as: .bf16)], to: url)
        let f = try SafetensorsFile(path: url.path)
        #expect(f.metadata == ["format": "pt"])
        #expect(f.names == ["a", "b.half", "c.bf"])
        let headerLength = try Data(contentsOf: url).prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        #expect(headerLength % 8 == 0)
        let store = try SafetensorsStore(directory: dir.url)
        #expect(try store.tensor("a").array == a.array)
        #expect(try store.tensor("a").isBorrowed, "aligned F32 is zero-copy")
        let bh = b.copy(); DTypeConversion.round(bh.data, count: bh.count, to: .f16)
        #expect(try store.tensor("b.half").array == bh.array)
        let cb = c.copy(); DTypeConversion.round(cb.data, count: cb.count, to: .bf16)
        #expect(try store.tensor("c.bf").array == cb.array)
        #expect(store.info("c.bf")?.shape == [2, 2, 2])
        #expect(store.info("c.bf")?.dtype == .bf16)
    }

    @Test("sharded checkpoints: index written and read back, a lying index refused")
    func sharded() throws {
        let dir = try TemporaryDirectory()
        var r = TestRandom(seed: 12)
        let tensors = (0..<5).map { ("t\($0)", r.tensor([16, 16])) }
        let files = try SafetensorsWriter.writeSharded(tensors.map { .float($0.0, $0.1) }, directory: dir.url, shardSize: 2500)
        #expect(files.count == 4, "five 1 KiB tensors at 2.5 KB per shard make 3 shards and an index: \(files)")
        let store = try SafetensorsStore(directory: dir.url)
        #expect(store.names.sorted() == tensors.map(\.0).sorted())
        for (n, t) in tensors { #expect(try store.tensor(n).array == t.array) }
        let index = try readJSONFile(dir.file("model.safetensors.index.json"))
        #expect(index["metadata"]?["total_size"]?.intValue == 5 * 16 * 16 * 4)
        // Point a tensor at the wrong shard.
        var text = try String(contentsOf: dir.file("model.safetensors.index.json"), encoding: .utf8)
        text = text.replacingOccurrences(of: "\"t0\": \"model-00001-of-00003.safetensors\"", with: "\"t0\": \"model-00002-of-00003.safetensors\"")
        try text.write(to: dir.file("model.safetensors.index.json"), atomically: true, encoding: .utf8)
        #expect(throws: BamError.self) { try SafetensorsStore(directory: dir.url) }
    }

    @Test("reads the files transformers writes (sharded fixture)")
    func transformersShards() throws {
        let store = try SafetensorsStore(directory: Fixtures.url("models/llama_head_dim_sharded"))
        #expect(store.files.count == 8)
        #expect(store.contains("model.embed_tokens.weight"))
    }

    @Test("a truncated header length is refused")
    func tooShort() throws {
        let dir = try TemporaryDirectory()
        let url = dir.file("x.safetensors")
        try Data([1, 2, 3]).write(to: url)
        let e = expectFormatError(url, mentioning: "truncated")
        #expect(e?.expected == "at least 8 bytes" && e?.found == "3 bytes")
    }

    @Test("a header length past the end of the file is refused")
    func headerPastEOF() throws {
        let dir = try TemporaryDirectory()
        let e = expectFormatError(try rawFile(dir, header: "{}", data: [], declaredLength: 500), mentioning: "past the end")
        #expect(e?.location == .byte(0) && e?.expected == "a file of at least 508 bytes" && e?.found == "10 bytes")
    }

    @Test("a huge header length is refused before any allocation")
    func hugeHeader() throws {
        let dir = try TemporaryDirectory()
        let e = expectFormatError(try rawFile(dir, header: "{}", data: [], declaredLength: 1 << 62))
        #expect(e?.location == .byte(0) && e?.expected == "at most \(SafetensorsFile.maxHeaderBytes) bytes" && e?.found == "\(1 << 62) bytes")
    }

    @Test("a non-JSON header is refused")
    func notJSON() throws {
        let dir = try TemporaryDirectory()
        expectFormatError(try rawFile(dir, header: "{not json}", data: []), mentioning: "not valid JSON")
        expectFormatError(try rawFile(dir, header: "[1, 2]  ", data: [], name: "y.safetensors"), mentioning: "does not start with")
    }

    @Test("overlapping offsets are refused")
    func overlapping() throws {
        let dir = try TemporaryDirectory()
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        #expect(expectFormatError(try rawFile(dir, header: header, data: [UInt8](repeating: 0, count: 12)), mentioning: "overlap")?.location == .tensor("b"))
    }

    @Test("a hole between tensors is refused")
    func hole() throws {
        let dir = try TemporaryDirectory()
        let header = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#
        #expect(expectFormatError(try rawFile(dir, header: header, data: [UInt8](repeating: 0, count: 12)), mentioning: "holes")?.location == .tensor("b"))
    }

    @Test("offsets past the data buffer are refused")
    func outOfRange() throws {
        let dir = try TemporaryDirectory()
        let header = #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#
        let e = expectFormatError(try rawFile(dir, header: header, data: [UInt8](repeating: 0, count: 8)), mentioning: "past the data buffer")
        #expect(e?.location == .tensor("a") && e?.expected == "an end of at most 8" && e?.found == "16")
    }

    @Test("a byte range that does not match shape x dtype size is refused")
    func wrongDTypeSize() throws {
        let dir = try TemporaryDirectory()
        let header = #"{"a":{"dtype":"F16","shape":[4],"data_offsets":[0,16]}}"#
        let e = expectFormatError(try rawFile(dir, header: header, data: [UInt8](repeating: 0, count: 16)))
        #expect(e?.location == .tensor("a") && e?.expected == "8 bytes for shape [4] of F16" && e?.found == "[0, 16) = 16 bytes")
    }

    @Test("trailing bytes after the last tensor are refused")
    func trailing() throws {
        let dir = try TemporaryDirectory()
        let header = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        expectFormatError(try rawFile(dir, header: header, data: [UInt8](repeating: 0, count: 9)), mentioning: "cover it exactly")
    }

    @Test("negative dims, unknown and 8-bit float dtypes, non-string metadata, duplicate names are refused")
    func badEntries() throws {
        let dir = try TemporaryDirectory()
        expectFormatError(try rawFile(dir, header: #"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}"#, data: [], name: "1.safetensors"),
                          mentioning: "negative")
        let q4 = expectFormatError(try rawFile(dir, header: #"{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}"#, data: [0], name: "2.safetensors"))
        #expect(q4?.kind == .format && q4?.location == .tensor("a") && q4?.found == "Q4")
        let f8 = expectFormatError(try rawFile(dir, header: #"{"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}"#, data: [0], name: "3.safetensors"))
        #expect(f8?.kind == .unsupported && f8?.location == .tensor("a") && f8?.found == "F8_E4M3" && f8?.hint != nil)
        let meta = expectFormatError(try rawFile(dir, header: #"{"__metadata__":{"format":1}}"#, data: [], name: "4.safetensors"))
        #expect(meta?.location == .key("__metadata__.format") && meta?.expected == "a string" && meta?.found == "1")
        expectFormatError(try rawFile(dir, header: #"{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}"#, data: [], name: "5.safetensors"),
                          mentioning: "duplicate key")
        expectFormatError(try rawFile(dir, header: #"{"a":{"dtype":"F32","shape":[4611686018427387904, 4],"data_offsets":[0,0]}}"#, data: [], name: "6.safetensors"),
                          mentioning: "overflow")
    }

    @Test("an interrupted write leaves no file under the final name")
    func atomic() throws {
        let dir = try TemporaryDirectory()
        let url = dir.file("model.safetensors")
        struct Stop: Error {}
        let failing = TensorWriteEntry(name: "x", dtype: .f32, shape: [4]) { _ in throw Stop() }
        #expect(throws: Stop.self) { try SafetensorsWriter.write([failing], to: url) }
        #expect(!FileManager.default.fileExists(atPath: url.path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.url.path).isEmpty, "the temporary file is removed too")
    }
}
