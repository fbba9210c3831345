"""--compute-dtype float64 computes in float64: parameters, activations, losses, gradients and AdamW
moments are float64, and for BAM nothing on the way rounds to float32 — the objective's directional
derivative from autograd equals a central difference to float64 precision, which float32 arithmetic
anywhere in the forward would spoil by orders of magnitude (the check is run on the float32 model
too, to show it tells the two apart). A float64 checkpoint (--dtype f64) keeps the weights unrounded
and bam-mix reads it.

Mixtral runs through transformers' own model code, which computes its norms, attention and router
softmaxes and RoPE angles in float32 token by token whatever the model's dtype; for it the test
checks the dtypes only (docs/distributed.md, "Compute dtype")."""

import json
import os

import numpy as np
import pytest
import torch
from safetensors import safe_open

from conftest import FIXTURES, finetune_command, package_env, run
from bam_mix_torch.data import BatchDump, token_mask
from bam_mix_torch.distributed import Processes
from bam_mix_torch.finetune import Finetune, parse_arguments
from bam_mix_torch.losses import batch_losses
from bam_mix_torch.models import TrainableMixture

ROOT = os.path.join(FIXTURES, "finetune")
CASES = ["bam_llama_expert_kv", "btx_llama_mixtral"]


def first_micro_batch(case):
    inputs, targets = BatchDump.load(os.path.join(ROOT, case, "batches.npy")).micro_batches(0)[0]
    return torch.as_tensor(inputs), torch.as_tensor(targets), torch.as_tensor(token_mask(targets))


def objective(mixture, x, y, mask):
    """The finetune's objective of one micro-batch on one process, with the logits and router logits."""
    logits, router_logits, routings = mixture.forward_routed(x, mask)
    losses = batch_losses(logits, y, router_logits, routings, mixture.recipe, mixture.recipe.losses, lambda t: t.cpu(),
                          token_mask=mask)
    return losses.objective, logits, router_logits


@pytest.mark.parametrize("case", CASES)
def test_float64_run_holds_float64_everywhere(case, tmp_path):
    """One step of the finetune with --compute-dtype float64: parameters, logits, router logits,
    objective, gradients and AdamW moments are float64 (float32 by default)."""
    for name, dtype in (("float64", torch.float64), ("float32", torch.float32)):
        args = parse_arguments(["--model", os.path.join(ROOT, case, "model"), "--batches", os.path.join(ROOT, case, "batches.npy"),
                                "--steps", "1", "--compute-dtype", name, "--out", str(tmp_path / name), "--device", "cpu"])
        ft = Finetune(args, Processes.start("cpu"))
        assert {p.dtype for p in ft.mixture.model.parameters()} == {dtype}
        x, y, mask = first_micro_batch(case)
        value, logits, router_logits = objective(ft.mixture, x, y, mask)
        assert (value.dtype, logits.dtype) == (dtype, dtype)
        assert {r.dtype for r in router_logits} == {dtype}
        value.backward()
        assert {p.grad.dtype for p in ft.mixture.model.parameters() if p.grad is not None} == {dtype}
        for p in ft.mixture.model.parameters():
            p.grad = None
        ft.train_step(ft.next_batches())
        assert {m.dtype for m in ft.optimizer.m + ft.optimizer.v} == {dtype}
        assert {p.dtype for p in ft.mixture.model.parameters()} == {dtype}


def directional_derivative_error(case, dtype, h=1e-6):
    """|autograd's derivative of the objective along a random direction - the central difference with
    step h| and the derivative. The difference's truncation error is O(h^2) (~2e-9 here); rounding adds
    about (rounding of the objective) / h: ~1e-10 in float64, ~1e-1 in float32."""
    mixture = TrainableMixture.load(os.path.join(ROOT, case, "model"), dtype)
    x, y, mask = first_micro_batch(case)
    params = list(mixture.model.parameters())
    g = torch.Generator().manual_seed(0)
    direction = [torch.randn(p.shape, generator=g, dtype=torch.float64).to(dtype) for p in params]
    value, _, _ = objective(mixture, x, y, mask)
    value.backward()
    derivative = sum((p.grad.double() * d.double()).sum() for p, d in zip(params, direction)).item()
    values = []
    with torch.no_grad():
        for step in (h, -h):
            for p, d in zip(params, direction):
                p.add_(d, alpha=step)
            values.append(objective(mixture, x, y, mask)[0].item())
            for p, d in zip(params, direction):
                p.sub_(d, alpha=step)
    return abs((values[0] - values[1]) / (2 * h) - derivative), derivative


def test_bam_float64_has_float64_precision():
    error, derivative = directional_derivative_error("bam_llama_expert_kv", torch.float64)
    assert abs(derivative) > 0.1, "a direction along which the objective hardly changes would prove nothing"
    assert error <= 1e-8 * abs(derivative), f"float64: the central difference is off by {error} (derivative {derivative})"
    float32_error, _ = directional_derivative_error("bam_llama_expert_kv", torch.float32)
    assert float32_error > 1e3 * error, f"float32 gives {float32_error}, float64 {error}: the check would not see float32 arithmetic"


def test_float64_checkpoint_is_unrounded_and_bam_mix_reads_it(bam_mix, tmp_path):
    """--compute-dtype float64 --dtype f64: float64 weights and moments, config dtype float64, weights
    dtype F64 in the training state; `bam-mix forward` gives the package's logits on it."""
    d = os.path.join(ROOT, "bam_llama_expert_kv")
    out = tmp_path / "ft"
    run(finetune_command(1) + ["--model", os.path.join(d, "model"), "--batches", os.path.join(d, "batches.npy"), "--steps", "1",
                               "--lr", "3e-3", "--warmup", "1", "--compute-dtype", "float64", "--dtype", "f64", "--out", str(out)],
        env=package_env())
    for name in ("model.safetensors", "training_state.safetensors"):
        with safe_open(str(out / name), "pt") as f:
            assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F64"}, name
    with open(out / "config.json") as f:
        assert json.load(f)["dtype"] == "float64"
    with open(out / "training_state.json") as f:
        assert json.load(f)["weights_dtype"] == "F64"

    ids = list(range(3, 35))
    mixture = TrainableMixture.load(str(out), torch.float64)
    mixture.model.eval()
    with torch.no_grad():
        ours = mixture.forward(torch.tensor([ids]))[0][0].numpy()
    theirs = str(tmp_path / "logits.npy")
    run([bam_mix, "forward", "--model", str(out), "--ids", ",".join(map(str, ids)), "--logits-out", theirs])
    assert np.abs(ours - np.load(theirs)).max() <= 1e-4
