import BamModels
import Foundation

/// Issue 14: how fast the ggml block types decode (they are dequantised at load), against a
/// memcpy of the float32 output in the same run (the floor of any decoder that writes float32).
///
///   swift run -c release BamBench dequant [--values N] [--repeats R]
func runDequantBench(arguments: [String]) throws {
    let values = option(arguments, "--values").flatMap(Int.init) ?? (16 << 20)
    let repeats = option(arguments, "--repeats").flatMap(Int.init) ?? 3
    let types = DType.allCases.filter(\.isQuantized) + [.f16, .bf16]
    let out = UnsafeMutablePointer<Float>.allocate(capacity: values)
    let copySource = UnsafeMutablePointer<Float>.allocate(capacity: values)
    defer { out.deallocate(); copySource.deallocate() }
    copySource.initialize(repeating: 1, count: values)
    out.initialize(repeating: 0, count: values)
    var copy = Double.infinity
    for _ in 0..<repeats { copy = min(copy, seconds { out.update(from: copySource, count: values) }) }
    let floatMB = Double(values * 4) / 1e6
    print("dequantisation of \(values) values (\(Int(floatMB)) MB of float32 out), best of \(repeats), \(BLASThreads.defaultCount) worker(s)")
    print(String(format: "  memcpy of the float32 output: %.0f MB/s out (the floor)", floatMB / copy))
    print("  type     in MB    1 thread: MB/s in  MB/s out   all workers: MB/s in  MB/s out   x memcpy time")
    for dtype in types {
        let n = values / dtype.blockSize * dtype.blockSize
        let bytes = dtype.byteCount(elements: n)!
        let source = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        defer { source.deallocate() }
        randomBlocks(source, bytes: bytes, dtype: dtype)
        var serial = Double.infinity, split = Double.infinity
        for _ in 0..<repeats {
            if dtype.isQuantized {
                serial = min(serial, seconds { BlockDequantization.serial(source, dtype: dtype, blocks: n / dtype.blockSize, into: out) })
                split = min(split, seconds { BlockDequantization.dequantize(source, dtype: dtype, blocks: n / dtype.blockSize, into: out) })
            } else {
                serial = min(serial, seconds { try? DTypeConversion.toFloat32(UnsafeRawPointer(source), dtype: dtype, count: n, into: out) })
                split = serial
            }
        }
        let inMB = Double(bytes) / 1e6, outMB = Double(n * 4) / 1e6
        print("  " + dtype.rawValue.padding(toLength: 7, withPad: " ", startingAt: 0)
              + String(format: " %6.1f   %17.0f %9.0f   %20.0f %9.0f   %8.2f", inMB, inMB / serial, outMB / serial,
                       inMB / split, outMB / split, split / (copy * Double(n) / Double(values))))
    }
}

/// Random block bytes whose f16 / f32 scale fields hold small finite values (so the decode does
/// ordinary float work, not NaN or infinity arithmetic).
private func randomBlocks(_ p: UnsafeMutableRawPointer, bytes: Int, dtype: DType) {
    var rng = SplitMix64(seed: 14)
    let words = p.bindMemory(to: UInt64.self, capacity: bytes / 8)
    for i in 0..<(bytes / 8) { words[i] = rng.next() }
    p.bindMemory(to: UInt8.self, capacity: bytes)
    let half: [Int] = switch dtype {
    case .q4_0, .q5_0, .q8_0, .iq4_nl, .iq4_xs, .q4_1, .q5_1, .q4_K, .q5_K: [0, 2]
    case .q2_K: [80, 82]
    case .q3_K: [108]
    case .q6_K: [208]
    default: []
    }
    let scale = Float16(0.01).bitPattern
    for b in 0..<(bytes / dtype.blockBytes) {
        let blk = p + b * dtype.blockBytes
        for off in half where off + 2 <= dtype.blockBytes { blk.storeBytes(of: scale, toByteOffset: off, as: UInt16.self) }
        if dtype == .q8_K { blk.storeBytes(of: Float(0.01), toByteOffset: 0, as: Float.self) }
    }
    if dtype == .f16 { for i in 0..<(bytes / 2) { p.storeBytes(of: Float16(Float(i % 1000) * 0.001).bitPattern, toByteOffset: 2 * i, as: UInt16.self) } }
    if dtype == .bf16 { for i in 0..<(bytes / 2) { p.storeBytes(of: BFloat16.fromFloat(Float(i % 1000) * 0.001), toByteOffset: 2 * i, as: UInt16.self) } }
}

/// Issue 14: opening a GGUF, loading its weights (kept in their stored block types, borrowed from
/// the mapping, as `perplexity` and `generate` load them) and running the first
/// forward pass, phase by phase, in this process. tools/bench_gguf_load.py runs it beside
/// llama.cpp's own load of the same file.
///
///   swift run -c release BamBench gguf-load --model X.gguf [--tokens N] [--json]
func runGGUFLoadBench(arguments: [String]) throws {
    guard let path = option(arguments, "--model") else { throw BamError.usage("gguf-load needs --model X.gguf") }
    let tokens = option(arguments, "--tokens").flatMap(Int.init) ?? 8
    var ckpt: Checkpoint? = nil, model: Transformer? = nil
    let open = try seconds { ckpt = try Checkpoint.open(path) }
    let load = try seconds { model = try Transformer.load(ckpt!) }
    let ids = (0..<tokens).map { ($0 * 7 + 1) % model!.config.vocabSize }
    let first = try seconds { _ = try model!.forward(tokens: ids, cache: model!.makeCache(capacity: ids.count)) }
    let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    var types: [String: Int] = [:]
    for n in ckpt!.store.names { if let i = ckpt!.store.info(n) { types[i.dtype.rawValue, default: 0] += i.byteCount } }
    if arguments.contains("--json") {
        let obj = JSONValue.object(JSONObject([
            ("file_bytes", .int(size)), ("open_s", .double(open)), ("load_s", .double(load)), ("first_forward_s", .double(first)),
            ("tokens", .int(tokens)), ("peak_rss_bytes", .int(peakRSS())), ("workers", .int(BLASThreads.defaultCount)),
        ]))
        print(obj.serialized(indent: nil))
        return
    }
    print("\(path): \(size / 1_000_000) MB (\(types.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value / 1_000_000) MB" }.joined(separator: ", ")))")
    print(String(format: "  open (header, config, tokenizer)  %.3f s", open))
    print(String(format: "  load (weights in the file's types) %.3f s  (%.0f MB/s of file)", load, Double(size) / 1e6 / load))
    print(String(format: "  first forward of %d tokens         %.3f s", tokens, first))
    print(String(format: "  peak RSS                          %.0f MB", Double(peakRSS()) / 1e6))
}
