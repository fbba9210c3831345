# Copyright the bam-mix authors, MIT licence. Reference implementation of BAM (Branch-Attend-Mix,
# arXiv 2408.08274) for Hugging Face transformers: the package bam_mix_torch in the bam-mix repository
# (python/), whose copy `bam-mix mix` writes beside every BAM checkpoint. See docs/bam-format.md there.
"""Configuration of a BAM (Branch-Attend-Mix) model, as written by bam-mix.

A BAM config is the config of the dense seed the experts were branched from (vocab_size, hidden_size,
intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads, head_dim, rope_theta or
rope_parameters, max_position_embeddings, tie_word_embeddings, norm eps, token ids) plus the BAM fields
below. The dense family (`base_model_type`) decides the norm, the RoPE pairing, the attention biases,
the logit scale and the default of `tie_word_embeddings`.
"""

from transformers import PretrainedConfig

BASE_MODEL_TYPES = ("llama", "mistral", "qwen2", "cohere")
ATTENTION_EXPERTS = ("expert_kv", "shared_kv", "dense")
ATTENTION_ROUTING = ("soft", "top_k")
FFN_ROUTING = ("top_k", "soft", "switch", "sample_top1")
ROUTER_AUX_LOSS_KINDS = ("btx", "switch", "none")


class BamConfig(PretrainedConfig):
    r"""
    Args (BAM-specific; the dense fields mean what they mean for the seed family):
        base_model_type (`str`, defaults to `"llama"`):
            Dense family of the experts: `"llama"`, `"mistral"`, `"qwen2"` (RMSNorm with `rms_norm_eps`,
            rotate-half RoPE) or `"cohere"` (mean-subtracting LayerNorm without bias with
            `layer_norm_eps`, interleaved RoPE, `logit_scale`).
        num_local_experts (`int`, defaults to 4):
            E, the number of experts; the same E for attention experts and FFN experts.
        num_experts_per_tok (`int`, defaults to 1):
            K, the FFN top-k (BAM uses 1).
        router_renormalize (`bool`, defaults to `False`):
            FFN gates: `False` -> the dense softmax probability p_i of each chosen expert (BAM, Switch);
            `True` -> p_i / sum of p over the chosen experts (Mixtral, BTX).
        attention_experts (`str`, defaults to `"expert_kv"`):
            `"expert_kv"`: every attention expert has its own q, k, v, o projections.
            `"shared_kv"`: every expert has its own q and o; one k and one v shared by all experts.
            `"dense"`: no attention experts: one attention under the dense names (`self_attn.{q,k,v,o}_proj`)
            and no attention router — what `bam-mix mix --method btx` writes for experts that Mixtral
            cannot express (parallel blocks, attention biases, LayerNorm).
        attention_routing (`str`, defaults to `"soft"`):
            `"soft"`: softmax over all E attention experts. `"top_k"`: the softmax renormalised over the
            `num_attention_experts_per_tok` most probable experts.
        num_attention_experts_per_tok (`int`, *optional*):
            Attention top-k; required when `attention_routing == "top_k"`.
        parallel_block (`bool`, *optional*):
            `True`: x + MoA(norm(x)) + MoE(norm(x)) with one norm per block. `False`: sequential block
            with `input_layernorm` and `post_attention_layernorm`. Defaults to the seed family's block
            (`True` for cohere, `False` otherwise) when absent.
        attention_bias (`bool`, defaults to `False`):
            llama / mistral / cohere: q, k, v and o projections carry biases. Ignored for qwen2, which
            always has q, k, v biases and no o bias.
        logit_scale (`float`, *optional*):
            cohere only (default 0.0625): multiplies the logits. Ignored for the other families.
        tie_word_embeddings (`bool`, *optional*):
            Defaults to `True` for cohere and `False` otherwise.
        ffn_routing (`str`, defaults to `"top_k"`):
            How the FFN router picks experts: `"top_k"` (the K most probable, gates as `router_renormalize`
            says), `"soft"` (every expert, gate p_i), `"switch"` (top-1 with gate p_i and at most
            ceil(router_capacity_factor * N / E) tokens per expert in a forward pass; overflow tokens skip
            the FFN) or `"sample_top1"` (Gumbel-softmax top-1 with a straight-through gate while training,
            temperature max(0.5, exp(-router_gumbel_decay * step)); argmax at inference). switch and
            sample_top1 need num_experts_per_tok = 1.
        expert_output_scale (`float`, defaults to 1.0):
            Multiplies the FFN mixture's output (the gate scaling of arXiv 2410.07524; 1.0 = none).
        router_aux_loss_kind (`str`, defaults to `"btx"`), router_aux_loss_coef (`float`, defaults to 0.01),
        router_z_loss_coef (`float`, defaults to 0.001):
            The training recipe of the FFN router: which load-balancing loss (`"btx"`, `"switch"` or
            `"none"`) and the coefficients of it and of the z-loss (the model never adds them to `loss`
            itself; `total_loss` and bam_mix_torch's finetune do).
        router_capacity_factor (`float`, *optional*), router_gumbel_decay (`float`, *optional*):
            Parameters of the `"switch"` and `"sample_top1"` routings; kept for them, unused otherwise.
        bam_sources (*optional*):
            Free-form provenance of the experts; not used by the model.
    """

    model_type = "bam"
    keys_to_ignore_at_inference = ["past_key_values"]

    def __init__(
        self,
        vocab_size=32000,
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=None,
        head_dim=None,
        hidden_act="silu",
        max_position_embeddings=4096,
        initializer_range=0.02,
        rms_norm_eps=1e-6,
        layer_norm_eps=1e-5,
        rope_theta=None,
        rope_parameters=None,
        attention_bias=False,
        logit_scale=None,
        tie_word_embeddings=None,
        use_cache=True,
        pad_token_id=None,
        bos_token_id=1,
        eos_token_id=2,
        base_model_type="llama",
        num_local_experts=4,
        num_experts_per_tok=1,
        router_renormalize=False,
        attention_experts="expert_kv",
        attention_routing="soft",
        num_attention_experts_per_tok=None,
        parallel_block=None,
        ffn_routing="top_k",
        expert_output_scale=1.0,
        router_aux_loss_kind="btx",
        router_aux_loss_coef=0.01,
        router_z_loss_coef=0.001,
        router_capacity_factor=None,
        router_gumbel_decay=None,
        bam_sources=None,
        layer_types=None,
        **kwargs,
    ):
        if base_model_type not in BASE_MODEL_TYPES:
            raise ValueError(f"base_model_type must be one of {BASE_MODEL_TYPES}, got {base_model_type!r}")
        if attention_experts not in ATTENTION_EXPERTS:
            raise ValueError(f"attention_experts must be one of {ATTENTION_EXPERTS}, got {attention_experts!r}")
        if attention_routing not in ATTENTION_ROUTING:
            raise ValueError(f"attention_routing must be one of {ATTENTION_ROUTING}, got {attention_routing!r}")
        if ffn_routing not in FFN_ROUTING:
            raise ValueError(f"ffn_routing must be one of {FFN_ROUTING}, got {ffn_routing!r}")
        if router_aux_loss_kind not in ROUTER_AUX_LOSS_KINDS:
            raise ValueError(f"router_aux_loss_kind must be one of {ROUTER_AUX_LOSS_KINDS}, got {router_aux_loss_kind!r}")
        if hidden_act != "silu":
            raise ValueError(f"only hidden_act='silu' is supported, got {hidden_act!r}")

        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_attention_heads if num_key_value_heads is None else num_key_value_heads
        self.head_dim = hidden_size // num_attention_heads if head_dim is None else head_dim
        if self.num_attention_heads % self.num_key_value_heads != 0:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
        if self.head_dim % 2 != 0:
            raise ValueError("head_dim must be even for RoPE")
        self.hidden_act = hidden_act
        self.max_position_embeddings = max_position_embeddings
        self.initializer_range = initializer_range
        self.rms_norm_eps = rms_norm_eps
        self.layer_norm_eps = layer_norm_eps
        self.attention_bias = attention_bias
        self.use_cache = use_cache

        # RoPE: either the classic top-level `rope_theta` or transformers-5 `rope_parameters`
        # ({"rope_type": "default", "rope_theta": ...}). Only the default (unscaled) RoPE is defined for BAM.
        rope_parameters = dict(rope_parameters or {})
        rope_type = rope_parameters.get("rope_type", rope_parameters.get("type", "default"))
        if rope_type != "default":
            raise ValueError(f"BAM supports only rope_type 'default', got {rope_type!r}")
        if kwargs.get("rope_scaling"):
            raise ValueError("BAM does not support rope_scaling")
        kwargs.pop("rope_scaling", None)
        theta = rope_parameters.get("rope_theta", rope_theta)
        self.rope_theta = float(10000.0 if theta is None else theta)
        self.rope_parameters = {"rope_type": "default", "rope_theta": self.rope_theta}

        self.base_model_type = base_model_type
        self.logit_scale = (0.0625 if logit_scale is None else float(logit_scale)) if base_model_type == "cohere" else None
        if tie_word_embeddings is None:
            tie_word_embeddings = base_model_type == "cohere"
        self.tie_word_embeddings = bool(tie_word_embeddings)

        self.num_local_experts = num_local_experts
        self.num_experts_per_tok = num_experts_per_tok
        if not 1 <= num_experts_per_tok <= num_local_experts:
            raise ValueError("num_experts_per_tok must be in 1...num_local_experts")
        self.router_renormalize = bool(router_renormalize)
        self.attention_experts = attention_experts
        self.attention_routing = attention_routing
        if attention_routing == "top_k":
            if num_attention_experts_per_tok is None:
                raise ValueError("attention_routing 'top_k' needs num_attention_experts_per_tok")
            if not 1 <= num_attention_experts_per_tok <= num_local_experts:
                raise ValueError("num_attention_experts_per_tok must be in 1...num_local_experts")
        self.num_attention_experts_per_tok = num_attention_experts_per_tok
        self.parallel_block = (base_model_type == "cohere") if parallel_block is None else bool(parallel_block)
        if ffn_routing in ("switch", "sample_top1") and num_experts_per_tok != 1:
            raise ValueError(f"ffn_routing {ffn_routing!r} sends each token to one expert: num_experts_per_tok must be 1, got {num_experts_per_tok}")
        self.ffn_routing = ffn_routing
        self.expert_output_scale = float(expert_output_scale)
        self.router_aux_loss_kind = router_aux_loss_kind
        self.router_aux_loss_coef = router_aux_loss_coef
        self.router_z_loss_coef = router_z_loss_coef
        self.router_capacity_factor = router_capacity_factor
        self.router_gumbel_decay = router_gumbel_decay
        self.bam_sources = bam_sources
        # Every layer attends over the full causal context (a Mistral seed's sliding_window is not
        # part of BAM); saying so keeps transformers' DynamicCache from building sliding-window layers.
        self.layer_types = list(layer_types) if layer_types is not None else ["full_attention"] * num_hidden_layers

        super().__init__(
            pad_token_id=pad_token_id,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            tie_word_embeddings=self.tie_word_embeddings,
            **kwargs,
        )


__all__ = ["BamConfig"]
