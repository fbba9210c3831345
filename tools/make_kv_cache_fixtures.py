#!/usr/bin/env python3
"""Logits of transformers with a half-precision KV cache, for `--kv-cache f16`.

Run by hand (never in CI), after tools/make_model_fixtures.py; the Swift tests only read what this
writes under Tests/Fixtures/models.

    tools/setup-peers   # once: the peers' venv outside the checkout (the script runs itself under it)
    python3 tools/make_kv_cache_fixtures.py

bam-mix's f16 cache stores every key (after RoPE) and value rounded to IEEE half, to nearest even,
and computes the attention over those stored values in float32 — what llama.cpp does with its
default f16 cache. transformers has no such cache, so this script gives it one: a DynamicCache whose
`update` rounds the new keys and values to float16 and back before storing them, so that the
attention (eager, float32) reads the rounded values, the new token's own key and value included.
For each model it writes `logits_kv_f16.npy` (float32 [T, V]) beside the model's `ids.npy`, from one
forward pass over all the ids.
"""
import inspect
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402

peers.require("numpy", "torch", "transformers")
import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "models")
# A dense GQA model, one with biases on its projections, and a mixture.
MODELS = ("llama_gqa_classic_rope", "llama_biases_f16", "mixtral_legacy")


class HalfKVCache(transformers.DynamicCache):
    """A DynamicCache that keeps keys and values as float16 values (held in float32 tensors)."""

    def update(self, key_states, value_states, layer_idx, *args, **kwargs):
        return super().update(key_states.half().float(), value_states.half().float(), layer_idx, *args, **kwargs)


def main():
    for name in MODELS:
        path = os.path.join(ROOT, name)
        model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager")
        model.eval()
        ids = torch.from_numpy(np.load(os.path.join(path, "ids.npy"))).unsqueeze(0)
        # transformers 5.x renamed the argument from past_key_values to cache.
        argument = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        with torch.no_grad():
            cache = HalfKVCache(config=model.config)
            logits = model(ids, use_cache=True, **{argument: cache}).logits[0].float().numpy()
            plain = model(ids).logits[0].float().numpy()
        np.save(os.path.join(path, "logits_kv_f16.npy"), logits.astype(np.float32))
        # The rounding must show, or the fixture could not tell the two caches apart.
        moved = float(np.abs(logits - plain).max())
        assert moved > 0, f"{name}: the f16 cache did not change the logits"
        print(f"{name}: logits_kv_f16.npy {logits.shape}, max |f16 - f32 cache| {moved:.2e}")


if __name__ == "__main__":
    main()
