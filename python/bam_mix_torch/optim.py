"""AdamW, gradient clipping and the learning-rate schedule of `bam-mix finetune`
(Sources/BamTraining/AdamW.swift), on full or FSDP-sharded parameters.

AdamW with torch.optim.AdamW's arithmetic, step for step: for a parameter p with gradient g at its
step t (from 1), learning rate lr and weight decay wd,

    p <- p * (1 - lr * wd)                  (decoupled decay; none for norms and biases by default)
    m <- beta1 m + (1 - beta1) g;   v <- beta2 v + (1 - beta2) g^2
    p <- p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

An FFN expert that no token reached during a step (on any process) is left entirely alone: no decay,
no moment update, no step count — what torch does for experts that are separate modules (their .grad
stays None) and what bam-mix does by default. A tensor stacking E experts (transformers 5's fused
Mixtral experts) is treated as E parameters with their own step counts, so it behaves the same.

Written here rather than taken from torch.optim because of that per-expert rule; everything works on
the local shard of each parameter (the update is element-wise), so FSDP changes nothing but the
gradient norm, which is all-reduced.
"""

import math
from dataclasses import dataclass

import torch

from .models import is_norm_or_bias


@dataclass(frozen=True)
class AdamWOptions:
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 0.1
    decay_norms_and_biases: bool = False


@dataclass(frozen=True)
class LearningRateSchedule:
    """Linear warm-up to the peak, then cosine decay to `min_fraction` of the peak at the last step.
    `step` counts updates from 0."""

    peak: float
    warmup_steps: int
    total_steps: int
    min_fraction: float = 0.1

    def rate(self, step):
        if step < self.warmup_steps:
            return self.peak * (step + 1) / self.warmup_steps
        span = max(1, self.total_steps - self.warmup_steps - 1)
        progress = min(1.0, (step - self.warmup_steps) / span)
        floor = self.min_fraction * self.peak
        return floor + (self.peak - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def local(t):
    """The local shard of a (possibly FSDP-sharded, DTensor) tensor."""
    return t.to_local() if hasattr(t, "to_local") else t


def clip_coefficient(norm, max_norm):
    """torch.nn.utils.clip_grad_norm_'s factor: min(1, max_norm / (norm + 1e-6))."""
    return min(1.0, max_norm / (norm + 1e-6))


class AdamW:
    """AdamW over `parameters` (models.Parameter, trainable ones only)."""

    def __init__(self, parameters, options):
        self.parameters = parameters
        self.options = options
        self.m = [torch.zeros_like(local(p.param.data)) for p in parameters]
        self.v = [torch.zeros_like(local(p.param.data)) for p in parameters]
        # Updates taken, per parameter; a stacked tensor has one count per expert.
        self.steps = [[0] * p.param.shape[0] if p.stacked else 0 for p in parameters]

    def gradient_norm(self, reduce_sum):
        """The global L2 norm of all gradients (accumulated in float64; summed over the shards)."""
        total = torch.zeros(1, dtype=torch.float64)
        for p in self.parameters:
            g = p.param.grad
            if g is not None:
                total += local(g).double().pow(2).sum().cpu()
        return math.sqrt(reduce_sum(total).item())

    def update(self, lr, gradient_scale, active):
        """One step with learning rate `lr` of every parameter whose expert is active; gradients are
        multiplied by `gradient_scale` as they are read (clipping). `active(layer, expert)` says whether
        any token reached FFN expert (layer, expert) in this step."""
        o = self.options
        b1, b2 = o.beta1, o.beta2
        with torch.no_grad():
            for i, p in enumerate(self.parameters):
                decay = 1.0 if (is_norm_or_bias(p.role) and not o.decay_norms_and_biases) else 1.0 - lr * o.weight_decay
                param = local(p.param.data)
                grad = local(p.param.grad) if p.param.grad is not None else torch.zeros_like(param)
                if p.stacked:
                    layer = p.expert[0]
                    for e in range(param.shape[0]):
                        if not active(layer, e):
                            continue
                        self.steps[i][e] += 1
                        _adamw(param[e], grad[e], self.m[i][e], self.v[i][e], self.steps[i][e], lr, decay, gradient_scale, b1, b2, o.eps)
                else:
                    if p.expert is not None and not active(*p.expert):
                        continue
                    self.steps[i] += 1
                    _adamw(param, grad, self.m[i], self.v[i], self.steps[i], lr, decay, gradient_scale, b1, b2, o.eps)


def _adamw(p, g, m, v, t, lr, decay, gradient_scale, b1, b2, eps):
    """One element-wise AdamW update in the parameter's dtype (bam-mix's loop, vectorised; float32 as
    bam-mix, float64 under --compute-dtype float64)."""
    bc1 = 1 - b1**t
    bc2_sqrt = math.sqrt(1 - b2**t)
    step_size = lr / bc1
    g = g * gradient_scale
    p.mul_(decay)
    m.mul_(b1).add_(g, alpha=1 - b1)
    v.mul_(b2).addcmul_(g, g, value=1 - b2)
    p.sub_(step_size * m / (v.sqrt() * (1 / bc2_sqrt) + eps))
