"""The finetuning objective of `bam-mix finetune` over a batch that may be spread across processes.

With N tokens in the (global) micro-batch, per FFN mixture layer with E experts and K experts per token
(E under soft routing):

    p_t  = softmax(router logits of token t);  g_t = the gates (0 for experts not chosen)
    P_i  = (1/N) sum_t p_t,i        u_i = (1/N) sum_t g_t,i        f_i = count_i / (N K)
    L_NLL    = mean over scored positions (target >= 0) of -log softmax(logits)[target]
    L_btx    = E sum_i u_i P_i         (differentiable in u and P)
    L_switch = E sum_i f_i P_i         (f is a count: only P carries gradient)
    L_z      = (1/N) sum_t logsumexp(router logits_t)^2
    L = L_NLL + sum over layers (aux_coef * L_aux + z_coef * L_z)

Every position of a window counts in the router statistics, padded or not: bam-mix finetune does so,
and the two must optimise the same objective. The attention router of BAM has no loss.

Across P processes each holds B/P of the micro-batch's windows. Every sum above is all-reduced, so
every process computes the global batch's loss value; its gradient flows only through the process's
own tokens (`global_value_local_gradient`), so the gradients of the P processes add up to the global
batch's gradient — exactly the single-process gradient, whatever the split.

Everything is computed in the dtype of the logits (float32, as bam-mix; or float64 under the
finetune's --compute-dtype float64), half-precision logits in float32. The all-reduced sums travel in
float64 either way.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .modeling_bam import compute_dtype


def global_value_local_gradient(local, total):
    """A tensor equal to `total` (the all-reduced sum) whose gradient flows to `local` only."""
    return local + (total - local).detach()


@dataclass
class BatchLosses:
    """The losses of one (global) micro-batch."""

    objective: torch.Tensor  # what this process differentiates (value: the global total)
    total: float
    lm: float
    btx: float
    switch: float
    z: float
    aux: float
    scored: int
    # per FFN layer, tokens routed to each expert over the global micro-batch (float64 [L, E])
    expert_counts: torch.Tensor
    tokens: int


def batch_losses(logits, targets, router_logits, routings, recipe, losses, reduce_sum, token_mask=None):
    """The objective of one micro-batch from this process's part of it. `token_mask` [b, t] (False or 0:
    padding) leaves padding out of the router statistics, as bam-mix does; None: every position counts.

    logits [b, t, V], targets [b, t] (-1: not scored), per layer router logits [b*t, E] and the
    routing decisions; `losses` the LossOptions; `reduce_sum(tensor)` returns the sum of a detached
    float64 tensor over the processes (the identity in one process)."""
    V = logits.shape[-1]
    dtype = compute_dtype(logits.dtype)
    ce_sum = F.cross_entropy(logits.reshape(-1, V).to(dtype), targets.reshape(-1), ignore_index=-1, reduction="sum")
    scored_local = (targets >= 0).sum()
    keep = None if token_mask is None else token_mask.reshape(-1).bool()
    n_local = targets.numel() if keep is None else int(keep.sum())
    K = recipe.experts_per_token

    # Per layer: sum_t p (E), sum_t g (E), count (E), sum_t lse^2 (1), all local, over the kept tokens.
    layer_sums = []
    for logits_l, r in zip(router_logits, routings):
        probs, gates, chosen = r.probs, r.gates, r.chosen
        if keep is not None:
            logits_l, probs, gates, chosen = logits_l[keep], probs[keep], gates[keep], chosen[keep]
        lse = torch.logsumexp(logits_l.to(dtype), dim=-1)
        layer_sums.append((probs.sum(0), gates.sum(0), chosen.double().sum(0), lse.pow(2).sum()))

    # One all-reduce for everything: [ce_sum, scored, N, then per layer P_sum, u_sum, count, lse2_sum].
    parts = [ce_sum.detach().double().reshape(1), scored_local.double().reshape(1),
             torch.tensor([float(n_local)], dtype=torch.float64, device=logits.device)]
    for p_sum, g_sum, count, lse2 in layer_sums:
        parts += [p_sum.detach().double(), g_sum.detach().double(), count, lse2.detach().double().reshape(1)]
    totals = reduce_sum(torch.cat(parts))

    scored = int(round(totals[1].item()))
    N = totals[2].item()
    if scored == 0:
        raise ValueError("a micro-batch has no scored position (every target is padding); give longer texts or a shorter --seq")
    lm = global_value_local_gradient(ce_sum, totals[0].to(dtype)) / scored

    btx_sum = switch_sum = z_sum = 0.0
    counts = []
    offset = 3
    for p_sum, g_sum, count, lse2 in layer_sums:
        E = p_sum.shape[0]
        P = global_value_local_gradient(p_sum, totals[offset : offset + E].to(dtype)) / N
        u = global_value_local_gradient(g_sum, totals[offset + E : offset + 2 * E].to(dtype)) / N
        c = totals[offset + 2 * E : offset + 3 * E]
        z_total = totals[offset + 3 * E].to(dtype)
        offset += 3 * E + 1
        f = (c / (N * K)).to(dtype)
        btx_sum = btx_sum + E * (u * P).sum()
        switch_sum = switch_sum + E * (f * P).sum()
        z_sum = z_sum + global_value_local_gradient(lse2, z_total) / N
        counts.append(c)

    aux = {"btx": btx_sum, "switch": switch_sum, "none": 0.0}[losses.aux]
    objective = lm + losses.aux_coef * aux + losses.z_coef * z_sum

    def value(x):
        return float(x) if not torch.is_tensor(x) else x.item()

    return BatchLosses(
        objective=objective,
        total=value(objective),
        lm=value(lm),
        btx=value(btx_sum),
        switch=value(switch_sum),
        z=value(z_sum),
        aux=value(aux),
        scored=scored,
        expert_counts=torch.stack(counts) if counts else torch.zeros(0, 0, dtype=torch.float64),
        tokens=int(N),
    )
