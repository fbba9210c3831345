"""FSDP2 on two CPU processes (gloo) trains exactly what one process trains, and a run resumed from a
checkpoint continues as if never stopped.

What differs between one process and two is the sharding — and the order in which the batch's
gradient is summed (two halves, then across the processes). In float32 that order alone moves a
gradient element near zero (about 4e-9, what is left of terms of order 1e-2 that cancel) by 10-20 %,
and AdamW, which divides by sqrt(v) + 1e-8, turns that into a few percent of the learning rate: after
three steps at bam-mix's default rate (1e-4) the Mixtral fixture's parameters differ by 7e-7 to 2.1e-6
depending on the torch/transformers versions, for no fault of the sharding. So the comparison runs
both sides in float64 (--compute-dtype float64, --dtype f64 to keep the weights unrounded), where the
summation order is worth ~1e-16 relative: measured differences are below 1e-14 (parameters) and 1e-15
(relative, losses) with torch 2.7 / transformers 4.51.1 and torch 2.13 / transformers 5.24, and the
same amplification of a 1e-16 rounding gives a few 1e-14 at most, so the bound is 1e-12. A real
difference shows far above it: with gradients averaged instead of summed (FSDP2's float64 reduction
mistaken for its float32 one) the gradient norms differ by 50 %. The BAM case also runs in float32,
the default, whose rounding stays within 1e-6 there (3e-8)."""

import json
import os

import pytest
from safetensors.torch import load_file

from conftest import FIXTURES, finetune_command, package_env, run

STEPS = 3
# (case, compute dtype, bound on every difference: losses relative, parameters and moments absolute)
COMPARISONS = [
    ("bam_llama_expert_kv", "float64", 1e-12),
    ("btx_llama_mixtral", "float64", 1e-12),
    ("bam_llama_expert_kv", "float32", 1e-6),
]


def finetune(case, out, nproc=1, extra=()):
    d = os.path.join(FIXTURES, "finetune", case)
    cmd = finetune_command(nproc) + ["--model", os.path.join(d, "model"), "--batches", os.path.join(d, "batches.npy"),
                                     "--warmup", "1", "--out", str(out), "--log-file", f"{out}.jsonl", *extra]
    run(cmd, env=package_env())
    with open(f"{out}.jsonl") as f:
        return [r for r in map(json.loads, f) if r["type"] == "step"]


@pytest.mark.parametrize("case,dtype,bound", COMPARISONS)
def test_two_processes_equal_one(case, dtype, bound, tmp_path):
    flags = ["--steps", str(STEPS), "--compute-dtype", dtype, "--dtype", {"float32": "f32", "float64": "f64"}[dtype]]
    one = finetune(case, tmp_path / "one", 1, flags)
    two = finetune(case, tmp_path / "two", 2, flags)
    assert len(one) == len(two) == STEPS
    for a, b in zip(one, two):
        for k in ("loss", "lm_loss", "btx_loss", "switch_loss", "z_loss", "grad_norm"):
            assert abs(a[k] - b[k]) <= bound * max(1.0, abs(a[k])), f"step {a['step']} {k}: {a[k]} vs {b[k]}"
    p1 = load_file(str(tmp_path / "one" / "model.safetensors"))
    p2 = load_file(str(tmp_path / "two" / "model.safetensors"))
    start = load_file(os.path.join(FIXTURES, "finetune", case, "model", "model.safetensors"))
    assert p1.keys() == p2.keys() == start.keys()
    assert {str(t.dtype) for t in p1.values()} == {str(t.dtype) for t in p2.values()} == {f"torch.{dtype}"}
    worst = max((p1[k] - p2[k]).abs().max().item() for k in p1)
    assert worst <= bound, f"largest parameter difference {worst}"
    moved = max((p1[k] - start[k].to(p1[k].dtype)).abs().max().item() for k in p1)
    assert moved > 1e-4, "the parameters did not change: the test would not see a difference"
    # The gathered optimiser state is the same too (what a resumed run continues from).
    s1 = load_file(str(tmp_path / "one" / "training_state.safetensors"))
    s2 = load_file(str(tmp_path / "two" / "training_state.safetensors"))
    assert s1.keys() == s2.keys()
    assert max((s1[k] - s2[k]).abs().max().item() for k in s1) <= bound
    with open(tmp_path / "one" / "training_state.json") as f1, open(tmp_path / "two" / "training_state.json") as f2:
        assert json.load(f1)["parameter_steps"] == json.load(f2)["parameter_steps"]


def test_resume_continues_the_run(tmp_path):
    """2 steps, then --resume for the third, equals 3 steps at once (a constant rate after the warm-up,
    so the two runs' schedules agree; on two processes)."""
    flags = ["--min-lr-fraction", "1"]
    full = finetune("bam_llama_expert_kv", tmp_path / "full", 2, ["--steps", "3", *flags])
    finetune("bam_llama_expert_kv", tmp_path / "part", 2, ["--steps", "2", *flags])
    resumed = finetune("bam_llama_expert_kv", tmp_path / "part", 2, ["--steps", "3", "--resume", str(tmp_path / "part"), *flags])
    assert resumed[-1]["step"] == 3
    assert abs(resumed[-1]["loss"] - full[-1]["loss"]) <= 1e-6
    a = load_file(str(tmp_path / "full" / "model.safetensors"))
    b = load_file(str(tmp_path / "part" / "model.safetensors"))
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-6
    with open(tmp_path / "part" / "training_state.json") as f:
        state = json.load(f)
    assert state["step"] == 3 and state["weights_dtype"] == "F32"
