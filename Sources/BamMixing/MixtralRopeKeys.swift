import BamFormats

/// The RoPE keys of a Mixtral config.json, stated so that every transformers version reads them alike.
///
/// transformers 5 writes RoPE as `rope_parameters` ({"rope_type", "rope_theta", ...}) and bam-mix copies
/// the seed's config, so a mix of experts saved by transformers 5 inherited that key alone. transformers 4
/// reads only the classic `rope_theta` and `rope_scaling`, and its MixtralConfig falls back to a theta of
/// 1e6 when `rope_theta` is absent (transformers 5 and bam-mix fall back to 10000): such a mix loaded in
/// transformers 4 rotated with other frequencies and gave other logits. transformers 5 still reads the
/// classic keys (it moves them into its `rope_parameters`), so a Mixtral output states its RoPE in them
/// and in nothing else.
enum MixtralRopeKeys {
    /// Rewrites `config`'s RoPE as `rope_theta` (always present) and `rope_scaling` (present only for a
    /// scaled RoPE), with the values bam-mix's ModelConfig reads from it: theta from `rope_parameters`,
    /// else `rope_theta`, else 10000; the scaling from `rope_scaling`, else `rope_parameters`.
    static func write(to config: inout JSONObject) {
        let parameters = config["rope_parameters"]?.objectValue
        let theta = parameters?["rope_theta"] ?? config["rope_theta"].flatMap { $0.isNull ? nil : $0 } ?? .double(10000)
        let scaling = config["rope_scaling"]?.objectValue ?? parameters
        config["rope_parameters"] = nil
        config["rope_theta"] = theta
        config["rope_scaling"] = nil
        if let scaling {
            let type = scaling["rope_type"]?.stringValue ?? scaling["type"]?.stringValue ?? "default"
            if type != "default" {
                var classic = scaling
                classic["rope_theta"] = nil
                config["rope_scaling"] = .object(classic)
            }
        }
    }
}
