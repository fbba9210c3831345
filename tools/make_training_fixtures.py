#!/usr/bin/env python3
"""Builds the training fixtures the Swift tests compare bam-mix's backward pass and AdamW against.

Run by hand (never in CI); the tests only read what this writes under Tests/Fixtures/training.

    tools/setup-peers   # once: the peers' venv outside the checkout (the script runs itself under it)
    python3 tools/make_training_fixtures.py      (torch 2.x, transformers 5.23)
    python3 tools/make_training_fixtures.py --routing-only    (only ROUTING_FIXTURES, below)

Every fixture is a tiny model with random weights of meaningful scale (weights and embeddings
N(0, 0.15), norms 1 + 0.2 N(0, 1), routers N(0, 0.5), biases N(0, 0.2)):

  * dense Llama / Llama with q/k/v/o and MLP biases and tied embeddings / Cohere (LayerNorm,
    interleaved RoPE, parallel block, logit_scale, tied) / Mixtral (top-2 of 4, renormalised) through
    transformers (eager attention, `output_router_logits` off: the router losses are computed here
    from the router logits, with the definitions of docs/methods.md);
  * BAM through the package's implementation (python/bam_mix_torch): expert-KV soft parallel,
    shared-KV top-1 sequential, expert-KV top-2 attention with renormalised top-2 FFN (sequential,
    tied), and a Cohere shared-KV parallel model with attention biases. Its router losses are the
    reference's `router_losses`.

Each directory of FIXTURES holds

    config.json, model.safetensors   the model (float32; Mixtral under the legacy per-expert names)
    tokens.npy       int64 [B, T+1]  one batch; inputs tokens[:, :-1], targets tokens[:, 1:]
    grads.safetensors                d loss / d parameter for every parameter (float32, same names)
    steps.npy        int64 [10, A, B, T+1]   the batches of 10 AdamW steps (A micro-batches each)
    expected.json    the loss, its parts and the 10 AdamW step losses (see below)

with loss = mean next-token cross-entropy + alpha * aux + beta * z (aux = "btx" or "switch", summed
over the FFN mixture layers; the coefficients are large here so that the router-loss gradients are
visible against the LM gradient). The gradients are computed in float64 (the models keep
transformers' float32 casts in norms, RoPE and softmaxes). The AdamW steps use torch.optim.AdamW
(betas 0.9 / 0.95, eps 1e-8, weight decay 0.1 on everything but norms and biases) with a LambdaLR
schedule of linear warm-up then cosine decay to 10 % of the peak, clip_grad_norm_ and gradient
accumulation over A micro-batches (loss / A each); `train` says which parameters train
("all", or "routers" = only the router weights); `idle_experts` says whether an FFN expert that no
token reached in a step is updated with a zero gradient (Mixtral's fused expert tensors) or skipped
(the BAM reference's separate expert modules, whose .grad stays None). Every top-k routing decision of every forward pass
(including the ten steps') has a router-logit margin of at least MIN_MARGIN, so a port cannot
legitimately route differently.

The routing fixtures (ROUTING_FIXTURES, BAM only: loss and gradients, no AdamW steps) add what the
router statistics and the FFN routing variants need:

  * padding: the second sequence of the batch ends after PAD_AFTER tokens (inputs 0 and targets -1
    past its end, as bam-mix's TrainingData pads a short stream); `mask.npy` int64 [B, T] is the
    token mask (1 = token, 0 = padding), passed to the model as its attention_mask, so the router
    losses leave padding out;
  * ffn_routing "switch" with a capacity factor that drops tokens (the script checks some are);
  * ffn_routing "sample_top1" with the Gumbel noise written to `gumbel.npy` float32 [L, B*T, E] and
    fed to the model (`gumbel_noise`), at the temperature in expected.json;
  * ffn_routing "soft".

A routing fixture holds config.json, model.safetensors, grads.safetensors, expected.json (no AdamW
steps), inputs.npy and targets.npy int64 [B, T] (-1: not scored), and mask.npy / gumbel.npy when used.
"""
import json
import math
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402  (tools/peers.py: the peers' venv, installed by tools/setup-peers)

peers.require("numpy", "torch", "transformers", "safetensors")
import numpy as np  # noqa: E402
import torch
import torch.nn.functional as F
import transformers
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
from bam_mix_torch.configuration_bam import BamConfig  # noqa: E402
from bam_mix_torch.modeling_bam import BamForCausalLM  # noqa: E402

ROOT = os.path.join(HERE, "..", "Tests", "Fixtures", "training")
V, C, F_, L, NH, NKV, E = 64, 16, 24, 2, 4, 2, 3
B, T = 2, 8
STEPS = 10
MIN_MARGIN = 1e-3  # router-logit gap; ~1000x the float32-vs-float64 difference of the logits after ten steps
ADAM = dict(lr=5e-3, warmup=3, min_fraction=0.1, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1, grad_clip=1.0)

FIXTURES = [
    # name, kind, config options, seed, aux loss, micro-batches per step, trained groups
    ("llama", "llama", dict(), 21, "none", 1, "all"),
    ("llama_bias_tied", "llama", dict(attention_bias=True, mlp_bias=True, tie_word_embeddings=True), 22, "none", 2, "all"),
    ("cohere", "cohere", dict(logit_scale=0.25, layer_norm_eps=1e-5), 23, "none", 1, "all"),
    ("mixtral", "mixtral", dict(num_local_experts=4, num_experts_per_tok=2), 24, "btx", 1, "all"),
    ("bam_expert_kv_soft_parallel", "bam", dict(parallel_block=True), 25, "btx", 1, "all"),
    ("bam_shared_kv_top1_sequential", "bam",
     dict(attention_experts="shared_kv", attention_routing="top_k", num_attention_experts_per_tok=1, parallel_block=False),
     26, "switch", 1, "all"),
    ("bam_expert_kv_top2_renorm_sequential", "bam",
     dict(attention_routing="top_k", num_attention_experts_per_tok=2, num_experts_per_tok=2, router_renormalize=True,
          parallel_block=False, tie_word_embeddings=True), 27, "btx", 2, "routers"),
    ("bam_cohere_bias_shared_kv_parallel", "bam",
     dict(base_model_type="cohere", attention_experts="shared_kv", attention_bias=True, parallel_block=True,
          tie_word_embeddings=True, logit_scale=0.25), 28, "btx", 1, "all"),
]
ALPHA, BETA = 0.3, 0.05  # router-loss coefficients of the MoE fixtures
PAD_AFTER = 5  # real tokens of the padded sequence

ROUTING_FIXTURES = [
    # name, config options, seed, aux loss, padded, Gumbel (decay, step) or None
    ("bam_padded_btx", dict(attention_experts="shared_kv", parallel_block=False), 41, "btx", True, None),
    ("bam_padded_switch_loss", dict(parallel_block=True), 42, "switch", True, None),
    ("bam_switch_capacity", dict(ffn_routing="switch", router_capacity_factor=1.0, parallel_block=False), 43, "switch", True, None),
    ("bam_sample_top1", dict(ffn_routing="sample_top1", router_gumbel_decay=0.05, parallel_block=False), 44, "btx", False, (0.05, 10)),
    ("bam_soft_ffn", dict(ffn_routing="soft", num_experts_per_tok=E, parallel_block=True), 45, "btx", False, None),
]


# ------------------------------------------------------------------------------------------------
# Models
# ------------------------------------------------------------------------------------------------


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype)
            if "norm" in name:
                p.copy_(1.0 + 0.2 * r)
            elif name.endswith("bias"):
                p.copy_(0.2 * r)
            elif name.endswith("gate.weight"):  # FFN and attention routers
                p.copy_(0.5 * r)
            else:
                p.copy_(0.15 * r)


def make_model(kind, options, seed):
    common = dict(vocab_size=V, hidden_size=C, intermediate_size=F_, num_hidden_layers=L, num_attention_heads=NH,
                  num_key_value_heads=NKV, max_position_embeddings=64, bos_token_id=1, eos_token_id=2)
    if kind == "bam":
        opts = dict(base_model_type="llama", num_local_experts=E, num_experts_per_tok=1, router_renormalize=False,
                    attention_experts="expert_kv", attention_routing="soft", tie_word_embeddings=False,
                    router_aux_loss_coef=ALPHA, router_z_loss_coef=BETA)
        opts.update(options)
        config = BamConfig(**common, **opts)
        model = BamForCausalLM(config)
    else:
        classes = {"llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
                   "cohere": (transformers.CohereConfig, transformers.CohereForCausalLM),
                   "mixtral": (transformers.MixtralConfig, transformers.MixtralForCausalLM)}
        config_class, model_class = classes[kind]
        config = config_class(**common, **options)
        config._attn_implementation = "eager"
        # The plain per-expert loop (the grouped_mm kernel has no float64).
        config._experts_implementation = "eager"
        model = model_class(config)
    model = model.double()
    randomize(model, seed)
    return model.eval()


def legacy_names(kind, tensors):
    """transformers 5 keeps Mixtral's experts fused in memory; bam-mix's names are the legacy ones."""
    if kind != "mixtral":
        return tensors
    out = {}
    for name, t in tensors.items():
        if name.endswith("mlp.gate.weight"):
            out[name.replace("mlp.gate.weight", "block_sparse_moe.gate.weight")] = t
        elif name.endswith("mlp.experts.gate_up_proj"):
            p = name[: -len("mlp.experts.gate_up_proj")]
            for e in range(t.shape[0]):
                out[p + f"block_sparse_moe.experts.{e}.w1.weight"] = t[e, :F_]
                out[p + f"block_sparse_moe.experts.{e}.w3.weight"] = t[e, F_:]
        elif name.endswith("mlp.experts.down_proj"):
            p = name[: -len("mlp.experts.down_proj")]
            for e in range(t.shape[0]):
                out[p + f"block_sparse_moe.experts.{e}.w2.weight"] = t[e]
        else:
            out[name] = t
    return out


def is_router(name):
    return name.endswith("gate.weight") and ("block_sparse_moe.gate" in name or "self_attn.gate" in name
                                             or "mlp.gate.weight" in name)


def is_norm_or_bias(name):
    return "norm" in name or name.endswith(".bias")


# ------------------------------------------------------------------------------------------------
# Loss (and routing margins)
# ------------------------------------------------------------------------------------------------


def top_k_mask(probs, k):
    order = torch.sort(probs, dim=-1, descending=True, stable=True).indices[..., :k]
    return torch.zeros_like(probs, dtype=torch.bool).scatter(-1, order, True)


def margins(logits, k):
    """Router-logit gap between the k-th and (k+1)-th expert of every token (inf when k = E). The
    softmax keeps the order, and a logit gap is what rounding must not close (probability gaps of
    tail experts are tiny in absolute terms while their order is perfectly stable)."""
    if k >= logits.shape[-1]:
        return [math.inf]
    s = torch.sort(logits.double(), dim=-1, descending=True).values
    return (s[:, k - 1] - s[:, k]).tolist()


class Objective:
    """loss = CE + alpha * aux + beta * z for one model, recording every routing margin."""

    def __init__(self, kind, model, aux):
        self.kind, self.model, self.aux = kind, model, aux
        self.margins = []
        self.captured = []
        cfg = model.config
        if kind == "mixtral":
            for layer in model.model.layers:
                layer.mlp.gate.register_forward_hook(lambda m, i, o: self.captured.append(("ffn", o[0])))
        if kind == "bam":
            for layer in model.model.layers:
                layer.block_sparse_moe.gate.register_forward_hook(lambda m, i, o: self.captured.append(("ffn", o)))
                if cfg.attention_experts != "dense":
                    layer.self_attn.gate.register_forward_hook(lambda m, i, o: self.captured.append(("attn", o)))

    def __call__(self, tokens, mask=None, noise=None, targets=None):
        """`mask` [B, T] (1 = token, 0 = padding), `noise` per layer [B*T, E] (sampled top-1's Gumbel
        noise), `targets` [B, T] (-1: not scored) instead of tokens[:, 1:]."""
        self.captured.clear()
        inputs = tokens[:, :-1]
        targets = tokens[:, 1:] if targets is None else targets
        cfg = self.model.config
        if noise is not None:
            for layer, g in zip(self.model.model.layers, noise):
                layer.block_sparse_moe.gumbel_noise = g
        if self.kind == "bam":
            out = self.model(inputs, use_cache=False, attention_mask=mask)
        else:
            out = self.model(inputs)
        lm = F.cross_entropy(out.logits.reshape(-1, V).double(), targets.reshape(-1), ignore_index=-1)
        router = {"btx": torch.zeros((), dtype=torch.float64), "switch": torch.zeros((), dtype=torch.float64),
                  "z": torch.zeros((), dtype=torch.float64)}
        if self.kind == "bam":
            router = {k: v.double() for k, v in out.router_losses.items()}
        elif self.kind == "mixtral":
            for _, logits in self.captured:
                router = {k: router[k] + v for k, v in mixtral_router_losses(logits, cfg.num_experts_per_tok).items()}
        counted = None if mask is None else mask.reshape(-1).bool()
        ffn_layer = 0
        for where, logits in self.captured:
            if where == "ffn":
                scores = logits.detach().float()
                if noise is not None:
                    scores = scores + noise[ffn_layer]  # the sample is the argmax of logits + g
                ffn_layer += 1
                if counted is not None:
                    scores = scores[counted]
                k = E if getattr(cfg, "ffn_routing", "top_k") == "soft" else cfg.num_experts_per_tok
                self.margins += margins(scores, k)
            elif cfg.attention_routing == "top_k":
                self.margins += margins(logits.detach().reshape(-1, logits.shape[-1]), cfg.num_attention_experts_per_tok)
        total = lm
        if self.aux != "none":
            total = lm + ALPHA * router[self.aux] + BETA * router["z"]
        return total, lm, router


def mixtral_router_losses(logits, k):
    """docs/methods.md: btx = E sum u_i P_i (u = mean renormalised gate), switch = E sum f_i P_i
    (f = count / (N k)), z = mean logsumexp^2 — per layer over the N tokens of the batch."""
    n, e = logits.shape
    probs = F.softmax(logits, -1)
    chosen = top_k_mask(probs, k)
    gates = probs * chosen
    gates = gates / gates.sum(-1, keepdim=True)
    p_mean = probs.mean(0)
    return {"btx": e * (gates.mean(0) * p_mean).sum(),
            "switch": e * ((chosen.double().sum(0) / (n * k)) * p_mean).sum(),
            "z": torch.logsumexp(logits, -1).pow(2).mean()}


# ------------------------------------------------------------------------------------------------
# Fixtures
# ------------------------------------------------------------------------------------------------


def rate(step, peak, warmup, total, min_fraction):
    """bam-mix's LearningRateSchedule.rate."""
    if step < warmup:
        return peak * (step + 1) / warmup
    span = max(1, total - warmup - 1)
    progress = min(1.0, (step - warmup) / span)
    floor = min_fraction * peak
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def adamw_steps(objective, model, batches, train):
    params = []
    for name, p in model.named_parameters():
        p.requires_grad_(train == "all" or is_router(name))
        if p.requires_grad:
            params.append((name, p))
    decay = [p for n, p in params if not is_norm_or_bias(n)]
    no_decay = [p for n, p in params if is_norm_or_bias(n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": ADAM["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=ADAM["lr"], betas=(ADAM["beta1"], ADAM["beta2"]), eps=ADAM["eps"])
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: rate(s, ADAM["lr"], ADAM["warmup"], STEPS, ADAM["min_fraction"]) / ADAM["lr"])
    losses, norms = [], []
    for step in range(STEPS):
        opt.zero_grad()
        total = 0.0
        micro = batches[step]
        for mb in micro:
            loss = objective(mb)[0] / len(micro)
            loss.backward()
            total += float(loss.detach())
        norm = torch.nn.utils.clip_grad_norm_([p for _, p in params], ADAM["grad_clip"])
        opt.step()
        sched.step()
        losses.append(total)
        norms.append(float(norm))
    return losses, norms


def write_config(directory, kind, model):
    if kind == "bam":
        cfg = model.config.to_dict()
        keep = {k: v for k, v in cfg.items() if not k.startswith("_") and k not in ("transformers_version", "architectures",
                                                                                     "auto_map", "dtype", "torch_dtype")}
        keep["model_type"] = "bam"
        keep["architectures"] = ["BamForCausalLM"]
        keep["torch_dtype"] = "float32"
        with open(os.path.join(directory, "config.json"), "w") as f:
            json.dump(keep, f, indent=2, sort_keys=True)
            f.write("\n")
    else:
        model.config.dtype = torch.float32
        model.config.save_pretrained(directory)


def make_fixture(name, kind, options, seed, aux, accumulation, train):
    rng = np.random.default_rng(seed)
    tokens = torch.tensor(rng.integers(0, V, size=(B, T + 1)), dtype=torch.int64)
    steps = torch.tensor(rng.integers(0, V, size=(STEPS, accumulation, B, T + 1)), dtype=torch.int64)
    for attempt in range(100):
        model = make_model(kind, options, seed + 1000 * attempt)
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        objective = Objective(kind, model, aux)
        model.zero_grad()
        total, lm, router = objective(tokens)
        total.backward()
        # An expert no token of the batch chose never ran: its gradient is zero.
        grads = {n: p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
                 for n, p in model.named_parameters()}
        if min(objective.margins, default=math.inf) < MIN_MARGIN:
            continue
        step_losses, step_norms = adamw_steps(objective, model, steps, train)
        margin = min(objective.margins, default=math.inf)
        if margin >= MIN_MARGIN:
            break
        print(f"{name}: attempt {attempt} has a routing margin of {margin:.2e} < {MIN_MARGIN}; next seed")
    else:
        raise SystemExit(f"{name}: no seed with clear routing margins")

    out = os.path.join(ROOT, name)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    write_config(out, kind, model)
    weights = legacy_names(kind, {k: v.float().contiguous() for k, v in state.items()})
    if getattr(model.config, "tie_word_embeddings", False):
        weights.pop("lm_head.weight", None)
    save_file(weights, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    named = legacy_names(kind, {k: v.float().contiguous() for k, v in grads.items()})
    assert set(named) == set(weights), set(named) ^ set(weights)
    save_file(named, os.path.join(out, "grads.safetensors"), metadata={"format": "pt"})
    np.save(os.path.join(out, "tokens.npy"), tokens.numpy())
    np.save(os.path.join(out, "steps.npy"), steps.numpy())
    expected = {
        "B": B, "T": T,
        "loss": float(total.detach()), "lm_loss": float(lm.detach()), "router_losses": {k: float(v) for k, v in router.items()},
        "aux": aux, "alpha": ALPHA if aux != "none" else 0.0, "beta": BETA if aux != "none" else 0.0,
        # transformers 5 keeps Mixtral's experts in fused tensors, so torch updates an expert no
        # token reached with a zero gradient; the reference's experts are separate modules whose
        # .grad stays None, and AdamW skips them.
        "adamw": dict(ADAM, steps=STEPS, accumulation=accumulation, train=train, losses=step_losses, grad_norms=step_norms,
                      idle_experts="update" if kind == "mixtral" else "skip"),
        "min_routing_margin": margin,
    }
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=2)
        f.write("\n")
    print(f"{name}: loss {float(total.detach()):.6f} (lm {float(lm.detach()):.6f}, router {({k: round(float(v), 5) for k, v in router.items()})}), "
          f"steps {step_losses[0]:.5f} -> {step_losses[-1]:.5f}, grad norms {step_norms[0]:.3f} -> {step_norms[-1]:.3f}, "
          f"margin {margin:.4f}, {len(named)} tensors")


def make_routing_fixture(name, options, seed, aux, padded, gumbel):
    rng = np.random.default_rng(seed)
    tokens = torch.tensor(rng.integers(0, V, size=(B, T + 1)), dtype=torch.int64)
    inputs, targets = tokens[:, :-1].clone(), tokens[:, 1:].clone()
    mask = None
    if padded:
        # bam-mix's padding of a short stream (TrainingData): inputs 0 past its end, targets -1 from
        # its last token on.
        inputs[1, PAD_AFTER:] = 0
        targets[1, PAD_AFTER - 1:] = -1
        mask = torch.ones(B, T, dtype=torch.int64)
        mask[1, PAD_AFTER:] = 0
    noise, temperature = None, None
    if gumbel is not None:
        decay, step = gumbel
        temperature = max(0.5, math.exp(-decay * step))
        u = torch.tensor(rng.uniform(1e-6, 1 - 1e-6, size=(L, B * T, E)), dtype=torch.float32)
        noise = -torch.log(-torch.log(u))
    for attempt in range(100):
        model = make_model("bam", options, seed + 1000 * attempt)
        for layer in model.model.layers:
            layer.block_sparse_moe.gumbel_temperature = temperature if temperature is not None else 1.0
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        objective = Objective("bam", model, aux)
        model.zero_grad()
        total, lm, router = objective(torch.cat([inputs, targets[:, -1:]], dim=1), mask=mask, noise=noise, targets=targets)
        total.backward()
        grads = {n: p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
                 for n, p in model.named_parameters()}
        margin = min(objective.margins, default=math.inf)
        dropped = switch_dropped(model, inputs, mask) if options.get("ffn_routing") == "switch" else None
        if margin >= MIN_MARGIN and (dropped is None or dropped > 0):
            break
        print(f"{name}: attempt {attempt}: routing margin {margin:.2e}, dropped {dropped}; next seed")
    else:
        raise SystemExit(f"{name}: no seed with clear routing margins")

    out = os.path.join(ROOT, name)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    write_config(out, "bam", model)
    weights = {k: v.float().contiguous() for k, v in state.items()}
    if getattr(model.config, "tie_word_embeddings", False):
        weights.pop("lm_head.weight", None)
    save_file(weights, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    named = {k: v.float().contiguous() for k, v in grads.items()}
    assert set(named) == set(weights), set(named) ^ set(weights)
    save_file(named, os.path.join(out, "grads.safetensors"), metadata={"format": "pt"})
    np.save(os.path.join(out, "inputs.npy"), inputs.numpy())
    np.save(os.path.join(out, "targets.npy"), targets.numpy())
    if mask is not None:
        np.save(os.path.join(out, "mask.npy"), mask.numpy())
    if noise is not None:
        np.save(os.path.join(out, "gumbel.npy"), noise.numpy())
    expected = {
        "B": B, "T": T,
        "loss": float(total.detach()), "lm_loss": float(lm.detach()), "router_losses": {k: float(v) for k, v in router.items()},
        "aux": aux, "alpha": ALPHA, "beta": BETA,
        "ffn_routing": model.config.ffn_routing, "temperature": temperature, "switch_dropped": dropped,
        "min_routing_margin": margin,
    }
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=2)
        f.write("\n")
    print(f"{name}: loss {float(total.detach()):.6f} (lm {float(lm.detach()):.6f}, router {({k: round(float(v), 5) for k, v in router.items()})}), "
          f"margin {margin:.4f}, dropped {dropped}, {len(named)} tensors")


def switch_dropped(model, inputs, mask):
    """Tokens (summed over layers) that Switch routing dropped over capacity, padding not counted."""
    dropped = 0
    hooks, decisions = [], []
    for layer in model.model.layers:
        moe = layer.block_sparse_moe
        hooks.append(moe.register_forward_hook(lambda m, i, o: decisions.append(o[2])))
    with torch.no_grad():
        model(inputs, use_cache=False, attention_mask=mask)
    for h in hooks:
        h.remove()
    counted = torch.ones(inputs.numel(), dtype=torch.bool) if mask is None else mask.reshape(-1).bool()
    for d in decisions:
        dropped += int((counted & ~d.dispatched).sum())
    return dropped


def main():
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}")
    versions = f"torch {torch.__version__}\ntransformers {transformers.__version__}\n"
    routing_line = f"routing fixtures: torch {torch.__version__}, transformers {transformers.__version__}\n"
    if "--routing-only" in sys.argv[1:]:
        # Only the routing fixtures, leaving the others (and the versions they were made with) as they are.
        for fixture in ROUTING_FIXTURES:
            make_routing_fixture(*fixture)
        path = os.path.join(ROOT, "VERSIONS.txt")
        kept = [l for l in open(path).read().splitlines(keepends=True) if not l.startswith("routing fixtures:")]
        with open(path, "w") as f:
            f.write("".join(kept) + routing_line)
        return
    shutil.rmtree(ROOT, ignore_errors=True)
    os.makedirs(ROOT)
    for fixture in FIXTURES:
        make_fixture(*fixture)
    for fixture in ROUTING_FIXTURES:
        make_routing_fixture(*fixture)
    with open(os.path.join(ROOT, "VERSIONS.txt"), "w") as f:
        f.write(versions + routing_line)
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(ROOT) for f in fs)
    print(f"wrote {len(FIXTURES) + len(ROUTING_FIXTURES)} fixtures, {total / 1e6:.2f} MB, to {os.path.normpath(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
