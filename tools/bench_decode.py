#!/usr/bin/env python3
"""Decode and prefill speed of bam-mix next to llama.cpp's llama-bench, per model and weight type,
and the peak memory of `perplexity` against the checkpoint's size (issue 15's targets).

    tools/setup-peers                                   # once: llama.cpp, and the venv that makes the models
    swift build -c release --product bam-mix && swift build -c release --product BamBench
    python3 tools/bench_decode.py [--models llama58m,mixtral4x58m,llama1b] [--with-btx-1b] [--types f32,bf16,q8_0,q4_k_m]
                                  [--rounds 3] [--quick] [--threads 2] [--depth D] [--json OUT]

`tools/bench decode` runs it (with BamBench bam). The models are made once by tools/bench_models.py
(random weights written by transformers, in $BAM_MIX_BENCH_MODELS or ~/.cache/bam-mix-bench-models);
each weight type gets a GGUF beside them, written by `bam-mix convert --dtype TYPE`. Then, in
--rounds interleaved rounds (the best of each kept, because the machines are noisy):

  llama.cpp  llama-bench -m MODEL-TYPE.gguf -t THREADS -p 512 -n 128 -r 1 -o json   -> pp512, tg128 tokens/s
  bam-mix    BamBench prefill --json --tokens 512: the forward `generate` runs for a 512-token prompt,
             on random ids as pp512, timed after one warm-up pass as llama-bench times pp512 (its
             prefill tokens/s, the one compared); generate --json --temperature 0 --ignore-eos with
             the 512-token prompt and --max-tokens 1 (the first prefill of a fresh process, shown
             beside it: it also first-touches the activation buffers and the KV cache, which
             llama.cpp allocates and touches when it creates its context, before pp512 is timed);
             and generate with a one-token prompt and --max-tokens 128 (its decode tokens/s: 128
             single-token forward passes from an empty cache, as tg128)

With --depth D, decode is also measured after a D-token prompt (every token then reads D + its
position of keys and values from the KV cache):

  llama.cpp  llama-bench -d D -p 0 -n 128 (its default f16 KV cache)         -> tg128 @ dD
  bam-mix    BamBench decode --past D --tokens 128 --json --weights TYPE, with --kv-cache f32 and
             with --kv-cache f16 (random ids, as llama-bench's; 128 single-token passes timed)

bam-mix runs the HF checkpoint when it is stored in TYPE; otherwise, with `--weights TYPE` when its
commands have that option, and without it on the GGUF of TYPE (so it reads that type's file, computing
however it loads it today; the report says which). The types only llama-quantize makes (q4_k_m,
default; q5_k_m, q6_k, q4_0, iq4_xs, q3_k_m, q2_k with --types) are quantized from the GGUF of the stored type by
llama-quantize, and both sides run that file as it is. Ratios are bam-mix over llama.cpp in tokens/s
(targets: decode >= 1.0, prefill >= 1.2). Memory: the peak RSS of `bam-mix perplexity --ctx 512` on
each bfloat16 1.1B-shaped checkpoint over its file size (target <= 1.15), with llama-perplexity's on
the bf16 GGUF beside it. Standard library only (the models are made with the peers' python).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_machine  # noqa: E402
import peers  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SMALL_MODELS = ("llama58m", "mixtral4x58m")
LARGE_MODELS = ("llama1b", "btx4x1b")
# The stored type of each model (bench_models.py), and the types measured by default: all three on
# the small models (issue 15's decode targets), bf16 on the 1.1B shapes (its prefill and memory targets).
STORED = {"llama58m": "f32", "mixtral4x58m": "f32", "llama1b": "bf16", "btx4x1b": "bf16"}
DEFAULT_TYPES = {"llama58m": ("f32", "bf16", "q8_0", "q4_k_m"), "mixtral4x58m": ("f32", "bf16", "q8_0", "q4_k_m"),
                 "llama1b": ("bf16", "q4_k_m"), "btx4x1b": ("bf16",)}
# Types only llama-quantize makes (from the GGUF of the stored type), the kind users download:
# both sides run the same file, bam-mix with its blocks in place.
LLAMA_QUANTIZED = {"q4_k_m": "Q4_K_M", "q5_k_m": "Q5_K_M", "q6_k": "Q6_K", "q4_0": "Q4_0", "iq4_xs": "IQ4_XS", "q3_k_m": "Q3_K_M",
                   "q2_k": "Q2_K"}
TYPES = ("f32", "f16", "bf16", "q8_0") + tuple(LLAMA_QUANTIZED)
TARGET_DECODE, TARGET_PREFILL, TARGET_RSS = 1.0, 1.2, 1.15


def models_dir() -> Path:
    explicit = os.environ.get("BAM_MIX_BENCH_MODELS")
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "bam-mix-bench-models"


def run_measured(cmd, env=None):
    """Runs `cmd` to completion; returns (returncode, stdout, stderr, wall seconds, peak RSS bytes
    of that process alone: wait4's rusage, not the sum over children)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return p.returncode, out.read(), err.read(), wall, usage.ru_maxrss * 1024


def checked(cmd, env=None):
    code, out, err, wall, rss = run_measured(cmd, env)
    if code != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {code}: {(err or out).strip()[-600:]}")
    return out, wall, rss


def file_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.glob("*.safetensors"))


def has_option(bam_mix: str, command: str, option: str) -> bool:
    p = subprocess.run([bam_mix, command, "--help"], capture_output=True, text=True)
    return option in (p.stdout + p.stderr)


class Bench:
    def __init__(self, args):
        self.args = args
        self.dir = args.models_dir
        self.bam = args.bam_mix
        self.env = dict(os.environ, BAM_MIX_THREADS=str(args.threads))
        self.weights_option = has_option(self.bam, "generate", "--weights") and has_option(self.bam, "perplexity", "--weights")
        self.prompt = (self.dir / "prompt-512.txt").read_text(encoding="utf-8")

    def gguf(self, model: str, wtype: str) -> Path:
        path = self.dir / f"{model}-{wtype}.gguf"
        if not path.exists() and wtype in LLAMA_QUANTIZED:
            source = self.gguf(model, STORED[model])
            quantize = Path(self.args.llama_bench).with_name("llama-quantize")
            print(f"  quantizing {source.name} to {path.name} (llama-quantize {LLAMA_QUANTIZED[wtype]})", flush=True)
            checked([str(quantize), str(source), str(path), LLAMA_QUANTIZED[wtype]])
        if not path.exists():
            print(f"  converting {model} to {path.name} (bam-mix convert --dtype {wtype})", flush=True)
            checked([self.bam, "convert", "--input", str(self.dir / model), "--output", str(path), "--dtype", wtype])
        return path

    def bam_input(self, model: str, wtype: str):
        """(model path, extra flags, description) for bam-mix at weight type `wtype`."""
        if wtype in LLAMA_QUANTIZED:
            return str(self.gguf(model, wtype)), [], f"GGUF {LLAMA_QUANTIZED[wtype]} in place (llama-quantize's file)"
        flags = ["--weights", wtype] if self.weights_option else []
        if STORED[model] == wtype or self.weights_option:
            what = f"HF {STORED[model]}" + (f" --weights {wtype}" if flags else "")
            return str(self.dir / model), flags, what
        return str(self.gguf(model, wtype)), [], f"GGUF {wtype} (no --weights option: computed as loaded today)"

    def llama_bench(self, gguf: Path):
        out, _, _ = checked([self.args.llama_bench, "-m", str(gguf), "-t", str(self.args.threads), "-p", "512",
                             "-n", str(self.args.tokens), "-r", "1", "-o", "json"])
        rows = json.loads(out)
        pp = next(r["avg_ts"] for r in rows if r["n_prompt"] > 0 and r["n_gen"] == 0)
        tg = next(r["avg_ts"] for r in rows if r["n_gen"] > 0 and r["n_prompt"] == 0)
        return pp, tg

    def bam_generate(self, path: str, flags, prompt: str, new_tokens: int) -> dict:
        out, _, _ = checked([self.bam, "generate", "--model", path, "--prompt", prompt, "--temperature", "0",
                             "--ignore-eos", "--max-tokens", str(new_tokens), "--json", *flags], env=self.env)
        return json.loads(out)

    def llama_bench_depth(self, gguf: Path) -> float:
        out, _, _ = checked([self.args.llama_bench, "-m", str(gguf), "-t", str(self.args.threads), "-p", "0",
                             "-n", str(self.args.tokens), "-d", str(self.args.depth), "-r", "1", "-o", "json"])
        return next(r["avg_ts"] for r in json.loads(out) if r["n_gen"] > 0)

    def bam_decode_depth(self, model: str, wtype: str, kv_cache: str) -> float:
        path, weights = (self.gguf(model, wtype), "stored") if wtype in LLAMA_QUANTIZED else (self.dir / model, wtype)
        out, _, _ = checked([self.args.bam_bench, "decode", "--model", str(path), "--weights", weights,
                             "--kv-cache", kv_cache, "--past", str(self.args.depth), "--tokens", str(self.args.tokens),
                             "--rounds", "1", "--json"], env=self.env)
        return json.loads(out)[0]["tokens_per_second"]

    def bam_prefill(self, path: str, flags) -> dict:
        out, _, _ = checked([self.args.bam_bench, "prefill", "--model", path, "--tokens", "512", "--rounds", "2",
                             "--json", *flags], env=self.env)
        return json.loads(out)

    def speed(self, model: str, wtype: str) -> dict:
        gguf = self.gguf(model, wtype)
        path, flags, what = self.bam_input(model, wtype)
        row = {"model": model, "type": wtype, "bam_input": what, "gguf_bytes": gguf.stat().st_size}
        best = {"llama_pp": 0.0, "llama_tg": 0.0, "bam_pp": 0.0, "bam_pp_first": 0.0, "bam_tg": 0.0}
        errors = []
        for _ in range(self.args.rounds):
            try:
                pp, tg = self.llama_bench(gguf)
                best["llama_pp"], best["llama_tg"] = max(best["llama_pp"], pp), max(best["llama_tg"], tg)
            except (RuntimeError, ValueError, StopIteration, KeyError) as e:
                errors.append(f"llama-bench: {e}")
            try:
                warm = self.bam_prefill(path, flags)
                pre = self.bam_generate(path, flags, self.prompt, 1)
                dec = self.bam_generate(path, flags, "The", self.args.tokens)
                if pre["prompt_tokens"] != 512:
                    errors.append(f"bam-mix prompt is {pre['prompt_tokens']} tokens, not 512")
                best["bam_pp"] = max(best["bam_pp"], warm["warm_tokens_per_second"])
                best["bam_pp_first"] = max(best["bam_pp_first"], pre["prefill_tokens_per_second"])
                best["bam_tg"] = max(best["bam_tg"], dec["decode_tokens_per_second"])
            except (RuntimeError, ValueError, KeyError) as e:
                errors.append(f"bam-mix: {e}")
            if self.args.depth:
                try:
                    best["llama_tg_depth"] = max(best.get("llama_tg_depth", 0.0), self.llama_bench_depth(gguf))
                except (RuntimeError, ValueError, StopIteration, KeyError) as e:
                    errors.append(f"llama-bench -d: {e}")
                for kv in ("f32", "f16"):
                    try:
                        key = f"bam_tg_depth_{kv}"
                        best[key] = max(best.get(key, 0.0), self.bam_decode_depth(model, wtype, kv))
                    except (RuntimeError, ValueError, KeyError, IndexError) as e:
                        errors.append(f"BamBench decode --past: {e}")
        row.update({k: (v or None) for k, v in best.items()})
        for side, ours, theirs in (("pp", "bam_pp", "llama_pp"), ("pp_first", "bam_pp_first", "llama_pp"),
                                   ("tg", "bam_tg", "llama_tg")):
            row[f"{side}_ratio"] = row[ours] / row[theirs] if row[ours] and row[theirs] else None
        if self.args.depth:
            for kv in ("f32", "f16"):
                ours, theirs = row.get(f"bam_tg_depth_{kv}"), row.get("llama_tg_depth")
                row[f"tg_depth_{kv}_ratio"] = ours / theirs if ours and theirs else None
        if errors:
            row["errors"] = sorted(set(errors))
        return row

    def memory(self, model: str) -> dict:
        ckpt = self.dir / model
        stored = STORED[model]
        flags = ["--weights", stored] if self.weights_option else []
        row = {"model": model, "bam_input": f"HF {stored}" + (f" --weights {stored}" if flags else ""),
               "file_bytes": file_bytes(ckpt)}
        text = self.dir / "text.txt"
        try:
            out, wall, rss = checked([self.bam, "perplexity", "--model", str(ckpt), "--text-file", str(text), "--ctx", "512",
                                      "--chunks", str(self.args.ppl_chunks), "--json", *flags], env=self.env)
            j = json.loads(out)
            row.update(bam_peak_rss=rss, bam_rss_ratio=rss / row["file_bytes"], bam_ppl=j["ppl"],
                       bam_ppl_tokens_per_second=j["tokens_per_second"])
        except (RuntimeError, ValueError, KeyError) as e:
            row["errors"] = [f"bam-mix perplexity: {e}"]
        perplexity = Path(self.args.llama_bench).with_name("llama-perplexity")
        if perplexity.exists():
            gguf = self.gguf(model, stored)
            code, out, err, wall, rss = run_measured([str(perplexity), "-m", str(gguf), "-f", str(text), "-c", "512",
                                                      "-b", "512", "-t", str(self.args.threads),
                                                      "--chunks", str(self.args.ppl_chunks)])
            if code == 0:
                row.update(llama_peak_rss=rss, llama_file_bytes=gguf.stat().st_size, llama_rss_ratio=rss / gguf.stat().st_size)
            else:
                row.setdefault("errors", []).append(f"llama-perplexity exited {code}: {err.strip()[-300:]}")
        return row


def fmt(x, spec=".1f", suffix=""):
    return "n/a" if x is None else format(x, spec) + suffix


def report(result: dict) -> str:
    lines = [f"decode/prefill side by side: {result['threads']} threads, best of {result['rounds']} interleaved rounds, "
             f"pp{result['prompt']} / tg{result['tokens']} (tokens/s); bam-mix --weights: "
             + ("yes" if result["weights_option"] else "no (each type runs as stored: see 'bam-mix input')"),
             f"  {'model':13s} {'type':6s} {'llama.cpp pp':>12s} {'bam-mix pp':>10s} {'ratio':>6s} {'first pp':>8s} "
             f"{'ratio':>6s}   {'llama.cpp tg':>12s} {'bam-mix tg':>10s} {'ratio':>6s}   bam-mix input"]
    for r in result["speed"]:
        lines.append(f"  {r['model']:13s} {r['type']:6s} {fmt(r['llama_pp']):>12s} {fmt(r['bam_pp']):>10s} "
                     f"{fmt(r['pp_ratio'], '.2f', 'x'):>6s} {fmt(r['bam_pp_first']):>8s} {fmt(r['pp_first_ratio'], '.2f', 'x'):>6s}   "
                     f"{fmt(r['llama_tg']):>12s} {fmt(r['bam_tg']):>10s} "
                     f"{fmt(r['tg_ratio'], '.2f', 'x'):>6s}   {r['bam_input']}")
        for e in r.get("errors", []):
            lines.append(f"      error: {e}")
    lines.append(f"  targets: decode (tg) >= {TARGET_DECODE}x, prefill (pp, warm as pp512) >= {TARGET_PREFILL}x llama.cpp; "
                 "'first pp' is generate's first prefill in a fresh process, for reference")
    if result.get("depth"):
        lines.append(f"decode after a {result['depth']}-token prompt, tg{result['tokens']} @ d{result['depth']} (tokens/s); "
                     "llama.cpp with its default f16 KV cache, bam-mix with each --kv-cache")
        lines.append(f"  {'model':13s} {'type':6s} {'llama.cpp':>10s} {'kv f32':>8s} {'ratio':>6s} {'kv f16':>8s} {'ratio':>6s}")
        for r in result["speed"]:
            lines.append(f"  {r['model']:13s} {r['type']:6s} {fmt(r.get('llama_tg_depth')):>10s} "
                         f"{fmt(r.get('bam_tg_depth_f32')):>8s} {fmt(r.get('tg_depth_f32_ratio'), '.2f', 'x'):>6s} "
                         f"{fmt(r.get('bam_tg_depth_f16')):>8s} {fmt(r.get('tg_depth_f16_ratio'), '.2f', 'x'):>6s}")
    for m in result["memory"]:
        gib = 2 ** 30
        line = f"  peak RSS of perplexity on {m['model']} ({m['bam_input']}, {m['file_bytes'] / gib:.2f} GiB): "
        if "bam_peak_rss" in m:
            line += f"bam-mix {m['bam_peak_rss'] / gib:.2f} GiB = {m['bam_rss_ratio']:.2f}x the file (target <= {TARGET_RSS})"
        if "llama_peak_rss" in m:
            line += f"; llama.cpp {m['llama_peak_rss'] / gib:.2f} GiB = {m['llama_rss_ratio']:.2f}x its GGUF of the same type"
        lines.append(line)
        for e in m.get("errors", []):
            lines.append(f"      error: {e}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(SMALL_MODELS + ("llama1b",)),
                    help=f"comma-separated, among {', '.join(SMALL_MODELS + LARGE_MODELS)}")
    ap.add_argument("--with-btx-1b", action="store_true",
                    help="add btx4x1b: a BTX mixture of four 1.1B experts (~6.8 GB in bf16, ~16 GB of disk while made)")
    ap.add_argument("--types", help=f"comma-separated weight types for every model, among {', '.join(TYPES)} "
                                    "(default: f32,bf16,q8_0 on the 58M shapes, bf16 on the 1.1B ones)")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--quick", action="store_true", help="one round (a smoke run; numbers are not comparable)")
    ap.add_argument("--tokens", type=int, default=128, help="new tokens per decode run (tg)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--depth", type=int, default=0,
                    help="also measure decode after a prompt of this many tokens (llama-bench -d), both KV-cache types")
    ap.add_argument("--ppl-chunks", type=int, default=2, help="chunks of 512 for the peak-RSS perplexity runs")
    ap.add_argument("--models-dir", type=Path, default=models_dir())
    ap.add_argument("--bam-mix", default=str(ROOT / ".build/release/bam-mix"))
    ap.add_argument("--bam-bench", default=str(ROOT / ".build/release/BamBench"))
    ap.add_argument("--llama-bench", default=str(peers.llama_tool("llama-bench")))
    ap.add_argument("--json", help="also write the results as JSON to this file")
    args = ap.parse_args()
    args.rounds = args.rounds or (1 if args.quick else 3)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.with_btx_1b and "btx4x1b" not in models:
        models.append("btx4x1b")
    unknown = [m for m in models if m not in STORED]
    if unknown:
        ap.error(f"unknown model {', '.join(unknown)}")
    types = [t.strip() for t in args.types.split(",")] if args.types else None
    if types and any(t not in TYPES for t in types):
        ap.error(f"--types: choose among {', '.join(TYPES)}")
    for binary, hint in ((args.bam_mix, "swift build -c release --product bam-mix"),
                         (args.bam_bench, "swift build -c release --product BamBench"),
                         (args.llama_bench, peers.SETUP_HINT)):
        if not Path(binary).exists():
            sys.exit(f"{binary} is missing: {hint}")
    if "btx4x1b" in models and not (args.models_dir / "btx4x1b" / "config.json").exists():
        need = 16e9
        free = shutil.disk_usage(args.models_dir if args.models_dir.exists() else args.models_dir.parent).free
        if free < need:
            sys.exit(f"btx4x1b needs ~{need / 1e9:.0f} GB of free disk while it is made; {args.models_dir} has {free / 1e9:.0f} GB")

    # The models, made once with the peers' python (transformers writes the random weights).
    python = peers.python_with("torch", "transformers", "tokenizers")
    subprocess.run([python, str(Path(__file__).with_name("bench_models.py")), *models, "--dir", str(args.models_dir),
                    "--bam-mix", args.bam_mix], check=True)

    info = bench_machine.describe(Path(args.bam_mix), Path(args.bam_bench))
    print("machine\n" + bench_machine.header(info), flush=True)
    bench = Bench(args)
    result = {"machine": info, "threads": args.threads, "rounds": args.rounds, "prompt": 512, "tokens": args.tokens,
              "depth": args.depth,
              "weights_option": bench.weights_option, "speed": [], "memory": []}
    for model in models:
        for wtype in types or DEFAULT_TYPES[model]:
            print(f"measuring {model} {wtype} ...", flush=True)
            result["speed"].append(bench.speed(model, wtype))
        if model in LARGE_MODELS:
            print(f"measuring peak RSS of perplexity on {model} ...", flush=True)
            result["memory"].append(bench.memory(model))
    text = report(result)
    print(text)
    if args.json:
        tmp = Path(args.json + ".partial")
        tmp.write_text(json.dumps(result, indent=1) + "\n")
        os.replace(tmp, args.json)
    failed = any(r.get("errors") for r in result["speed"] + result["memory"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
