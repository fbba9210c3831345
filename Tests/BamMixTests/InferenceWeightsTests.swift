import BamCorpora
import BamEvaluation
import BamFormats
import BamModels
import BamTensors
import Foundation
import Testing

/// Inference keeps each matrix in the type it is stored in (or the one `--weights` asks for); the
/// logits against transformers are ForwardTests' (the bf16 and f16 fixtures there run in place).
@Suite("Inference weights in their stored type")
struct InferenceWeightsTests {
    static let seed = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("checkpoints/seed").path

    /// Every matrix of `model` with its storage.
    static func storages(_ model: Transformer) -> Set<WeightStorage> {
        Set(model.weights.matrices.map(\.storage))
    }

    @Test("bf16 and f16 checkpoints run from the mapping: no float32 copy of any matrix", arguments: [
        ("llama_tied_bf16", WeightStorage.bf16), ("llama_biases_f16", .f16),
    ])
    func inPlace(_ name: String, _ storage: WeightStorage) throws {
        let ckpt = try Checkpoint.open(Fixtures.url("models/\(name)").path)
        let model = try Transformer.load(ckpt)
        #expect(Self.storages(model) == [storage])
        #expect(model.weights.matrices.allSatisfy { $0.isBorrowed }, "matrices are borrowed from the file mapping")
        if ckpt.config.tieEmbeddings { #expect(model.weights.lmHead === model.weights.embed) }
        // Resident bytes: what the estimate says, and half the float32 model's matrices.
        let resident = model.weights.residentBytes
        #expect(resident == ModelMemory.inferenceBytes(config: ckpt.config, store: ckpt.store, loading: .stored))
        let widened = try Transformer.load(ckpt, weights: .converted(.f32))
        #expect(Self.storages(widened) == [.f32])
        let matrixBytes = model.weights.matrices.reduce(0) { $0 + $1.residentBytes }
        #expect(matrixBytes * 2 == widened.weights.matrices.reduce(0) { $0 + $1.residentBytes })
        #expect(widened.weights.residentBytes == ModelMemory.inferenceBytes(config: ckpt.config, store: ckpt.store, loading: .converted(.f32)))
    }

    #if os(Linux)
    /// Resident bytes of the mapping that holds `address`, from /proc/self/smaps.
    static func residentBytes(ofMappingAt address: UnsafeRawPointer) throws -> Int? {
        // Read to the end: procfs files report a size of 0.
        let handle = try #require(FileHandle(forReadingAtPath: "/proc/self/smaps"))
        defer { try? handle.close() }
        let smaps = String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self)
        let a = UInt(bitPattern: Int(bitPattern: address))
        var inside = false
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if let range = fields.first, range.contains("-"), !range.hasSuffix(":") {
                let bounds = range.split(separator: "-").compactMap { UInt($0, radix: 16) }
                inside = bounds.count == 2 && bounds[0] <= a && a < bounds[1]
            } else if inside, fields.first == "Rss:", fields.count >= 2, let kb = Int(fields[1]) {
                return kb * 1024
            }
        }
        return nil
    }

    @Test("loading maps every matrix's pages at once, so the first forward takes no page fault per page of weights")
    func prefaulted() throws {
        let ckpt = try Checkpoint.open(Self.seed)
        let model = try Transformer.load(ckpt)
        let matrices = model.weights.matrices
        #expect(matrices.allSatisfy { $0.isBorrowed })
        // One mapping holds the whole file; before any forward, its resident part must already
        // cover every matrix (the seed's embedding is also its output head, so it is mapped too).
        // Without the prefault only the header and the norms, copied at load, would be resident.
        let rss = try #require(try Self.residentBytes(ofMappingAt: model.weights.lmHead.data))
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let matrixBytes = matrices.reduce(0) { $0 + $1.residentBytes }   // each matrix once
        #expect(rss >= matrixBytes - matrices.count * page, "resident \(rss) bytes of the mapping, matrices \(matrixBytes)")
    }
    #endif

    @Test("bf16/f16 in place give the logits of the same weights widened to f32 (prefill and decode)", arguments: [
        "llama_tied_bf16", "llama_biases_f16",
    ])
    func widenedLogits(_ name: String) throws {
        let ref = try ReferenceModel(name)
        let inPlace = try Transformer.load(ref.checkpoint)
        let widened = try Transformer.load(ref.checkpoint, weights: .converted(.f32))
        let want = try widened.forward(tokens: ref.ids, cache: widened.makeCache(capacity: ref.ids.count)).array
        let prefill = try inPlace.forward(tokens: ref.ids, cache: inPlace.makeCache(capacity: ref.ids.count)).array
        // The widening is exact; only the order of the float32 sums differs between the fused
        // kernels and sgemm.
        let (maxPrefill, badPrefill) = compare(prefill, want, tolerance: 1e-5)
        #expect(badPrefill == nil, "\(name) prefill: max |diff| \(maxPrefill)")
        let cache = inPlace.makeCache(capacity: ref.ids.count)
        var decode: [Float] = []
        for id in ref.ids { decode += try inPlace.forward(tokens: [id], cache: cache).array }
        let (maxDecode, badDecode) = compare(decode, want, tolerance: 1e-5)
        #expect(badDecode == nil, "\(name) decode: max |diff| \(maxDecode)")
    }

    /// Perplexity of the shipped seed checkpoint on held-out text, with its matrices as `loading`
    /// says: prefill chunks (sgemm on float32 panels) and the same tokens decoded one at a time
    /// (the fused kernels; Q8_0 also quantizes the activations).
    static func seedPerplexity(_ loading: WeightLoading) throws -> (prefill: Double, decode: Double, bytes: Int, model: Transformer) {
        let ckpt = try Checkpoint.open(seed)
        let model = try Transformer.load(ckpt, weights: loading)
        let tokenizer = try ckpt.loadTokenizer()
        let text = Corpus.generate(.code, split: .heldout, seed: 5, bytes: 3_000)
        let tokens = perplexityTokens(text, tokenizer: tokenizer)
        let prefill = try perplexity(model: model, tokens: tokens, options: PerplexityOptions(contextLength: 128, maxChunks: 8,
                                                                                               bosToken: tokenizer.bosTokenId))
        let window = Array(tokens.prefix(96))
        let cache = model.makeCache(capacity: window.count)
        var nll = 0.0
        for t in 0..<(window.count - 1) {
            let logits = try model.forward(tokens: [window[t]], cache: cache).array
            let m = logits.max()!
            let logSum = Double(m) + log(logits.reduce(0.0) { $0 + exp(Double($1 - m)) })
            nll += logSum - Double(logits[window[t + 1]])
        }
        return (prefill.ppl, exp(nll / Double(window.count - 1)), model.weights.residentBytes, model)
    }

    @Test("--weights q8_0 quantizes an f32 checkpoint at load: a quarter of the matrix bytes, perplexity within 0.5 %")
    func q8_0Perplexity() throws {
        let f32 = try Self.seedPerplexity(.stored)
        let q8 = try Self.seedPerplexity(.converted(.q8_0))
        #expect(Self.storages(f32.model) == [.f32])
        #expect(Self.storages(q8.model) == [.q8_0])
        #expect(!q8.model.weights.matrices.contains { $0.isBorrowed }, "converted matrices are owned copies")
        let ckpt = try Checkpoint.open(Self.seed)
        #expect(q8.bytes == ModelMemory.inferenceBytes(config: ckpt.config, store: ckpt.store, loading: .converted(.q8_0)))
        let f32Matrices = f32.model.weights.matrices.reduce(0) { $0 + $1.residentBytes }
        let q8Matrices = q8.model.weights.matrices.reduce(0) { $0 + $1.residentBytes }
        #expect(q8Matrices * 128 == f32Matrices * 34, "Q8_0 keeps 34 bytes per 32 values against 128")
        #expect(q8.bytes < f32.bytes)
        #expect(abs(q8.prefill / f32.prefill - 1) < 0.005, "prefill perplexity q8_0 \(q8.prefill) vs f32 \(f32.prefill)")
        #expect(abs(q8.decode / f32.decode - 1) < 0.005, "decode perplexity q8_0 \(q8.decode) vs f32 \(f32.decode)")
        // The f32 model's own two paths agree closely (same weights, different kernels).
        #expect(abs(f32.decode / f32.prefill - 1) < 0.5, "sanity: decode \(f32.decode), prefill \(f32.prefill)")
    }

    @Test("--weights bf16 and f16 convert an f32 checkpoint at load, at half its matrix bytes", arguments: [DType.bf16, .f16])
    func halfPrecision(_ dtype: DType) throws {
        let f32 = try Self.seedPerplexity(.stored)
        let half = try Self.seedPerplexity(.converted(dtype))
        #expect(Self.storages(half.model) == [try WeightStorage(dtype)])
        let f32Matrices = f32.model.weights.matrices.reduce(0) { $0 + $1.residentBytes }
        #expect(half.model.weights.matrices.reduce(0) { $0 + $1.residentBytes } * 2 == f32Matrices)
        #expect(abs(half.prefill / f32.prefill - 1) < 0.005, "\(dtype.rawValue) perplexity \(half.prefill) vs f32 \(f32.prefill)")
    }

    @Test("a Q8_0 GGUF stays Q8_0 in place; a k-quant stays in its type unless --weights expands it")
    func ggufTypes() throws {
        let q8 = try Transformer.load(try Checkpoint.open(QuantFixtures.url("legacy/Q8_0.gguf").path))
        #expect(q8.weights.matrices.contains { $0.storage == .q8_0 && $0.isBorrowed })
        let k = try Checkpoint.open(QuantFixtures.url("kquant/Q4_K_M.gguf").path)
        let stored = try Transformer.load(k)
        #expect(stored.weights.matrices.contains { $0.storage == .q4_K && $0.isBorrowed })
        #expect(stored.weights.matrices.contains { $0.storage == .q6_K && $0.isBorrowed })
        #expect(stored.weights.residentBytes == ModelMemory.inferenceBytes(config: k.config, store: k.store, loading: .stored))
        let expanded = try Transformer.load(k, weights: .converted(.q8_0))
        #expect(Self.storages(expanded) == [.q8_0])
        // Both run; the expansion re-quantizes 4/5/6-bit values to 8 bits, so the logits stay close.
        let tokens = [1, 313, 284, 294, 291, 313, 303, 307]
        let a = try stored.forward(tokens: tokens, cache: stored.makeCache(capacity: 8)).array
        let b = try expanded.forward(tokens: tokens, cache: expanded.makeCache(capacity: 8)).array
        let scale = a.map(abs).max()!
        let (maxDiff, _) = compare(a, b, tolerance: .infinity)
        #expect(maxDiff < 0.05 * scale, "max |logit diff| \(maxDiff) of logits up to \(scale)")
    }

    /// The quantised fixtures made by llama-quantize whose blocks decode through fused kernels, and
    /// the storages each holds (Q4_K_M also falls back to other types for some matrices).
    static let fusedFiles: [(String, Set<WeightStorage>)] = [
        ("legacy/Q4_0", [.q4_0]), ("legacy/Q4_1", [.q4_1]), ("legacy/Q5_0", [.q5_0]), ("legacy/Q5_1", [.q5_1]), ("kquant/Q4_K_M", [.q4_K, .q6_K]),
        ("kquant/Q5_K_M", [.q5_K, .q6_K]), ("kquant/Q6_K", [.q6_K]), ("legacy/IQ4_NL", [.iq4_nl]), ("kquant/IQ4_XS", [.iq4_xs]),
        ("kquant/Q2_K", [.q2_K]), ("kquant/Q3_K_M", [.q3_K]),
    ]

    @Test("a Q4_0 / Q4_1 / Q5_0 / Q5_1 / Q2_K / Q3_K_M / Q4_K_M / Q5_K_M / Q6_K / IQ4_NL / IQ4_XS GGUF decodes in place through its fused kernels, close to the exact prefill",
          arguments: fusedFiles)
    func fusedBlockDecode(_ file: String, _ kinds: Set<WeightStorage>) throws {
        let ckpt = try Checkpoint.open(QuantFixtures.url("\(file).gguf").path)
        let model = try Transformer.load(ckpt)
        let storages = Self.storages(model)
        #expect(kinds.isSubset(of: storages), "\(file) holds \(storages)")
        #expect(model.weights.matrices.allSatisfy { $0.isBorrowed })
        let e = try #require(QuantisedModelTests.reference[file]?.objectValue)
        let tokens: [Int] = try #require(e["tokens"]?.arrayValue).compactMap { $0.intValue }
        // Prefill (more than 8 rows) multiplies the exactly dequantized panels: llama.cpp's F32
        // dequantisation's logits (QuantisedModelTests). Decode quantizes the activations to 8 bits
        // per block, as llama.cpp's own decode does: close to them, not equal.
        let exact = try model.forward(tokens: tokens, cache: model.makeCache(capacity: tokens.count)).array
        let cache = model.makeCache(capacity: tokens.count)
        var decoded: [Float] = []
        for id in tokens { decoded += try model.forward(tokens: [id], cache: cache).array }
        let scale = exact.map(abs).max()!
        let (maxDiff, _) = compare(decoded, exact, tolerance: .infinity)
        // Measured: 2.3-5.2 % of the largest logit (IQ4_XS the most), perplexity over these 23
        // positions 0.1-1.2 % apart (Q6_K, the most precise weights, 0.6 %: the 8-bit activations
        // dominate). A misread layout or scale is off by far more (the kernel tests bound the
        // arithmetic itself against the naive twin).
        #expect(maxDiff < 0.07 * scale, "\(file): max |logit diff| \(maxDiff) of logits up to \(scale)")
        #expect(maxDiff > 0, "\(file): decode went through the exact dequantizer, not the fused kernels")
        // Perplexity over the same positions, both ways.
        let V = ckpt.config.vocabSize
        func ppl(_ logits: [Float]) -> Double {
            logits.withUnsafeBufferPointer { l in
                var nll = 0.0
                for t in 0..<(tokens.count - 1) {
                    let row = l.baseAddress! + t * V
                    nll += logSumExp(row, n: V) - Double(row[tokens[t + 1]])
                }
                return exp(nll / Double(tokens.count - 1))
            }
        }
        let (pe, pd) = (ppl(exact), ppl(decoded))
        print("\(file): perplexity prefill \(pe), decode \(pd), max |logit diff| \(maxDiff) of \(scale)")
        #expect(abs(pd / pe - 1) < 0.02, "\(file): decode perplexity \(pd) against prefill \(pe)")
    }

    /// llama.cpp's own perplexity of each llama-quantize fixture (llama_perplexity.json, from
    /// tools/make_quant_fixtures.py: llama-perplexity -c 32, f32 KV cache).
    static let llamaPerplexity: JSONObject = (try? readJSONObject(QuantFixtures.url("llama_perplexity.json"))) ?? JSONObject()

    @Test("decode through the fused kernels gives llama-perplexity's number on each llama-quantize fixture: both quantize the activations to 8 bits per block",
          arguments: QuantFixtures.models)
    func decodeMatchesLlamaCpp(_ file: String) throws {
        let e = try #require(Self.llamaPerplexity["models"]?.objectValue?[file]?.objectValue, "llama_perplexity.json has no \(file)")
        let ctx = try #require(Self.llamaPerplexity["ctx"]?.intValue)
        let tokens = try #require(Self.llamaPerplexity["tokens"]?.arrayValue).compactMap(\.intValue)
        let llama = try #require(e["perplexity"]?.doubleValue)
        let model = try Transformer.load(try Checkpoint.open(QuantFixtures.url("\(file).gguf").path))
        // llama-perplexity's chunks: each chunk's first token replaced by BOS (1 in these vocabularies).
        let plan = try PerplexityPlan(tokens: tokens, options: PerplexityOptions(contextLength: ctx, bosToken: 1))
        #expect(plan.chunks.count == e["chunks"]?.intValue)
        let decode = try perplexity(model: OneTokenAtATime(model), plan: plan).ppl
        let prefill = try perplexity(model: model, plan: plan).ppl
        print("\(file): llama-perplexity \(llama), bam-mix decode \(decode) (\(decode / llama - 1)), prefill \(prefill) (\(prefill / llama - 1))")
        // Measured (EPYC Zen 3, AVX2 and portable kernels alike): decode within 0.025 % of llama.cpp's
        // number on ten of the files, 0.05-0.06 % on Q4_1 and 0.21 % on Q5_1, whose activations ggml
        // quantizes to Q8_1 (each block's sum kept as a half, rounded; bam-mix keeps it exact in
        // integers). Prefill, exact float32, is 0.03-0.68 % away: what the 8-bit activations cost.
        let bound = file == "legacy/Q4_1" || file == "legacy/Q5_1" ? 0.003 : 0.001
        #expect(abs(decode / llama - 1) < bound, "\(file): decode perplexity \(decode), llama.cpp's \(llama)")
    }

    @Test("--weights parses stored and the kernel types, refuses the rest; compare and perplexity pass it on")
    func parsing() throws {
        #expect(try WeightLoading(parsing: "stored") == .stored)
        #expect(try WeightLoading(parsing: "Q8_0") == .converted(.q8_0))
        #expect(try WeightLoading(parsing: "bf16") == .converted(.bf16))
        #expect(try WeightLoading(parsing: "f16") == .converted(.f16))
        #expect(try WeightLoading(parsing: "f32") == .converted(.f32))
        #expect(throws: BamError.self) { try WeightLoading(parsing: "q4_0") }
        let opened = try OpenedModel(spec: ModelSpec.parse(Self.seed))
        let model = try #require(try opened.load(documentLength: 64, weights: .converted(.bf16)) as? Transformer)
        #expect(Self.storages(model) == [.bf16])
    }

    @Test("a matrix whose rows are not whole Q8_0 blocks is refused with the tensor's name")
    func q8_0Columns() throws {
        // The Mixtral fixture's FFN is 48 wide: down_proj rows are 1.5 blocks.
        let ckpt = try Checkpoint.open(Fixtures.url("models/mixtral_legacy").path)
        try #require(ckpt.config.intermediate % 32 != 0)
        do {
            _ = try Transformer.load(ckpt, weights: .converted(.q8_0))
            Issue.record("a model with \(ckpt.config.hidden) hidden units was converted to Q8_0")
        } catch let e as BamError {
            #expect(e.message.contains("tensor `") && e.message.contains("48 columns"), "\(e.message)")
            #expect(e.message.contains("Q8_0"), "\(e.message)")
        }
    }
}

@Suite("Projections that share an input, split in one hand-off")
struct GroupedLinearTests {
    /// Three matrices of one input (Q, K, V-like: 512, 128 and 128 rows of 640 columns: 1.6 MB in
    /// f32, enough to be split across workers), as `storage`, with biases.
    @Test("one call equals a linearForward per matrix (decode rows, every fused type)", arguments: [DType.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1])
    func grouped(_ dtype: DType) throws {
        var rng = SplitMix64(seed: 3)
        let C = 640
        let weights = try [512, 128, 128].map { rows -> WeightMatrix in
            let t = Tensor(shape: [rows, C])
            for i in 0..<t.count { t.data[i] = rng.normal() * 0.05 }
            return try WeightMatrix(t).converted(to: dtype)
        }
        let biases = weights.map { w -> Tensor in
            let b = Tensor(shape: [w.rows])
            for i in 0..<b.count { b.data[i] = rng.normal() }
            return b
        }
        for T in [1, 3, WeightMatrix.fusedRowLimit, WeightMatrix.fusedRowLimit + 1] {
            let x = Tensor(shape: [T, C])
            for i in 0..<x.count { x.data[i] = rng.normal() }
            let grouped = weights.map { Tensor(shape: [T, $0.rows]) }
            let single = weights.map { Tensor(shape: [T, $0.rows]) }
            linearForward(grouped.map(\.data), x.data, weights, biases.map { UnsafePointer($0.data) }, T: T)
            for i in weights.indices { linearForward(single[i].data, x.data, weights[i], biases[i].data, T: T) }
            for i in weights.indices {
                let (maxDiff, bad) = compare(grouped[i].array, single[i].array, tolerance: 1e-5)
                #expect(bad == nil, "\(dtype.rawValue) T=\(T) matrix \(i): max |diff| \(maxDiff)")
            }
        }
    }

    @Test("Q4_K, Q6_K and Q8_0 matrices of one input in one hand-off equal one call each (a Q4_K_M file's Q, K, V)")
    func mixedBlockTypes() throws {
        let k = try Transformer.load(try Checkpoint.open(QuantFixtures.url("kquant/Q4_K_M.gguf").path))
        let C = k.config.hidden
        // Matrices of C columns from the file, one of each fused type it holds, their rows
        // repeated to 1024 (the file's are too small to be split across the workers), plus a Q8_0
        // one made from the first (Q8_0 activations beside Q8_K ones).
        var weights: [WeightMatrix] = []
        for kind in [WeightStorage.q4_K, .q6_K] {
            let m = try #require(k.weights.matrices.first { $0.columns == C && $0.storage == kind })
            let rows = 1024
            let bytes = UnsafeMutableRawPointer.allocate(byteCount: rows * m.rowBytes, alignment: 1)
            defer { bytes.deallocate() }
            for r in 0..<rows { (bytes + r * m.rowBytes).copyMemory(from: m.row(r % m.rows), byteCount: m.rowBytes) }
            weights.append(try WeightMatrix(rows: rows, columns: C, dtype: kind.dtype, copying: bytes))
        }
        weights.append(try weights[0].converted(to: .q8_0))
        #expect(weights.reduce(0) { $0 + $1.residentBytes } >= 1 << 18, "large enough to be split across the workers")
        var rng = SplitMix64(seed: 8)
        for T in [1, 2, WeightMatrix.fusedRowLimit] {
            let x = Tensor(shape: [T, C])
            for i in 0..<x.count { x.data[i] = rng.normal() }
            let grouped = weights.map { Tensor(shape: [T, $0.rows]) }
            let single = weights.map { Tensor(shape: [T, $0.rows]) }
            linearForward(grouped.map(\.data), x.data, weights, weights.map { _ in nil }, T: T)
            for i in weights.indices { linearForward(single[i].data, x.data, weights[i], nil, T: T) }
            for i in weights.indices {
                let (maxDiff, bad) = compare(grouped[i].array, single[i].array, tolerance: 1e-5)
                #expect(bad == nil, "\(weights[i].storage) T=\(T): max |diff| \(maxDiff)")
                // And the naive twin (activations quantized by the Swift reference, exact products).
                let naive = Tensor(shape: [T, weights[i].rows])
                linearForwardNaive(naive.data, x.data, weights[i], nil, T: T)
                let (maxNaive, badNaive) = compare(single[i].array, naive.array, tolerance: 1e-4)
                #expect(badNaive == nil, "\(weights[i].storage) T=\(T): max |diff| \(maxNaive) against the naive twin")
            }
        }
    }
}

/// A model scored through its decode path: every position a one-token forward against the KV
/// cache, so each matrix product goes through the fused decode kernels (with 8-bit activations for
/// the block-quantized types), where `Transformer`'s own scoring runs the chunk as one prefill.
final class OneTokenAtATime: ScoringModel {
    let model: Transformer
    init(_ model: Transformer) { self.model = model }
    var vocabularySize: Int { model.config.vocabSize }

    func negativeLogLikelihoods(_ tokens: [Int], positions: Range<Int>) throws -> [Double] {
        let cache = model.makeCache(capacity: tokens.count)
        var nll: [Double] = []
        for p in 0..<positions.upperBound {
            let logits = try model.forward(tokens: [tokens[p]], cache: cache)
            guard positions.contains(p) else { continue }
            // As Transformer's own scoring reduces each row.
            nll.append(logSumExp(logits.data, n: vocabularySize) - Double(logits.data[tokens[p + 1]]))
        }
        return nll
    }
}
