import BamFormats
import BamMixing
import BamModels
import Foundation
import Testing

/// The BAM model code `mix` writes beside BAM checkpoints is the Python package's, byte for byte.
@Suite("BAM model code in mixes")
struct BamModelCodeTests {
    static let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("python/bam_mix_torch")

    @Test("the embedded sources equal python/bam_mix_torch's files (else rerun tools/embed_bam_model_code.py)")
    func embeddedSourcesArePackageFiles() throws {
        #expect(BamModelCode.files.map(\.name) == ["configuration_bam.py", "modeling_bam.py"])
        for file in BamModelCode.files {
            let onDisk = Array(try Data(contentsOf: Self.package.appendingPathComponent(file.name)))
            // Bytes, not String ==, which would equate canonically equivalent Unicode.
            let embedded = Array(file.text.utf8)
            let firstDifference = (0..<min(embedded.count, onDisk.count)).first { embedded[$0] != onDisk[$0] } ?? min(embedded.count, onDisk.count)
            let same = embedded == onDisk
            #expect(same, """
                \(file.name): the embedded text (\(embedded.count) bytes) differs from python/bam_mix_torch/\(file.name) \
                (\(onDisk.count) bytes) from byte \(firstDifference) on; run tools/embed_bam_model_code.py
                """)
        }
    }

    @Test("a BAM mix carries auto_map and the two model files; a Mixtral BTX mix neither")
    func mixOutputs() throws {
        let dir = try TemporaryDirectory()
        let bam = try MixFixtures.mix({ var o = MixOptions(method: .bam, experts: MixFixtures.llama, output: $0); o.seed = 3; return o }, in: dir)
        let config = try readJSONFile(bam.path.appendingPathComponent("config.json"))
        #expect(config["auto_map"]?["AutoConfig"]?.stringValue == "configuration_bam.BamConfig")
        #expect(config["auto_map"]?["AutoModelForCausalLM"]?.stringValue == "modeling_bam.BamForCausalLM")
        for file in BamModelCode.files {
            let written = Array(try Data(contentsOf: bam.path.appendingPathComponent(file.name)))
            let same = written == Array(file.text.utf8)
            #expect(same, "\(file.name) is written byte for byte")
        }
        // The model still loads in bam-mix (auto_map is not a config key it needs).
        #expect(bam.config.moa != nil)

        let btxDir = try TemporaryDirectory()
        let btx = try MixFixtures.mix({ MixOptions(method: .btx, experts: MixFixtures.llama, output: $0) }, in: btxDir)
        #expect(btx.config.family == .mixtral)
        let btxConfig = try readJSONFile(btx.path.appendingPathComponent("config.json"))
        #expect(btxConfig["auto_map"] == nil, "Mixtral loads natively")
        for file in BamModelCode.files {
            #expect(!FileManager.default.fileExists(atPath: btx.path.appendingPathComponent(file.name).path))
        }
    }
}
