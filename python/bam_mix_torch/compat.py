"""The places where transformers' API moved within the supported range (transformers >= 4.51.1, < 6),
for the package's own use. (modeling_bam.py carries its own small compatibility section: it is also
shipped alone beside checkpoints, where it cannot import this module.)"""

import transformers

TRANSFORMERS_VERSION = tuple(int(p) for p in transformers.__version__.split(".")[:2])

# The theta bam-mix and transformers 5 use when a config names none (transformers 4's Mixtral: 1e6).
DEFAULT_ROPE_THETA = 10000.0


def from_pretrained_kwargs(dtype):
    """Keyword arguments asking `from_pretrained` for `dtype` weights, eager attention and (transformers 5)
    the eager loop over experts: the plainest arithmetic, the one bam-mix's is checked against.

    `torch_dtype` was renamed `dtype` in transformers 4.56; `experts_implementation` exists since 5.0
    (its default, grouped GEMMs, is a different summation order)."""
    kwargs = {"attn_implementation": "eager"}
    kwargs["dtype" if TRANSFORMERS_VERSION >= (4, 56) else "torch_dtype"] = dtype
    if TRANSFORMERS_VERSION >= (5, 0):
        kwargs["experts_implementation"] = "eager"
    return kwargs


def mixtral_config(config):
    """transformers' MixtralConfig for a Mixtral config.json dict, with the RoPE bam-mix computes.

    transformers 5 states RoPE as `rope_parameters` ({"rope_type", "rope_theta", ...}); transformers 4
    reads only `rope_theta` and `rope_scaling` and, without `rope_theta`, gives Mixtral a theta of 1e6
    where transformers 5 and bam-mix use 10000. So under transformers 4 a config in transformers 5's form
    (a checkpoint saved by transformers 5, or mixed by a bam-mix that copied its experts' keys) is
    rewritten into the classic keys first, as bam-mix reads it: theta from `rope_parameters`, else
    `rope_theta`, else 10000; the scaling from `rope_scaling`, else `rope_parameters` unless it is the
    default RoPE. (bam-mix now writes Mixtral configs in the classic keys, which both versions read.)"""
    from transformers import MixtralConfig

    config = dict(config)
    if TRANSFORMERS_VERSION < (5, 0):
        parameters = config.pop("rope_parameters", None) or {}
        theta = parameters.get("rope_theta", config.get("rope_theta"))
        config["rope_theta"] = DEFAULT_ROPE_THETA if theta is None else theta
        scaling = config.get("rope_scaling") or parameters
        if scaling.get("rope_type", scaling.get("type", "default")) != "default":
            config["rope_scaling"] = {k: v for k, v in scaling.items() if k != "rope_theta"}
        else:
            config.pop("rope_scaling", None)
    return MixtralConfig.from_dict(config)
