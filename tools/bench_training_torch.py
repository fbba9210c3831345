#!/usr/bin/env python3
"""Times PyTorch's CPU training step on the 58M-parameter dense Llama and bam-mix's side by side.

    tools/setup-peers   # once: torch and transformers in the peers' venv (this script runs itself under it)
    python3 tools/bench_training_torch.py [--model DIR] [--steps N] [--batch 4] [--seq 256]
                                        [--bench .build/release/BamBench] [--rounds R]

The model is the safetensors directory `BamBench train` uses (created by `BamBench make-model llama58m DIR`
when missing; default $BAM_MIX_BENCH_DIR/llama58m, or bam-mix-bench/llama58m in the temporary directory). PyTorch's step is what a
plain training loop does: LlamaForCausalLM from that directory in float32 (SDPA attention, transformers'
default), torch.set_num_threads(2), next-token cross-entropy over B x T random tokens, backward,
clip_grad_norm_(1.0), torch.optim.AdamW (weight decay 0.1 except norms; foreach implementation). bam-mix's
step is `BamBench train --json` on the same files: forward, backward, the same clipping and AdamW.
The two run alternately (R rounds, each N timed steps after one warm-up step) so that load from other
processes hits both alike; the median and the best step of each are reported, with the ratios
PyTorch / bam-mix (> 1 means bam-mix is faster). On a loaded machine PyTorch's OpenMP threads suffer
more than bam-mix's, so the best-step ratio is the conservative one.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The peers (the tools compared against) live outside the checkout, where tools/setup-peers installs them.
import peers  # noqa: E402

peers.require("torch", "transformers")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import transformers  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def torch_steps(model_dir, steps, batch, seq, threads):
    torch.set_num_threads(threads)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.train()
    vocab = model.config.vocab_size
    decay = [p for n, p in model.named_parameters() if "norm" not in n and not n.endswith(".bias")]
    no_decay = [p for n, p in model.named_parameters() if "norm" in n or n.endswith(".bias")]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.95), eps=1e-8)
    g = torch.Generator().manual_seed(42)
    times, loss = [], None
    for step in range(steps + 1):
        tokens = torch.randint(0, vocab, (batch, seq + 1), generator=g)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        logits = model(tokens[:, :-1]).logits
        loss = F.cross_entropy(logits.reshape(-1, vocab), tokens[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        elapsed = time.perf_counter() - t0
        if step > 0:  # step 0 warms up (allocations, thread pools)
            times.append(elapsed)
    return times, float(loss.detach())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    base = os.environ.get("BAM_MIX_BENCH_DIR", os.path.join(tempfile.gettempdir(), "bam-mix-bench"))
    ap.add_argument("--model", default=os.path.join(base, "llama58m"))
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bench", default=os.path.join(HERE, "..", ".build", "release", "BamBench"))
    args = ap.parse_args()
    if not os.path.exists(os.path.join(args.model, "config.json")):
        subprocess.run([args.bench, "make-model", "llama58m", args.model], check=True)
    env = dict(os.environ, BAM_MIX_THREADS=str(args.threads))
    ours, theirs, our_best, their_best, our_runs = [], [], [], [], []
    for r in range(args.rounds):
        out = subprocess.run([args.bench, "train", "--json", "--model", args.model, "--steps", str(args.steps),
                              "--batch", str(args.batch), "--seq", str(args.seq)],
                             check=True, capture_output=True, text=True, env=env).stdout
        run = json.loads(out.strip().splitlines()[-1])
        our_runs.append(run)
        ours.append(run["seconds_per_step"])
        our_best.append(run["best_step"])
        times, loss = torch_steps(args.model, args.steps, args.batch, args.seq, args.threads)
        theirs.append(statistics.median(times))
        their_best.append(min(times))
        print(f"round {r + 1}: bam-mix {ours[-1]:.3f} s/step (loss {run['loss']:.4f}), "
              f"PyTorch {theirs[-1]:.3f} s/step (loss {loss:.4f})", flush=True)
    a, b = statistics.median(ours), statistics.median(theirs)
    a_best, b_best = min(our_best), min(their_best)
    last = our_runs[-1]
    tokens = args.batch * args.seq
    print(f"training step, 58M dense Llama, batch {args.batch} x {args.seq}, float32, {args.threads} threads "
          f"(torch {torch.__version__}, transformers {transformers.__version__}; bam-mix OpenBLAS kernels: see BamBench train)")
    print(f"  bam-mix   median {a:.3f} s/step  {tokens / a:7.0f} tokens/s   best {a_best:.3f} s  (forward {last['forward']:.3f}, "
          f"backward {last['backward']:.3f}, clip + AdamW {last['optimizer']:.3f}; memory {last['memory_bytes'] / 1e6:.0f} MB, "
          f"peak RSS {last['peak_rss'] / 1e6:.0f} MB)")
    print(f"  PyTorch   median {b:.3f} s/step  {tokens / b:7.0f} tokens/s   best {b_best:.3f} s")
    print(f"  ratio PyTorch / bam-mix step time = {b / a:.2f}x median, {b_best / a_best:.2f}x best step (target >= 1.0)")


if __name__ == "__main__":
    sys.exit(main())
