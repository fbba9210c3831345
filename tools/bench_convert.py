#!/usr/bin/env python3
"""Conversion throughput: `bam-mix convert` HF -> GGUF (f32) on the 58M Llama shape, against a plain
file copy of the same bytes (cp, in the same run) and against llama.cpp's Python converter
(convert_hf_to_gguf.py) when its source tree is available.

Run by hand, not in CI (`tools/bench convert` runs it):

    tools/setup-peers   # once: the peers (llama.cpp's tree, a venv with its converter's packages)
    swift build -c release --product bam-mix && swift build -c release --product BamBench
    python3 tools/bench_convert.py [--llama-cpp DIR] [--rounds 3]

DIR is a llama.cpp source tree (default: the one tools/setup-peers installs under
${XDG_CACHE_HOME:-~/.cache}/bam-mix-peers/llama.cpp); its converter needs numpy, torch, sentencepiece and
transformers (the peers' venv unless this python has them, or --python) plus its own gguf-py (added
to PYTHONPATH here). Targets: bam-mix's throughput >= 0.5x the copy's, and
>= 3x llama.cpp's converter.
"""
import argparse
import os
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


def timed(cmd, env=None):
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-cpp", default=str(peers.LLAMA_CPP))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workdir", default=os.environ.get("BAM_MIX_BENCH_DIR", os.path.join(tempfile.gettempdir(), "bam-mix-bench")))
    ap.add_argument("--python", default=peers.python_with("torch", "transformers", "sentencepiece"),
                    help="Python with torch/transformers for llama.cpp's converter (default: this one if it has them, else the peers' venv)")
    args = ap.parse_args()
    work = Path(args.workdir)
    model = work / "llama58m-tok"
    if not (model / "tokenizer.json").exists():
        # The 58M model with its 32k tokenizer, made as tools/bench_perplexity_peers.py makes it.
        from bench_perplexity_peers import ensure_model  # noqa: E402  (needs tokenizers: may rerun this under the peers' venv)
        work.mkdir(parents=True, exist_ok=True)
        model = ensure_model(work, None)
    weights = model / "model.safetensors"
    size = weights.stat().st_size
    bam = str(ROOT / ".build/release/bam-mix")
    out = work / "convert-bench.gguf"
    copy = work / "convert-bench.copy"
    ours, cps, syncs, theirs = [], [], [], []
    conv = Path(args.llama_cpp) / "convert_hf_to_gguf.py"
    for _ in range(args.rounds):
        for p in (out, copy):
            if p.exists():
                p.unlink()
        cps.append(timed(["cp", str(weights), str(copy)]))
        copy.unlink()
        # bam-mix syncs its output before renaming it into place; the fair copy does too.
        syncs.append(timed(["sh", "-c", f"cp {weights} {copy} && sync {copy}"]))
        ours.append(timed([bam, "convert", "--input", str(model), "--output", str(out), "--dtype", "f32"]))
        if conv.exists():
            env = dict(os.environ, PYTHONPATH=str(Path(args.llama_cpp) / "gguf-py"))
            # llama.cpp's converter refuses BPE tokenizers whose pre-tokenizer hash it does not know
            # (our benchmark tokenizer's); a wrapper tells it "gpt-2" so the whole conversion runs.
            wrapper = work / "convert-llamacpp-wrapper.py"
            wrapper.write_text(
                "import sys, runpy\n"
                f"sys.path.insert(0, {str(Path(args.llama_cpp))!r})\n"
                f"sys.argv = [{str(conv)!r}] + sys.argv[1:]\n"
                "import conversion.base as b\n"
                "for name in dir(b):\n"
                "    c = getattr(b, name)\n"
                "    if isinstance(c, type) and hasattr(c, 'get_vocab_base_pre'):\n"
                "        c.get_vocab_base_pre = lambda self, tokenizer: 'gpt-2'\n"
                f"runpy.run_path({str(conv)!r}, run_name='__main__')\n")
            theirs_out = work / "convert-bench-llamacpp.gguf"
            if theirs_out.exists():
                theirs_out.unlink()
            try:
                theirs.append(timed([args.python, str(wrapper), str(model), "--outfile", str(theirs_out), "--outtype", "f32"], env=env))
            except subprocess.CalledProcessError as e:
                print(f"llama.cpp converter failed: {e}", file=sys.stderr)
                conv = Path("/nonexistent")
    for p in (out, copy):
        if p.exists():
            p.unlink()
    o, c, cs = min(ours), min(cps), min(syncs)
    print(f"convert 58M Llama ({size / 1e6:.0f} MB f32) to GGUF f32, best of {args.rounds}")
    print(f"  bam-mix convert (incl. process start, tokenizer metadata)  {o:.2f} s  {size / o / 1e6:.0f} MB/s")
    print(f"  cp of the same bytes                                       {c:.2f} s  {size / c / 1e6:.0f} MB/s")
    print(f"  cp + sync of the same bytes                                {cs:.2f} s  {size / cs / 1e6:.0f} MB/s")
    print(f"  throughput relative to the copy = {c / o:.2f}x, to the synced copy = {cs / o:.2f}x (target >= 0.5)")
    if theirs:
        t = min(theirs)
        print(f"  llama.cpp convert_hf_to_gguf.py                            {t:.2f} s  -> bam-mix is {t / o:.1f}x faster (target >= 3)")


if __name__ == "__main__":
    main()
