"""The mixtures the finetune trains, behind one interface: BAM checkpoints through this package's
BamForCausalLM, BTX checkpoints that are Mixtral through transformers' MixtralForCausalLM.

A `TrainableMixture` runs a batch (logits and every FFN router's logits), names its parameters the way
bam-mix's checkpoints do (the "bam-mix layout": Mixtral's per-expert `block_sparse_moe.experts.E.w1`
names even where transformers 5 fuses the experts into one tensor), says which FFN expert each
parameter belongs to, and converts between its own tensors and that layout.
"""

import json
import os
import re
from dataclasses import dataclass

import torch
from torch import nn

from .compat import from_pretrained_kwargs, mixtral_config
from .configuration_bam import BamConfig
from .modeling_bam import BamForCausalLM, route_ffn, upcast
from .recipe import read_recipe

# ------------------------------------------------------------------------------------------------
# Parameter roles (bam-mix's ParameterSpec.Role, from the bam-mix-layout name)
# ------------------------------------------------------------------------------------------------

PARAMETER_GROUPS = ("all", "routers", "experts", "attention", "ffn", "embeddings", "norms")

_GROUP_ROLES = {
    "routers": {"attention_router", "ffn_router"},
    "experts": {"attention", "attention_bias", "shared_kv", "feed_forward", "feed_forward_bias"},
    "attention": {"attention", "attention_bias", "shared_kv", "attention_router"},
    "ffn": {"feed_forward", "feed_forward_bias", "ffn_router"},
    "embeddings": {"embedding", "lm_head"},
    "norms": {"norm"},
}


def parameter_role(name, shared_kv):
    """The role of a parameter named in the bam-mix layout; `shared_kv`: a BAM model whose attention
    experts share one k and v projection (`self_attn.k_proj` is then that shared projection)."""
    if name == "model.embed_tokens.weight":
        return "embedding"
    if name == "lm_head.weight":
        return "lm_head"
    if name.endswith("layernorm.weight") or name == "model.norm.weight":
        return "norm"
    if ".self_attn." in name:
        if name.endswith("self_attn.gate.weight"):
            return "attention_router"
        if name.endswith(".bias"):
            return "attention_bias"
        if shared_kv and re.search(r"\.self_attn\.[kv]_proj\.weight$", name):
            return "shared_kv"
        return "attention"
    if name.endswith("block_sparse_moe.gate.weight"):
        return "ffn_router"
    if ".block_sparse_moe.experts." in name or ".mlp." in name:
        return "feed_forward_bias" if name.endswith(".bias") else "feed_forward"
    raise ValueError(f"parameter `{name}` has no known role")


def is_trainable(role, groups):
    """Whether `--train groups` (a union) selects a parameter of this role."""
    return any(g == "all" or role in _GROUP_ROLES[g] for g in groups)


def is_norm_or_bias(role):
    """Excluded from weight decay by default, as in bam-mix."""
    return role in ("norm", "attention_bias", "feed_forward_bias")


# ------------------------------------------------------------------------------------------------
# Parameters in the bam-mix layout
# ------------------------------------------------------------------------------------------------


@dataclass
class Parameter:
    """One parameter of the model as the optimiser sees it.

    `names` are its bam-mix-layout names: one, or for a tensor stacking E experts along dim 0
    (transformers 5's fused Mixtral experts) one per expert. `expert` is (layer, expert) for an FFN
    expert's parameter, (layer, None) for a stacked one, None otherwise."""

    module_name: str  # the name in the torch module
    param: nn.Parameter
    names: list
    role: str
    expert: tuple | None
    # for stacked experts: how each expert's slice of dim 1 splits into bam-mix tensors,
    # [(name suffix, start, end)], e.g. gate_up_proj -> [("w1", 0, F), ("w3", F, 2F)]
    slices: list | None = None

    @property
    def stacked(self):
        return self.slices is not None


_EXPERT = re.compile(r"^model\.layers\.(\d+)\.block_sparse_moe\.experts\.(\d+)\.")


class TrainableMixture:
    """A loaded mixture: `model` (a transformers PreTrainedModel), `config` (the config.json dict),
    `architecture` ("bam" or "mixtral") and its router recipe."""

    def __init__(self, model, config, architecture, path):
        self.model = model
        self.config = config
        self.architecture = architecture
        self.path = path
        self.recipe = read_recipe(config, architecture)
        self.shared_kv = architecture == "bam" and config.get("attention_experts", "expert_kv") == "shared_kv"

    # -- loading ---------------------------------------------------------------------------------

    @staticmethod
    def load(path, dtype=torch.float32):
        """Loads the checkpoint directory `path` on the CPU (sharding moves it later), its parameters in
        `dtype` whatever the dtype they are stored in: float32 (bam-mix's arithmetic) or float64."""
        if dtype not in (torch.float32, torch.float64):
            raise NotImplementedError(f"training computes in float32 or float64, not {dtype}")
        config_path = os.path.join(path, "config.json")
        if not os.path.isfile(config_path):
            raise ValueError(f"{path}: no config.json (expected an HF directory written by bam-mix)")
        with open(config_path) as f:
            config = json.load(f)
        model_type = config.get("model_type")
        for key in ("attention_dropout", "hidden_dropout", "resid_pdrop", "embd_pdrop"):
            if config.get(key, 0) not in (0, None):
                raise NotImplementedError(f"{path}: config `{key}` = {config[key]}: dropout is not implemented in the finetune (nor in bam-mix's); set it to 0")
        if config.get("router_jitter_noise", 0) not in (0, None):
            raise NotImplementedError(f"{path}: config `router_jitter_noise` = {config['router_jitter_noise']}: router jitter is not implemented in the finetune (nor in bam-mix's); set it to 0")
        if model_type == "bam":
            bam_config = BamConfig.from_pretrained(path)
            model = BamForCausalLM.from_pretrained(path, config=bam_config, **from_pretrained_kwargs(dtype))
            mixture = TrainableMixture(model, config, "bam", path)
        elif model_type == "mixtral":
            from transformers import MixtralForCausalLM

            model = MixtralForCausalLM.from_pretrained(path, config=mixtral_config(config), **from_pretrained_kwargs(dtype))
            mixture = TrainableMixture(model, config, "mixtral", path)
        else:
            raise ValueError(
                f"{path}: model_type {model_type!r}; the finetune trains mixtures: bam-mix's BAM format (model_type "
                "\"bam\") or Mixtral (BTX). Dense models are trained with `bam-mix train`."
            )
        # Every parameter and floating buffer in `dtype` (from_pretrained already converts the parameters;
        # this also covers buffers such as RoPE's frequencies and says so if a version did not).
        model.to(dtype)
        model.train()
        return mixture

    @property
    def dtype(self):
        """The dtype of the parameters, which the finetune computes in."""
        return next(self.model.parameters()).dtype

    def check_sequence_length(self, T):
        limit = self.config.get("max_position_embeddings")
        if limit is not None and T > limit:
            raise ValueError(f"--seq {T} exceeds the model's max_position_embeddings ({limit})")
        window = self.config.get("sliding_window") if self.architecture == "mixtral" else None
        if window is not None and T > window:
            raise NotImplementedError(f"--seq {T} is longer than the model's sliding_window ({window}); sliding-window attention beyond the window is not trained here (nor by bam-mix)")

    # -- structure -------------------------------------------------------------------------------

    def decoder_layers(self):
        """The decoder blocks (one FSDP unit each)."""
        return list(self.model.model.layers)

    def moe_blocks(self):
        """The FFN mixture module of every layer."""
        return [getattr(layer, "block_sparse_moe", None) or layer.mlp for layer in self.decoder_layers()]

    def experts_are_stacked(self):
        """transformers 5's Mixtral keeps each layer's experts in two 3-D tensors."""
        return not isinstance(self.moe_blocks()[0].experts, nn.ModuleList)

    def parameters(self):
        """Every parameter as a `Parameter` in the bam-mix layout (shared tensors once: named_parameters
        lists a tied lm_head under the embedding's name only)."""
        out = []
        F = self.config["intermediate_size"]
        for module_name, p in self.model.named_parameters():
            m = re.match(r"^model\.layers\.(\d+)\.mlp\.(gate\.weight|experts\.gate_up_proj|experts\.down_proj)$", module_name)
            if m and self.architecture == "mixtral":
                layer, what = int(m.group(1)), m.group(2)
                prefix = f"model.layers.{layer}.block_sparse_moe"
                if what == "gate.weight":
                    name = f"{prefix}.gate.weight"
                    out.append(Parameter(module_name, p, [name], "ffn_router", None))
                    continue
                E = p.shape[0]
                if what == "experts.gate_up_proj":
                    if tuple(p.shape) != (E, 2 * F, self.config["hidden_size"]):
                        raise NotImplementedError(f"{module_name}: shape {list(p.shape)}; expected [E, 2F, C] (gate rows, then up rows)")
                    slices = [("w1", 0, F), ("w3", F, 2 * F)]
                else:
                    if tuple(p.shape) != (E, self.config["hidden_size"], F):
                        raise NotImplementedError(f"{module_name}: shape {list(p.shape)}; expected [E, C, F]")
                    slices = [("w2", 0, self.config["hidden_size"])]
                names = [f"{prefix}.experts.{e}.{s}.weight" for e in range(E) for s, _, _ in slices]
                out.append(Parameter(module_name, p, names, "feed_forward", (layer, None), slices))
                continue
            name = module_name
            if self.architecture == "mixtral" and ".mlp." in name:
                raise NotImplementedError(f"{module_name}: a Mixtral parameter this package does not know how to name")
            role = parameter_role(name, self.shared_kv)
            e = _EXPERT.match(name)
            expert = (int(e.group(1)), int(e.group(2))) if e else None
            out.append(Parameter(module_name, p, [name], role, expert))
        return out

    # -- forward ---------------------------------------------------------------------------------

    def forward(self, input_ids):
        """(logits [b, t, V] float32 (float64 for a float64 model), [router logits [b * t, E] per FFN
        mixture layer])."""
        out = self.model(input_ids=input_ids, use_cache=False, output_router_logits=True)
        router_logits = list(out.router_logits)
        if len(router_logits) != len(self.decoder_layers()):
            raise RuntimeError(f"the model returned {len(router_logits)} router logits for {len(self.decoder_layers())} layers")
        return upcast(out.logits), router_logits

    def forward_routed(self, input_ids, token_mask=None):
        """`forward` with each FFN router's decision: (logits, router logits, routings). `token_mask`
        [b, t] (False: padding) reaches a BAM model as its attention mask, so Switch routing gives
        padding no capacity; a BAM model's decisions are its modules' own (sampled top-1's sample
        included), a Mixtral's are recomputed from the logits (top-k, deterministic)."""
        if self.architecture != "bam":
            logits, router_logits = self.forward(input_ids)
            return logits, router_logits, [self.routing(l) for l in router_logits]
        kwargs = {} if token_mask is None else {"attention_mask": token_mask.long()}
        out = self.model(input_ids=input_ids, use_cache=False, output_router_logits=True, **kwargs)
        router_logits = list(out.router_logits)
        return upcast(out.logits), router_logits, [m.last_routing for m in self.moe_blocks()]

    def set_gumbel_noise(self, noise, temperature):
        """Sampled top-1: the noise per FFN layer ([b * t, E] each) and temperature of the next
        forward passes (None: route by argmax, as inference does)."""
        for l, m in enumerate(self.moe_blocks()):
            if hasattr(m, "gumbel_noise"):
                m.gumbel_noise = None if noise is None else noise[l]
                m.gumbel_temperature = temperature if temperature is not None else 1.0

    def routing(self, router_logits):
        """The routing decision of one FFN router, the model's own (bam-mix's `route`)."""
        r = self.recipe
        return route_ffn(router_logits, r.ffn_routing, r.top_k, r.renormalize)

    def prepare_for_sharding(self):
        """Makes every FFN expert parameter receive a gradient on every process, also when no token of
        that process chose the expert: FSDP reduce-scatters the same list of gradients on every rank,
        and a rank without an expert's gradient would desynchronise it. BAM and transformers 5's fused
        Mixtral experts already do (BamSparseMoe runs every expert; a fused tensor always has a
        gradient); transformers 4 Mixtral blocks that skip unused experts get a zero-valued term."""
        if self.architecture != "mixtral" or self.experts_are_stacked():
            return

        def touch_every_expert(module, inputs, output):
            zero = sum(p.sum() for p in module.experts.parameters()) * 0.0
            if isinstance(output, tuple):
                return (output[0] + zero.to(output[0].dtype),) + tuple(output[1:])
            return output + zero.to(output.dtype)

        for block in self.moe_blocks():
            block.register_forward_hook(touch_every_expert)


def to_bam_mix_layout(parameter, tensor):
    """{bam-mix name: tensor} for one parameter's (full, unsharded) tensor — or a tensor of the same
    shape such as its AdamW moment."""
    if not parameter.stacked:
        return {parameter.names[0]: tensor}
    out = {}
    i = 0
    for e in range(tensor.shape[0]):
        for _, start, end in parameter.slices:
            out[parameter.names[i]] = tensor[e, start:end]
            i += 1
    return out


def from_bam_mix_layout(parameter, tensors):
    """The inverse of `to_bam_mix_layout`: one tensor of the parameter's shape from {name: tensor}."""
    if not parameter.stacked:
        return tensors[parameter.names[0]]
    E = parameter.param.shape[0]
    per = len(parameter.slices)
    rows = [torch.cat([tensors[parameter.names[e * per + j]] for j in range(per)], dim=0) for e in range(E)]
    return torch.stack(rows)
