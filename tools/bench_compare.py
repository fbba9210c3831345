#!/usr/bin/env python3
"""Issue 7's target: `bam-mix compare` on four 58M-shape models and three domains of 64k tokens
finishes within 1.2x the sum of the individual `bam-mix perplexity` runs.

    python3 tools/bench_compare.py [--tokens 65536] [--models 4] [--ctx 512] [--rounds 2] [--workdir DIR] [--skip-build]

Builds bam-mix and BamBench in release mode, creates four random llama58m models with the
byte-level tokenizer (`BamBench make-model llama58m DIR --seed S --byte-tokenizer`; one token per
byte, so a domain of N bytes of ASCII text is N tokens plus BOS), writes three domain texts from
files every Debian machine has (Python's standard library, the repository's Swift sources, and
license texts / documentation), then times

  * every `bam-mix perplexity --model M --text-file D --ctx 512 --json` (one process per model and
    domain: each loads its model and tokenises its text), and
  * one `bam-mix compare --model ... --domain ... --ctx 512 --json OUT`,

prints both wall-clock totals (and CPU times) and their ratio, and checks that compare's perplexities
equal the individual runs'. The two sides alternate for --rounds rounds and the best of each is
kept, because the machines are shared. Python standard library only; run by hand, not by the tests.
"""
import argparse
import glob
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def ascii_text(paths, size):
    """Concatenates printable-ASCII lines of the files until `size` bytes (exactly)."""
    out = []
    total = 0
    for p in paths:
        try:
            with open(p, encoding="utf-8", errors="ignore") as f:
                for line in f:
                    line = "".join(ch for ch in line if 32 <= ord(ch) < 127 or ch in "\n\t")
                    out.append(line)
                    total += len(line)
                    if total >= size:
                        return "".join(out)[:size]
        except (OSError, UnicodeDecodeError):
            continue
    if total < size:
        sys.exit(f"only {total} bytes of text found for a domain of {size}; pass a smaller --tokens")
    return "".join(out)[:size]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=65536, help="tokens (bytes) per domain")
    ap.add_argument("--models", type=int, default=4)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "bam-mix-bench-compare"))
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds; the best of each side is kept")
    ap.add_argument("--skip-build", action="store_true")
    args = ap.parse_args()

    os.chdir(ROOT)
    if not args.skip_build:
        run(["swift", "build", "-c", "release", "--product", "bam-mix"])
        run(["swift", "build", "-c", "release", "--product", "BamBench"])
    bam = os.path.join(ROOT, ".build/release/bam-mix")
    bench = os.path.join(ROOT, ".build/release/BamBench")
    os.makedirs(args.workdir, exist_ok=True)

    models = []
    for i in range(args.models):
        d = os.path.join(args.workdir, f"model{i}")
        if not os.path.exists(os.path.join(d, "tokenizer.json")):
            print(f"creating {d} ...", file=sys.stderr)
            run([bench, "make-model", "llama58m", d, "--seed", str(i + 1), "--byte-tokenizer"])
        models.append((f"m{i}", d))

    sources = {
        "python": sorted(glob.glob("/usr/lib/python3*/*.py")),
        "swift": sorted(glob.glob(os.path.join(ROOT, "Sources/**/*.swift"), recursive=True)),
        "docs": sorted(glob.glob("/usr/share/common-licenses/*")) + sorted(glob.glob(os.path.join(ROOT, "docs/*.md")))
        + sorted(glob.glob("/usr/share/doc/*/copyright")),
    }
    domains = []
    for name, paths in sources.items():
        path = os.path.join(args.workdir, f"{name}.txt")
        # One token per byte plus BOS: size - 1 bytes make exactly `tokens` tokens.
        with open(path, "w") as f:
            f.write(ascii_text(paths, args.tokens - 1))
        domains.append((name, path))

    # Warm the page cache so neither side pays the first read of the weights.
    for _, d in models:
        with open(os.path.join(d, "model.safetensors"), "rb") as f:
            while f.read(1 << 24):
                pass

    def timed(cmd, **kw):
        """Wall-clock seconds and CPU seconds (user + system of the child) of one command."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        out = run(cmd, **kw)
        wall = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return out, wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    report_path = os.path.join(args.workdir, "compare.json")
    compare_cmd = [bam, "compare", "--ctx", str(args.ctx), "--json", report_path]
    for mname, mdir in models:
        compare_cmd += ["--model", f"{mname}={mdir}"]
    for dname, dpath in domains:
        compare_cmd += ["--domain", f"{dname}={dpath}"]

    # The machines are shared and noisy: the two sides alternate for --rounds rounds (compare first
    # in odd rounds) and the best round of each is kept.
    load_before = os.getloadavg()[0]
    individual = {}
    best_individual = (float("inf"), float("inf"))
    best_compare = (float("inf"), float("inf"))
    for rnd in range(args.rounds):
        order = ["compare", "individual"] if rnd % 2 == 0 else ["individual", "compare"]
        for side in order:
            if side == "individual":
                wall_sum = cpu_sum = 0.0
                for mname, mdir in models:
                    for dname, dpath in domains:
                        out, wall, cpu = timed([bam, "perplexity", "--model", mdir, "--text-file", dpath,
                                                "--ctx", str(args.ctx), "--json"], capture_output=True, text=True)
                        individual[(mname, dname)] = json.loads(out.stdout)
                        wall_sum += wall
                        cpu_sum += cpu
                print(f"  round {rnd + 1}: sum of perplexity runs {wall_sum:.1f} s wall, {cpu_sum:.1f} s CPU", file=sys.stderr)
                best_individual = min(best_individual, (wall_sum, cpu_sum))
            else:
                _, wall, cpu = timed(compare_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                print(f"  round {rnd + 1}: compare {wall:.1f} s wall, {cpu:.1f} s CPU", file=sys.stderr)
                best_compare = min(best_compare, (wall, cpu))
    sum_individual, cpu_individual = best_individual
    compare_seconds, cpu_compare = best_compare

    with open(report_path) as f:
        report = json.load(f)
    mismatches = 0
    for m in report["models"]:
        for r in m["results"]:
            want = individual[(m["name"], r["domain"])]["ppl"]
            if r["ppl"] != want:
                mismatches += 1
                print(f"  MISMATCH {m['name']} {r['domain']}: compare {r['ppl']} vs perplexity {want}")
    chunks = report["domains"][0]["chunks"]
    print(f"compare benchmark: {args.models} llama58m models x {len(domains)} domains of {args.tokens} tokens "
          f"({chunks} chunks of {args.ctx} each), {os.cpu_count()} cores")
    print(f"  best of {args.rounds} rounds, wall clock (CPU time of the processes); 1-minute load average "
          f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    print(f"  sum of {len(individual)} perplexity runs  {sum_individual:8.1f} s  ({cpu_individual:.1f} s CPU)")
    print(f"  one compare run               {compare_seconds:8.1f} s  ({cpu_compare:.1f} s CPU)")
    ratio = compare_seconds / sum_individual
    print(f"  ratio                         {ratio:8.3f}  (target <= 1.2; CPU-time ratio {cpu_compare / cpu_individual:.3f})")
    print(f"  perplexities equal: {'yes' if mismatches == 0 else f'no, {mismatches} differ'}")
    for m in report["models"]:
        print(f"  {m['name']}: {m['tokens_per_second']:.0f} tokens/s, peak memory {m['peak_memory_bytes'] / 1e6:.0f} MB, "
              f"load {m['load_seconds']:.2f} s")
    sys.exit(0 if mismatches == 0 and ratio <= 1.2 else 1)


if __name__ == "__main__":
    main()
