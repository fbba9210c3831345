@testable import BamFormats
import Foundation
import Testing

/// A store over a single safetensors file (the twins written beside the .bin fixtures).
final class SingleSafetensorsStore: TensorStore, @unchecked Sendable {
    let f: SafetensorsFile
    init(_ path: String) throws { f = try SafetensorsFile(path: path) }
    var location: String { f.path }
    var names: [String] { f.names }
    func info(_ name: String) -> TensorInfo? { f.entry(name)?.info }
    func bytes(_ name: String) throws -> UnsafeRawBufferPointer { try f.bytes(name) }
    func tensor(_ name: String) throws -> Tensor { try decodeFloat32(name, owner: f.file) }
    func release(_ name: String) {}
}

@Suite("PyTorch .bin checkpoints")
struct PyTorchBinTests {
    @Test("a torch.save'd state dict reads like its safetensors twin (views, tied storage, scalars, int64)")
    func plain() throws {
        let bin = try PyTorchBinFile(path: FormatFixtures.pytorch("plain/pytorch_model.bin").path)
        #expect(bin.names == ["a.weight", "b.bias", "c.half", "view.offset", "tied.first", "tied.second", "scalar", "ids"])
        let store = try PyTorchBinStore(directory: FormatFixtures.pytorch("plain"))
        try expectSameTensors(try SingleSafetensorsStore(FormatFixtures.pytorch("plain/twin.safetensors").path), store)
        #expect(store.info("c.half")?.dtype == .f16)
        #expect(store.info("scalar")?.shape == [])
        #expect(try store.tensor("scalar").array == [2.5])
        #expect(store.info("ids")?.dtype == .i64)
        // Tied tensors share one storage: the same bytes in the file.
        #expect(try store.bytes("tied.first").baseAddress == store.bytes("tied.second").baseAddress)
        #expect(try store.tensor("tied.first").array == store.tensor("tied.second").array)
    }

    @Test("bf16 tensors") func bf16() throws {
        let store = try PyTorchBinStore(directory: FormatFixtures.pytorch("bf16"))
        try expectSameTensors(try SingleSafetensorsStore(FormatFixtures.pytorch("bf16/twin.safetensors").path), store)
        #expect(store.info("x.weight")?.dtype == .bf16)
    }

    @Test("deflated zip entries are inflated") func deflated() throws {
        let store = try PyTorchBinStore(directory: FormatFixtures.pytorch("deflated"))
        try expectSameTensors(try SingleSafetensorsStore(FormatFixtures.pytorch("plain/twin.safetensors").path), store)
        #expect(store.files[0].archive.entries.contains { $0.method == 8 })
    }

    @Test("sharded checkpoint with an index opens as a Checkpoint") func sharded() throws {
        let ck = try Checkpoint.open(FormatFixtures.pytorch("sharded").path)
        #expect(ck.container == .pytorch)
        #expect(ck.config.family == .llama && ck.config.hidden == 16)
        #expect((ck.store as? PyTorchBinStore)?.files.count == 2)
        try expectSameTensors(try SingleSafetensorsStore(FormatFixtures.pytorch("sharded/twin.st").path), ck.store)
        // ... and converts to GGUF like any checkpoint.
        let dir = try FormatTempDir()
        try GGUFConverter.hfToGGUF(ck, output: dir.file("m.gguf"), dtype: nil)
        let g = try Checkpoint.open(dir.file("m.gguf").path)
        for n in ck.store.names { #expect(try g.store.tensor(n).array == ck.store.tensor(n).array, "\(n)") }
    }

    @Test("pickles that call anything but the tensor rebuilders are refused")
    func hostile() throws {
        for (file, callee) in [("evil/os_system.bin", "os.system"), ("evil/builtins_eval.bin", "builtins.eval")] {
            let e = bamError { _ = try PyTorchBinFile(path: FormatFixtures.pytorch(file).path) }
            #expect(e?.kind == .unsupported && e?.found == callee && e?.hint != nil, "\(String(describing: e))")
            if case .byte? = e?.location {} else { Issue.record("the refusal names the byte of the GLOBAL opcode: \(String(describing: e?.location))") }
        }
    }

    @Test("non-contiguous tensors and the legacy format are refused with a way out")
    func refusals() throws {
        expectBamError(["not contiguous", "contiguous()"]) {
            _ = try PyTorchBinFile(path: FormatFixtures.pytorch("noncontiguous/pytorch_model.bin").path)
        }
        expectBamError(["legacy", "PyTorch < 1.6"]) {
            _ = try PyTorchBinFile(path: FormatFixtures.pytorch("legacy/pytorch_model.bin").path)
        }
    }

    @Test("every truncation of a checkpoint fails cleanly, as do flipped bytes")
    func corrupt() throws {
        let full = try [UInt8](Data(contentsOf: FormatFixtures.pytorch("plain/pytorch_model.bin")))
        let dir = try FormatTempDir()
        let url = dir.file("t.bin")
        for n in stride(from: 0, to: full.count - 1, by: 13) {
            try Data(full.prefix(n)).write(to: url)
            #expect(throws: BamError.self) { _ = try PyTorchBinFile(path: url.path) }
        }
        // Flip bytes one at a time through the archive: never a crash (an error, or a file that still parses).
        for i in stride(from: 0, to: full.count, by: 5) {
            var b = full
            b[i] ^= 0xFF
            try Data(b).write(to: url)
            _ = try? PyTorchBinFile(path: url.path)
        }
    }

    @Test("the unpickler's limits: unknown opcodes, deep nesting, memo misses")
    func pickleLimits() throws {
        let op = bamError { _ = try Pickle.load([0x80, 0x02, 0x69], file: "p") }
        #expect(op?.kind == .unsupported && op?.file == "p" && op?.location == .byte(2) && op?.found == "opcode 0x69")
        expectBamError(["never PUT"]) { _ = try Pickle.load([0x80, 0x02, 0x68, 0x05, 0x2E], file: "p") }
        expectBamError(["nest deeper"]) { _ = try Pickle.load([0x80, 0x02, 0x29] + [UInt8](repeating: 0x85, count: 200) + [0x2E], file: "p") }
        expectBamError(["ends without STOP"]) { _ = try Pickle.load([0x80, 0x02, 0x7D], file: "p") }
        expectBamError(["refusing GLOBAL torch.load"]) { _ = try Pickle.load([0x80, 0x02] + Array("ctorch\nload\n".utf8), file: "p") }
        let v = try Pickle.load([0x80, 0x02, 0x7D, 0x71, 0x00, 0x58, 0x01, 0, 0, 0, 0x61, 0x4B, 0x07, 0x73, 0x2E], file: "p")
        guard case let .dict(box) = v, case .string("a") = box.pairs[0].0, case .int(7) = box.pairs[0].1 else {
            Issue.record("expected {'a': 7}")
            return
        }
    }
}
