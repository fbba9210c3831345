#!/usr/bin/env python3
"""Wall time of a finetuning step on 2 FSDP processes next to the same step on 1 process.

    python tools/bench_fsdp.py [--model DIR] [--batch 8] [--seq 64] [--steps 6]
    (run with a Python that has the package's dependencies, e.g. the venv of tools/test-python)

Both runs train the same random token batches (a batch dump) with bam_mix_torch.finetune on the CPU:
one process with as many threads as there are cores, then `torchrun --nproc_per_node=2` (gloo,
FSDP2) with cores / 2 threads each, so both use the whole machine. Prints the median step time of
each (the first step, which warms up, is left out) and their ratio: on one machine the second
process brings no extra compute, so the ratio is the price of the collectives and sharding at this
size — not a GPU figure. The default model is the BAM fixture of python/tests.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.join(HERE, "..")
DEFAULT_MODEL = os.path.join(REPO, "Tests", "Fixtures", "finetune", "bam_llama_expert_kv", "model")


def run(model, dump, steps, nproc, threads, out):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=os.path.join(REPO, "python"))
    log = out + ".jsonl"
    launcher = [sys.executable, "-m", "bam_mix_torch.finetune"] if nproc == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "-m", "bam_mix_torch.finetune"]
    subprocess.run(launcher + ["--device", "cpu", "--model", model, "--batches", dump, "--steps", str(steps), "--out", out,
                               "--log-file", log, "--no-final-state"], check=True, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    with open(log) as f:
        return [r["seconds"] for r in map(json.loads, f) if r["type"] == "step"]


def main():
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=64)
    p.add_argument("--steps", type=int, default=6)
    args = p.parse_args()
    with open(os.path.join(args.model, "config.json")) as f:
        vocab = json.load(f)["vocab_size"]
    cores = os.cpu_count() or 2
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        tokens = rng.integers(0, vocab, size=(args.steps, 1, args.batch, args.seq + 1))
        dump = np.stack([tokens[..., :-1], tokens[..., 1:]], axis=2).astype(np.int32)
        path = os.path.join(tmp, "batches.npy")
        np.save(path, dump)
        one = run(args.model, path, args.steps, 1, cores, os.path.join(tmp, "one"))[1:]
        two = run(args.model, path, args.steps, 2, max(1, cores // 2), os.path.join(tmp, "two"))[1:]
    m1, m2 = statistics.median(one), statistics.median(two)
    print(f"model {os.path.relpath(args.model)}, batch {args.batch} x {args.seq} tokens, {cores} cores, median of {len(one)} steps")
    print(f"  1 process,  {cores} threads:          {m1 * 1000:8.1f} ms/step")
    print(f"  2 processes (FSDP2, gloo), {max(1, cores // 2)} each: {m2 * 1000:8.1f} ms/step  ({m2 / m1:.2f}x the single process)")


if __name__ == "__main__":
    main()
