#!/usr/bin/env python3
"""Checks that `bam-mix perplexity` equals llama.cpp's `llama-perplexity`.

    ~/.cache/bam-mix-peers/venv/bin/python tools/check_llamacpp_perplexity.py [--vocab bpe|llama-spm]
        [--peers DIR] [--llama-bin DIR] [--model HF_DIR] [--text FILE] [--ctx 512] [--threads 2] [--steps 200]
        [--workdir DIR] [--bam-mix BINARY] [--kv-cache f16|f32]

--vocab bpe (the default; target: within 0.1 %). Without --model it makes one: a byte-level BPE
tokenizer (HF tokenizers, 1024 tokens, BOS added by the post-processor, so both programs replace
each chunk's first token with BOS) trained on the text, and a small Llama (4 layers, hidden 128,
GQA) trained for --steps AdamW steps on the same text with PyTorch, so that its predictions are
far from uniform. Then:

  1. `bam-mix convert --input HF_DIR --output model.gguf` (f32),
  2. `llama-perplexity -m model.gguf -f TEXT -c 512 -t 2` (llama.cpp tokenises the text itself),
  3. `bam-mix perplexity --model model.gguf --text-file TEXT --ctx 512 --json` and the same on HF_DIR,

and prints the three perplexities and the relative differences; exits 1 when one exceeds 0.1 %.

--vocab llama-spm (target: within 1e-4 relative). A real vocabulary, and a GGUF made by
llama.cpp itself: the 32,000-token Llama SentencePiece vocabulary that llama.cpp ships
(models/ggml-vocab-llama-spm.gguf) is written back as a sentencepiece tokenizer.model, a small
Llama (2 layers, hidden 64) over it is trained for --steps steps on the text, and llama.cpp's
convert_hf_to_gguf.py converts it to F32, F16 and BF16 GGUF files. They carry their tokenizer and
no tokenizer.json lies beside them, so `bam-mix perplexity` tokenises with the GGUF's vocabulary
(SentencePiece, add_space_prefix, BOS replacing each chunk's first token, as llama-perplexity).
Each file is scored by both programs.

--kv-cache (default f16, llama.cpp's default) is the KV-cache type of both programs:
llama-perplexity's -ctk/-ctv and bam-mix's --kv-cache, so that both round keys and values alike.

Needs torch, transformers, tokenizers and sentencepiece only when it makes a model; run by hand
(not a test). llama.cpp is found under --peers (default: where tools/setup-peers installs them,
${XDG_CACHE_HOME:-~/.cache}/bam-mix-peers), or --llama-bin.
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402  (tools/peers.py: llama_env)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The peers (the tools compared against) live outside the checkout, where tools/setup-peers installs them.
DEFAULT_PEERS = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "bam-mix-peers")


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


def llama_perplexity(binary, gguf, text, ctx, threads, kv_cache):
    # -b CTX: one chunk per pass. With several (the default batch of 2048), this llama.cpp exits
    # without its final estimate when the chunk count is not a multiple of them.
    p = subprocess.run([binary, "-m", gguf, "-f", text, "-c", str(ctx), "-b", str(ctx), "-t", str(threads),
                        "-ctk", kv_cache, "-ctv", kv_cache],
                       capture_output=True, text=True, env=peers.llama_env())
    out = p.stdout + p.stderr
    m = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", out)
    if p.returncode != 0 or not m:
        sys.exit(f"llama-perplexity failed (exit {p.returncode}):\n{out[-3000:]}")
    return float(m.group(1)), float(m.group(2))


def spm_model_from_gguf(vocab_gguf, out_path):
    """A sentencepiece BPE tokenizer.model holding a GGUF SentencePiece vocabulary (pieces, scores, types),
    with Llama's normalizer settings (identity, a dummy space prefix, whitespace escaped as U+2581)."""
    import gguf
    from sentencepiece import SentencePieceProcessor
    from sentencepiece import sentencepiece_model_pb2 as pb
    r = gguf.GGUFReader(vocab_gguf)

    f = r.fields["tokenizer.ggml.tokens"]
    tokens = [bytes(f.parts[d]).decode("utf-8") for d in f.data]
    scores = [float(r.fields["tokenizer.ggml.scores"].parts[d][0]) for d in r.fields["tokenizer.ggml.scores"].data]
    types = [int(r.fields["tokenizer.ggml.token_type"].parts[d][0]) for d in r.fields["tokenizer.ggml.token_type"].data]
    m = pb.ModelProto()
    m.trainer_spec.model_type = pb.TrainerSpec.BPE
    m.trainer_spec.vocab_size = len(tokens)
    m.trainer_spec.byte_fallback = True
    m.trainer_spec.unk_id, m.trainer_spec.bos_id, m.trainer_spec.eos_id, m.trainer_spec.pad_id = 0, 1, 2, -1
    m.normalizer_spec.name = "identity"
    m.normalizer_spec.add_dummy_prefix = True
    m.normalizer_spec.remove_extra_whitespaces = False
    m.normalizer_spec.escape_whitespaces = True
    kind = {1: pb.ModelProto.SentencePiece.NORMAL, 2: pb.ModelProto.SentencePiece.UNKNOWN,
            3: pb.ModelProto.SentencePiece.CONTROL, 4: pb.ModelProto.SentencePiece.USER_DEFINED,
            5: pb.ModelProto.SentencePiece.UNUSED, 6: pb.ModelProto.SentencePiece.BYTE}
    for t, sc, ty in zip(tokens, scores, types):
        piece = m.pieces.add()
        piece.piece, piece.score, piece.type = t, sc, kind[ty]
    with open(out_path, "wb") as fh:
        fh.write(m.SerializeToString())
    sp = SentencePieceProcessor()
    sp.LoadFromFile(out_path)
    assert sp.vocab_size() == len(tokens)
    return sp


def make_spm_model(out_dir, text_path, steps, vocab_gguf, seed=0):
    """A small Llama over llama.cpp's 32k SentencePiece vocabulary, trained on the text."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(seed)
    torch.set_num_threads(2)
    os.makedirs(out_dir, exist_ok=True)
    sp = spm_model_from_gguf(vocab_gguf, os.path.join(out_dir, "tokenizer.model"))
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump({"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
                   "unk_token": "<unk>", "tokenizer_class": "LlamaTokenizer", "legacy": True}, f)
    config = LlamaConfig(vocab_size=sp.vocab_size(), hidden_size=64, intermediate_size=176, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    with open(text_path) as f:
        ids = torch.tensor(sp.encode(f.read()))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)
    seq, batch = 128, 4
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


def llamacpp_convert(llama_tree, hf_dir, out, outtype):
    """llama.cpp's own convert_hf_to_gguf.py, with its own gguf-py."""
    env = dict(os.environ, PYTHONPATH=os.path.join(llama_tree, "gguf-py"))
    p = subprocess.run([sys.executable, os.path.join(llama_tree, "convert_hf_to_gguf.py"), hf_dir, "--outfile", out,
                        "--outtype", outtype], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"convert_hf_to_gguf.py failed:\n{p.stderr[-3000:]}")


def check_real_vocab(args, llama, text):
    tree = os.path.dirname(os.path.dirname(os.path.dirname(llama)))
    vocab = args.vocab_gguf or os.path.join(tree, "models", "ggml-vocab-llama-spm.gguf")
    model = args.model or os.path.join(args.workdir, "hf-llama-spm")
    if not args.model and not os.path.exists(os.path.join(model, "model.safetensors")):
        print(f"making and training a small Llama over {vocab} in {model} ...", file=sys.stderr)
        shutil.rmtree(model, ignore_errors=True)
        make_spm_model(model, text, args.steps, vocab)
    print(f"text {text}, ctx {args.ctx}, KV cache {args.kv_cache} in both")
    worst = 0.0
    for outtype in ("f32", "f16", "bf16"):
        gguf_path = os.path.join(args.workdir, f"llama-spm-{outtype}.gguf")
        if os.path.exists(gguf_path):
            os.remove(gguf_path)
        llamacpp_convert(tree, model, gguf_path, outtype)
        assert not os.path.exists(os.path.join(os.path.dirname(gguf_path), "tokenizer.json"))
        ref, ref_err = llama_perplexity(llama, gguf_path, text, args.ctx, args.threads, args.kv_cache)
        ours, err, chunks = bam_perplexity(args.bam_mix, gguf_path, text, args.ctx, args.kv_cache)
        rel = abs(ours - ref) / ref
        worst = max(worst, rel)
        print(f"  {outtype:5s} llama-perplexity PPL = {ref:.4f} +/- {ref_err:.5f}   bam-mix PPL = {ours:.4f} +/- {err:.5f}"
              f"   ({chunks} chunks)   relative difference {rel:.2e}")
    print(f"  within 1e-4: {'yes' if worst <= 1e-4 else 'NO'}")
    sys.exit(0 if worst <= 1e-4 else 1)


def bam_perplexity(binary, model, text, ctx, kv_cache):
    p = subprocess.run([binary, "perplexity", "--model", model, "--text-file", text, "--ctx", str(ctx), "--json",
                        "--kv-cache", kv_cache],
                       capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"bam-mix perplexity failed:\n{p.stderr}")
    r = json.loads(p.stdout)
    return r["ppl"], r["ppl_stderr"], r["chunks"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vocab", choices=["bpe", "llama-spm"], default="bpe",
                    help="bpe: a 1024-token BPE model converted by bam-mix; llama-spm: llama.cpp's 32k Llama vocabulary, converted by llama.cpp")
    ap.add_argument("--vocab-gguf", help="--vocab llama-spm: the vocabulary (default: the llama.cpp tree's models/ggml-vocab-llama-spm.gguf)")
    ap.add_argument("--peers", default=DEFAULT_PEERS)
    ap.add_argument("--llama-bin", help="llama.cpp's build/bin (default: under --peers)")
    ap.add_argument("--bam-mix", default=os.path.join(ROOT, ".build/release/bam-mix"))
    ap.add_argument("--model", help="an HF directory with tokenizer.json (default: make and train a small Llama)")
    ap.add_argument("--text", help="UTF-8 text (default: the repository's docs and Debian's license texts, ~120 kB)")
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--kv-cache", choices=["f16", "f32"], default="f16",
                    help="the KV-cache type of both programs (default f16, llama.cpp's default)")
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "bam-mix-llamacpp-check"))
    args = ap.parse_args()

    llama = os.path.join(args.llama_bin or os.path.join(args.peers, "llama.cpp", "build", "bin"), "llama-perplexity")
    if not os.access(llama, os.X_OK):
        sys.exit(f"{llama} not found: build llama.cpp (tools/llama-perplexity) and pass --llama-bin DIR")
    if not os.access(args.bam_mix, os.X_OK):
        subprocess.run(["swift", "build", "-c", "release", "--product", "bam-mix"], cwd=ROOT, check=True)
    os.makedirs(args.workdir, exist_ok=True)
    text = args.text or os.path.join(args.workdir, "text.txt")
    if not args.text:
        default_text(text)
    if args.vocab == "llama-spm":
        check_real_vocab(args, llama, text)
    model = args.model or os.path.join(args.workdir, "hf")
    if not args.model and not os.path.exists(os.path.join(model, "model.safetensors")):
        print(f"making and training a small Llama in {model} ...", file=sys.stderr)
        shutil.rmtree(model, ignore_errors=True)
        make_model(model, text, args.steps)
    gguf = os.path.join(args.workdir, "model.gguf")
    if os.path.exists(gguf):
        os.remove(gguf)
    subprocess.run([args.bam_mix, "convert", "--input", model, "--output", gguf], check=True, stdout=subprocess.DEVNULL)

    ref, ref_err = llama_perplexity(llama, gguf, text, args.ctx, args.threads, args.kv_cache)
    ours_gguf, err_gguf, chunks = bam_perplexity(args.bam_mix, gguf, text, args.ctx, args.kv_cache)
    ours_hf, err_hf, _ = bam_perplexity(args.bam_mix, model, text, args.ctx, args.kv_cache)
    print(f"text {text}, ctx {args.ctx}, {chunks} chunks, KV cache {args.kv_cache} in both")
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
