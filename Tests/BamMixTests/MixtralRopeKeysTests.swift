@testable import BamMixing
import BamFormats
import BamModels
import Foundation
import Testing

/// A Mixtral output states its RoPE in `rope_theta` / `rope_scaling`, the keys transformers 4 reads
/// (and transformers 5 converts); transformers 4's Mixtral ignores transformers 5's `rope_parameters`
/// and then rotates with its default theta 1e6.
@Suite("Mixtral outputs' RoPE keys")
struct MixtralRopeKeysTests {
    /// The llama seed's config (RoPE as transformers 5's `rope_parameters`, theta 10000) with `rope`
    /// replacing its RoPE keys.
    static func seedConfig(rope: [(String, JSONValue)]) throws -> JSONObject {
        var json = try readJSONFile(URL(fileURLWithPath: MixFixtures.llama[0]).appendingPathComponent("config.json")).objectValue!
        for k in ["rope_parameters", "rope_theta", "rope_scaling"] { json[k] = nil }
        for (k, v) in rope { json[k] = v }
        return json
    }

    @Test("BTX of experts saved by transformers 5 writes rope_theta and no rope_parameters")
    func mixedConfig() throws {
        let seed = try readJSONFile(URL(fileURLWithPath: MixFixtures.llama[0]).appendingPathComponent("config.json"))
        #expect(seed["rope_parameters"]?["rope_theta"]?.doubleValue == 10000 && seed["rope_theta"] == nil)
        let dir = try TemporaryDirectory()
        let ckpt = try MixFixtures.mix({ var o = MixOptions(method: .btx, experts: MixFixtures.llama, output: $0); o.seed = 7; return o }, in: dir)
        let written = try readJSONFile(ckpt.path.appendingPathComponent("config.json"))
        #expect(written["model_type"]?.stringValue == "mixtral")
        #expect(written["rope_theta"]?.doubleValue == 10000)
        #expect(written["rope_parameters"] == nil && written["rope_scaling"] == nil)
        #expect(ckpt.config.ropeTheta == 10000 && ckpt.config.ropeScaling == .none)
    }

    @Test("a scaled RoPE moves to rope_scaling with every key but the theta; bam-mix reads the same RoPE back")
    func scaled() throws {
        let llama3: JSONObject = JSONObject([("rope_type", "llama3"), ("rope_theta", .double(500000)), ("factor", .double(8)),
                                             ("low_freq_factor", .double(1)), ("high_freq_factor", .double(4)),
                                             ("original_max_position_embeddings", .int(64))])
        var cfg = try Self.seedConfig(rope: [("rope_parameters", .object(llama3))])
        let before = try ModelConfig(json: cfg)
        MixtralRopeKeys.write(to: &cfg)
        var expected = llama3
        expected["rope_theta"] = nil
        #expect(cfg["rope_theta"]?.doubleValue == 500000)
        #expect(cfg["rope_scaling"] == .object(expected))
        #expect(cfg["rope_parameters"] == nil)
        let after = try ModelConfig(json: cfg)
        #expect(after.ropeTheta == before.ropeTheta && after.ropeScaling == before.ropeScaling)
        #expect(after.ropeScaling == .llama3(factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 64))
    }

    @Test("classic keys stay as they are; no RoPE key at all becomes bam-mix's default theta, stated")
    func classicAndAbsent() throws {
        let linear = JSONObject([("type", "linear"), ("factor", .double(2))])
        var classic = try Self.seedConfig(rope: [("rope_theta", .double(250000)), ("rope_scaling", .object(linear))])
        MixtralRopeKeys.write(to: &classic)
        #expect(classic["rope_theta"]?.doubleValue == 250000 && classic["rope_scaling"] == .object(linear))
        #expect(try ModelConfig(json: classic).ropeScaling == .linear(factor: 2))

        var unscaled = try Self.seedConfig(rope: [("rope_theta", .double(250000)), ("rope_scaling", .null)])
        MixtralRopeKeys.write(to: &unscaled)
        #expect(unscaled["rope_theta"]?.doubleValue == 250000 && unscaled["rope_scaling"] == nil)

        var absent = try Self.seedConfig(rope: [])
        let bamMixDefault = try ModelConfig(json: absent).ropeTheta
        MixtralRopeKeys.write(to: &absent)
        #expect(absent["rope_theta"]?.doubleValue == Double(bamMixDefault))
    }
}
