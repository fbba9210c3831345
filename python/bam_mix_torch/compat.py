"""The places where transformers' API moved within the supported range (transformers >= 4.51.1, < 6),
for the package's own use. (modeling_bam.py carries its own small compatibility section: it is also
shipped alone beside checkpoints, where it cannot import this module.)"""

import transformers

TRANSFORMERS_VERSION = tuple(int(p) for p in transformers.__version__.split(".")[:2])


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

