#!/usr/bin/env python3
"""Builds the tiny BAM checkpoints and reference logits the Swift tests compare against.

Run by hand (never in CI); the tests only read what this writes under Tests/Fixtures/bam.

    tools/setup-peers   # once: the peers' venv outside the checkout (the script runs itself under it)
    python3 tools/make_bam_fixtures.py

(written against torch 2.x and transformers 5.23-5.24).

Every fixture is a BAM checkpoint in the format of docs/bam-format.md with random tensors of
meaningful scale (weights and embeddings N(0, 0.15), norms 1 + 0.2 N(0, 1), routers N(0, 0.5),
biases N(0, 0.2); seeded), written directly with safetensors (metadata {"format": "pt"}) next to its
config.json, plus the model code of the package python/bam_mix_torch and `auto_map`, so
`AutoModelForCausalLM.from_pretrained(dir, trust_remote_code=True)` loads it. The script loads each
fixture that way and records

    ids.npy     int64 [20]       the token ids (the same for every fixture)
    logits.npy  float32 [20, V]  the reference's logits (float32, use_cache=False) on the weights
                                 as stored (after any bf16/f16 rounding)

and, for `expert_kv_soft_parallel` and `shared_kv_topk_sequential`, `router_losses.json`
({"btx", "switch", "z"}, each summed over the layers, for the fixture ids) and `loss.json`
({"loss"}: the LM cross-entropy with labels = ids).

Before anything is written the script checks the reference against itself and against transformers:
  * every fixture's logits and router losses against a naive float64 per-token implementation of
    docs/bam-format.md written independently below, and every routing decision for a margin of at
    least MIN_MARGIN (so a port cannot legitimately choose other experts);
  * the KV cache: token-by-token decoding equals the full forward;
  * special case (a): E identical copies of a dense Llama (attention experts = the dense attention,
    FFN experts = the dense MLP, random routers, soft routing, router_renormalize, sequential block)
    gives LlamaForCausalLM's logits to 1e-5; (b) the same with every router weight zero; plus the
    same identity for Mistral, Qwen2, Cohere (parallel) and Llama with attention biases, shared_kv
    and top-k attention routing.
"""
import json
import math
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402  (tools/peers.py: the peers' venv, installed by tools/setup-peers)

peers.require("numpy", "torch", "transformers", "safetensors")
import numpy as np  # noqa: E402
import torch
import transformers
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
from bam_mix_torch import install as bam_install  # noqa: E402  (python/bam_mix_torch/install.py)

ROOT = os.path.join(HERE, "..", "Tests", "Fixtures", "bam")
V, C, F_, L, NH, NKV, E = 128, 32, 48, 2, 4, 2, 3
T = 20
MIN_MARGIN = 1e-3  # smallest allowed gap between the last chosen and the first unchosen probability


# ------------------------------------------------------------------------------------------------
# Configs and random tensors
# ------------------------------------------------------------------------------------------------


def bam_config(base="llama", attention_experts="expert_kv", attention_routing="soft", k_attn=None,
               top_k=1, renormalize=False, parallel=True, attention_bias=None, tie=False,
               classic_rope=True, theta=10000.0, logit_scale=None, dtype="float32", seed=0):
    cfg = {
        "architectures": ["BamForCausalLM"],
        "model_type": "bam",
        "base_model_type": base,
        "vocab_size": V,
        "hidden_size": C,
        "intermediate_size": F_,
        "num_hidden_layers": L,
        "num_attention_heads": NH,
        "num_key_value_heads": NKV,
        "hidden_act": "silu",
        "max_position_embeddings": 256,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "tie_word_embeddings": tie,
        "num_local_experts": E,
        "num_experts_per_tok": top_k,
        "router_renormalize": renormalize,
        "attention_experts": attention_experts,
        "attention_routing": attention_routing,
        "parallel_block": parallel,
        "router_aux_loss_coef": 0.01,
        "router_z_loss_coef": 0.001,
        "bam_sources": [{"expert": j, "source": f"random tensors (tools/make_bam_fixtures.py, seed {seed})"}
                        for j in range(E)],
        "torch_dtype": dtype,
    }
    if base == "cohere":
        cfg["layer_norm_eps"] = 1e-5
        cfg["logit_scale"] = logit_scale if logit_scale is not None else 0.0625
    else:
        cfg["rms_norm_eps"] = 1e-5 if base == "qwen2" else 1e-6
    if base != "qwen2":
        cfg["attention_bias"] = bool(attention_bias)
    if attention_routing == "top_k":
        cfg["num_attention_experts_per_tok"] = k_attn
    if classic_rope:
        cfg["rope_theta"] = theta
    else:
        cfg["rope_parameters"] = {"rope_type": "default", "rope_theta": theta}
    return cfg


def bias_flags(cfg):
    """(q/k/v bias, o bias) of the config's family."""
    if cfg["base_model_type"] == "qwen2":
        return True, False
    b = bool(cfg.get("attention_bias", False))
    return b, b


def tensor_shapes(cfg):
    """Every tensor of a BAM checkpoint, in a fixed order: name -> shape."""
    hd = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    c, f, e = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_local_experts"]
    q_dim, kv_dim = cfg["num_attention_heads"] * hd, cfg["num_key_value_heads"] * hd
    qkv_bias, o_bias = bias_flags(cfg)
    shapes = {"model.embed_tokens.weight": (cfg["vocab_size"], c)}
    for n in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{n}."
        shapes[p + "input_layernorm.weight"] = (c,)
        if not cfg["parallel_block"]:
            shapes[p + "post_attention_layernorm.weight"] = (c,)
        shapes[p + "self_attn.gate.weight"] = (e, c)
        projections = [("q_proj", q_dim, c, qkv_bias), ("o_proj", c, q_dim, o_bias)]
        if cfg["attention_experts"] == "expert_kv":
            projections[1:1] = [("k_proj", kv_dim, c, qkv_bias), ("v_proj", kv_dim, c, qkv_bias)]
        else:
            for name in ("k_proj", "v_proj"):
                shapes[p + f"self_attn.{name}.weight"] = (kv_dim, c)
                if qkv_bias:
                    shapes[p + f"self_attn.{name}.bias"] = (kv_dim,)
        for j in range(e):
            for name, rows, cols, has_bias in projections:
                shapes[p + f"self_attn.experts.{j}.{name}.weight"] = (rows, cols)
                if has_bias:
                    shapes[p + f"self_attn.experts.{j}.{name}.bias"] = (rows,)
        shapes[p + "block_sparse_moe.gate.weight"] = (e, c)
        for j in range(e):
            q = p + f"block_sparse_moe.experts.{j}."
            shapes[q + "w1.weight"] = (f, c)
            shapes[q + "w3.weight"] = (f, c)
            shapes[q + "w2.weight"] = (c, f)
    shapes["model.norm.weight"] = (c,)
    if not cfg["tie_word_embeddings"]:
        shapes["lm_head.weight"] = (cfg["vocab_size"], c)
    return shapes


def random_tensors(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in tensor_shapes(cfg).items():
        r = torch.randn(shape, generator=g)
        if "norm" in name:
            out[name] = 1.0 + 0.2 * r
        elif name.endswith(".bias"):
            out[name] = 0.2 * r
        elif name.endswith("gate.weight"):
            out[name] = 0.5 * r
        else:
            out[name] = 0.15 * r
    return out


def write_checkpoint(directory, cfg, tensors):
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    dtype = getattr(torch, cfg.get("torch_dtype", "float32"))
    stored = {k: v.to(dtype).clone().contiguous() for k, v in tensors.items()}
    save_file(stored, os.path.join(directory, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    bam_install.install(directory)  # copies the reference .py files, adds auto_map
    return {k: v.float() for k, v in stored.items()}  # the values as stored, for the naive check


def load_reference(directory):
    model, info = transformers.AutoModelForCausalLM.from_pretrained(
        directory, trust_remote_code=True, dtype=torch.float32, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}  # missing / unexpected / mismatched keys, errors
    assert not problems, f"{directory}: loading problems {problems}"
    assert type(model).__name__ == "BamForCausalLM", type(model)
    return model.eval()


# ------------------------------------------------------------------------------------------------
# A naive, independent float64 implementation of docs/bam-format.md (per token, per head)
# ------------------------------------------------------------------------------------------------


class Naive:
    def __init__(self, cfg, tensors):
        self.cfg = cfg
        self.w = {k: v.double() for k, v in tensors.items()}
        self.hd = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
        self.cohere = cfg["base_model_type"] == "cohere"
        rp = cfg.get("rope_parameters") or {}
        theta = rp.get("rope_theta", cfg.get("rope_theta", 10000.0))
        inv = 1.0 / (theta ** (torch.arange(0, self.hd, 2, dtype=torch.int64).float() / self.hd))  # float32
        self.inv_freq = inv.double()
        self.margins = []  # (kind, layer, token, gap) for every top-k decision with an unchosen expert

    def norm(self, x, name):
        w = self.w[name]
        if self.cohere:
            eps = self.cfg["layer_norm_eps"]
            mu = x.mean(-1, keepdim=True)
            return (x - mu) / torch.sqrt(((x - mu) ** 2).mean(-1, keepdim=True) + eps) * w
        eps = self.cfg["rms_norm_eps"]
        return x / torch.sqrt((x ** 2).mean(-1, keepdim=True) + eps) * w

    def linear(self, x, name):
        y = x @ self.w[name + ".weight"].T
        if name + ".bias" in self.w:
            y = y + self.w[name + ".bias"]
        return y

    def rope(self, x):
        """x [T, heads, hd]; rotate pair (a, b) of frequency i by angle t * inv_freq_i."""
        y = x.clone()
        half = self.hd // 2
        for t in range(x.shape[0]):
            for i in range(half):
                a, b = (2 * i, 2 * i + 1) if self.cohere else (i, i + half)
                ang = t * self.inv_freq[i]
                c, s = math.cos(ang), math.sin(ang)
                y[t, :, a] = x[t, :, a] * c - x[t, :, b] * s
                y[t, :, b] = x[t, :, b] * c + x[t, :, a] * s
        return y

    def choose(self, p, k, kind, layer, token):
        order = sorted(range(len(p)), key=lambda i: (-float(p[i]), i))
        if k < len(p):
            self.margins.append((kind, layer, token, float(p[order[k - 1]] - p[order[k]])))
        return order[:k]

    def attention(self, h, layer):
        cfg, p = self.cfg, f"model.layers.{layer}.self_attn."
        n_t, nh, nkv, hd = h.shape[0], cfg["num_attention_heads"], cfg["num_key_value_heads"], self.hd
        gates = torch.zeros(n_t, cfg["num_local_experts"], dtype=torch.float64)
        for t in range(n_t):
            probs = torch.softmax(self.linear(h[t], p + "gate"), -1)
            if cfg["attention_routing"] == "soft":
                gates[t] = probs
            else:
                chosen = self.choose(probs, cfg["num_attention_experts_per_tok"], "attention", layer, t)
                total = sum(float(probs[j]) for j in chosen)
                for j in chosen:
                    gates[t, j] = probs[j] / total
        out = torch.zeros_like(h)
        for j in range(cfg["num_local_experts"]):
            ex = p + f"experts.{j}."
            kv = ex if cfg["attention_experts"] == "expert_kv" else p
            q = self.rope(self.linear(h, ex + "q_proj").view(n_t, nh, hd))
            k = self.rope(self.linear(h, kv + "k_proj").view(n_t, nkv, hd))
            v = self.linear(h, kv + "v_proj").view(n_t, nkv, hd)
            att = torch.zeros(n_t, nh, hd, dtype=torch.float64)
            for head in range(nh):
                kvh = head // (nh // nkv)
                for t in range(n_t):
                    scores = torch.stack([q[t, head] @ k[s, kvh] for s in range(t + 1)]) / math.sqrt(hd)
                    weights = torch.softmax(scores, -1)
                    att[t, head] = (weights[:, None] * v[: t + 1, kvh]).sum(0)
            out_j = self.linear(att.reshape(n_t, nh * hd), ex + "o_proj")
            out += gates[:, j : j + 1] * out_j
        return out

    def moe(self, h, layer):
        cfg, p = self.cfg, f"model.layers.{layer}.block_sparse_moe."
        e, k = cfg["num_local_experts"], cfg["num_experts_per_tok"]
        out = torch.zeros_like(h)
        probs_all, gates_all, chosen_all, lse = [], [], [], []
        for t in range(h.shape[0]):
            logits = h[t] @ self.w[p + "gate.weight"].T
            probs = torch.softmax(logits, -1)
            chosen = self.choose(probs, k, "ffn", layer, t)
            total = sum(float(probs[i]) for i in chosen) if cfg["router_renormalize"] else 1.0
            gates = torch.zeros(e, dtype=torch.float64)
            for i in chosen:
                gates[i] = probs[i] / total
                ex = p + f"experts.{i}."
                a = h[t] @ self.w[ex + "w1.weight"].T
                b = h[t] @ self.w[ex + "w3.weight"].T
                out[t] += gates[i] * ((a * torch.sigmoid(a) * b) @ self.w[ex + "w2.weight"].T)
            probs_all.append(probs)
            gates_all.append(gates)
            chosen_all.append(torch.tensor([1.0 if i in chosen else 0.0 for i in range(e)], dtype=torch.float64))
            lse.append(torch.logsumexp(logits, -1))
        P = torch.stack(probs_all).mean(0)
        u = torch.stack(gates_all).mean(0)
        f = torch.stack(chosen_all).sum(0) / (h.shape[0] * k)
        losses = {"btx": float(e * (u * P).sum()), "switch": float(e * (f * P).sum()),
                  "z": float((torch.stack(lse) ** 2).mean())}
        return out, losses

    def forward(self, ids):
        cfg = self.cfg
        x = self.w["model.embed_tokens.weight"][torch.tensor(ids)]
        totals = {"btx": 0.0, "switch": 0.0, "z": 0.0}
        for n in range(cfg["num_hidden_layers"]):
            p = f"model.layers.{n}."
            if cfg["parallel_block"]:
                h = self.norm(x, p + "input_layernorm.weight")
                ffn, losses = self.moe(h, n)
                x = x + self.attention(h, n) + ffn
            else:
                x = x + self.attention(self.norm(x, p + "input_layernorm.weight"), n)
                ffn, losses = self.moe(self.norm(x, p + "post_attention_layernorm.weight"), n)
                x = x + ffn
            for key in totals:
                totals[key] += losses[key]
        x = self.norm(x, "model.norm.weight")
        head = self.w["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else self.w["lm_head.weight"]
        logits = x @ head.T
        if self.cohere:
            logits = logits * cfg["logit_scale"]
        return logits, totals


# ------------------------------------------------------------------------------------------------
# Fixtures
# ------------------------------------------------------------------------------------------------

FIXTURES = [
    # name, config options, seed, write router_losses.json + loss.json, what it covers
    ("expert_kv_soft_parallel", dict(parallel=True), 11, True,
     "llama base, expert_kv, soft attention routing, parallel block, FFN top-1 without renormalisation, "
     "GQA 4 heads / 2 kv heads, untied, rope_theta top-level, float32"),
    ("shared_kv_soft_parallel", dict(attention_experts="shared_kv", parallel=True, tie=True, classic_rope=False),
     12, False, "llama base, shared_kv, soft, parallel, FFN top-1, tied embeddings, rope_parameters, float32"),
    ("expert_kv_topk_sequential", dict(attention_routing="top_k", k_attn=2, parallel=False, tie=True,
                                       theta=500000.0), 13, False,
     "llama base, expert_kv, top-2-of-3 attention routing, sequential block, FFN top-1, tied, theta 5e5, float32"),
    ("shared_kv_topk_sequential", dict(attention_experts="shared_kv", attention_routing="top_k", k_attn=1,
                                       parallel=False, classic_rope=False), 14, True,
     "llama base, shared_kv, top-1 attention routing, sequential, FFN top-1, untied, rope_parameters, float32"),
    ("qwen2_expert_kv_soft_parallel", dict(base="qwen2", parallel=True, tie=True, theta=1000000.0,
                                           dtype="bfloat16"), 15, False,
     "qwen2 base (q/k/v biases, no o bias), expert_kv, soft, parallel, FFN top-1, tied, bfloat16 weights"),
    ("llama_bias_shared_kv_soft_sequential", dict(attention_experts="shared_kv", attention_bias=True,
                                                  parallel=False, dtype="float16"), 16, False,
     "llama base with attention_bias (q/k/v/o biases, shared k/v biases), shared_kv, soft, sequential, "
     "FFN top-1, float16 weights"),
    ("cohere_expert_kv_soft_parallel", dict(base="cohere", parallel=True, tie=True, logit_scale=0.25,
                                            classic_rope=False, dtype="bfloat16"), 17, False,
     "cohere base (LayerNorm, interleaved RoPE, logit_scale 0.25, tied), expert_kv, soft, parallel, "
     "FFN top-1, bfloat16 weights"),
    ("mistral_renormalize_k2_sequential", dict(base="mistral", top_k=2, renormalize=True, parallel=False,
                                               dtype="bfloat16"), 18, False,
     "mistral base, expert_kv, soft, sequential, FFN top-2 of 3 with router_renormalize, bfloat16 weights"),
]


def fixture_ids():
    rng = np.random.default_rng(7)
    return [int(x) for x in rng.integers(0, V, size=T)]


def make_fixture(name, options, seed, with_losses, ids):
    # Draw tensors until every top-k decision has a clear margin (up to 20 draws, stepping the seed
    # by 1000; the seed used is recorded in bam_sources).
    for attempt in range(20):
        cfg = bam_config(seed=seed, **options)
        out = os.path.join(ROOT, name)
        stored = write_checkpoint(out, cfg, random_tensors(cfg, seed))
        model = load_reference(out)
        with torch.no_grad():
            result = model(torch.tensor([ids]), labels=torch.tensor([ids]), use_cache=False)
        logits = result.logits[0].float().numpy()
        losses = {k: float(v) for k, v in result.router_losses.items()}

        naive = Naive(cfg, stored)
        naive_logits, naive_losses = naive.forward(ids)
        diff = float(np.abs(naive_logits.numpy() - logits).max())
        assert diff < 1e-4, f"{name}: reference vs naive logits differ by {diff}"
        for key in losses:
            assert abs(losses[key] - naive_losses[key]) < 1e-5, f"{name}: {key} loss {losses[key]} vs {naive_losses[key]}"
        margin = min((m[3] for m in naive.margins), default=float("inf"))
        if margin >= MIN_MARGIN:
            break
        print(f"{name}: seed {seed} has a routing margin of {margin:.2e} < {MIN_MARGIN}; next seed")
        seed += 1000
    else:
        raise SystemExit(f"{name}: no seed with clear routing margins")

    check_cache(model, ids, name)

    np.save(os.path.join(out, "ids.npy"), np.array(ids, dtype=np.int64))
    np.save(os.path.join(out, "logits.npy"), logits.astype(np.float32))
    if with_losses:
        with open(os.path.join(out, "router_losses.json"), "w") as f:
            json.dump(losses, f, indent=2)
            f.write("\n")
        with open(os.path.join(out, "loss.json"), "w") as f:
            json.dump({"loss": float(result.loss)}, f, indent=2)
            f.write("\n")
    extra = f" router_losses {losses} loss {float(result.loss):.6f}" if with_losses else ""
    print(f"{name}: logits {logits.shape} |max| {np.abs(logits).max():.3f}, vs naive float64 {diff:.2e}, "
          f"min routing margin {margin:.4f}{extra}")


def check_cache(model, ids, name):
    """Prefill 12 tokens, then decode one at a time with the cache; must equal the full forward."""
    x = torch.tensor([ids])
    with torch.no_grad():
        full = model(x, use_cache=False).logits[0]
        out = model(x[:, :12], use_cache=True)
        steps, cache = [out.logits[0]], out.past_key_values
        for t in range(12, len(ids)):
            out = model(x[:, t : t + 1], past_key_values=cache, use_cache=True)
            steps.append(out.logits[0])
            cache = out.past_key_values
    diff = float((torch.cat(steps) - full).abs().max())
    assert diff < 1e-4, f"{name}: KV-cache decoding differs from the full forward by {diff}"
    with torch.no_grad():
        a = model.generate(x[:, :8], max_new_tokens=6, do_sample=False, use_cache=True)
        b = model.generate(x[:, :8], max_new_tokens=6, do_sample=False, use_cache=False)
    assert torch.equal(a, b), f"{name}: generate with and without cache differ"


# ------------------------------------------------------------------------------------------------
# Special cases: identical dense experts reproduce the dense model
# ------------------------------------------------------------------------------------------------


def randomize_dense(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g)
            if "norm" in name:
                p.copy_(1.0 + 0.2 * r)
            elif name.endswith("bias"):
                p.copy_(0.2 * r)
            else:
                p.copy_(0.15 * r)


def bam_from_identical_dense(dense, family, routers, attention_experts="expert_kv", attention_routing="soft",
                             k_attn=None, top_k=2, seed=0):
    """A BAM checkpoint whose E experts are all the same dense model."""
    dc = dense.config
    parallel = family == "cohere"
    cfg = bam_config(base=family, attention_experts=attention_experts, attention_routing=attention_routing,
                     k_attn=k_attn, top_k=top_k, renormalize=True, parallel=parallel,
                     attention_bias=getattr(dc, "attention_bias", False) if family != "qwen2" else None,
                     tie=dc.tie_word_embeddings, theta=dc.rope_parameters["rope_theta"],
                     logit_scale=getattr(dc, "logit_scale", None), seed=seed)
    if family == "cohere":
        cfg["layer_norm_eps"] = dc.layer_norm_eps
    else:
        cfg["rms_norm_eps"] = dc.rms_norm_eps
    sd = {k: v.detach().clone() for k, v in dense.state_dict().items()}
    out = {"model.embed_tokens.weight": sd["model.embed_tokens.weight"], "model.norm.weight": sd["model.norm.weight"]}
    if not cfg["tie_word_embeddings"]:
        out["lm_head.weight"] = sd["lm_head.weight"]
    g = torch.Generator().manual_seed(seed)
    for n in range(L):
        p = f"model.layers.{n}."
        out[p + "input_layernorm.weight"] = sd[p + "input_layernorm.weight"]
        if not parallel:
            out[p + "post_attention_layernorm.weight"] = sd[p + "post_attention_layernorm.weight"]
        for gate in ("self_attn.gate.weight", "block_sparse_moe.gate.weight"):
            out[p + gate] = torch.zeros(E, C) if routers == "zero" else 0.5 * torch.randn(E, C, generator=g)
        for key, value in sd.items():
            if not key.startswith(p + "self_attn."):
                continue
            proj = key[len(p + "self_attn."):]  # e.g. "q_proj.weight"
            if attention_experts == "shared_kv" and proj.split(".")[0] in ("k_proj", "v_proj"):
                out[key] = value
            else:
                for j in range(E):
                    out[p + f"self_attn.experts.{j}.{proj}"] = value
        for j in range(E):
            q = p + f"block_sparse_moe.experts.{j}."
            out[q + "w1.weight"] = sd[p + "mlp.gate_proj.weight"]
            out[q + "w3.weight"] = sd[p + "mlp.up_proj.weight"]
            out[q + "w2.weight"] = sd[p + "mlp.down_proj.weight"]
    assert set(out) == set(tensor_shapes(cfg)), set(out) ^ set(tensor_shapes(cfg))
    return cfg, out


def dense_model(family, seed, **extra):
    common = dict(vocab_size=V, hidden_size=C, intermediate_size=F_, num_hidden_layers=L,
                  num_attention_heads=NH, num_key_value_heads=NKV, max_position_embeddings=256)
    classes = {
        "llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
        "mistral": (transformers.MistralConfig, transformers.MistralForCausalLM),
        "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM),
        "cohere": (transformers.CohereConfig, transformers.CohereForCausalLM),
    }
    config_class, model_class = classes[family]
    config = config_class(**common, **extra)
    config._attn_implementation = "eager"
    model = model_class(config)
    randomize_dense(model, seed)
    return model.eval()


def special_cases(ids):
    x = torch.tensor([ids])
    cases = [
        # label, family, dense kwargs, routers, bam kwargs
        ("(a) llama, random routers", "llama", dict(rope_theta=10000.0), "random", {}),
        ("(b) llama, zero routers", "llama", dict(rope_theta=10000.0), "zero", {}),
        ("extra: llama, shared_kv", "llama", dict(rope_theta=10000.0), "random", dict(attention_experts="shared_kv")),
        ("extra: llama, top-2 attention", "llama", dict(rope_theta=10000.0), "random",
         dict(attention_routing="top_k", k_attn=2)),
        ("extra: llama, zero routers, top-1 attention, top-1 FFN", "llama", dict(rope_theta=10000.0), "zero",
         dict(attention_routing="top_k", k_attn=1, top_k=1)),
        ("extra: llama with attention biases", "llama", dict(attention_bias=True), "random", {}),
        ("extra: mistral", "mistral", dict(rope_theta=1000000.0), "random", {}),
        ("extra: qwen2 (q/k/v biases, tied)", "qwen2", dict(tie_word_embeddings=True), "random", {}),
        ("extra: cohere (parallel, logit_scale 0.25)", "cohere", dict(logit_scale=0.25, layer_norm_eps=1e-5),
         "random", {}),
    ]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, family, dense_kwargs, routers, bam_kwargs) in enumerate(cases):
            dense = dense_model(family, 100 + i, **dense_kwargs)
            with torch.no_grad():
                want = dense(x).logits[0]
            cfg, tensors = bam_from_identical_dense(dense, family, routers, seed=200 + i, **bam_kwargs)
            directory = os.path.join(tmp, f"case{i}")
            write_checkpoint(directory, cfg, tensors)
            bam = load_reference(directory)
            with torch.no_grad():
                got = bam(x, use_cache=False).logits[0]
            diff = float((got - want).abs().max())
            print(f"special case {label}: max |BAM - dense| = {diff:.2e} (|logits| <= {float(want.abs().max()):.2f})")
            assert diff < 1e-5, f"special case {label} failed: {diff}"
            results.append((label, diff))
    return results


def write_readme(ids):
    lines = [
        "# BAM fixtures",
        "",
        "Written by `tools/make_bam_fixtures.py` (do not edit by hand); format: `docs/bam-format.md`.",
        "Each directory is a BAM checkpoint (config.json, model.safetensors, and the reference",
        "implementation with `auto_map`) plus `ids.npy` (int64 [20]) and `logits.npy` (float32 [20, 128]:",
        "the PyTorch reference's logits on the weights as stored). `router_losses.json` holds the three",
        "router losses summed over layers for those ids, `loss.json` the LM loss with labels = ids.",
        "Every top-k routing decision of the fixtures has a probability margin of at least",
        f"{MIN_MARGIN} between the last chosen and the first unchosen expert.",
        "",
        f"Shapes: vocab {V}, hidden {C}, intermediate {F_}, {L} layers, {NH} heads / {NKV} kv heads, "
        f"head_dim {C // NH}, {E} experts. ids: {ids}",
        "",
    ]
    for name, _, _, with_losses, about in FIXTURES:
        lines.append(f"- `{name}`: {about}" + ("; with router_losses.json and loss.json." if with_losses else "."))
    with open(os.path.join(ROOT, "README.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def check_training_step(directory, ids):
    """Gradients reach every router through the router losses and the LM loss."""
    model = load_reference(directory).train()
    out = model(torch.tensor([ids]), labels=torch.tensor([ids]), use_cache=False)
    model.total_loss(out).backward()
    for name, p in model.named_parameters():
        if name.endswith("gate.weight"):
            assert p.grad is not None and float(p.grad.abs().max()) > 0, name


def main():
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    torch.manual_seed(0)
    ids = fixture_ids()
    print(f"torch {torch.__version__}, transformers {transformers.__version__}")
    special_cases(ids)
    shutil.rmtree(ROOT, ignore_errors=True)
    os.makedirs(ROOT)
    for name, options, seed, with_losses, _ in FIXTURES:
        make_fixture(name, options, seed, with_losses, ids)
    check_training_step(os.path.join(ROOT, FIXTURES[0][0]), ids)
    with open(os.path.join(ROOT, "VERSIONS.txt"), "w") as f:
        f.write(f"torch {torch.__version__}\ntransformers {transformers.__version__}\n")
    write_readme(ids)
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(ROOT) for f in fs)
    print(f"wrote {len(FIXTURES)} fixtures, {total / 1e6:.2f} MB, to {os.path.normpath(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
