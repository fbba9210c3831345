"""FSDP2 on two CPU processes (gloo) trains exactly what one process trains, and a run resumed from a
checkpoint continues as if never stopped.

At bam-mix's default learning rate (1e-4). The two runs' gradients differ by float32 rounding only
(~1e-7 relative: the processes sum their halves of the batch in another order), but AdamW divides by
sqrt(v) + 1e-8, so a gradient element within a few eps of zero turns that rounding into an update
difference of a fraction of the learning rate: measured here 3e-8 (BAM) and 7e-7 (Mixtral) after
three steps, 20x more at lr 3e-3."""

import json
import os

import pytest
from safetensors.torch import load_file

from conftest import FIXTURES, finetune_command, package_env, run

CASES = ["bam_llama_expert_kv", "btx_llama_mixtral"]
STEPS = 3


def finetune(case, out, nproc=1, extra=()):
    d = os.path.join(FIXTURES, "finetune", case)
    cmd = finetune_command(nproc) + ["--model", os.path.join(d, "model"), "--batches", os.path.join(d, "batches.npy"),
                                     "--warmup", "1", "--out", str(out), "--log-file", f"{out}.jsonl", *extra]
    run(cmd, env=package_env())
    with open(f"{out}.jsonl") as f:
        return [r for r in map(json.loads, f) if r["type"] == "step"]


@pytest.mark.parametrize("case", CASES)
def test_two_processes_equal_one(case, tmp_path):
    one = finetune(case, tmp_path / "one", 1, ["--steps", str(STEPS)])
    two = finetune(case, tmp_path / "two", 2, ["--steps", str(STEPS)])
    for a, b in zip(one, two):
        for k in ("loss", "lm_loss", "btx_loss", "switch_loss", "z_loss", "grad_norm"):
            assert abs(a[k] - b[k]) <= 1e-6 * max(1.0, abs(a[k])), f"step {a['step']} {k}: {a[k]} vs {b[k]}"
    p1 = load_file(str(tmp_path / "one" / "model.safetensors"))
    p2 = load_file(str(tmp_path / "two" / "model.safetensors"))
    start = load_file(os.path.join(FIXTURES, "finetune", case, "model", "model.safetensors"))
    assert p1.keys() == p2.keys() == start.keys()
    worst = max((p1[k] - p2[k]).abs().max().item() for k in p1)
    assert worst <= 1e-6, f"largest parameter difference {worst}"
    moved = max((p1[k] - start[k]).abs().max().item() for k in p1)
    assert moved > 1e-4, "the parameters did not change: the test would not see a difference"
    # The gathered optimiser state is the same too (what a resumed run continues from).
    s1 = load_file(str(tmp_path / "one" / "training_state.safetensors"))
    s2 = load_file(str(tmp_path / "two" / "training_state.safetensors"))
    assert s1.keys() == s2.keys()
    assert max((s1[k] - s2[k]).abs().max().item() for k in s1) <= 1e-6
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
    assert state["step"] == 3 and state["weights_dtype"] == "f32"
