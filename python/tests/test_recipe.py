"""The router recipe keys, the FFN routings and the router losses against plain float64 formulas."""

import json
import os

import pytest
import torch

from conftest import FIXTURES
from bam_mix_torch import BamConfig, BamForCausalLM
from bam_mix_torch.compat import from_pretrained_kwargs
from bam_mix_torch.losses import batch_losses
from bam_mix_torch.modeling_bam import route_ffn
from bam_mix_torch.recipe import LossOptions, read_recipe

FIXTURE = os.path.join(FIXTURES, "bam", "shared_kv_topk_sequential")


def fixture_config():
    with open(os.path.join(FIXTURE, "config.json")) as f:
        return json.load(f)


def test_absent_keys_are_todays_behaviour():
    bam = read_recipe({"num_local_experts": 3}, "bam")
    assert bam.losses == LossOptions("btx", 0.01, 0.001)
    assert (bam.ffn_routing, bam.top_k, bam.renormalize, bam.expert_output_scale) == ("top_k", 1, False, 1.0)
    mixtral = read_recipe({"num_local_experts": 8, "num_experts_per_tok": 2}, "mixtral")
    assert mixtral.losses == LossOptions("btx", 0.01, 0.001)
    assert (mixtral.top_k, mixtral.renormalize) == (2, True)


def test_present_keys_are_read():
    r = read_recipe({"num_local_experts": 4, "router_aux_loss_kind": "switch", "router_aux_loss_coef": 0.02,
                     "router_z_loss_coef": 0.0, "ffn_routing": "soft", "expert_output_scale": 2.0}, "bam")
    assert r.losses == LossOptions("switch", 0.02, 0.0)
    assert (r.ffn_routing, r.experts_per_token, r.expert_output_scale) == ("soft", 4, 2.0)


@pytest.mark.parametrize("routing", ["switch", "sample_top1"])
def test_top1_routings_need_one_expert_per_token(routing):
    assert read_recipe({"num_local_experts": 4, "num_experts_per_tok": 1, "ffn_routing": routing}, "bam").experts_per_token == 1
    with pytest.raises(ValueError, match="num_experts_per_tok"):
        read_recipe({"num_local_experts": 4, "num_experts_per_tok": 2, "ffn_routing": routing}, "bam")
    with pytest.raises(ValueError, match="num_experts_per_tok"):
        BamConfig(vocab_size=16, hidden_size=8, intermediate_size=8, num_hidden_layers=1, num_attention_heads=2,
                  num_local_experts=2, num_experts_per_tok=2, ffn_routing=routing)


def test_switch_capacity_hand_worked():
    """N = 6 tokens, E = 2, capacity factor 1: capacity 3; expert 0's queue 0, 1, 2, 4, 5 drops 4 and 5.
    With token 1 as padding: 5 counted, capacity 3, expert 0 takes 0, 2, 4 and drops 5."""
    choice = torch.tensor([0, 0, 0, 1, 0, 0])
    logits = torch.nn.functional.one_hot(choice, 2).float()
    r = route_ffn(logits, "switch", 1, False, capacity_factor=1.0)
    assert r.dispatched.tolist() == [True, True, True, True, False, False]
    assert r.chosen.long().argmax(-1).tolist() == choice.tolist(), "the choice stays for the router losses"
    mask = torch.tensor([1, 0, 1, 1, 1, 1])
    r = route_ffn(logits, "switch", 1, False, token_mask=mask, capacity_factor=1.0)
    assert r.dispatched.tolist() == [True, False, True, True, True, False]
    assert route_ffn(logits, "switch", 1, False, capacity_factor=1.5).dispatched.all()


def test_sample_top1_straight_through():
    """Forward: the hard one-hot of argmax(logits + g); backward: the relaxed softmax((logits + g) / tau)'s
    gradient (torch's gumbel_softmax with hard=True); eval without noise: argmax(logits), gate 1."""
    torch.manual_seed(4)
    logits = torch.randn(5, 3, requires_grad=True)
    noise = -torch.log(-torch.log(torch.rand(5, 3)))
    r = route_ffn(logits, "sample_top1", 1, False, gumbel=(noise, 0.7))
    assert torch.equal(r.gates.detach(), torch.nn.functional.one_hot((logits + noise).argmax(-1), 3).float())
    w = torch.randn(5, 3)
    (r.gates * w).sum().backward()
    y = torch.softmax((logits.detach() + noise) / 0.7, -1)
    expected = y * (w - (y * w).sum(-1, keepdim=True)) / 0.7
    assert (logits.grad - expected).abs().max() < 1e-6
    plain = route_ffn(logits.detach(), "sample_top1", 1, False)
    assert torch.equal(plain.gates, torch.nn.functional.one_hot(logits.detach().argmax(-1), 3).float())


def test_mixtral_cannot_express_other_routings():
    with pytest.raises(NotImplementedError, match="renormalised"):
        read_recipe({"num_local_experts": 4, "ffn_routing": "soft"}, "mixtral")


def naive_moe(h, gate_w, experts, routing, k, renormalize, scale):
    """float64, token by token."""
    out = torch.zeros_like(h, dtype=torch.float64)
    for t in range(h.shape[0]):
        p = torch.softmax(h[t].double() @ gate_w.double().T, -1)
        if routing == "soft":
            chosen, gates = list(range(len(p))), p
        else:
            chosen = sorted(range(len(p)), key=lambda i: (-p[i].item(), i))[:k]
            gates = torch.zeros_like(p)
            for i in chosen:
                gates[i] = p[i] / (sum(p[j] for j in chosen) if renormalize else 1)
        for i in chosen:
            e = experts[i]
            x = h[t].double()
            y = (torch.nn.functional.silu(x @ e.w1.weight.double().T) * (x @ e.w3.weight.double().T)) @ e.w2.weight.double().T
            out[t] += scale * gates[i] * y
    return out


@pytest.mark.parametrize("routing,k,renormalize,scale", [("top_k", 1, False, 1.0), ("top_k", 2, True, 1.0),
                                                         ("soft", 1, False, 1.0), ("top_k", 2, False, 2.5)])
def test_ffn_routings_against_naive(routing, k, renormalize, scale):
    config = BamConfig(vocab_size=16, hidden_size=8, intermediate_size=12, num_hidden_layers=1, num_attention_heads=2,
                       num_local_experts=3, num_experts_per_tok=k, router_renormalize=renormalize, ffn_routing=routing,
                       expert_output_scale=scale)
    torch.manual_seed(1)
    model = BamForCausalLM(config)
    moe = model.model.layers[0].block_sparse_moe
    with torch.no_grad():
        moe.gate.weight.normal_(0, 1.0)
    h = torch.randn(2, 5, 8)
    out, logits, r = moe(h)
    expected = naive_moe(h.reshape(-1, 8), moe.gate.weight, moe.experts, routing, k, renormalize, scale)
    assert (out.reshape(-1, 8).double() - expected).abs().max() < 1e-5


def naive_router_losses(logits, routing, k, renormalize):
    """btx, switch, z of one layer in float64 from the definitions."""
    logits = logits.double()
    n, e = logits.shape
    p = torch.softmax(logits, -1)
    if routing == "soft":
        chosen, gates, k = torch.ones_like(p, dtype=torch.bool), p, e
    else:
        order = torch.sort(p, dim=-1, descending=True, stable=True).indices[:, :k]
        chosen = torch.zeros_like(p, dtype=torch.bool).scatter(-1, order, True)
        gates = p * chosen
        if renormalize:
            gates = gates / gates.sum(-1, keepdim=True)
    P, u, f = p.mean(0), gates.mean(0), chosen.double().sum(0) / (n * k)
    return e * (u * P).sum(), e * (f * P).sum(), torch.logsumexp(logits, -1).pow(2).mean()


@pytest.mark.parametrize("aux", ["btx", "switch", "none"])
def test_batch_losses_against_naive(aux):
    """The finetune's objective on one process: LM cross-entropy over scored targets + per layer
    alpha * aux + beta * z, and its gradient equals autograd's on the naive float64 objective."""
    torch.manual_seed(2)
    V, E, L, N = 11, 3, 2, 12
    logits = torch.randn(2, 6, V, requires_grad=True)
    targets = torch.randint(0, V, (2, 6))
    targets[1, 4:] = -1  # padding: not scored, still routed
    router = [torch.randn(N, E, requires_grad=True) for _ in range(L)]
    recipe = read_recipe({"num_local_experts": E, "num_experts_per_tok": 2, "router_renormalize": True}, "bam")
    options = LossOptions(aux, 0.03, 0.002)
    losses = batch_losses(logits, targets, router, [route_ffn(l, "top_k", 2, True) for l in router], recipe, options,
                          reduce_sum=lambda t: t)
    losses.objective.backward()

    lg = logits.detach().double().requires_grad_()
    rl = [r.detach().double().requires_grad_() for r in router]
    lm = torch.nn.functional.cross_entropy(lg.reshape(-1, V), targets.reshape(-1), ignore_index=-1)
    per_layer = [naive_router_losses(r, "top_k", 2, True) for r in rl]
    btx, switch, z = (sum(x[i] for x in per_layer) for i in range(3))
    total = lm + options.aux_coef * {"btx": btx, "switch": switch, "none": 0.0}[aux] + options.z_coef * z
    total.backward()
    assert abs(losses.total - total.item()) < 1e-5
    assert abs(losses.btx - btx.item()) < 1e-5 and abs(losses.switch - switch.item()) < 1e-5 and abs(losses.z - z.item()) < 1e-4
    assert (logits.grad.double() - lg.grad).abs().max() < 1e-6
    for r, n in zip(router, rl):
        assert (r.grad.double() - n.grad).abs().max() < 1e-6
    assert losses.expert_counts.sum().item() == L * N * 2


def test_model_router_losses_match_the_finetune_objective():
    """The model's own `router_losses` output (single process) and the finetune's agree."""
    model = BamForCausalLM.from_pretrained(FIXTURE, config=BamConfig.from_pretrained(FIXTURE), **from_pretrained_kwargs(torch.float32))
    ids = torch.arange(3, 23).view(1, 20)
    out = model(ids, use_cache=False, output_router_logits=True)
    recipe = read_recipe(fixture_config(), "bam")
    routings = [route_ffn(l, recipe.ffn_routing, recipe.top_k, recipe.renormalize) for l in out.router_logits]
    losses = batch_losses(out.logits, ids, list(out.router_logits), routings, recipe, recipe.losses, lambda t: t)
    for k in ("btx", "switch", "z"):
        assert abs(getattr(losses, k) - out.router_losses[k].item()) < 1e-5
