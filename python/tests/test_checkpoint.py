"""A checkpoint written by the package's finetune (two FSDP processes) is read back by bam-mix:
`bam-mix forward` gives the package's logits on it and `bam-mix perplexity` the package's perplexity."""

import json
import math
import os

import numpy as np
import pytest
import torch
import transformers

from conftest import FIXTURES, finetune_command, package_env, run
from bam_mix_torch.compat import from_pretrained_kwargs
from bam_mix_torch.models import TrainableMixture

CASES = ["bam_llama_expert_kv", "btx_llama_mixtral"]


@pytest.mark.parametrize("case", CASES)
def test_bam_mix_reads_the_checkpoint(case, bam_mix, tmp_path):
    d = os.path.join(FIXTURES, "finetune", case)
    out = tmp_path / "ft"
    run(finetune_command(2) + ["--model", os.path.join(d, "model"), "--batches", os.path.join(d, "batches.npy"),
                               "--steps", "2", "--lr", "3e-3", "--warmup", "1", "--out", str(out)], env=package_env())
    ids = list(range(3, 67))
    mixture = TrainableMixture.load(str(out))
    mixture.model.eval()
    with torch.no_grad():
        logits, _ = mixture.forward(torch.tensor([ids]))
    logits = logits[0].numpy()
    theirs = str(tmp_path / "logits.npy")
    run([bam_mix, "forward", "--model", str(out), "--ids", ",".join(map(str, ids)), "--logits-out", theirs])
    assert np.abs(logits - np.load(theirs)).max() <= 1e-4

    # Perplexity over two chunks of 32 tokens, every position after the first scored, no BOS substitution.
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text(" ".join(map(str, ids)))
    p = run([bam_mix, "perplexity", "--model", str(out), "--ids-file", str(ids_file), "--ctx", "32", "--scoring", "full",
             "--no-bos", "--json"])
    result = json.loads(p.stdout)
    nll = []
    for c in range(2):
        chunk = torch.tensor([ids[32 * c : 32 * (c + 1)]])
        with torch.no_grad():
            lg, _ = mixture.forward(chunk)
        nll += torch.nn.functional.cross_entropy(lg[0, :-1], chunk[0, 1:], reduction="none").tolist()
    assert result["tokens_scored"] == len(nll) == 62
    assert abs(result["ppl"] - math.exp(sum(nll) / len(nll))) <= 1e-4 * result["ppl"]

    if mixture.architecture == "bam":
        # The checkpoint carries the model code and auto_map: transformers loads it as it is.
        model = transformers.AutoModelForCausalLM.from_pretrained(str(out), trust_remote_code=True, **from_pretrained_kwargs(torch.float32))
        with torch.no_grad():
            again = model(torch.tensor([ids]), use_cache=False).logits[0].numpy()
        assert np.abs(again - logits).max() <= 1e-5


@pytest.mark.parametrize("first", ["package", "bam-mix"])
def test_either_tool_resumes_the_other(first, bam_mix, tmp_path):
    """Two steps by one tool, then --resume by the other up to five: steps 3-5 are bam-mix's own
    uninterrupted run (the fixture's log) within 1e-4 relative. (The warm-up is 2 steps, so the first two
    learning rates do not depend on --steps.)"""
    d = os.path.join(FIXTURES, "finetune", "bam_llama_expert_kv")
    with open(os.path.join(d, "finetune_args.json")) as f:
        args = json.load(f)
    with open(os.path.join(d, "bam_mix_steps.json")) as f:
        expected = json.load(f)
    assert args[args.index("--steps") + 1] == "5" and args[args.index("--warmup") + 1] == "2"
    two = list(args)
    two[two.index("--steps") + 1] = "2"
    out, log = str(tmp_path / "ft"), str(tmp_path / "log.jsonl")

    def package(flags, log_flags=()):
        run(finetune_command(1) + ["--model", "model", *flags, "--out", out, *log_flags], cwd=d, env=package_env())

    def bam_mix_finetune(flags, log_flags=()):
        run([bam_mix, "finetune", "--model", "model", *flags, "--out", out, *log_flags], cwd=d)

    if first == "package":
        package(two)
        bam_mix_finetune(args + ["--resume", out], ["--log", log])
    else:
        bam_mix_finetune(two)
        package(args + ["--resume", out], ["--log-file", log])
    with open(log) as f:
        steps = [r for r in map(json.loads, f) if r["type"] == "step"]
    assert [r["step"] for r in steps] == [3, 4, 5]
    for ours in steps:
        theirs = expected[ours["step"] - 1]
        for k in ("loss", "lm_loss", "aux_loss", "btx_loss", "switch_loss", "z_loss", "grad_norm", "lr"):
            assert abs(ours[k] - theirs[k]) <= 1e-4 * max(abs(theirs[k]), 1e-3), f"step {ours['step']} {k}: {ours[k]} vs {theirs[k]}"
