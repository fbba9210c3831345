#!/usr/bin/env python3
"""Perplexity of quantised GGUF files: bam-mix against llama.cpp, and against the same model dequantised.

    ~/.cache/bam-mix-peers/venv/bin/python tools/check_llamacpp_quant_perplexity.py \
        [--llama-cpp DIR] [--bam-mix PATH] [--model F32_OR_F16.gguf] [--text FILE] [--types Q4_0,Q4_K_M,...]
        [--ctx 256] [--threads 2] [--steps 150] [--workdir DIR]

Without --model it makes one: a Llama-2-style tokenizer (BPE with byte fallback, 512 tokens, trained
on the text) and a small Llama (hidden 256, so that the k-quants apply; 4 layers) trained for
--steps AdamW steps on the text with PyTorch, converted to an F32 GGUF by llama.cpp's own
convert_hf_to_gguf.py. Then for each type T (default: every type bam-mix reads that llama-quantize
makes without an importance matrix):

  1. `llama-quantize F32.gguf X.gguf T`, and `llama-quantize --allow-requantize X.gguf Y.gguf F32`
     (the same weights dequantised by llama.cpp),
  2. `llama-perplexity -m X.gguf -f TEXT -c CTX` and the same on Y,
  3. `bam-mix perplexity --model X.gguf --text-file TEXT --ctx CTX --json` and the same on Y.

It prints the four perplexities and two ratios: bam-mix on X against bam-mix on Y (target: within
1e-5 relative; bam-mix dequantises X exactly, so they should agree to rounding of the float32
sums) and bam-mix on X against llama-perplexity on X (target: within 1 %; llama.cpp also quantises
the activations to 8 bits in its quantised matrix products, bam-mix computes in float32, so the
difference measures what that costs).

Text needs the GGUF's own tokenizer in bam-mix. When `bam-mix perplexity --text-file` cannot use
it, the script says so and scores the token ids llama.cpp's `llama-tokenize` gives for the text
(`--ids-file`, same BOS rule and chunks as llama-perplexity), so the numbers stay comparable.
Run by hand (not a test); the machine should be quiet for the timings it prints.
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LLAMA = Path.home() / ".cache" / "bam-mix-peers" / "llama.cpp"
# Types llama-quantize makes without an importance matrix that bam-mix reads (IQ1-IQ3 and Q2_K_S need one).
DEFAULT_TYPES = ["Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_1", "Q5_0", "Q4_K_M", "Q4_K_S", "Q4_1", "Q4_0", "IQ4_NL",
                 "IQ4_XS", "Q3_K_L", "Q3_K_M", "Q3_K_S", "Q2_K"]


def default_text(path, size=60_000):
    """The repository's docs, then Debian's license texts, as ASCII, about `size` bytes."""
    files = sorted(glob.glob(str(ROOT / "docs" / "*.md"))) + [str(ROOT / "README.md")] \
        + sorted(glob.glob("/usr/share/common-licenses/*"))
    parts, total = [], 0
    for p in files:
        if not os.path.isfile(p):
            continue
        with open(p, encoding="utf-8", errors="ignore") as f:
            s = "".join(ch for ch in f.read() if 32 <= ord(ch) < 127 or ch == "\n")
        parts.append(s)
        total += len(s)
        if total >= size:
            break
    Path(path).write_text("\n".join(parts)[:size])


def make_model(out_dir, text_path, steps, seed=0):
    import torch
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    torch.set_num_threads(2)
    text = Path(text_path).read_text()
    trainer_tok = Tokenizer(models.BPE())
    trainer_tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    trainer_tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never")
    trainer_tok.train_from_iterator([text], trainers.BpeTrainer(vocab_size=253, show_progress=False))
    trained = json.loads(trainer_tok.to_str())["model"]
    specials = ["<unk>", "<s>", "</s>"]
    vocab = {t: i for i, t in enumerate(specials)}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for t, _ in sorted(trained["vocab"].items(), key=lambda kv: kv[1]):
        if t not in vocab:
            vocab[t] = len(vocab)
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in trained["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    os.makedirs(out_dir, exist_ok=True)
    tok.save(os.path.join(out_dir, "tokenizer.json"))
    Path(out_dir, "tokenizer_config.json").write_text(json.dumps({
        "add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
        "clean_up_tokenization_spaces": False, "legacy": True, "tokenizer_class": "LlamaTokenizerFast"}))

    config = LlamaConfig(vocab_size=len(vocab), hidden_size=256, intermediate_size=768, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024, bos_token_id=1,
                         eos_token_id=2, tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    ids = torch.tensor(tok.encode(text).ids)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.1)
    seq, batch = 256, 8
    model.train()
    for step in range(steps):
        starts = torch.randint(0, len(ids) - seq - 1, (batch,))
        x = torch.stack([ids[s:s + seq] for s in starts])
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            print(f"  train step {step}: loss {loss.item():.3f}", file=sys.stderr)
    model.eval()
    model.save_pretrained(out_dir, safe_serialization=True)


def run(cmd, **kw):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if p.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed (exit {p.returncode}):\n{(p.stdout + p.stderr)[-3000:]}")
    return p


def llama_perplexity(bin_dir, model, text, ctx, threads):
    start = time.time()
    # -b CTX: one chunk per pass. With several (the default batch of 2048), this llama.cpp exits
    # without its final estimate when the chunk count is not a multiple of them.
    p = subprocess.run([bin_dir / "llama-perplexity", "-m", model, "-f", text, "-c", str(ctx), "-b", str(ctx), "-t", str(threads)],
                       capture_output=True, text=True)
    out = p.stdout + p.stderr
    m = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", out)
    if p.returncode != 0 or not m:
        sys.exit(f"llama-perplexity failed on {model} (exit {p.returncode}):\n{out[-3000:]}")
    return float(m.group(1)), time.time() - start


def llama_token_ids(bin_dir, model, text, out):
    """llama.cpp's tokenisation of the text (BOS as the file says), as bam-mix's --ids-file."""
    p = run([bin_dir / "llama-tokenize", "-m", model, "-f", text, "--ids", "--log-disable"])
    m = re.search(r"\[([0-9, ]*)\]", p.stdout)
    if not m:
        sys.exit(f"llama-tokenize printed no id list:\n{p.stdout[-1000:]}")
    Path(out).write_text(m.group(1))
    return out


def bam_perplexity(binary, model, text, ids, ctx):
    """(ppl, seconds, how) — on the text when bam-mix can tokenise it with the GGUF's tokenizer, else on ids."""
    base = [binary, "perplexity", "--model", model, "--ctx", str(ctx), "--json"]
    start = time.time()
    p = subprocess.run(base + ["--text-file", text], capture_output=True, text=True)
    if p.returncode == 0:
        return json.loads(p.stdout)["ppl"], time.time() - start, "text"
    reason = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else f"exit {p.returncode}"
    start = time.time()
    p = subprocess.run(base + ["--ids-file", ids], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"bam-mix perplexity failed on {model}:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout)["ppl"], time.time() - start, f"ids (text failed: {reason[:120]})"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-cpp", default=str(DEFAULT_LLAMA), help="llama.cpp tree with build/bin/llama-*")
    ap.add_argument("--bam-mix", default=str(ROOT / ".build" / "release" / "bam-mix"))
    ap.add_argument("--model", help="an F32 or F16 GGUF with its vocabulary (default: make and train a small Llama)")
    ap.add_argument("--text", help="UTF-8 text (default: the repository's docs and Debian's license texts, ~60 kB)")
    ap.add_argument("--types", default=",".join(DEFAULT_TYPES))
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--workdir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "bam-mix-quant-ppl"))
    args = ap.parse_args()

    llama = Path(args.llama_cpp)
    bin_dir = llama / "build" / "bin"
    for tool in ["llama-perplexity", "llama-quantize", "llama-tokenize"]:
        if not os.access(bin_dir / tool, os.X_OK):
            sys.exit(f"{bin_dir / tool} not found: build llama.cpp and pass --llama-cpp DIR")
    if not os.access(args.bam_mix, os.X_OK):
        subprocess.run(["swift", "build", "-c", "release", "--product", "bam-mix"], cwd=ROOT, check=True)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    text = args.text or str(work / "text.txt")
    if not args.text:
        default_text(text)
    source = args.model
    if not source:
        hf = work / "hf"
        if not (hf / "model.safetensors").exists():
            print(f"making and training a small Llama in {hf} ...", file=sys.stderr)
            shutil.rmtree(hf, ignore_errors=True)
            make_model(str(hf), text, args.steps)
        source = str(work / "model.f32.gguf")
        if not os.path.exists(source):
            env = dict(os.environ, PYTHONPATH=str(llama / "gguf-py"))
            run([sys.executable, llama / "convert_hf_to_gguf.py", hf, "--outfile", source, "--outtype", "f32"], env=env)

    ids = llama_token_ids(bin_dir, source, text, work / "ids.txt")
    print(f"text {text}: {len(Path(ids).read_text().split(','))} tokens (llama-tokenize), ctx {args.ctx}")
    header = f"{'type':8s} {'MB':>6s} {'llama X':>10s} {'llama Y':>10s} {'bam X':>10s} {'bam Y':>10s} {'bamX/bamY-1':>12s} {'bamX/llamaX-1':>14s}  scored on"
    print(header)
    worst_exact, worst_llama = 0.0, 0.0
    for t in args.types.split(","):
        x, y = work / f"{t}.gguf", work / f"{t}.f32.gguf"
        run([bin_dir / "llama-quantize", source, x, t])
        run([bin_dir / "llama-quantize", "--allow-requantize", x, y, "F32"])
        lx, _ = llama_perplexity(bin_dir, x, text, args.ctx, args.threads)
        ly, _ = llama_perplexity(bin_dir, y, text, args.ctx, args.threads)
        bx, _, how = bam_perplexity(args.bam_mix, x, text, ids, args.ctx)
        by, _, _ = bam_perplexity(args.bam_mix, y, text, ids, args.ctx)
        exact, vs_llama = bx / by - 1, bx / lx - 1
        worst_exact, worst_llama = max(worst_exact, abs(exact)), max(worst_llama, abs(vs_llama))
        print(f"{t:8s} {x.stat().st_size / 1e6:6.2f} {lx:10.4f} {ly:10.4f} {bx:10.4f} {by:10.4f} {exact:12.2e} {vs_llama:14.2e}  {how}")
        y.unlink()
    print(f"bam-mix on X vs bam-mix on Y (dequantised by llama.cpp): worst {worst_exact:.2e} (target 1e-5): {'yes' if worst_exact <= 1e-5 else 'NO'}")
    print(f"bam-mix vs llama-perplexity on X: worst {worst_llama * 100:.3f} % (target 1 %): {'yes' if worst_llama <= 1e-2 else 'NO'}")
    sys.exit(0 if worst_exact <= 1e-5 and worst_llama <= 1e-2 else 1)


if __name__ == "__main__":
    main()
