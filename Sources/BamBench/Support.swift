import BamModels
import BamTensors
import BamTokenizers
import CBLAS
import Foundation

/// Benchmarks defined in other files of this target register here (name -> entry point).
nonisolated(unsafe) var extraBenchmarks: [String: ([String]) throws -> Void] = [
    "mix": runMixBench, "mix-child": runMixChild, "bam": runBAMBench,
    "tokenizer": { runTokenizerBench(arguments: $0) },
    "train": runTrainBench,
    "dequant": runDequantBench, "gguf-load": runGGUFLoadBench,
    "kernels": runKernelBench, "decode": runDecodeBench, "prefill": runPrefillBench,
]

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let t0 = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
}

/// GFLOP/s of one large square sgemm on all cores: the ceiling every compute benchmark is
/// reported against. Measured both as one cblas_sgemm with OpenBLAS's own threads (its pool is
/// re-enabled for this measurement only) and as bam-mix's split `gemm`; the higher one is the
/// ceiling, so ratios against it are conservative. Best of 3 each.
func gemmCeiling(n: Int = 2048) -> Double {
    BLASThreads.configure()
    let a = Tensor(shape: [n, n]), b = Tensor(shape: [n, n]), c = Tensor(shape: [n, n])
    for i in 0..<(n * n) { a.data[i] = Float(i % 7) * 0.01; b.data[i] = Float(i % 5) * 0.01 }
    let flops = 2 * Double(n) * Double(n) * Double(n)
    openblas_set_num_threads(Int32(BLASThreads.defaultCount))
    var raw = Double.infinity
    for _ in 0..<4 {
        raw = min(raw, seconds {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1, a.data, Int32(n),
                        b.data, Int32(n), 0, c.data, Int32(n))
        })
    }
    openblas_set_num_threads(1)
    var split = Double.infinity
    for _ in 0..<4 { split = min(split, seconds { gemm(c.data, a.data, b.data, m: n, n: n, k: n) }) }
    return flops / min(raw, split) / 1e9
}

/// Peak resident memory of this process so far (VmHWM), in bytes.
func peakRSS() -> Int {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kb = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
        return kb * 1024
    }
    return 0
}

func option(_ args: [String], _ name: String) -> String? {
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}

/// Prints `object` (dictionaries, arrays, numbers, strings) as one line of JSON, keys sorted: the
/// `--json` output that tools/bench_*.py read.
func printJSON(_ object: Any) throws {
    print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
}

/// `--kv-cache f32|f16` (default f32), as the bam-mix commands take it.
func kvCacheType(_ args: [String]) throws -> KVCacheType {
    let name = option(args, "--kv-cache") ?? "f32"
    guard let type = KVCacheType(rawValue: name) else {
        throw BamError.usage("--kv-cache \(name): expected one of \(KVCacheType.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    return type
}

/// Runs this executable again with `arguments` (so that model creation does not count towards
/// the measured process's peak memory).
func runSelf(_ arguments: [String]) throws {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
    if !FileManager.default.isExecutableFile(atPath: p.executableURL!.path) {
        p.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    }
    p.arguments = arguments
    try p.run()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { throw BamError.io("\(arguments.joined(separator: " ")) failed") }
}

/// The benchmark shapes named in the issues.
enum BenchShape: String {
    /// 58M-parameter Llama: hidden 512, 8 layers, 8 heads, FFN 1408, vocab 32000.
    case llama58m
    var config: JSONObject {
        switch self {
        case .llama58m: ModelConfig.llamaJSON(vocab: 32000, hidden: 512, intermediate: 1408, layers: 8, heads: 8)
        }
    }
}

func benchDirectory() -> URL {
    let base = ProcessInfo.processInfo.environment["BAM_MIX_BENCH_DIR"] ?? (NSTemporaryDirectory() + "bam-mix-bench")
    return URL(fileURLWithPath: base)
}

/// `make-model SHAPE DIR [--seed S] [--layers L] [--byte-tokenizer]`: a random f32 model of a
/// benchmark shape; `--byte-tokenizer` adds the byte-level tokenizer.json (ids 0...255 = bytes,
/// BOS 256) so that text commands (perplexity --text-file, compare) run on it.
func runMakeModel(arguments: [String]) throws {
    guard arguments.count >= 2, let shape = BenchShape(rawValue: arguments[0]) else {
        throw BamError.usage("make-model llama58m DIR [--seed S] [--layers L] [--byte-tokenizer]")
    }
    var json = shape.config
    if let l = option(arguments, "--layers").flatMap(Int.init) { json["num_hidden_layers"] = .int(l) }
    let config = try ModelConfig(json: json)
    let seed = UInt64(option(arguments, "--seed").flatMap(Int.init) ?? 1)
    let weights = TransformerWeights.random(config: config, seed: seed)
    try CheckpointWriter.save(weights: weights, config: config, to: URL(fileURLWithPath: arguments[1]), replace: true)
    if arguments.contains("--byte-tokenizer") { try ByteLevelTokenizerBuilder.write(to: URL(fileURLWithPath: arguments[1])) }
}

func ensureModel(_ shape: BenchShape, name: String? = nil, seed: Int = 1, layers: Int? = nil) throws -> URL {
    let dir = benchDirectory().appendingPathComponent(name ?? shape.rawValue)
    if !FileManager.default.fileExists(atPath: dir.appendingPathComponent("config.json").path) {
        FileHandle.standardError.write(Data("creating \(dir.path) ...\n".utf8))
        var args = ["make-model", shape.rawValue, dir.path, "--seed", "\(seed)"]
        if let layers { args += ["--layers", "\(layers)"] }
        try runSelf(args)
    }
    return dir
}

/// The matrices one decode token reads besides the output projection (and the embedding, a row
/// gather): in every layer the attention (every attention expert: with top-k attention routing
/// too, each expert still projects its keys and values, and the forward pass runs them all), the
/// routers, and as many FFN experts as the routing sends a token to (the first ones: a layer's
/// experts all have the same shapes). A floor built from every FFN expert of a Mixtral (top-2 of
/// 4) counted twice the FFN bytes its tokens read.
func decodeMatrices(_ weights: InferenceWeights) throws -> [WeightMatrix] {
    var matrices: [WeightMatrix] = []
    for block in weights.blocks {
        switch block.attention {
        case let .single(qo, kv): matrices += [qo.q, qo.o, kv.k, kv.v]
        case let .mixture(router, experts, kv, _):
            matrices.append(try WeightMatrix(router))
            for e in experts { matrices += [e.q, e.o] }
            switch kv {
            case let .shared(w): matrices += [w.k, w.v]
            case let .perExpert(ws): for w in ws { matrices += [w.k, w.v] }
            }
        }
        switch block.feedForward {
        case let .single(f): matrices += [f.gate, f.up, f.down]
        case let .mixture(router, experts, routing):
            matrices.append(try WeightMatrix(router))
            for f in experts.prefix(routing.expertsPerToken(experts: experts.count)) { matrices += [f.gate, f.up, f.down] }
        }
    }
    return matrices
}

/// The memory-bound floor of one decode token: the time to read `matrices` once, in their stored
/// type with the fused kernels decode uses (WeightKernels.active), on every worker with a single
/// hand-off, plus `head` split by rows across the workers (as decode splits the output
/// projection). A decode step reads the same bytes and does more (norms, routing, attention
/// arithmetic, a hand-off per product or per layer), so this is its practical limit.
///
/// Two layouts, the faster kept (seconds per pass): every matrix's rows split
/// across the workers, as decode splits each product; and whole matrices dealt to the workers,
/// largest first to the least loaded, as BAM's concurrent branches deal whole experts. Which one
/// reads faster changes from run to run (on an EPYC Zen 3 with the two-stream kernels, within
/// about 5 % either way for the 58M Llama); a floor that only dealt whole matrices was once beaten
/// by BAM's sequential decode itself (9.20 against 9.88 ms per token), which splits every product.
/// Pass the KV cache's stand-ins (`kvCacheStandIns`) in `matrices` to count the cache's bytes.
func decodeFloor(_ matrices: [WeightMatrix], head: WeightMatrix, passes: Int = 16) -> Double {
    precondition(passes > 0, "the floor needs at least one pass")
    BLASThreads.configure()
    let workers = BLASThreads.defaultCount
    let owner = BLASThreads.deal(matrices.map { Double($0.residentBytes) }, over: workers).owner
    let k = WeightKernels.active
    let maxCols = max(head.columns, matrices.map(\.columns).max() ?? 1)
    // Activations as the kernels take them: float32 rows, or Q8_0 / Q8_K blocks for block-quantized
    // weights (quantized once here, as decode quantizes once per hand-off).
    let x = Tensor(shape: [maxCols]), ys = (0..<workers).map { _ in Tensor(shape: [head.rows]) }
    for i in 0..<maxCols { x.data[i] = 0.01 }
    var inputs: [DecodeActivations: SendableRawPointer] = [.float32: SendableRawPointer(UnsafeRawPointer(x.data))]
    var buffers: [UnsafeMutableRawPointer] = []
    defer { buffers.forEach { $0.deallocate() } }
    for m in matrices + [head] {
        guard let form = m.storage.decodeActivations else {
            preconditionFailure("the decode floor reads matrices with fused kernels only; \(m.storage) has none")
        }
        guard inputs[form] == nil else { continue }
        // Whole blocks of the widest row (every matrix's columns are whole blocks of its form).
        let columns = maxCols / form.blockValues * form.blockValues
        let q = UnsafeMutableRawPointer.allocate(byteCount: form.rowBytes(columns: columns) + 64, alignment: 64)
        buffers.append(q)
        form.quantize(q, x.data, T: 1, columns: columns, kernels: k)
        inputs[form] = SendableRawPointer(UnsafeRawPointer(q))
    }
    let formInputs = inputs
    @Sendable func run(_ m: WeightMatrix, _ y: UnsafeMutablePointer<Float>, rows: Range<Int>) {
        guard !rows.isEmpty else { return }
        k.matmul(y, ldy: m.rows, m.row(rows.lowerBound), wStride: m.rowBytes, storage: m.storage,
                 formInputs[m.storage.decodeActivations!]!.pointer, xStride: m.rowBytes, T: 1, rows: rows.count, cols: m.columns)
    }
    // Worker w's block of a matrix's rows, as decode cuts them.
    @Sendable func block(_ rows: Int, _ w: Int) -> Range<Int> { BLASThreads.block(of: rows, worker: w, of: workers) }
    // Each layout's time is the mean of `passes` consecutive passes, as a decode benchmark's time
    // is the mean of its consecutive tokens: the fastest single pass of a few would set the floor
    // by the moments the drifting bandwidth is at its best, which a mean over tokens never is.
    // The layouts alternate in groups of four passes, so both meet the same drift.
    var total = (split: 0.0, dealt: 0.0)
    for group in stride(from: 0, to: passes, by: 4) {
        let n = min(4, passes - group)
        total.split += seconds {
            for _ in 0..<n {
                BLASThreads.fanOut(workers) { w in
                    for m in matrices + [head] { run(m, ys[w].data, rows: block(m.rows, w)) }
                }
            }
        }
        total.dealt += seconds {
            for _ in 0..<n {
                BLASThreads.fanOut(workers) { w in
                    for (i, m) in matrices.enumerated() where owner[i] == w { run(m, ys[w].data, rows: 0..<m.rows) }
                    run(head, ys[w].data, rows: block(head.rows, w))
                }
            }
        }
    }
    return min(total.split, total.dealt) / Double(passes)
}

/// Stand-ins for the KV cache one decode token reads after `positions` positions: for each layer
/// and each key/value set (one for dense and shared-KV models, one per attention expert with
/// expert-KV: as many as `bytesPerPosition`, the cache's bytes per position, holds), every KV
/// head's keys and its values, each `positions` rows of head_dim values in the cache's type
/// (zeros), as the attention reads them (one contiguous matrix per head). `decodeFloor` reads them
/// with the weights: the floor of a token that attends.
func kvCacheStandIns(config: ModelConfig, bytesPerPosition: Int, positions: Int, type: KVCacheType) throws -> [WeightMatrix] {
    guard positions > 0 else { return [] }
    let sets = bytesPerPosition / (config.layers * 2 * config.kvHeads * config.headDim * type.bytesPerValue)
    let dtype: DType = switch type {
    case .f32: .f32
    case .f16: .f16
    }
    let bytes = positions * config.headDim * type.bytesPerValue
    let zeros = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
    defer { zeros.deallocate() }
    zeros.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
    return try (0..<(config.layers * sets * config.kvHeads * 2)).map { _ in
        try WeightMatrix(rows: positions, columns: config.headDim, dtype: dtype, copying: zeros)
    }
}

/// The cost of one hand-off as a decode layer meets it: after `serialMicroseconds` of work on
/// the calling thread (the other workers wait: polling for up to BAM_MIX_SPIN_US, parked after),
/// a `BLASThreads.fanOut` over every worker, each spinning 100 µs; returned is the time per round
/// above doing the same work without the fan-out (seconds). At 50 µs of serial work (a decode
/// layer's norms, rope and attention between its products) the helpers are still polling; at
/// 500 µs they have parked, and the hand-off includes waking them.
func handOffCost(serialMicroseconds: Double, rounds: Int = 2000) -> Double {
    @Sendable func spin(_ us: Double) {
        let t = DispatchTime.now().uptimeNanoseconds
        while Double(DispatchTime.now().uptimeNanoseconds - t) < us * 1000 {}
    }
    let workers = BLASThreads.defaultCount
    let fanned = seconds { for _ in 0..<rounds { spin(serialMicroseconds); BLASThreads.fanOut(workers) { _ in spin(100) } } }
    let alone = seconds { for _ in 0..<rounds { spin(serialMicroseconds); spin(100) } }
    return (fanned - alone) / Double(rounds)
}
