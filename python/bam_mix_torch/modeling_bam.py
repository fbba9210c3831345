# Copyright the bam-mix authors, MIT licence. Reference implementation of BAM (Branch-Attend-Mix,
# arXiv 2408.08274) for Hugging Face transformers: the package bam_mix_torch in the bam-mix repository
# (python/), whose copy `bam-mix mix` writes beside every BAM checkpoint. See docs/bam-format.md there.
"""PyTorch implementation of BAM (Branch-Attend-Mix) checkpoints written by bam-mix.

Plain, readable PyTorch meant to be checked line by line against docs/bam-format.md: eager attention
(softmax in float32), no flash attention, no fused kernels. Norms, RoPE and softmaxes compute in
float32 for float32 and half-precision models, as transformers does, and in float64 for a float64
model (`compute_dtype`), so nothing rounds a float64 model's activations to float32. A BAM directory
written by `bam-mix mix` carries this file, configuration_bam.py and an `auto_map` in its config.json, so

    model = AutoModelForCausalLM.from_pretrained(checkpoint_dir, trust_remote_code=True)

loads it; `import bam_mix_torch` gives the same classes without remote code.

Block (per layer), with h the normalised residual stream:
    parallel:   h = norm_in(x);  x = x + MoA(h) + MoE(h)
    sequential: x = x + MoA(norm_in(x));  x = x + MoE(norm_post(x))
MoA(h) = sum_j g_j(h) * Attention_j(h) over ALL E attention experts (every expert's q/k/v are computed
for every token, also with top-k attention routing; only the outputs are gated), and
MoE(h) = expert_output_scale * sum over the chosen experts of gate_i(h) * FFN_i(h).

KV cache: transformers' `DynamicCache`. Per layer it holds the keys/values of all attention experts
concatenated along the head axis ([batch, E * num_key_value_heads, seq, head_dim] for expert_kv,
[batch, num_key_value_heads, seq, head_dim] for shared_kv), so `generate()` works as for any decoder.
`use_cache=False` recomputes.

Outputs: `logits`; `loss` = the language-modelling cross-entropy only (labels shifted inside, mean over
the predicted tokens whose label is not -100). The router losses are NOT added to `loss`; they are
returned separately in `router_losses = {"btx", "switch", "z"}` (each summed over layers), and
`model.total_loss(outputs)` adds them with the config's recipe (router_aux_loss_kind and the two
coefficients). `output_router_logits=True` also returns each FFN router's logits ([batch * seq, E] per
layer), from which bam_mix_torch's finetune computes the same losses over a batch spread across processes.

Works with transformers 4.51.1 to 5.x: the few places where its API moved are in the
"transformers compatibility" section below.
"""

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

import transformers
from transformers import GenerationMixin, PreTrainedModel
from transformers.cache_utils import DynamicCache
from transformers.modeling_outputs import MoeCausalLMOutputWithPast, MoeModelOutputWithPast

from .configuration_bam import BamConfig


# ----------------------------------------------------------------------------------------------
# transformers compatibility (4.51.1 ... 5.x)
# ----------------------------------------------------------------------------------------------

TRANSFORMERS_MAJOR = int(transformers.__version__.split(".")[0])

try:  # transformers >= 4.52: gradient checkpointing per decoder layer
    from transformers.modeling_layers import GradientCheckpointingLayer as _LayerBase
except ImportError:  # pragma: no cover - older transformers
    _LayerBase = nn.Module

try:  # transformers 5: init functions that leave tensors already loaded from a checkpoint alone
    from transformers import initialization as init
except ImportError:  # transformers 4 initialises before loading, so torch's functions do
    from torch.nn import init


def cache_field_name(output_class):
    """The name of the KV-cache field of a transformers output class: `cache` since transformers 5.24,
    `past_key_values` before (generate() reads the cache back from that field)."""
    names = {f.name for f in fields(output_class)}
    return "cache" if "cache" in names else "past_key_values"


def new_dynamic_cache(config):
    """An empty DynamicCache. transformers >= 4.56 builds its layers from the config (every BAM layer
    is full attention, `layer_types`); older versions take no argument."""
    try:
        return DynamicCache(config=config)
    except TypeError:
        return DynamicCache()


# ----------------------------------------------------------------------------------------------
# Precision
# ----------------------------------------------------------------------------------------------


def compute_dtype(dtype):
    """The dtype norms, RoPE and softmaxes compute in for activations of `dtype`: float32 for float32
    and half precision (transformers' upcast), float64 for float64 (a float32 step there would round
    away what a float64 run is for)."""
    return torch.promote_types(dtype, torch.float32)


def upcast(x):
    """`x` in `compute_dtype(x.dtype)`."""
    return x.to(compute_dtype(x.dtype))


# ----------------------------------------------------------------------------------------------
# Norms
# ----------------------------------------------------------------------------------------------


class BamRMSNorm(nn.Module):
    """RMSNorm of llama / mistral / qwen2: x / sqrt(mean(x^2) + eps) * weight, computed in float32
    (float64 for float64 activations)."""

    def __init__(self, hidden_size, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        x = upcast(x)
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


class BamLayerNorm(nn.Module):
    """Cohere's LayerNorm: (x - mean) / sqrt(var + eps) * weight, no bias, computed in float32
    (float64 for float64 activations)."""

    def __init__(self, hidden_size, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        x = upcast(x)
        mean = x.mean(-1, keepdim=True)
        var = (x - mean).pow(2).mean(-1, keepdim=True)
        x = (x - mean) * torch.rsqrt(var + self.eps)
        return (self.weight.to(x.dtype) * x).to(dtype)


def make_norm(config):
    if config.base_model_type == "cohere":
        return BamLayerNorm(config.hidden_size, config.layer_norm_eps)
    return BamRMSNorm(config.hidden_size, config.rms_norm_eps)


# ----------------------------------------------------------------------------------------------
# Rotary position embedding
# ----------------------------------------------------------------------------------------------


def rope_cos_sin(config, position_ids, device, dtype=torch.float32):
    """cos, sin of shape [batch, seq, head_dim] in `dtype` (float32, or float64 for a float64 model).

    inv_freq_i = 1 / theta^(2i / head_dim) computed in float32 as transformers does (the frequencies
    are part of the model's definition, so a float64 model uses the same ones, exactly converted); the
    angle of frequency i at position t is t * inv_freq_i, computed in `dtype` with its cos and sin. Rotate-half families lay the frequencies out as
    [f0..f(d/2-1), f0..f(d/2-1)]; cohere (interleaved) as [f0, f0, f1, f1, ...].
    """
    head_dim = config.head_dim
    inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64, device=device).float() / head_dim))
    freqs = position_ids[..., None].to(dtype) * inv_freq.to(dtype)  # [batch, seq, head_dim / 2]
    if config.base_model_type == "cohere":
        emb = torch.repeat_interleave(freqs, 2, dim=-1)
    else:
        emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    """Rotate-half pairing (llama / mistral / qwen2): dimension i is paired with i + head_dim / 2."""
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def rotate_interleaved(x):
    """Interleaved pairing (cohere): dimension 2i is paired with 2i + 1."""
    x1 = x[..., ::2]
    x2 = x[..., 1::2]
    return torch.stack((-x2, x1), dim=-1).flatten(-2)


def apply_rope(x, cos, sin, interleaved):
    """x: [batch, heads, seq, head_dim]; cos, sin: [batch, seq, head_dim]. Computed in float32 (float64
    for float64 activations)."""
    dtype = x.dtype
    x = upcast(x)
    cos = cos.unsqueeze(1)
    sin = sin.unsqueeze(1)
    rotated = rotate_interleaved(x) if interleaved else rotate_half(x)
    return (x * cos + rotated * sin).to(dtype)


# ----------------------------------------------------------------------------------------------
# Routing helpers
# ----------------------------------------------------------------------------------------------


def top_k_mask(probs, k):
    """Boolean mask [..., E] of the k largest probabilities; ties go to the lower expert index.

    A stable descending sort keeps equal values in index order, so the choice is deterministic.
    """
    order = torch.sort(probs, dim=-1, descending=True, stable=True).indices[..., :k]
    mask = torch.zeros_like(probs, dtype=torch.bool)
    return mask.scatter(-1, order, True)


@dataclass
class FfnRouting:
    """One FFN router's decision over N tokens: dense probabilities p [N, E] (float32; float64 for
    float64 logits), the chosen
    experts [N, E] (bool), the gates [N, E] (0 where not chosen) and which tokens go through their
    chosen experts [N] (bool; False: Switch's overflow and padding, which skip the FFN — the
    choice and gate stay for the router losses, which are about what the router wants)."""

    probs: torch.Tensor
    chosen: torch.Tensor
    gates: torch.Tensor
    dispatched: torch.Tensor


def gumbel_temperature(decay, step):
    """Sampled top-1's Gumbel-softmax temperature at optimiser step `step`: max(0.5, exp(-r step))."""
    return max(0.5, math.exp(-decay * step))


def route_ffn(logits, ffn_routing, top_k, renormalize, token_mask=None, capacity_factor=1.5, gumbel=None):
    """The FFN routing of bam-mix (its `route` functions) from router logits [N, E]:
    p = softmax(logits) in float32 (float64 for float64 logits);
      "top_k":       the k most probable experts (ties to the lower index); gate p_i, or p_i / sum_chosen p
                     when `renormalize` (Mixtral, BTX);
      "soft":        every expert, gate p_i;
      "switch":      the most probable expert, gate p_i; expert capacity C = ceil(capacity_factor * N / E)
                     over the N tokens `token_mask` counts, claimed in token order; tokens past it (and
                     padding) skip the FFN;
      "sample_top1": with `gumbel` = (noise g [N, E], temperature tau): the expert of argmax(logits + g)
                     with the straight-through gate onehot + y - y.detach(), y = softmax((logits + g) / tau)
                     (torch's gumbel_softmax with hard=True); without: argmax(logits), gate 1.
    """
    logits = upcast(logits)
    probs = F.softmax(logits, dim=-1)
    n, e = probs.shape
    everyone = torch.ones(n, dtype=torch.bool, device=probs.device)
    if ffn_routing == "soft":
        return FfnRouting(probs, torch.ones_like(probs, dtype=torch.bool), probs, everyone)
    if ffn_routing == "sample_top1":
        if gumbel is None:
            hard = F.one_hot(logits.argmax(-1), e).to(probs.dtype)
            return FfnRouting(probs, hard.bool(), hard, everyone)
        noise, tau = gumbel
        z = logits + noise.to(logits.dtype)
        y = F.softmax(z / tau, dim=-1)
        hard = F.one_hot(z.argmax(-1), e).to(y.dtype)  # argmax: the first of equal maxima
        return FfnRouting(probs, hard.bool(), hard - y.detach() + y, everyone)
    if ffn_routing == "switch":
        chosen = top_k_mask(probs, 1)
        counted = everyone if token_mask is None else token_mask.reshape(-1).bool()
        capacity = max(1, math.ceil(capacity_factor * int(counted.sum()) / e))
        # Each token's place in its expert's queue: the running count of that expert's counted tokens.
        place = torch.cumsum((chosen & counted[:, None]).long(), dim=0)
        dispatched = counted & (place * chosen).sum(-1).le(capacity)
        return FfnRouting(probs, chosen, probs * chosen, dispatched)
    if ffn_routing != "top_k":
        raise ValueError(f"ffn_routing {ffn_routing!r} is not one of top_k, switch, sample_top1, soft")
    chosen = top_k_mask(probs, top_k)
    gates = probs * chosen  # 0 for experts not chosen
    if renormalize:
        gates = gates / gates.sum(-1, keepdim=True)
    return FfnRouting(probs, chosen, gates, everyone)


# ----------------------------------------------------------------------------------------------
# Mixture of attention
# ----------------------------------------------------------------------------------------------


def attention_biases(config):
    """(q/k/v bias, o bias) for the seed family."""
    if config.base_model_type == "qwen2":
        return True, False
    return config.attention_bias, config.attention_bias


class BamAttentionExpert(nn.Module):
    """One attention expert: its q and o projections, and k and v unless they are shared."""

    def __init__(self, config, own_kv):
        super().__init__()
        qkv_bias, o_bias = attention_biases(config)
        c, hd = config.hidden_size, config.head_dim
        self.q_proj = nn.Linear(c, config.num_attention_heads * hd, bias=qkv_bias)
        if own_kv:
            self.k_proj = nn.Linear(c, config.num_key_value_heads * hd, bias=qkv_bias)
            self.v_proj = nn.Linear(c, config.num_key_value_heads * hd, bias=qkv_bias)
        self.o_proj = nn.Linear(config.num_attention_heads * hd, c, bias=o_bias)


class BamMixtureOfAttention(nn.Module):
    """MoA(h) = sum_j g_j(h) * o_proj_j(Attention(q_j, k_j, v_j)).

    Router: logits = h @ gate.weight^T (E values per token). "soft": g = softmax(logits).
    "top_k": p = softmax(logits); g_j = p_j / sum_{chosen} p for the k most probable experts, else 0.
    Every expert runs on every token (K/V of every expert are needed by later tokens anyway); the
    routing only weights the outputs.
    """

    def __init__(self, config, layer_idx):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.num_experts = config.num_local_experts
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.head_dim = config.head_dim
        self.shared_kv = config.attention_experts == "shared_kv"
        self.interleaved = config.base_model_type == "cohere"
        self.gate = nn.Linear(config.hidden_size, self.num_experts, bias=False)
        self.experts = nn.ModuleList(
            [BamAttentionExpert(config, own_kv=not self.shared_kv) for _ in range(self.num_experts)]
        )
        if self.shared_kv:
            qkv_bias, _ = attention_biases(config)
            kv_dim = self.num_kv_heads * self.head_dim
            self.k_proj = nn.Linear(config.hidden_size, kv_dim, bias=qkv_bias)
            self.v_proj = nn.Linear(config.hidden_size, kv_dim, bias=qkv_bias)

    def gates(self, h):
        """[batch, seq, E] attention gates (float32; float64 for float64 activations)."""
        probs = F.softmax(upcast(self.gate(h)), dim=-1)
        if self.config.attention_routing == "soft":
            return probs
        chosen = top_k_mask(probs, self.config.num_attention_experts_per_tok)
        kept = probs * chosen
        return kept / kept.sum(-1, keepdim=True)

    def split_heads(self, x, heads):
        b, t, _ = x.shape
        return x.view(b, t, heads, self.head_dim).transpose(1, 2)  # [b, heads, t, head_dim]

    def attend(self, q, k, v, mask):
        """Causal grouped-query attention: query head h reads kv head h // (heads / kv_heads)."""
        group = self.num_heads // self.num_kv_heads
        k = k.repeat_interleave(group, dim=1)
        v = v.repeat_interleave(group, dim=1)
        scores = torch.matmul(q, k.transpose(2, 3)) * (1.0 / math.sqrt(self.head_dim))
        scores = scores + mask
        weights = F.softmax(scores, dim=-1, dtype=compute_dtype(scores.dtype)).to(q.dtype)
        out = torch.matmul(weights, v)  # [b, heads, t, head_dim]
        b, _, t, _ = out.shape
        return out.transpose(1, 2).reshape(b, t, self.num_heads * self.head_dim)

    def forward(self, h, cos, sin, mask, cache=None):
        gates = self.gates(h)
        nkv = self.num_kv_heads

        # Keys and values: one set per expert (expert_kv) or one shared set (shared_kv).
        if self.shared_kv:
            kv_sources = [self]
        else:
            kv_sources = list(self.experts)
        keys = [apply_rope(self.split_heads(src.k_proj(h), nkv), cos, sin, self.interleaved) for src in kv_sources]
        values = [self.split_heads(src.v_proj(h), nkv) for src in kv_sources]
        if cache is not None:
            # The cache holds all experts' K/V side by side along the head axis.
            k_all, v_all = cache.update(torch.cat(keys, dim=1), torch.cat(values, dim=1), self.layer_idx)
            keys = list(k_all.split(nkv, dim=1))
            values = list(v_all.split(nkv, dim=1))

        out = None
        for j, expert in enumerate(self.experts):
            q = apply_rope(self.split_heads(expert.q_proj(h), self.num_heads), cos, sin, self.interleaved)
            kv = 0 if self.shared_kv else j
            out_j = expert.o_proj(self.attend(q, keys[kv], values[kv], mask))
            term = gates[..., j : j + 1].to(out_j.dtype) * out_j
            out = term if out is None else out + term
        return out


class BamDenseAttention(BamMixtureOfAttention):
    """attention_experts == "dense": a single attention (the BTX average) under the dense names
    self_attn.{q,k,v,o}_proj, with no attention router."""

    def __init__(self, config, layer_idx):
        nn.Module.__init__(self)
        self.config = config
        self.layer_idx = layer_idx
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.head_dim = config.head_dim
        self.interleaved = config.base_model_type == "cohere"
        qkv_bias, o_bias = attention_biases(config)
        c, hd = config.hidden_size, config.head_dim
        self.q_proj = nn.Linear(c, self.num_heads * hd, bias=qkv_bias)
        self.k_proj = nn.Linear(c, self.num_kv_heads * hd, bias=qkv_bias)
        self.v_proj = nn.Linear(c, self.num_kv_heads * hd, bias=qkv_bias)
        self.o_proj = nn.Linear(self.num_heads * hd, c, bias=o_bias)

    def forward(self, h, cos, sin, mask, cache=None):
        k = apply_rope(self.split_heads(self.k_proj(h), self.num_kv_heads), cos, sin, self.interleaved)
        v = self.split_heads(self.v_proj(h), self.num_kv_heads)
        if cache is not None:
            k, v = cache.update(k, v, self.layer_idx)
        q = apply_rope(self.split_heads(self.q_proj(h), self.num_heads), cos, sin, self.interleaved)
        return self.o_proj(self.attend(q, k, v, mask))


# ----------------------------------------------------------------------------------------------
# Mixture of FFN experts
# ----------------------------------------------------------------------------------------------


class BamExpertMLP(nn.Module):
    """SwiGLU FFN with Mixtral names: w2(silu(w1 h) * w3 h); w1 = gate, w3 = up, w2 = down."""

    def __init__(self, config):
        super().__init__()
        self.w1 = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.w2 = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)
        self.w3 = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)

    def forward(self, h):
        return self.w2(F.silu(self.w1(h)) * self.w3(h))


class BamSparseMoe(nn.Module):
    """MoE(h) = expert_output_scale * sum over the chosen experts of gate_i * FFN_i(h) (`route_ffn`).

    Sampled top-1 draws Gumbel noise (torch's RNG) while the module is training, at the temperature
    `gumbel_temperature` (the finetune sets it per step with `set_gumbel_step`), and routes by argmax
    in eval mode; `gumbel_noise` [N, E], when set, is used instead of a draw (tests feeding the same
    noise to bam-mix).
    """

    def __init__(self, config):
        super().__init__()
        self.num_experts = config.num_local_experts
        self.top_k = config.num_experts_per_tok
        self.renormalize = config.router_renormalize
        self.ffn_routing = config.ffn_routing
        self.capacity_factor = 1.5 if config.router_capacity_factor is None else float(config.router_capacity_factor)
        self.gumbel_decay = 1e-4 if config.router_gumbel_decay is None else float(config.router_gumbel_decay)
        self.gumbel_temperature = 1.0
        self.gumbel_noise = None
        self.output_scale = config.expert_output_scale
        self.gate = nn.Linear(config.hidden_size, self.num_experts, bias=False)
        self.experts = nn.ModuleList([BamExpertMLP(config) for _ in range(self.num_experts)])

    def forward(self, h, token_mask=None):
        """Returns (output [b, t, c], router logits [b * t, E], the routing decision)."""
        b, t, c = h.shape
        flat = h.reshape(-1, c)
        logits = self.gate(flat)
        gumbel = None
        if self.ffn_routing == "sample_top1" and (self.gumbel_noise is not None or self.training):
            noise = self.gumbel_noise
            if noise is None:
                u = torch.rand(logits.shape, device=logits.device).clamp_(1e-10, 1 - 1e-7)
                noise = -torch.log(-torch.log(u))
            gumbel = (noise.to(logits.device), self.gumbel_temperature)
        routing = route_ffn(logits, self.ffn_routing, self.top_k, self.renormalize, token_mask=token_mask,
                            capacity_factor=self.capacity_factor, gumbel=gumbel)
        self.last_routing = routing  # the decision the finetune's router losses use (the sample included)

        out = torch.zeros_like(flat)
        for i, expert in enumerate(self.experts):
            rows = (routing.chosen[:, i] & routing.dispatched).nonzero(as_tuple=True)[0]
            # An expert is run also when no token chose it (on zero rows): its parameters then get a
            # zero gradient rather than none, the same set of gradients on every process, which
            # sharded data-parallel training (FSDP) needs to reduce them.
            y = expert(flat[rows]) * routing.gates[rows, i : i + 1].to(flat.dtype)
            out.index_add_(0, rows, y)
        if self.output_scale != 1.0:
            out = out * self.output_scale
        return out.view(b, t, c), logits, routing


def set_gumbel_step(model, step):
    """Sets every sampled top-1 FFN router's Gumbel-softmax temperature for optimiser step `step`."""
    for m in model.modules():
        if isinstance(m, BamSparseMoe):
            m.gumbel_temperature = gumbel_temperature(m.gumbel_decay, step)


def router_losses(logits, routing, top_k, token_mask=None):
    """Router losses of one MoE layer over the tokens of the batch (tokens where `token_mask` is 0
    excluded); K = top_k for "top_k" routing, E for "soft" (every expert chosen), 1 for "switch" and
    "sample_top1". Switch's dropped tokens count with the expert they chose.

    btx    = E * sum_i u_i * P_i, u_i = mean gate of expert i, P_i = mean probability of i
    switch = E * sum_i f_i * P_i, f_i = (tokens whose chosen experts contain i) / (tokens * K)
    z      = mean over tokens of logsumexp(logits)^2
    """
    probs, gates, chosen = routing.probs, routing.gates, routing.chosen
    if token_mask is not None:
        keep = token_mask.reshape(-1).bool()
        probs, gates, chosen, logits = probs[keep], gates[keep], chosen[keep], logits[keep]
    n, e = probs.shape
    p_mean = probs.mean(0)
    u = gates.mean(0)
    f = chosen.to(probs.dtype).sum(0) / (n * top_k)
    return {
        "btx": e * (u * p_mean).sum(),
        "switch": e * (f * p_mean).sum(),
        "z": torch.logsumexp(upcast(logits), dim=-1).pow(2).mean(),
    }


# ----------------------------------------------------------------------------------------------
# Decoder
# ----------------------------------------------------------------------------------------------


class BamDecoderLayer(_LayerBase):
    def __init__(self, config, layer_idx):
        super().__init__()
        self.parallel = config.parallel_block
        self.input_layernorm = make_norm(config)
        if not self.parallel:
            self.post_attention_layernorm = make_norm(config)
        if config.attention_experts == "dense":
            self.self_attn = BamDenseAttention(config, layer_idx)
        else:
            self.self_attn = BamMixtureOfAttention(config, layer_idx)
        self.block_sparse_moe = BamSparseMoe(config)

    def forward(self, x, cos, sin, mask, cache=None, token_mask=None, **kwargs):
        """Returns (x after the block, this layer's FFN router logits, its FFN routing)."""
        if self.parallel:
            h = self.input_layernorm(x)
            attn = self.self_attn(h, cos, sin, mask, cache)
            ffn, router_logits, routing = self.block_sparse_moe(h, token_mask)
            return x + attn + ffn, router_logits, routing
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, cache)
        ffn, router_logits, routing = self.block_sparse_moe(self.post_attention_layernorm(x), token_mask)
        return x + ffn, router_logits, routing


class BamPreTrainedModel(PreTrainedModel):
    config_class = BamConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = _LayerBase is not nn.Module
    _no_split_modules = ["BamDecoderLayer"]
    _skip_keys_device_placement = ["past_key_values", "cache"]
    # transformers 4: let generate() hand the model a Cache object (newer versions always do)
    _supports_cache_class = True

    def _init_weights(self, module):
        # Fresh (untrained) parameters only: linear N(0, initializer_range), biases 0, norms 1.
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, (BamRMSNorm, BamLayerNorm)):
            init.ones_(module.weight)


@dataclass
class BamModelOutput(MoeModelOutputWithPast):
    """transformers' MoE output plus `router_losses` = {"btx", "switch", "z"}, each summed over layers."""

    router_losses: dict | None = None


@dataclass
class BamCausalLMOutput(MoeCausalLMOutputWithPast):
    """`loss` is the LM cross-entropy alone; `router_losses` = {"btx", "switch", "z"} summed over layers;
    `router_logits` (with output_router_logits) one [batch * seq, E] tensor per layer."""

    router_losses: dict | None = None


def resolve_cache_argument(cache, past_key_values):
    """transformers >= 5.24 passes the KV cache as `cache`, older versions as `past_key_values`."""
    if cache is not None and past_key_values is not None:
        raise ValueError("pass the KV cache as `cache` or as `past_key_values`, not both")
    return cache if cache is not None else past_key_values


class BamModel(BamPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        self.layers = nn.ModuleList([BamDecoderLayer(config, i) for i in range(config.num_hidden_layers)])
        self.norm = make_norm(config)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self):
        return self.embed_tokens

    def set_input_embeddings(self, value):
        self.embed_tokens = value

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        position_ids=None,
        past_key_values=None,
        inputs_embeds=None,
        use_cache=None,
        output_hidden_states=None,
        output_router_logits=None,
        cache=None,
        **kwargs,
    ):
        cache = resolve_cache_argument(cache, past_key_values)
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        x = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds
        b, t, _ = x.shape
        use_cache = self.config.use_cache if use_cache is None else use_cache
        if self.gradient_checkpointing and self.training:
            use_cache = False
        if use_cache and cache is None:
            cache = new_dynamic_cache(self.config)
        if not use_cache:
            cache = None
        past = cache.get_seq_length() if cache is not None else 0

        if position_ids is None:  # positions 0..T-1 (after whatever is cached)
            position_ids = torch.arange(past, past + t, device=x.device).unsqueeze(0).expand(b, t)
        cos, sin = rope_cos_sin(self.config, position_ids, x.device, compute_dtype(x.dtype))

        # Additive causal mask [b, 1, t, past + t]; a 2D attention_mask (1 = token, 0 = padding) over
        # past + t positions additionally hides padded keys.
        keys = past + t
        allowed = torch.ones(t, keys, dtype=torch.bool, device=x.device).tril(diagonal=past)[None, None]
        token_mask = None
        if attention_mask is not None:
            allowed = allowed & attention_mask[:, None, None, -keys:].bool()
            token_mask = attention_mask[:, -t:]
        mask = torch.zeros(allowed.shape, dtype=x.dtype, device=x.device)
        mask = mask.masked_fill(~allowed, torch.finfo(x.dtype).min)

        hidden_states = (x,) if output_hidden_states else None
        all_router_logits = ()
        totals = {"btx": 0.0, "switch": 0.0, "z": 0.0}
        k = self.config.num_local_experts if self.config.ffn_routing == "soft" else self.config.num_experts_per_tok
        for layer in self.layers:
            x, logits, routing = layer(x, cos, sin, mask, cache=cache, token_mask=token_mask)
            all_router_logits += (logits,)
            losses = router_losses(logits, routing, k, token_mask)
            for name in totals:
                totals[name] = totals[name] + losses[name]
            if output_hidden_states:
                hidden_states += (x,)
        x = self.norm(x)
        return BamModelOutput(
            last_hidden_state=x,
            hidden_states=hidden_states,
            router_logits=all_router_logits if output_router_logits else None,
            router_losses=totals,
            **{cache_field_name(BamModelOutput): cache},
        )


class BamForCausalLM(BamPreTrainedModel, GenerationMixin):
    # transformers 5 maps tied parameters target -> source; transformers 4 lists the tied names
    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"} if TRANSFORMERS_MAJOR >= 5 else ["lm_head.weight"]

    def __init__(self, config):
        super().__init__(config)
        self.model = BamModel(config)
        self.vocab_size = config.vocab_size
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def set_input_embeddings(self, value):
        self.model.embed_tokens = value

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, value):
        self.lm_head = value

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        position_ids=None,
        past_key_values=None,
        inputs_embeds=None,
        labels=None,
        use_cache=None,
        output_hidden_states=None,
        output_router_logits=None,
        logits_to_keep=0,
        return_dict=None,
        cache=None,
        **kwargs,
    ):
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            output_hidden_states=output_hidden_states,
            output_router_logits=output_router_logits,
            cache=resolve_cache_argument(cache, past_key_values),
        )
        h = outputs.last_hidden_state
        if isinstance(logits_to_keep, int) and logits_to_keep > 0:
            h = h[:, -logits_to_keep:]
        logits = self.lm_head(h)
        if self.config.base_model_type == "cohere":
            logits = logits * self.config.logit_scale

        loss = None
        if labels is not None:
            # Token t predicts label t + 1; -100 labels are ignored; mean over the remaining ones.
            shift_logits = upcast(logits[:, :-1, :]).reshape(-1, self.config.vocab_size)
            shift_labels = labels[:, 1:].reshape(-1).to(shift_logits.device)
            loss = F.cross_entropy(shift_logits, shift_labels, ignore_index=-100)

        cache_out = getattr(outputs, cache_field_name(BamModelOutput))
        out = BamCausalLMOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            router_logits=outputs.router_logits,
            router_losses=outputs.router_losses,
            **{cache_field_name(BamCausalLMOutput): cache_out},
        )
        return out if return_dict is not False else out.to_tuple()

    def total_loss(self, outputs, aux_coef=None, z_coef=None, aux=None):
        """LM loss + aux_coef * router_losses[aux] + z_coef * router_losses["z"], by default with the
        config's recipe (router_aux_loss_kind, router_aux_loss_coef, router_z_loss_coef); aux = "btx",
        "switch" or "none"."""
        aux = self.config.router_aux_loss_kind if aux is None else aux
        aux_coef = self.config.router_aux_loss_coef if aux_coef is None else aux_coef
        z_coef = self.config.router_z_loss_coef if z_coef is None else z_coef
        aux_term = 0.0 if aux == "none" else aux_coef * outputs.router_losses[aux]
        return outputs.loss + aux_term + z_coef * outputs.router_losses["z"]


__all__ = ["BamConfig", "BamModel", "BamForCausalLM", "BamPreTrainedModel"]
