#!/usr/bin/env python3
"""bam-mix perplexity against llama.cpp's llama-perplexity and PyTorch on the same model and text.

The 58M-parameter Llama shape of issue 2 (hidden 512, 8 layers, 8 heads, FFN 1408, vocab 32000,
random f32 weights) gets a 32k byte-level BPE tokenizer trained on generated text, then:

  bam-mix  perplexity --ctx 512 (half scoring, llama.cpp's) -> seconds per 512-token pass, PPL
  llama.cpp llama-perplexity -c 512 -b 512 -t 2 on `bam-mix convert`'s f32 GGUF -> s/pass, PPL
  PyTorch  transformers LlamaForCausalLM, float32, torch.set_num_threads(2), one forward per chunk

The runs are interleaved `--rounds` times and the best of each is kept (the machines are noisy).
Run by hand, not in CI:

    tools/setup-peers   # once: torch, transformers, tokenizers, llama.cpp under ${XDG_CACHE_HOME:-~/.cache}/bam-mix-peers
    swift build -c release --product bam-mix && swift build -c release --product BamBench
    python3 tools/bench_perplexity_peers.py [--llama-perplexity PATH] [--chunks 8] [--rounds 3]
        [--model DIR]   # another HF model directory (with a tokenizer.json) instead of the 58M Llama

Run with any python: it runs itself again under the peers' venv when this one lacks tokenizers,
torch or transformers; PyTorch is skipped when missing, llama.cpp when its program is. `tools/bench
perplexity` runs it. Prints seconds per pass for each tool, bam-mix's time over llama.cpp's (target <= 0.9) and over
PyTorch's, and the relative PPL difference to llama.cpp (target < 0.1 %).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
# The peers (the tools compared against) live outside the checkout, where tools/setup-peers installs them.
import peers  # noqa: E402

peers.require("tokenizers", optional=("torch", "transformers"))


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def ensure_model(work: Path, model_arg):
    if model_arg:
        return Path(model_arg)
    target = work / "llama58m-tok"
    if (target / "tokenizer.json").exists():
        return target
    base = work / "llama58m"
    if not (base / "config.json").exists():
        sh([str(ROOT / ".build/release/BamBench"), "make-model", "llama58m", str(base), "--seed", "1"])
    shutil.copytree(base, target, dirs_exist_ok=True)
    # The tokenizer benchmark's 32k byte-level BPE (GPT-2 style) and its generated text.
    from bench_tokenizer import prepare  # noqa
    tok_path, _ = prepare(work, 32000, 1.0)
    shutil.copy(tok_path, target / "tokenizer.json")
    return target


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-perplexity", default=str(peers.llama_tool("llama-perplexity")))
    ap.add_argument("--chunks", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--model")
    ap.add_argument("--workdir", default=os.environ.get("BAM_MIX_BENCH_DIR", os.path.join(tempfile.gettempdir(), "bam-mix-bench")))
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    bam = str(ROOT / ".build/release/bam-mix")
    model = ensure_model(work, args.model)

    from bench_tokenizer import prepare  # noqa
    _, text_path = prepare(work, 32000, 1.0)   # ~1 MB of generated text: far more than the chunks need

    results = {"bam-mix": [], "llama.cpp": [], "pytorch": []}
    ppl = {}
    gguf = work / (model.name + "-f32.gguf")
    have_llama = Path(args.llama_perplexity).exists()
    if have_llama and not gguf.exists():
        sh([bam, "convert", "--input", str(model), "--output", str(gguf), "--dtype", "f32"])

    try:
        import torch
        import transformers
        torch.set_num_threads(2)
        hf = transformers.AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
        hf.eval()
        from tokenizers import Tokenizer
        ids = Tokenizer.from_file(str(model / "tokenizer.json")).encode(text_path.read_text()).ids
    except ImportError:
        hf = None

    for r in range(args.rounds):
        out = sh([bam, "perplexity", "--model", str(model), "--text-file", str(text_path), "--ctx", "512",
                  "--chunks", str(args.chunks), "--json"]).stdout
        j = json.loads(out)
        results["bam-mix"].append(j["seconds"] / j["chunks"])
        ppl["bam-mix"] = j["ppl"]
        if have_llama:
            p = subprocess.run([args.llama_perplexity, "-m", str(gguf), "-f", str(text_path), "-c", "512", "-b", "512",
                                "-t", "2", "--chunks", str(args.chunks)], text=True, capture_output=True,
                               env=peers.llama_env())
            log = p.stdout + p.stderr
            m = re.search(r"([\d.]+) seconds per pass", log)
            f = re.search(r"Final estimate: PPL = ([\d.]+)", log)
            if m and f:
                # llama-perplexity evaluates n_batch / n_ctx sequences per pass; with -b 512 that is one chunk.
                results["llama.cpp"].append(float(m.group(1)))
                ppl["llama.cpp"] = float(f.group(1))
            else:
                print(log[-2000:], file=sys.stderr)
        if hf is not None:
            with torch.inference_mode():
                chunks = [ids[i * 512:(i + 1) * 512] for i in range(args.chunks)]
                t0 = time.perf_counter()
                for c in chunks:
                    hf(torch.tensor([c]), logits_to_keep=257)
                results["pytorch"].append((time.perf_counter() - t0) / len(chunks))

    print(f"model {model}, ctx 512, {args.chunks} chunks, best of {args.rounds} rounds, 2 threads")
    best = {k: min(v) for k, v in results.items() if v}
    for k, v in best.items():
        print(f"  {k:10s} {v:.3f} s per 512-token pass" + (f"   PPL {ppl[k]:.4f}" if k in ppl else ""))
    if "llama.cpp" in best:
        print(f"  bam-mix / llama.cpp time = {best['bam-mix'] / best['llama.cpp']:.2f}x (target <= 0.9)")
        print(f"  PPL relative difference  = {abs(ppl['bam-mix'] - ppl['llama.cpp']) / ppl['llama.cpp'] * 100:.4f} % (target < 0.1 %)")
    if "pytorch" in best:
        print(f"  bam-mix / PyTorch time   = {best['bam-mix'] / best['pytorch']:.2f}x")


if __name__ == "__main__":
    main()
