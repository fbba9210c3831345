#!/usr/bin/env python3
"""`bam-mix mix --method btx` against mergekit-moe on the same four 58M-shape experts.

mergekit-moe is what users use today; it needs PyTorch and copies attention from one base model
instead of averaging (so its output is not the BTX recipe), but it does the same I/O: read four
experts, write one Mixtral. Both are timed as whole commands with /usr/bin/time (wall time and
peak RSS), alternating, best of --rounds. The experts are the ones `BamBench mix` creates
(llama58m-L8-e{1..4} in $BAM_MIX_BENCH_DIR, default bam-mix-bench in the temporary directory); run
that first.

Run by hand, not in CI (`tools/bench mix` runs it after `BamBench mix`):

    tools/setup-peers   # once: mergekit in the peers' venv under ${XDG_CACHE_HOME:-~/.cache}/bam-mix-peers
    swift build -c release --product bam-mix
    python3 tools/bench_mix_mergekit.py [--mergekit PATH/TO/mergekit-moe] [--rounds 3]

Target: bam-mix at least 5x faster than mergekit-moe; bam-mix's peak RSS under 400 MB.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
# The peers (the tools compared against) live outside the checkout, where tools/setup-peers installs them.
import peers  # noqa: E402


def timed(cmd):
    p = subprocess.run(["/usr/bin/time", "-v"] + cmd, text=True, capture_output=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", p.stderr)
    h = float(wall.group(1) or 0)
    seconds = h * 3600 + float(wall.group(2)) * 60 + float(wall.group(3))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1)) * 1024
    return seconds, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mergekit", default=str(peers.VENV / "bin" / "mergekit-moe"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workdir", default=os.environ.get("BAM_MIX_BENCH_DIR", os.path.join(tempfile.gettempdir(), "bam-mix-bench")))
    args = ap.parse_args()
    work = Path(args.workdir)
    experts = [work / f"llama58m-L8-e{i}" for i in range(1, 5)]
    for e in experts:
        if not (e / "config.json").exists():
            sys.exit(f"{e} missing: run `.build/release/BamBench mix` first")
    # mergekit-moe loads the base model's tokenizer: give every expert the same tokenizer.json.
    # The 32k byte-level BPE of the tokenizer benchmark, which bench_perplexity_peers.py gives its model.
    tok = work / "bytelevel-32000.tokenizer.json"
    if not tok.exists():
        peers.require("tokenizers")
        from bench_tokenizer import prepare  # noqa: E402
        tok = prepare(work, 32000, 1.0)[0]
    for e in experts:
        if not (e / "tokenizer.json").exists():
            shutil.copy(tok, e / "tokenizer.json")
    tmp = Path(tempfile.mkdtemp(dir=work))
    cfg = tmp / "moe.yml"
    cfg.write_text("base_model: {}\ngate_mode: random\ndtype: float32\nexperts:\n".format(experts[0]) +
                   "".join(f"  - source_model: {e}\n    positive_prompts: [\"\"]\n" for e in experts))
    bam = str(ROOT / ".build/release/bam-mix")
    ours, theirs = [], []
    for _ in range(args.rounds):
        out = tmp / "bam"
        shutil.rmtree(out, ignore_errors=True)
        ours.append(timed([bam, "mix", "--method", "btx", *sum((["--expert", str(e)] for e in experts), []), "--out", str(out)]))
        out2 = tmp / "mk"
        shutil.rmtree(out2, ignore_errors=True)
        theirs.append(timed([args.mergekit, str(cfg), str(out2), "--device", "cpu", "--allow-crimes"]))
    shutil.rmtree(tmp, ignore_errors=True)
    ob = min(ours)
    tb = min(theirs)
    print(f"BTX mix of four 58M f32 experts, best of {args.rounds}")
    print(f"  bam-mix mix      {ob[0]:6.2f} s   peak RSS {ob[1] / 1e6:6.0f} MB")
    print(f"  mergekit-moe     {tb[0]:6.2f} s   peak RSS {tb[1] / 1e6:6.0f} MB")
    print(f"  bam-mix is {tb[0] / ob[0]:.1f}x faster (target >= 5) and uses {tb[1] / ob[1]:.1f}x less memory")


if __name__ == "__main__":
    main()
