"""Given the same batches, the package's finetune optimises what `bam-mix finetune` optimises: five
steps' losses — LM, each router loss and the total — and gradient norms agree within 1e-4 relative.

The fixtures (tools/make_finetune_fixtures.py) hold the mixture, bam-mix's batch dump and its per-step
log; steps 2-5 also check the update (AdamW, schedule, clipping) through the losses it leads to."""

import json
import os

import pytest

from conftest import FIXTURES, finetune_command, package_env, run

ROOT = os.path.join(FIXTURES, "finetune")
CASES = sorted(os.listdir(ROOT))
KEYS = ("loss", "lm_loss", "aux_loss", "btx_loss", "switch_loss", "z_loss", "grad_norm", "lr")


# Every case on one process; one also split over two (FSDP) processes.
@pytest.mark.parametrize("case,nproc", [(c, 1) for c in CASES] + [("bam_llama_expert_kv", 2), ("bam_llama_sample_top1_padded", 2)])
def test_losses_equal_bam_mix(case, nproc, tmp_path):
    d = os.path.join(ROOT, case)
    with open(os.path.join(d, "finetune_args.json")) as f:
        args = json.load(f)
    with open(os.path.join(d, "bam_mix_steps.json")) as f:
        expected = json.load(f)
    log = str(tmp_path / "log.jsonl")
    run(finetune_command(nproc) + ["--model", "model", *args, "--batches", "batches.npy", "--out", str(tmp_path / "ft"),
                                   "--log-file", log], cwd=d, env=package_env())
    with open(log) as f:
        steps = [r for r in map(json.loads, f) if r["type"] == "step"]
    assert len(steps) == len(expected) == 5
    for ours, theirs in zip(steps, expected):
        for k in KEYS:
            a, b = ours[k], theirs[k]
            assert abs(a - b) <= 1e-4 * max(abs(b), 1e-3), f"step {theirs['step']} {k}: package {a}, bam-mix {b}"
