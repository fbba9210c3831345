#!/usr/bin/env python3
"""Checks that `bam-mix perplexity` equals llama.cpp's `llama-perplexity` (target: within 0.1 %).

    ~/.cache/bam-mix-peers/venv/bin/python tools/check_llamacpp_perplexity.py [--llama-bin DIR] [--model HF_DIR] [--text FILE]
                                                                              [--ctx 512] [--threads 2] [--steps 200] [--workdir DIR]

Without --model it makes one: a byte-level BPE tokenizer (HF tokenizers, 1024 tokens, BOS added by
the post-processor, so both programs replace each chunk's first token with BOS) trained on the
text, and a small Llama (4 layers, hidden 128, GQA) trained for --steps AdamW steps on the same text
with PyTorch, so that its predictions are far from uniform. Then:

  1. `bam-mix convert --input HF_DIR --output model.gguf` (f32),
  2. `llama-perplexity -m model.gguf -f TEXT -c 512 -t 2` (llama.cpp tokenises the text itself),
  3. `bam-mix perplexity --model model.gguf --text-file TEXT --ctx 512 --json` and the same on HF_DIR,

and prints the three perplexities and the relative differences; exits 1 when one exceeds 0.1 %.
Needs torch, transformers and tokenizers only when it makes the model; run by hand (not a test).
The default llama.cpp is the one tools/setup-peers builds under ${XDG_CACHE_HOME:-~/.cache}/bam-mix-peers
($LLAMA_CPP_BIN or --llama-bin override it).
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The peers (the tools compared against) live outside the checkout, where tools/setup-peers installs them.
PEERS = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "bam-mix-peers")
DEFAULT_LLAMA = os.path.join(PEERS, "llama.cpp", "build", "bin")


def default_text(path, size=120_000):
    """The repository's docs, then Debian's license texts, as ASCII, about `size` bytes."""
    files = sorted(glob.glob(os.path.join(ROOT, "docs/*.md"))) + [os.path.join(ROOT, "README.md")] \
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
    with open(path, "w") as f:
        f.write("\n".join(parts)[:size])


def make_model(out_dir, text_path, steps, seed=0):
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(seed)
    torch.set_num_threads(2)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1024, special_tokens=["<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train([text_path], trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>")
    os.makedirs(out_dir, exist_ok=True)
    fast.save_pretrained(out_dir)

    config = LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=128, intermediate_size=352, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         bos_token_id=bos, eos_token_id=tok.token_to_id("</s>"), tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    with open(text_path) as f:
        ids = torch.tensor(tok.encode(f.read()).ids)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)
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


def llama_perplexity(binary, gguf, text, ctx, threads):
    p = subprocess.run([binary, "-m", gguf, "-f", text, "-c", str(ctx), "-t", str(threads)],
                       capture_output=True, text=True)
    out = p.stdout + p.stderr
    m = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", out)
    if p.returncode != 0 or not m:
        sys.exit(f"llama-perplexity failed (exit {p.returncode}):\n{out[-3000:]}")
    return float(m.group(1)), float(m.group(2))


def bam_perplexity(binary, model, text, ctx):
    p = subprocess.run([binary, "perplexity", "--model", model, "--text-file", text, "--ctx", str(ctx), "--json"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"bam-mix perplexity failed:\n{p.stderr}")
    r = json.loads(p.stdout)
    return r["ppl"], r["ppl_stderr"], r["chunks"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-bin", default=os.environ.get("LLAMA_CPP_BIN", DEFAULT_LLAMA))
    ap.add_argument("--bam-mix", default=os.path.join(ROOT, ".build/release/bam-mix"))
    ap.add_argument("--model", help="an HF directory with tokenizer.json (default: make and train a small Llama)")
    ap.add_argument("--text", help="UTF-8 text (default: the repository's docs and Debian's license texts, ~120 kB)")
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "bam-mix-llamacpp-check"))
    args = ap.parse_args()

    llama = os.path.join(args.llama_bin, "llama-perplexity")
    if not os.access(llama, os.X_OK):
        sys.exit(f"{llama} not found: build llama.cpp (tools/llama-perplexity) and pass --llama-bin DIR")
    if not os.access(args.bam_mix, os.X_OK):
        subprocess.run(["swift", "build", "-c", "release", "--product", "bam-mix"], cwd=ROOT, check=True)
    os.makedirs(args.workdir, exist_ok=True)
    text = args.text or os.path.join(args.workdir, "text.txt")
    if not args.text:
        default_text(text)
    model = args.model or os.path.join(args.workdir, "hf")
    if not args.model and not os.path.exists(os.path.join(model, "model.safetensors")):
        print(f"making and training a small Llama in {model} ...", file=sys.stderr)
        shutil.rmtree(model, ignore_errors=True)
        make_model(model, text, args.steps)
    gguf = os.path.join(args.workdir, "model.gguf")
    if os.path.exists(gguf):
        os.remove(gguf)
    subprocess.run([args.bam_mix, "convert", "--input", model, "--output", gguf], check=True, stdout=subprocess.DEVNULL)

    ref, ref_err = llama_perplexity(llama, gguf, text, args.ctx, args.threads)
    ours_gguf, err_gguf, chunks = bam_perplexity(args.bam_mix, gguf, text, args.ctx)
    ours_hf, err_hf, _ = bam_perplexity(args.bam_mix, model, text, args.ctx)
    print(f"text {text}, ctx {args.ctx}, {chunks} chunks")
    print(f"  llama-perplexity (GGUF)      PPL = {ref:.4f} +/- {ref_err:.5f}")
    worst = 0.0
    for label, v, e in [("bam-mix perplexity (GGUF)", ours_gguf, err_gguf), ("bam-mix perplexity (HF dir)", ours_hf, err_hf)]:
        rel = abs(v - ref) / ref
        worst = max(worst, rel)
        print(f"  {label:28s} PPL = {v:.4f} +/- {e:.5f}   relative difference {rel * 100:.4f} %")
    print(f"  within 0.1 %: {'yes' if worst <= 1e-3 else 'NO'}")
    sys.exit(0 if worst <= 1e-3 else 1)


if __name__ == "__main__":
    main()
