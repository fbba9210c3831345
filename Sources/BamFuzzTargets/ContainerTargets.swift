import BamFormats
import BamTensors
import CZlib
import Foundation

/// safetensors: header length, JSON header, dtypes, shapes and data_offsets; then every tensor
/// read back as float32 (as loading a model does).
enum SafetensorsTarget {
    static func run(_ data: UnsafeRawBufferPointer) {
        let dir = FuzzScratch.directory.appendingPathComponent("safetensors")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        _ = FuzzScratch.write(data, name: "model.safetensors", in: dir)
        guard let store = try? SafetensorsStore(directory: dir) else { return }
        decodeForFuzzing(store)
    }
}

/// A sharded checkpoint's model.safetensors.index.json, beside two real shards (so the fuzzer
/// reaches the cross-checks between the index and the shards).
enum SafetensorsIndexTarget {
    static let shardNames = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]

    static let directory: URL = {
        let dir = FuzzScratch.directory.appendingPathComponent("sharded")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let a = Tensor(shape: [2, 2]), b = Tensor(shape: [3])
        for i in 0..<4 { a.data[i] = Float(i) }
        for i in 0..<3 { b.data[i] = Float(-i) }
        do {
            try SafetensorsWriter.write([.float("model.embed_tokens.weight", a)], to: dir.appendingPathComponent(shardNames[0]))
            try SafetensorsWriter.write([.float("model.norm.weight", b, as: .f16)], to: dir.appendingPathComponent(shardNames[1]))
        } catch {
            fatalError("safetensors-index target: cannot write its shards: \(error)")
        }
        return dir
    }()

    static func run(_ data: UnsafeRawBufferPointer) {
        _ = FuzzScratch.write(data, name: "model.safetensors.index.json", in: directory)
        guard let store = try? SafetensorsStore(directory: directory) else { return }
        decodeForFuzzing(store)
    }
}

/// GGUF: the container (header, metadata of every value type, tensor infos, alignment, offsets),
/// then the store that maps it to HF names and synthesises a config, and every tensor decoded.
enum GGUFTarget {
    static func run(_ data: UnsafeRawBufferPointer) {
        let url = FuzzScratch.write(data, name: "model.gguf")
        guard let file = try? GGUFFile(path: url.path) else { return }
        for t in file.tensors where t.byteCount <= 1 << 20 { _ = file.bytes(t) }
        for k in file.keys { _ = file[k]?.summary }
        guard let store = try? GGUFStore(file: file) else { return }
        decodeForFuzzing(store)
    }
}

/// Every dtype's reader over arbitrary bytes: as many whole blocks (or elements) as the input
/// holds, decoded to float32. Block types added to DType (wip/quants: Q4_0 ... IQ4_XS) are picked
/// up without a change here, since the block size is found through `byteCount(elements:)`.
enum QuantBlocksTarget {
    static func run(_ data: UnsafeRawBufferPointer) {
        guard let base = data.baseAddress else { return }
        for dtype in DType.allCases where dtype.isFloatingPoint {
            guard let block = [1, 32, 64, 128, 256].first(where: { dtype.byteCount(elements: $0) != nil }),
                  let blockBytes = dtype.byteCount(elements: block), blockBytes > 0 else { continue }
            let count = (data.count / blockBytes) * block
            guard count > 0 else { continue }
            let out = UnsafeMutablePointer<Float>.allocate(capacity: count)
            defer { out.deallocate() }
            // Unaligned on purpose: stored tensors start wherever the container puts them.
            let copy = UnsafeMutableRawPointer.allocate(byteCount: blockBytes * (count / block) + 1, alignment: 16)
            defer { copy.deallocate() }
            (copy + 1).copyMemory(from: base, byteCount: blockBytes * (count / block))
            try? DTypeConversion.toFloat32(copy + 1, dtype: dtype, count: count, into: out)
        }
    }
}

/// ZIP: end of central directory (with comment search), ZIP64 locator and record, central
/// directory entries with extra fields, local headers; small entries read with their CRC checked
/// and deflated ones inflated.
enum ZipTarget {
    static func run(_ data: UnsafeRawBufferPointer) {
        let url = FuzzScratch.write(data, name: "archive.zip")
        guard let zip = try? ZipArchive(path: url.path) else { return }
        for e in zip.entries where e.uncompressedSize <= 1 << 20 { _ = try? zip.data(e) }
    }
}

/// A whole torch.save file: zip, the restricted unpickler over data.pkl, storages, strides.
enum PyTorchTarget {
    static func run(_ data: UnsafeRawBufferPointer) {
        let url = FuzzScratch.write(data, name: "pytorch_model.bin")
        guard let file = try? PyTorchBinFile(path: url.path) else { return }
        for n in file.names where (file.info(n)?.byteCount ?? .max) <= 1 << 20 { _ = try? file.bytes(n) }
    }
}

/// The restricted unpickler on its own: the input is data.pkl, wrapped in a stored zip beside
/// storages `0` (16 bytes), `1` (64 bytes) and `2` (256 bytes), then opened as a checkpoint. This
/// reaches every opcode without the fuzzer having to keep a zip valid around it.
enum PickleTarget {
    static let storages: [(String, [UInt8])] = [
        ("archive/data/0", [UInt8](repeating: 1, count: 16)),
        ("archive/data/1", [UInt8](repeating: 2, count: 64)),
        ("archive/data/2", [UInt8](repeating: 3, count: 256)),
        ("archive/byteorder", Array("little".utf8)),
    ]

    static func run(_ data: UnsafeRawBufferPointer) {
        let zip = StoredZip.build([("archive/data.pkl", Array(data))] + storages)
        let url = FuzzScratch.write(zip, name: "pickle.bin")
        guard let file = try? PyTorchBinFile(path: url.path) else { return }
        for n in file.names { _ = try? file.bytes(n) }
    }
}

/// .npy files (float and integer readers).
enum NumPyTarget {
    static func run(_ data: UnsafeRawBufferPointer) {
        let url = FuzzScratch.write(data, name: "array.npy")
        _ = try? NumPy.readFloat(url)
        _ = try? NumPy.readInts(url)
    }
}

/// A minimal ZIP writer (stored entries, no ZIP64) for wrapping fuzzed pickles and for seeds.
public enum StoredZip {
    public static func build(_ entries: [(name: String, data: [UInt8])]) -> [UInt8] {
        var out: [UInt8] = []
        var central: [UInt8] = []
        func u16(_ v: Int, _ b: inout [UInt8]) { b += [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)] }
        func u32(_ v: Int, _ b: inout [UInt8]) { for i in 0..<4 { b.append(UInt8((v >> (8 * i)) & 0xFF)) } }
        for (name, data) in entries {
            let n = Array(name.utf8)
            let crc = data.withUnsafeBufferPointer { Int(crc32(0, $0.baseAddress, uInt($0.count))) }
            let offset = out.count
            u32(0x0403_4b50, &out); u16(20, &out); u16(0, &out); u16(0, &out); u16(0, &out); u16(0, &out)
            u32(crc, &out); u32(data.count, &out); u32(data.count, &out); u16(n.count, &out); u16(0, &out)
            out += n
            out += data
            u32(0x0201_4b50, &central); u16(20, &central); u16(20, &central); u16(0, &central); u16(0, &central)
            u16(0, &central); u16(0, &central); u32(crc, &central); u32(data.count, &central); u32(data.count, &central)
            u16(n.count, &central); u16(0, &central); u16(0, &central); u16(0, &central); u16(0, &central)
            u32(0, &central); u32(offset, &central)
            central += n
        }
        let cdOffset = out.count
        out += central
        u32(0x0605_4b50, &out); u16(0, &out); u16(0, &out); u16(entries.count, &out); u16(entries.count, &out)
        u32(central.count, &out); u32(cdOffset, &out); u16(0, &out)
        return out
    }
}
