#!/usr/bin/env python3
"""Decode speed of bam-mix against llama.cpp's llama-bench tg128 on the same model, per weight type.

The 58M-parameter Llama shape of issue 2 (random f32 weights, a 32k byte-level BPE tokenizer; made
as tools/bench_perplexity_peers.py makes it) is converted by `bam-mix convert` to a GGUF per type
(F32, BF16, Q8_0). Then, for each type:

  llama.cpp  llama-bench -m MODEL-TYPE.gguf -t 2 -p 0 -n 128 (tg128: 128 tokens generated, tok/s)
  bam-mix    BamBench decode --model DIR --weights TYPE --tokens 128 (the same decode loop as
             `bam-mix generate`: one token at a time with the KV cache; f32 checkpoint converted at
             load by --weights), with the bandwidth floor of the same weights read once by the same
             kernels, and the kernel family in use

and prints bam-mix's tokens/s over llama.cpp's (issue 15's target: >= 1.0 at each type). Run by
hand, not in CI; the machines are shared and noisy, so numbers vary by 10-20 % between runs:

    tools/setup-peers   # once: llama.cpp under ${XDG_CACHE_HOME:-~/.cache}/bam-mix-peers
    swift build -c release --product bam-mix --product BamBench
    ~/.cache/bam-mix-peers/venv/bin/python tools/bench_decode.py [--llama-bench PATH] [--types f32,bf16,q8_0]
        [--model DIR]   # another HF Llama directory (with tokenizer.json) instead of the 58M Llama
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "bam-mix-peers")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-bench", default=os.path.join(PEERS, "llama.cpp", "build", "bin", "llama-bench"))
    ap.add_argument("--model", help="HF model directory (default: the 58M Llama with a 32k tokenizer)")
    ap.add_argument("--types", default="f32,bf16,q8_0")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "bam-mix-bench"))
    args = ap.parse_args()

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    from bench_perplexity_peers import ensure_model  # noqa: E402  (same model as the perplexity benchmark)
    model = ensure_model(work, args.model)
    bam = str(ROOT / ".build/release/bam-mix")
    bench = str(ROOT / ".build/release/BamBench")
    env = dict(os.environ, BAM_MIX_THREADS=str(args.threads))

    rows = []
    for t in args.types.split(","):
        gguf = work / f"{model.name}-{t}.gguf"
        if not gguf.exists():
            sh([bam, "convert", "--input", str(model), "--output", str(gguf), "--dtype", t])
        lb = sh([args.llama_bench, "-m", str(gguf), "-t", str(args.threads), "-p", "0", "-n", str(args.tokens), "-o", "json"])
        theirs = json.loads(lb.stdout)[0]["avg_ts"]
        out = sh([bench, "decode", "--model", str(model), "--weights", t, "--tokens", str(args.tokens)], env=env).stdout
        if not rows:
            print(out.splitlines()[0])   # the kernel family and CPU flags
        line = next(l for l in out.splitlines() if l.strip().startswith("--weights"))
        ours = float(re.search(r"([\d.]+) tok/s", line).group(1))
        floor = float(re.search(r"floor\s+([\d.]+) ms", line).group(1))
        rows.append((t, ours, theirs, floor, line.strip()))

    print(f"\ndecode, {args.tokens} tokens, {args.threads} threads: bam-mix vs llama-bench tg{args.tokens} (target >= 1.0x)")
    print(f"  {'type':6} {'bam-mix tok/s':>14} {'llama.cpp tok/s':>16} {'ratio':>7} {'floor tok/s':>12}")
    for t, ours, theirs, floor, _ in rows:
        print(f"  {t:6} {ours:14.1f} {theirs:16.1f} {ours / theirs:6.2f}x {1000 / floor:12.1f}")
    for *_, line in rows:
        print("  " + line)


if __name__ == "__main__":
    main()
