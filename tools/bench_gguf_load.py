#!/usr/bin/env python3
"""Load time of a ~100 MB Q4_K_M GGUF: bam-mix (open, load, first forward) against
llama.cpp's own load of the same file, measured in the same run (issue 14's target: bam-mix no
slower than 2x llama.cpp).

    ~/.cache/bam-mix-peers/venv/bin/python tools/bench_gguf_load.py [--llama-cpp DIR] [--bam-bench PATH]
        [--model X.gguf] [--repeats 3] [--workdir DIR]

Without --model it writes a random Llama (hidden 1024, 12 layers, FFN 2816, vocab 8000: 170M
parameters) as an F16 GGUF with gguf-py, with a Llama-style vocabulary so that llama.cpp loads it,
and quantises it with `llama-quantize ... Q4_K_M` (about 100 MB). Then, best of --repeats, with the
file in the page cache for both:

  llama.cpp  `llama-perplexity -m X -c 64 --chunks 1 --perf -lv 4` : its reported `load time` (model load,
             context creation and warm-up; llama.cpp maps the file and computes on the blocks
             directly) and the process's wall time;
  bam-mix    `BamBench gguf-load --model X --json` : open (header, config, tokenizer), load (the weights
             kept in their stored types, as `perplexity` loads them) and the first forward of 8 tokens, in-process.

Needs a release build of BamBench (`swift build -c release --product BamBench`). The machine should
be quiet: on a shared one, say so beside the numbers.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402  (tools/peers.py: llama_env)

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LLAMA = Path.home() / ".cache" / "bam-mix-peers" / "llama.cpp"


def write_random_llama(path, hidden=1024, layers=12, ffn=2816, vocab=8000, heads=16):
    import gguf
    rng = np.random.default_rng(0)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("bench-llama-170m")
    w.add_context_length(2048)
    w.add_embedding_length(hidden)
    w.add_block_count(layers)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(heads)
    w.add_rope_dimension_count(hidden // heads)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    # A SentencePiece-style vocabulary: specials, the 256 byte tokens, then filler pieces.
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    tokens += [f"▁t{i}" for i in range(vocab - len(tokens))]
    types = [2, 3, 3] + [6] * 256 + [1] * (vocab - 259)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * 259 + [-float(i) for i in range(vocab - 259)])
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)

    def mat(rows, cols):
        return (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02).astype(np.float16)

    w.add_tensor("token_embd.weight", mat(vocab, hidden))
    w.add_tensor("output_norm.weight", np.ones(hidden, dtype=np.float32))
    w.add_tensor("output.weight", mat(vocab, hidden))
    for l in range(layers):
        w.add_tensor(f"blk.{l}.attn_norm.weight", np.ones(hidden, dtype=np.float32))
        w.add_tensor(f"blk.{l}.ffn_norm.weight", np.ones(hidden, dtype=np.float32))
        for n in ["attn_q", "attn_k", "attn_v", "attn_output"]:
            w.add_tensor(f"blk.{l}.{n}.weight", mat(hidden, hidden))
        w.add_tensor(f"blk.{l}.ffn_gate.weight", mat(ffn, hidden))
        w.add_tensor(f"blk.{l}.ffn_up.weight", mat(ffn, hidden))
        w.add_tensor(f"blk.{l}.ffn_down.weight", mat(hidden, ffn))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def llama_load(bin_dir, model, text, threads):
    start = time.time()
    # --perf and log verbosity 4: recent llama.cpp prints its timings (llama_perf_context_print's
    # "load time") only when asked to, and filters libllama's info lines below that verbosity.
    p = subprocess.run([bin_dir / "llama-perplexity", "-m", model, "-f", text, "-c", "64", "--chunks", "1",
                        "-t", str(threads), "--perf", "-lv", "4"], capture_output=True, text=True,
                       env=peers.llama_env())
    wall = time.time() - start
    out = p.stdout + p.stderr
    m = re.search(r"load time\s*=\s*([0-9.]+) ms", out)
    if p.returncode != 0 or not m:
        sys.exit(f"llama-perplexity failed (exit {p.returncode}):\n{out[-3000:]}")
    return float(m.group(1)) / 1000, wall


def bam_load(bench, model):
    start = time.time()
    p = subprocess.run([bench, "gguf-load", "--model", model, "--json"], capture_output=True, text=True)
    wall = time.time() - start
    if p.returncode != 0:
        sys.exit(f"BamBench gguf-load failed:\n{p.stderr[-3000:]}")
    r = json.loads(p.stdout.strip().splitlines()[-1])
    r["wall_s"] = wall
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-cpp", default=str(DEFAULT_LLAMA))
    ap.add_argument("--bam-bench", default=str(ROOT / ".build" / "release" / "BamBench"))
    ap.add_argument("--model", help="a Q4_K_M GGUF (default: make a ~100 MB one)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workdir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "bam-mix-gguf-load"))
    args = ap.parse_args()
    bin_dir = Path(args.llama_cpp) / "build" / "bin"
    for tool in ["llama-perplexity", "llama-quantize"]:
        if not os.access(bin_dir / tool, os.X_OK):
            sys.exit(f"{bin_dir / tool} not found: build llama.cpp and pass --llama-cpp DIR")
    if not os.access(args.bam_bench, os.X_OK):
        sys.exit(f"{args.bam_bench} not found: swift build -c release --product BamBench")
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    model = Path(args.model) if args.model else work / "llama170m.Q4_K_M.gguf"
    if not model.exists():
        f16 = work / "llama170m.f16.gguf"
        if not f16.exists():
            print(f"writing {f16} ...", file=sys.stderr)
            write_random_llama(f16)
        subprocess.run([bin_dir / "llama-quantize", f16, model, "Q4_K_M"], check=True, capture_output=True)
        f16.unlink()
    text = work / "text.txt"
    text.write_text(" ".join(f"word{i % 97} and more text {i}" for i in range(400)))
    model.read_bytes()  # into the page cache for both

    llama_runs = [llama_load(bin_dir, model, text, args.threads) for _ in range(args.repeats)]
    bam_runs = [bam_load(args.bam_bench, model) for _ in range(args.repeats)]
    ll = min(r[0] for r in llama_runs)
    lw = min(r[1] for r in llama_runs)
    bo = min(r["open_s"] for r in bam_runs)
    bl = min(r["load_s"] + r["open_s"] for r in bam_runs)
    bf = min(r["load_s"] + r["open_s"] + r["first_forward_s"] for r in bam_runs)
    bw = min(r["wall_s"] for r in bam_runs)
    rss = max(r["peak_rss_bytes"] for r in bam_runs)
    print(f"{model}: {model.stat().st_size / 1e6:.1f} MB, best of {args.repeats}, {args.threads} threads, file in the page cache")
    print(f"  llama.cpp load time (llama-perplexity's)        {ll:7.3f} s   (process wall incl. one 64-token chunk {lw:.3f} s)")
    print(f"  bam-mix open                                   {bo:7.3f} s")
    print(f"  bam-mix open + load (weights in stored types)   {bl:7.3f} s   -> {bl / ll:.2f}x llama.cpp's load")
    print(f"  bam-mix open + load + first forward (8 tokens) {bf:7.3f} s   -> {bf / ll:.2f}x llama.cpp's load (target <= 2)")
    print(f"  bam-mix process wall                            {bw:7.3f} s;  peak RSS {rss / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
