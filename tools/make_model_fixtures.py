#!/usr/bin/env python3
"""Builds the tiny reference models and logits the Swift tests compare against.

Run by hand (never in CI); the tests only read what this writes under Tests/Fixtures/models.

    tools/setup-peers   # once: the peers' venv outside the checkout (the script runs itself under it)
    python3 tools/make_model_fixtures.py

Every model is a transformers model with random weights (scaled up from transformers' tiny init
so that logits differ meaningfully between positions), saved with `save_pretrained`, plus
`ids.npy` (int64 token ids) and `logits.npy` (float32 [T, V], transformers' eager attention in
float32 on the weights as saved, i.e. after any bf16/f16 rounding).
"""
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402  (tools/peers.py: the peers' venv, installed by tools/setup-peers)

peers.require("numpy", "torch", "transformers", "safetensors")
import numpy as np  # noqa: E402
import torch
import transformers
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "models")


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            elif "gate.weight" in name and ("mlp.gate" in name or "block_sparse_moe.gate" in name):
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=g))


def save(name, model, ids, dtype=torch.float32, shard=None, config_edit=None, fused_mixtral=False):
    out = os.path.join(ROOT, name)
    shutil.rmtree(out, ignore_errors=True)
    model = model.to(dtype)
    kwargs = {}
    if shard:
        kwargs["max_shard_size"] = shard
    model.save_pretrained(out, **kwargs)
    if fused_mixtral:
        # transformers 5 keeps the fused expert tensors in memory but saves the legacy names;
        # current mergekit-moe writes the fused ones. Write them as they are in memory.
        for f in os.listdir(out):
            if f.endswith(".safetensors") or f.endswith(".index.json"):
                os.remove(os.path.join(out, f))
        sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        if model.config.tie_word_embeddings:
            sd.pop("lm_head.weight", None)
        save_file(sd, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    if config_edit:
        path = os.path.join(out, "config.json")
        cfg = json.load(open(path))
        config_edit(cfg)
        json.dump(cfg, open(path, "w"), indent=2)
    # Reload exactly what was written, in float32, and record the logits.
    ref = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32, attn_implementation="eager")
    ref.eval()
    with torch.no_grad():
        logits = ref(torch.tensor([ids])).logits[0].float().numpy()
    np.save(os.path.join(out, "ids.npy"), np.array(ids, dtype=np.int64))
    np.save(os.path.join(out, "logits.npy"), logits.astype(np.float32))
    print(f"{name}: {sorted(os.listdir(out))} logits {logits.shape} |max| {np.abs(logits).max():.3f}")


def classic_rope(cfg):
    """Rewrites transformers-5 `rope_parameters` into the classic top-level `rope_theta` form."""
    rp = cfg.pop("rope_parameters")
    cfg["rope_theta"] = rp["rope_theta"]
    cfg.pop("dtype", None)
    cfg["torch_dtype"] = "float32"


def main():
    torch.manual_seed(0)
    os.makedirs(ROOT, exist_ok=True)
    V = 128
    rng = np.random.default_rng(7)
    ids = [int(x) for x in rng.integers(0, V, size=20)]
    common = dict(vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)

    from transformers import (CohereConfig, CohereForCausalLM, LlamaConfig, LlamaForCausalLM, MistralConfig,
                              MistralForCausalLM, MixtralConfig, MixtralForCausalLM, Qwen2Config, Qwen2ForCausalLM)

    m = LlamaForCausalLM(LlamaConfig(**common, rope_theta=10000.0)); randomize(m, 1)
    save("llama_gqa_classic_rope", m, ids, config_edit=classic_rope)

    m = LlamaForCausalLM(LlamaConfig(**common, rope_theta=500000.0, tie_word_embeddings=True)); randomize(m, 2)
    save("llama_tied_bf16", m, ids, dtype=torch.bfloat16)

    m = LlamaForCausalLM(LlamaConfig(**{**common, "head_dim": 16}, rope_theta=10000.0)); randomize(m, 3)
    save("llama_head_dim_sharded", m, ids, shard="20KB")

    m = LlamaForCausalLM(LlamaConfig(**common, attention_bias=True, mlp_bias=True)); randomize(m, 4)
    save("llama_biases_f16", m, ids, dtype=torch.float16)

    m = LlamaForCausalLM(LlamaConfig(**common, rope_parameters={
        "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 8})); randomize(m, 5)
    save("llama3_rope_scaling", m, ids)

    m = MistralForCausalLM(MistralConfig(**common, sliding_window=64)); randomize(m, 6)
    save("mistral", m, ids)

    m = Qwen2ForCausalLM(Qwen2Config(**common, tie_word_embeddings=True)); randomize(m, 7)
    save("qwen2_tied", m, ids)

    m = CohereForCausalLM(CohereConfig(**common, logit_scale=0.25, layer_norm_eps=1e-5)); randomize(m, 8)
    save("cohere_parallel", m, ids)

    mix = dict(common, intermediate_size=48, num_local_experts=8, num_experts_per_tok=2)
    m = MixtralForCausalLM(MixtralConfig(**mix)); randomize(m, 9)
    save("mixtral_legacy", m, ids)
    m = MixtralForCausalLM(MixtralConfig(**dict(mix, num_local_experts=4))); randomize(m, 10)
    save("mixtral_fused", m, ids, fused_mixtral=True)

    with open(os.path.join(ROOT, "VERSIONS.txt"), "w") as f:
        f.write(f"torch {torch.__version__}\ntransformers {transformers.__version__}\n")


if __name__ == "__main__":
    sys.exit(main())
