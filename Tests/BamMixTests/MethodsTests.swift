import BamCorpora
import BamEvaluation
import BamFormats
import BamMixing
import BamModels
import BamTokenizers
import BamTraining
import Foundation
import Testing

/// The recipe keys a config states, as written (absent keys left out).
private func recipeKeys(_ raw: JSONObject) -> [String: JSONValue] {
    var out: [String: JSONValue] = [:]
    for k in RouterRecipeKeys.all { if let v = raw[k], !v.isNull { out[k] = v } }
    return out
}

@Suite("Router recipes: written by mix, read by finetune, kept by every output")
struct RouterRecipeTests {
    @Test("mix writes each method's recipe; options override it")
    func methodRecipes() throws {
        func mixed(_ configure: (inout MixOptions) -> Void, method: MixMethod, experts: [String] = MixFixtures.llama) throws -> ModelConfig {
            let dir = try TemporaryDirectory()
            return try MixFixtures.mix({ var o = MixOptions(method: method, experts: experts, output: $0); configure(&o); return o }, in: dir).config
        }
        let btx = try mixed({ _ in }, method: .btx)
        #expect(btx.family == .mixtral)
        #expect(btx.moe == MoEConfig(experts: 3, topK: 2, renormalize: true, auxLoss: .btx, routerAuxLossCoef: 0.01, routerZLossCoef: 0))
        #expect(btx.raw["router_aux_loss_kind"] == "btx" && btx.raw["ffn_routing"] == "top_k")
        let bam = try mixed({ _ in }, method: .bam)
        #expect(bam.moe == MoEConfig(experts: 3, topK: 1, renormalize: false, auxLoss: .switch, routerAuxLossCoef: 0.01, routerZLossCoef: 0.001))
        let bamBTX = try mixed({ $0.ffnRouting = .btx }, method: .bam)
        #expect(bamBTX.moe == MoEConfig(experts: 3, topK: 2, renormalize: true, auxLoss: .btx, routerAuxLossCoef: 0.01, routerZLossCoef: 0))
        #expect(bamBTX.moa != nil, "still BAM's attention experts")
        let up = try mixed({ $0.numExperts = 4 }, method: .upcycle, experts: [MixFixtures.llama[0]])
        #expect(up.moe?.auxLoss == .btx && up.moe?.routerZLossCoef == 0 && up.moe?.topK == 2)
        let custom = try mixed({ $0.auxLoss = RouterAuxLoss.none; $0.routerAuxLossCoef = 0.02; $0.routerZLossCoef = 0.005; $0.topK = 2 }, method: .bam)
        #expect(custom.moe == MoEConfig(experts: 3, topK: 2, renormalize: false, auxLoss: .none, routerAuxLossCoef: 0.02, routerZLossCoef: 0.005))
        let dir = try TemporaryDirectory()
        var o = MixOptions(method: .btx, experts: MixFixtures.llama, output: dir.file("x"))
        o.ffnRouting = .btx
        #expect(throws: BamError.self) { try Mixer.run(o) }
        #expect(!FileManager.default.fileExists(atPath: dir.file("x").path))
    }

    @Test("configs without recipe keys keep their meaning; routing a format cannot express is refused by name")
    func parsing() throws {
        let seed = try Checkpoint.open(MixFixtures.llama[0]).config.raw
        var mixtral = seed
        mixtral["model_type"] = "mixtral"
        mixtral["num_local_experts"] = 3
        mixtral["num_experts_per_tok"] = 2
        let m = try ModelConfig(json: mixtral)
        #expect(m.moe == MoEConfig(experts: 3, topK: 2, renormalize: true, auxLoss: .btx, routerAuxLossCoef: 0.001, routerZLossCoef: 0))
        var bam = mixtral
        bam["model_type"] = "bam"
        bam["base_model_type"] = "llama"
        bam["attention_experts"] = "dense"
        let b = try ModelConfig(json: bam)
        #expect(b.moe == MoEConfig(experts: 3, topK: 2, renormalize: false, auxLoss: .btx, routerAuxLossCoef: 0.01, routerZLossCoef: 0.001))
        func refused(_ key: String, _ value: JSONValue, _ base: JSONObject, containing what: String) {
            var j = base
            j[key] = value
            do {
                _ = try ModelConfig(json: j)
                Issue.record("\(key) = \(value.serialized(indent: nil)) was accepted")
            } catch let e as BamError {
                #expect(e.message.contains(what), "\(e.message)")
            } catch {
                Issue.record("unexpected error \(error)")
            }
        }
        refused("ffn_routing", "sample_top1", mixtral, containing: "not expressible by Mixtral")
        refused("ffn_routing", "switch", bam, containing: "num_experts_per_tok")   // switch is top-1; the config says 2
        refused("ffn_routing", "top_2", bam, containing: "expected one of")
        refused("router_aux_loss_kind", "balance", bam, containing: "\"btx\", \"switch\", \"none\"")
        refused("expert_output_scale", 4.0, bam, containing: "down projection")
        refused("router_z_loss_coef", -1.0, mixtral, containing: "must not be negative")
        refused("router_renormalize", false, mixtral, containing: "Mixtral")
        var scaleOne = bam
        scaleOne["expert_output_scale"] = 1.0
        #expect(throws: Never.self) { try ModelConfig(json: scaleOne) }
    }

    @Test("the recipe keys round-trip through HF -> GGUF -> HF, Mixtral and BAM alike", arguments: [MixMethod.btx, .bam])
    func ggufRoundTrip(_ method: MixMethod) throws {
        let dir = try TemporaryDirectory()
        let original = try MixFixtures.mix({
            var o = MixOptions(method: method, experts: MixFixtures.llama, output: $0)
            o.auxLoss = .switch; o.routerAuxLossCoef = 0.02; o.routerZLossCoef = 0.004; return o
        }, in: dir)
        // The fixture's toy tokenizer has no GGUF description; the round trip concerns the config.
        for f in ["tokenizer.json", "tokenizer_config.json"] { try? FileManager.default.removeItem(at: original.path.appendingPathComponent(f)) }
        let keys = recipeKeys(original.config.raw)
        #expect(keys["router_aux_loss_kind"] == "switch" && keys["router_aux_loss_coef"] == .double(0.02))
        #expect(keys["router_z_loss_coef"] == .double(0.004) && keys["ffn_routing"] == "top_k")
        let gguf = dir.file("m.gguf")
        try GGUFConverter.hfToGGUF(original, output: gguf, dtype: nil)
        let file = try GGUFFile(path: gguf.path)
        #expect(file.architecture == (method == .btx ? "llama" : "bam"))
        #expect(file["bam.router_aux_loss_kind"]?.stringValue == "switch")
        let g = try Checkpoint.open(gguf.path)
        #expect(g.config.moe == original.config.moe, "the GGUF's own config")
        try GGUFConverter.ggufToHF(g, outputDirectory: dir.file("back"), dtype: nil)
        let back = try Checkpoint.open(dir.file("back").path)
        #expect(back.config.moe == original.config.moe)
        #expect(recipeKeys(back.config.raw) == keys)
    }

    @Test("finetune trains with the checkpoint's recipe; flags override it; the output config states what was used")
    func finetuneReadsRecipe() throws {
        let dir = try TemporaryDirectory()
        let ckpt = try MixFixtures.mix({ var m = MixOptions(method: .bam, experts: MixFixtures.llama, output: $0); m.seed = 3; return m }, in: dir)
        let text = dir.file("a.txt")
        try String(repeating: "the cat sees a red apple. a dog finds the ball. ", count: 60).write(to: text, atomically: true, encoding: .utf8)
        func run(_ overrides: LossOverrides, _ name: String) throws -> (TrainingReport, ModelConfig, String) {
            let (losses, description) = overrides.resolve(ckpt.config)
            var o = TrainingOptions()
            o.steps = 2
            o.batchSize = 2
            o.sequenceLength = 16
            o.losses = overrides == LossOverrides() ? nil : losses   // nil: the trainer reads the checkpoint itself
            o.outputDirectory = dir.file(name)
            o.logURL = dir.file(name + ".jsonl")
            o.finalTrainingState = false
            let report = try train(modelPath: ckpt.path.path, data: [TrainingDomain(name: "a", files: [text])], options: o)
            let firstLine = try String(contentsOf: dir.file(name + ".jsonl"), encoding: .utf8).split(separator: "\n")[0]
            #expect(firstLine.contains("\"type\":\"router_losses\""), "\(firstLine)")
            return (report, try Checkpoint.open(dir.file(name).path).config, description)
        }
        // The BAM recipe: Switch loss 0.01 + z-loss 0.001.
        let (a, aConfig, aText) = try run(LossOverrides(), "stated")
        #expect(a.steps.allSatisfy { $0.auxLoss == $0.switchLoss && $0.switchLoss > 0 })
        for r in a.steps {
            let total = r.lmLoss + 0.01 * r.switchLoss + 0.001 * r.zLoss
            #expect(abs(r.loss - total) < 1e-9 * max(1, abs(total)), "loss \(r.loss) = LM + 0.01 switch + 0.001 z")
        }
        #expect(aConfig.routerLossRecipe == .bam)
        #expect(aText.contains("switch") && aText.contains("from the checkpoint's config.json") && !aText.contains("overriding"))
        // --aux-loss btx --z-loss 0 override it, and the output says so.
        let (b, bConfig, bText) = try run(LossOverrides(aux: .btx, zBeta: 0), "overridden")
        for r in b.steps {
            #expect(r.auxLoss == r.btxLoss)
            #expect(abs(r.loss - (r.lmLoss + 0.01 * r.btxLoss)) < 1e-9 * max(1, abs(r.loss)))
        }
        #expect(bConfig.routerLossRecipe == RouterLossRecipe(auxLoss: .btx, auxLossCoef: 0.01, zLossCoef: 0))
        #expect(bConfig.raw["router_aux_loss_kind"] == "btx" && bConfig.raw["router_z_loss_coef"] == .double(0))
        #expect(bText.contains("--aux-loss, --z-loss overriding"), "\(bText)")
    }
}

/// A mix of the llama fixture's seed, upcycled.
private func upcycled(_ configure: (inout MixOptions) -> Void, in dir: TemporaryDirectory) throws -> Checkpoint {
    try MixFixtures.mix({
        var o = MixOptions(method: .upcycle, experts: [MixFixtures.llama[0]], output: $0)
        o.numExperts = 4; o.seed = 5; configure(&o); return o
    }, in: dir)
}

@Suite("Upcycling variants and router initialisations")
struct UpcyclingVariantTests {
    @Test("Drop-Upcycling re-initialises exactly floor(r F) intermediate dimensions per expert: rows of w1 and w3, columns of w2",
          arguments: [0.5, 0.3, 1.0])
    func dropFraction(_ r: Double) throws {
        let dir = try TemporaryDirectory()
        let ckpt = try upcycled({ $0.dropRatio = r }, in: dir)
        let dense = try Checkpoint.open(MixFixtures.llama[0])
        let F = dense.config.intermediate, C = dense.config.hidden
        let want = Int((Double(F) * r).rounded(.down))
        var sets: [[Int]] = []
        for layer in 0..<dense.config.layers {
            let gate = try dense.store.tensor(ParameterNames.mlp(layer, "gate")).array
            let up = try dense.store.tensor(ParameterNames.mlp(layer, "up")).array
            let down = try dense.store.tensor(ParameterNames.mlp(layer, "down")).array
            for e in 0..<4 {
                let w1 = try ckpt.store.tensor(ParameterNames.moeExpert(layer, e, "w1")).array
                let w3 = try ckpt.store.tensor(ParameterNames.moeExpert(layer, e, "w3")).array
                let w2 = try ckpt.store.tensor(ParameterNames.moeExpert(layer, e, "w2")).array
                // A dimension is re-initialised when its row (w1, w3) or column (w2) differs anywhere.
                let rows1 = (0..<F).filter { f in (0..<C).contains { w1[f * C + $0] != gate[f * C + $0] } }
                let rows3 = (0..<F).filter { f in (0..<C).contains { w3[f * C + $0] != up[f * C + $0] } }
                let cols2 = (0..<F).filter { f in (0..<C).contains { w2[$0 * F + f] != down[$0 * F + f] } }
                #expect(rows1.count == want, "layer \(layer) expert \(e): \(rows1.count) of \(F) re-initialised, floor(\(r) x \(F)) = \(want)")
                #expect(rows3 == rows1 && cols2 == rows1, "the same dimensions in the three matrices")
                let planned = DropUpcycling(ratio: r, intermediate: F, part: .gate, seed: 5, layer: layer, expert: e).indices()
                #expect(planned == rows1)
                // A re-initialised row is new in every entry (the kept ones are exact copies, checked above).
                for f in rows1.prefix(3) { #expect((0..<C).allSatisfy { w1[f * C + $0] != gate[f * C + $0] }) }
                sets.append(rows1)
                // New entries follow the statistics of the entries they replace (|S| C >= 672 samples).
                if r == 0.5 {
                    let old = rows1.flatMap { f in (0..<C).map { Double(gate[f * C + $0]) } }
                    let new = rows1.flatMap { f in (0..<C).map { Double(w1[f * C + $0]) } }
                    func stats(_ x: [Double]) -> (Double, Double) {
                        let m = x.reduce(0, +) / Double(x.count)
                        return (m, (x.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(x.count - 1)).squareRoot())
                    }
                    let (m0, s0) = stats(old), (m1, s1) = stats(new)
                    let n = Double(old.count)
                    #expect(abs(m1 - m0) < 5 * s0 / n.squareRoot(), "mean \(m1) vs \(m0)")
                    #expect(abs(s1 / s0 - 1) < 5 / (2 * n).squareRoot(), "std \(s1) vs \(s0)")
                }
            }
        }
        if r < 1 { #expect(Set(sets.map { $0.description }).count == sets.count, "every expert and layer draws its own set") }
        let model = try Transformer.load(ckpt)
        let logits = try model.forward(tokens: [1, 5, 9, 3], cache: model.makeCache(capacity: 4)).array
        let finite = logits.allSatisfy { $0.isFinite }
        #expect(finite)
    }

    @Test("Drop-Upcycling's options are checked before anything is written")
    func dropValidation() throws {
        let dir = try TemporaryDirectory()
        for configure in [{ (o: inout MixOptions) in o.dropRatio = 1.5 }, { $0.dropRatio = 0.5; $0.upcycleNoise = 0.01 }] {
            var o = MixOptions(method: .upcycle, experts: [MixFixtures.llama[0]], output: dir.file("x"))
            o.numExperts = 2
            configure(&o)
            #expect(throws: BamError.self) { try Mixer.run(o) }
        }
        var btx = MixOptions(method: .btx, experts: MixFixtures.llama, output: dir.file("x"))
        btx.dropRatio = 0.5
        #expect(throws: BamError.self) { try Mixer.run(btx) }
        #expect(!FileManager.default.fileExists(atPath: dir.file("x").path))
    }

    @Test("cheap-embed with negative prompts: each set's embedding sum is normalised before the subtraction (mergekit)")
    func cheapEmbedNegatives() throws {
        let dir = try TemporaryDirectory()
        // Expert 0: a long positive prompt and a short negative one, so the two sums have very
        // different norms and the order of normalising and subtracting matters.
        let p0 = dir.file("p0.txt"), p1 = dir.file("p1.txt"), p2 = dir.file("p2.txt")
        try "the cat sees the ball and the dog finds a red apple\n!a dog\n".write(to: p0, atomically: true, encoding: .utf8)
        try "a child draws the small house\n".write(to: p1, atomically: true, encoding: .utf8)
        try "the old man eats some bread\n!the cat\n!my friend\n".write(to: p2, atomically: true, encoding: .utf8)
        let ckpt = try MixFixtures.mix({
            var o = MixOptions(method: .btx, experts: MixFixtures.llama, output: $0)
            o.router = .cheapEmbed
            o.routerPrompts = [0: p0, 1: p1, 2: p2]
            return o
        }, in: dir)
        let base = try Checkpoint.open(MixFixtures.llama[0])
        let tokenizer = try base.loadTokenizer()
        let embed = try base.store.tensor(ParameterNames.embed)
        let C = base.config.hidden
        func sum(_ prompts: [String]) -> [Double] {
            var s = [Double](repeating: 0, count: C)
            for p in prompts { for id in tokenizer.encode(p, addSpecialTokens: true) { for i in 0..<C { s[i] += Double(embed.data[id * C + i]) } } }
            return s
        }
        func unit(_ v: [Double]) -> [Double] { let n = v.reduce(0) { $0 + $1 * $1 }.squareRoot(); return v.map { $0 / n } }
        let sets: [([String], [String])] = [
            (["the cat sees the ball and the dog finds a red apple"], ["a dog"]),
            (["a child draws the small house"], []),
            (["the old man eats some bread"], ["the cat", "my friend"]),
        ]
        for layer in 0..<base.config.layers {
            let router = try ckpt.store.tensor(ParameterNames.moeRouter(layer))
            for (e, (pos, neg)) in sets.enumerated() {
                let expected = neg.isEmpty ? unit(sum(pos)) : unit(zip(unit(sum(pos)), unit(sum(neg))).map { $0 - $1 })
                for i in 0..<C { #expect(abs(Double(router.data[e * C + i]) - expected[i]) < 1e-6, "layer \(layer) expert \(e) [\(i)]") }
                if !neg.isEmpty {
                    // The raw-sum subtraction (what bam-mix did before) gives another row.
                    let raw = unit(zip(sum(pos), sum(neg)).map { $0 - $1 })
                    #expect(zip(raw, expected).contains { abs($0 - $1) > 1e-3 }, "the case tells the two orders apart")
                }
            }
        }
    }

    @Test("domain router: rows from each expert's mean hidden state, centred across experts and unit length")
    func domainRouter() throws {
        let dir = try TemporaryDirectory()
        let a = dir.file("a.txt"), b = dir.file("b.txt")
        try String(repeating: "the cat sees the ball. ", count: 8).write(to: a, atomically: true, encoding: .utf8)
        try String(repeating: "a child draws the small house. ", count: 6).write(to: b, atomically: true, encoding: .utf8)
        let ckpt = try MixFixtures.mix({
            var o = MixOptions(method: .btx, experts: Array(MixFixtures.llama.prefix(2)), output: $0)
            o.router = .domain
            o.routerData = [0: a, 1: b]
            return o
        }, in: dir)
        let base = try Checkpoint.open(MixFixtures.llama[0])
        let model = try Transformer.load(base)
        let tokenizer = try base.loadTokenizer()
        let C = base.config.hidden, L = base.config.layers
        // The mean residual entering each layer over each text, computed here independently.
        func means(_ url: URL) throws -> [[Double]] {
            let ids = tokenizer.encode(try String(contentsOf: url, encoding: .utf8), addSpecialTokens: true)
            var s = [[Double]](repeating: [Double](repeating: 0, count: C), count: L)
            _ = try model.forward(tokens: ids, cache: model.makeCache(capacity: ids.count), outputRows: 0..<0) { event in
                if case let .hidden(l, x, T, C) = event { for t in 0..<T { for i in 0..<C { s[l][i] += Double(x[t * C + i]) / Double(ids.count) } } }
            }
            return s
        }
        let ma = try means(a), mb = try means(b)
        for l in 0..<L {
            let router = try ckpt.store.tensor(ParameterNames.moeRouter(l)).array
            let d = zip(ma[l], mb[l]).map { ($0 - $1) / 2 }
            let n = d.reduce(0) { $0 + $1 * $1 }.squareRoot()
            for i in 0..<C {
                #expect(abs(Double(router[i]) - d[i] / n) < 1e-5, "layer \(l) expert 0 [\(i)]")
                #expect(abs(Double(router[C + i]) + d[i] / n) < 1e-5, "layer \(l) expert 1 [\(i)]")
            }
        }
        var o = MixOptions(method: .btx, experts: MixFixtures.llama, output: dir.file("y"))
        o.router = .domain
        o.routerData = [0: a, 1: b]
        #expect(throws: BamError.self) { try Mixer.run(o) }   // expert 2 has no text
    }

    @Test("router scale multiplies the initial routers (random entries, data-based rows) and is refused for zero routers")
    func routerScale() throws {
        let dir = try TemporaryDirectory()
        func routers(_ router: RouterInit, scale: Float) throws -> [[Float]] {
            let d = try TemporaryDirectory()
            let ckpt = try MixFixtures.mix({
                var o = MixOptions(method: .bam, experts: Shipped.experts, output: $0)
                o.router = router
                o.routerScale = scale
                if router == .generated { o.routerDataTokens = 24 }
                return o
            }, in: d)
            return try (0..<ckpt.config.layers).map { try ckpt.store.tensor(ParameterNames.moeRouter($0)).array }
        }
        for router in [RouterInit.random, .generated] {
            let one = try routers(router, scale: 1), quarter = try routers(router, scale: 0.25)
            for (a, b) in zip(one, quarter) {
                #expect(zip(a, b).allSatisfy { $0 * 0.25 == $1 }, "\(router): the same router times 0.25")
            }
        }
        var zero = MixOptions(method: .bam, experts: MixFixtures.llama, output: dir.file("z"))
        zero.router = .zero
        zero.routerScale = 0.5
        #expect(throws: BamError.self) { try Mixer.run(zero) }
    }

    @Test("the default router (auto): zero routers for un-renormalised top-k < E gates, random for every other routing")
    func autoRouter() throws {
        func chosen(_ configure: (inout MixOptions) -> Void, method: MixMethod = .bam) throws -> (router: String?, requested: String?, allZero: Bool) {
            let d = try TemporaryDirectory()
            let ckpt = try MixFixtures.mix({ var o = MixOptions(method: method, experts: MixFixtures.llama, output: $0); configure(&o); return o }, in: d)
            let p = try readJSONFile(ckpt.path.appendingPathComponent("bam_mix_provenance.json"))
            let router = try ckpt.store.tensor(ParameterNames.moeRouter(0)).array
            return (p["options"]?["router"]?.stringValue, p["options"]?["router_requested"]?.stringValue, router.allSatisfy { $0 == 0 })
        }
        for (what, configure, method) in [("bam", { (_: inout MixOptions) in }, MixMethod.bam),
                                          ("bam top-2 not renormalised", { $0.topK = 2 }, .bam),
                                          ("btx --no-renormalize", { $0.renormalize = false }, .btx)] as [(String, (inout MixOptions) -> Void, MixMethod)] {
            let c = try chosen(configure, method: method)
            #expect(c.router == "zero" && c.requested == "auto" && c.allZero, "\(what): \(c)")
        }
        for (what, configure, method) in [("btx", { (_: inout MixOptions) in }, MixMethod.btx),
                                          ("bam --renormalize", { $0.renormalize = true }, .bam),
                                          ("bam --ffn-routing btx", { $0.ffnRouting = .btx }, .bam),
                                          ("bam top-3 of 3", { $0.topK = 3 }, .bam),
                                          // A tie would put every token on expert 0, over its capacity.
                                          ("bam --ffn-routing switch", { $0.ffnRouting = .switch }, .bam),
                                          ("bam --ffn-routing soft", { $0.ffnRouting = .soft }, .bam)] as [(String, (inout MixOptions) -> Void, MixMethod)] {
            let c = try chosen(configure, method: method)
            #expect(c.router == "random" && c.requested == "auto" && !c.allZero, "\(what): \(c)")
        }
        let explicit = try chosen({ $0.router = .random })
        #expect(explicit.router == "random" && explicit.requested == nil && !explicit.allZero)
        // --router-scale has nothing to scale on the zero routers auto chooses: refused, naming --router random.
        let dir = try TemporaryDirectory()
        var scaled = MixOptions(method: .bam, experts: MixFixtures.llama, output: dir.file("s"))
        scaled.routerScale = 0.5
        let error = try #require(throws: BamError.self) { try Mixer.run(scaled) }
        #expect("\(error)".contains("random"), "\(error)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("s").path))
    }

    @Test("generated router: the domain rows of the text each expert samples itself from BOS; refused for upcycling")
    func generatedRouter() throws {
        let dir = try TemporaryDirectory()
        // The shipped checkpoints: their byte-level tokenizer has a BOS token (the fixtures' has none).
        let experts = Array(Shipped.experts.prefix(2))
        let tokens = 40
        let ckpt = try MixFixtures.mix({
            var o = MixOptions(method: .btx, experts: experts, output: $0)
            o.router = .generated
            o.routerDataTokens = tokens
            o.seed = 7
            return o
        }, in: dir)
        let base = try Checkpoint.open(experts[0])
        let model = try Transformer.load(base)
        let bos = try #require(try base.loadTokenizer().bosTokenId)
        let C = base.config.hidden, L = base.config.layers
        let length = min(256, base.config.maxPositions - 1)
        // Each expert's samples drawn here again (sequences from BOS, temperature 1, the seeds the
        // mixer documents), then the mean residual over them, computed independently.
        func means(expert e: Int) throws -> [[Double]] {
            let sampler = try Transformer.load(try Checkpoint.open(experts[e]))
            var s = [[Double]](repeating: [Double](repeating: 0, count: C), count: L)
            var docs: [[Int]] = [], count = 0
            while count < tokens {
                let seed = UInt64(7) &* 0x9E37_79B9_7F4A_7C15 &+ (UInt64(e) << 32) &+ UInt64(docs.count)
                let ids = try sampler.generate(prompt: [bos], options: SamplingOptions(temperature: 1, seed: seed, maxTokens: min(length, tokens - count)))
                docs.append([bos] + ids)
                count += ids.count
            }
            let total = Double(docs.reduce(0) { $0 + $1.count })
            for ids in docs {
                _ = try model.forward(tokens: ids, cache: model.makeCache(capacity: ids.count), outputRows: 0..<0) { event in
                    if case let .hidden(l, x, T, C) = event { for t in 0..<T { for i in 0..<C { s[l][i] += Double(x[t * C + i]) / total } } }
                }
            }
            return s
        }
        let m0 = try means(expert: 0), m1 = try means(expert: 1)
        for l in 0..<L {
            let router = try ckpt.store.tensor(ParameterNames.moeRouter(l)).array
            let d = zip(m0[l], m1[l]).map { ($0 - $1) / 2 }
            let n = d.reduce(0) { $0 + $1 * $1 }.squareRoot()
            for i in 0..<C {
                #expect(abs(Double(router[i]) - d[i] / n) < 1e-5, "layer \(l) expert 0 [\(i)]")
                #expect(abs(Double(router[C + i]) + d[i] / n) < 1e-5, "layer \(l) expert 1 [\(i)]")
            }
        }
        var up = MixOptions(method: .upcycle, experts: [experts[0]], output: dir.file("u"))
        up.numExperts = 2
        up.router = .generated
        #expect(throws: BamError.self) { try Mixer.run(up) }
        #expect(!FileManager.default.fileExists(atPath: dir.file("u").path))
    }
}

@Suite("Mixtures usable at once: expert weight scaling for un-renormalised gates")
struct ExpertScalingTests {
    @Test("expert scaling multiplies each BAM expert's down projection, exactly, and nothing else",
          arguments: [(RouterInit.zero, ExpertScaling.auto), (.random, .auto), (.random, .factor(2.5)), (.random, ExpertScaling.none)])
    func scalesDownProjections(router: RouterInit, scaling: ExpertScaling) throws {
        let sources = try MixFixtures.llama.map { try Checkpoint.open($0) }
        let dir = try TemporaryDirectory()
        var log: [String] = []
        let out = dir.file("m")
        var o = MixOptions(method: .bam, experts: MixFixtures.llama, output: out)
        o.expertScaling = scaling
        o.router = router
        let report = try Mixer.run(o) { log.append($0) }
        let ckpt = try Checkpoint.open(out.path)
        #expect(report.expertScales.count == ckpt.config.layers)
        for layer in 0..<ckpt.config.layers {
            let factor = Float(report.expertScales[layer])
            switch (router, scaling) {
            case (.zero, _): #expect(factor == 3, "zero routers: exactly the paper's E/K")
            case (_, .auto): #expect(factor > 1.5 && factor <= 3, "random routers carry more than K/E: \(factor)")
            case let (_, .factor(x)): #expect(factor == Float(x))
            default: #expect(factor == 1)
            }
            for (e, source) in sources.enumerated() {
                let w2 = try ckpt.store.tensor(ParameterNames.moeExpert(layer, e, "w2")).array
                let down = try source.store.tensor(ParameterNames.mlp(layer, "down")).array
                #expect(w2 == down.map { $0 * factor }, "\(scaling): layer \(layer) expert \(e) w2")
                for (w, p) in [("w1", "gate"), ("w3", "up")] {
                    #expect(Array(try ckpt.store.bytes(ParameterNames.moeExpert(layer, e, w))) == Array(try source.store.bytes(ParameterNames.mlp(layer, p))))
                }
            }
        }
        let provenance = try readJSONFile(out.appendingPathComponent("bam_mix_provenance.json"))
        #expect(provenance["options"]?["expert_scales"]?.arrayValue?.compactMap(\.doubleValue) == report.expertScales)
        // Unscaled un-renormalised top-1 shrinks every FFN output about 3x: mix says so.
        #expect(log.contains { $0.hasPrefix("WARNING: FFN top-1 without renormalisation") } == (scaling == .none || scaling == .factor(2.5)), "\(log)")
    }

    @Test("auto scaling of random routers matches the gates' mass measured on text")
    func autoMatchesMeasuredMass() throws {
        let dir = try TemporaryDirectory()
        let out = dir.file("m")
        var o = MixOptions(method: .bam, experts: MixFixtures.llama, output: out)
        o.router = .random
        let report = try Mixer.run(o)
        let text = String(repeating: "the cat sees the ball and a dog finds a red apple. the old man eats some bread. ", count: 12)
        let check = try MixCheck.run(text: text, reference: MixFixtures.llama[0], mixture: out.path,
                                     expertScales: report.expertScales, contextLength: 128, maxChunks: 4)
        for (l, mass) in check.gateMass.enumerated() {
            // The estimate takes FFN inputs of random direction; real ones are not, so a few per cent.
            #expect(abs(mass * report.expertScales[l] - 1) < 0.05, "layer \(l): gates \(mass) x scale \(report.expertScales[l])")
        }
    }

    @Test("renormalised routing is left unscaled")
    func renormalisedUnscaled() throws {
        let dir = try TemporaryDirectory()
        var o = MixOptions(method: .bam, experts: MixFixtures.llama, output: dir.file("r"))
        o.ffnRouting = .btx
        #expect(try Mixer.run(o).expertScales == [1, 1])
    }
}

/// The shipped checkpoints (checkpoints/: a seed and its math, code and knowledge experts).
private enum Shipped {
    static let root = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("checkpoints")
    static let experts = ["seed", "math", "code", "knowledge"].map { root.appendingPathComponent($0).path }
}

@Suite("A fresh BAM mixture of the shipped checkpoints, before finetuning")
struct FreshMixtureTests {
    /// Held-out code text the experts never saw (BamCorpora's held-out split).
    static let text = Corpus.generate(.code, split: .heldout, seed: 11, bytes: 12_000)

    static func check(_ configure: (inout MixOptions) -> Void, in dir: TemporaryDirectory) throws -> MixCheck {
        let out = dir.file("m-\(UUID().uuidString)")
        var o = MixOptions(method: .bam, experts: Shipped.experts, output: out)
        configure(&o)
        let report = try Mixer.run(o)
        return try MixCheck.run(text: text, reference: Shipped.experts[0], mixture: out.path, expertScales: report.expertScales,
                                contextLength: 256, maxChunks: 6)
    }

    @Test("the default recipe's expert scaling removes what the gates take from the FFNs; BTX's FFN routing is within 5 % of the seed")
    func usableAtOnce() throws {
        let dir = try TemporaryDirectory()
        let auto = try Self.check({ _ in }, in: dir)
        let unscaled = try Self.check({ $0.expertScaling = .none }, in: dir)
        // The same routers with every chosen gate exactly 1: the best any scaling of top-1 can do.
        let gateOne = try Self.check({ $0.renormalize = true }, in: dir)
        let btxRouting = try Self.check({ $0.ffnRouting = .btx }, in: dir)
        #expect(unscaled.relativeChange > 1, "unscaled top-1 shrinks every FFN about 3x: \(unscaled.mixture.ppl) vs \(unscaled.reference.ppl)")
        for (l, m) in auto.gateMass.enumerated() {
            #expect(abs(m * auto.expertScales[l] - 1) < 0.05, "layer \(l): the FFN outputs keep their size (\(m) x \(auto.expertScales[l]))")
        }
        #expect(auto.mixture.ppl < 1.02 * gateOne.mixture.ppl, "auto \(auto.mixture.ppl) vs gates of 1 \(gateOne.mixture.ppl)")
        #expect(btxRouting.relativeChange < 0.05, "BAM with BTX's FFN routing: \(btxRouting.mixture.ppl) vs seed \(btxRouting.reference.ppl)")
    }
}

@Suite("Training output: progress lines and smoothed summaries")
struct TrainingOutputTests {
    @Test("a line every N steps and at the last: mean loss of the steps since the last line, their tokens/s, the ETA at the run's pace")
    func progressLines() {
        var meter = TrainingProgressMeter(total: 10, every: 4)
        var lines: [ProgressLine] = []
        for n in 1...10 {
            // Each step takes 0.5 s; the clock also loses 1 s to a validation after step 4.
            let now = Double(n) * 0.5 + (n > 4 ? 1 : 0)
            if let l = meter.add(step: n, loss: Double(n), seconds: 0.5, tokens: 100, lr: 1e-3, now: now) { lines.append(l) }
        }
        #expect(lines.map(\.step) == [4, 8, 10])
        #expect(lines.map(\.meanLoss) == [2.5, 6.5, 9.5])
        #expect(lines.map(\.steps) == [4, 4, 2])
        #expect(lines.allSatisfy { abs($0.tokensPerSecond - 200) < 1e-9 })
        // After 8 steps in 5 s: 0.625 s a step, 2 left.
        #expect(abs(lines[1].etaSeconds - 1.25) < 1e-9 && lines[2].etaSeconds == 0)
        #expect(TrainingProgressMeter(total: 600).every == 30)
        // A resumed run's clock starts at its first step.
        var resumed = TrainingProgressMeter(total: 10, every: 2)
        _ = resumed.add(step: 7, loss: 1, seconds: 0.5, tokens: 100, lr: 1e-3, now: 100.5)
        #expect(abs(resumed.add(step: 8, loss: 1, seconds: 0.5, tokens: 100, lr: 1e-3, now: 101)!.etaSeconds - 1) < 1e-9)
    }

    @Test("summaries compare the means of the first and last 10 % of the steps")
    func smoothed() {
        let losses = (1...40).map { Double($0) }
        let s = SmoothedLosses(losses)!
        #expect(s.steps == 4 && s.first == 2.5 && s.last == 38.5)
        #expect(SmoothedLosses([3, 1])! == SmoothedLosses([3, 1]) && SmoothedLosses([3, 1])!.first == 3 && SmoothedLosses([3, 1])!.last == 1)
        #expect(SmoothedLosses([]) == nil)
    }
}
