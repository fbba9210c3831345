"""The router recipe a mixture carries in its config.json, read with today's bam-mix behaviour for
every key that is absent (so checkpoints written before the recipe keys existed train as they did).

    router_aux_loss_kind   "btx" | "switch" | "none"            absent: "btx"
    router_aux_loss_coef   float                                absent: 0.01
    router_z_loss_coef     float                                absent: 0.001
    ffn_routing            "top_k" | "soft" | "switch" | "sample_top1"   absent: "top_k"
    num_experts_per_tok    K                                    (top_k; 1 for switch and sample_top1)
    router_renormalize     bool (top_k only)                    absent: true for Mixtral, false for BAM
    router_capacity_factor float (switch), router_gumbel_decay float (sample_top1)
    expert_output_scale    float (1.0 = none)                   absent: 1.0

The finetune's flags override the loss keys. Switch routing (top-1 with a capacity factor; overflow
tokens skip the FFN) and sample-top-1 (Gumbel-softmax top-1 while training, argmax at inference) route
as bam-mix does (modeling_bam.route_ffn).
"""

from dataclasses import dataclass

AUX_LOSS_KINDS = ("btx", "switch", "none")
FFN_ROUTINGS = ("top_k", "soft", "switch", "sample_top1")


@dataclass(frozen=True)
class LossOptions:
    """L = L_NLL + sum over FFN mixture layers (aux_coef * L_aux + z_coef * L_z)."""

    aux: str = "btx"
    aux_coef: float = 0.01
    z_coef: float = 0.001

    def __post_init__(self):
        if self.aux not in AUX_LOSS_KINDS:
            raise ValueError(f"the load-balancing loss must be one of {AUX_LOSS_KINDS}, found {self.aux!r}")
        if self.aux_coef < 0 or self.z_coef < 0:
            raise ValueError("the router loss coefficients must not be negative")


@dataclass(frozen=True)
class RouterRecipe:
    losses: LossOptions
    ffn_routing: str
    num_experts: int
    top_k: int
    renormalize: bool
    expert_output_scale: float
    capacity_factor: float = 1.5
    gumbel_decay: float = 1e-4

    @property
    def experts_per_token(self):
        """K of the hard fractions f_i = count_i / (N K): every expert under soft routing, one under
        switch and sample_top1."""
        if self.ffn_routing == "soft":
            return self.num_experts
        return 1 if self.ffn_routing in ("switch", "sample_top1") else self.top_k


def read_recipe(config, architecture):
    """The recipe of a mixture's config (a dict of config.json); `architecture` is "bam" or "mixtral"."""
    aux = config.get("router_aux_loss_kind", "btx")
    losses = LossOptions(
        aux=aux,
        aux_coef=float(config.get("router_aux_loss_coef", 0.01)),
        z_coef=float(config.get("router_z_loss_coef", 0.001)),
    )
    routing = config.get("ffn_routing", "top_k")
    if routing not in FFN_ROUTINGS:
        raise ValueError(f"config ffn_routing must be one of {FFN_ROUTINGS}, found {routing!r}")
    num_experts = int(config["num_local_experts"])
    top_k = int(config.get("num_experts_per_tok", 2 if architecture == "mixtral" else 1))
    renormalize = bool(config.get("router_renormalize", architecture == "mixtral"))
    scale = float(config.get("expert_output_scale", 1.0))
    if architecture == "mixtral":
        # transformers' Mixtral routes top-k with renormalised gates and nothing else.
        if routing != "top_k" or not renormalize or scale != 1.0:
            raise NotImplementedError(
                f"a MixtralForCausalLM config with ffn_routing {routing!r}, router_renormalize {renormalize} and "
                f"expert_output_scale {scale}: transformers' Mixtral only routes top-k with renormalised gates and "
                "no output scale; write such mixtures in bam-mix's BAM format"
            )
    if routing in ("switch", "sample_top1") and top_k != 1:
        raise ValueError(f"config ffn_routing {routing!r} sends each token to one expert, but num_experts_per_tok is {top_k}; set it to 1")
    if routing != "top_k" and config.get("router_renormalize", False):
        raise ValueError(f"config router_renormalize true applies to ffn_routing 'top_k' only, not {routing!r}")
    capacity = float(config.get("router_capacity_factor") or 1.5)
    decay = float(config.get("router_gumbel_decay") if config.get("router_gumbel_decay") is not None else 1e-4)
    if not capacity > 0 or decay < 0:
        raise ValueError("config router_capacity_factor must be positive and router_gumbel_decay not negative")
    return RouterRecipe(losses=losses, ffn_routing=routing, num_experts=num_experts, top_k=top_k,
                        renormalize=renormalize, expert_output_scale=scale, capacity_factor=capacity, gumbel_decay=decay)
