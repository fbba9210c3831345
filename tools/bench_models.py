#!/usr/bin/env python3
"""Creates, once, the models the decode/prefill benchmark (tools/bench_decode.py) runs: random weights
initialised and written by transformers (save_pretrained, safetensors), each with the 32k byte-level
BPE tokenizer of the tokenizer benchmark, plus the texts the benchmark feeds them.

    tools/setup-peers   # once: torch, transformers and tokenizers in the peers' venv (this script runs itself under it)
    python3 tools/bench_models.py [NAME ...] [--dir DIR] [--bam-mix .build/release/bam-mix]

NAME (default: the first three):
  llama58m       Llama, hidden 512, 8 layers, 8 heads, FFN 1408, vocab 32000 (the shape of
                 tools/bench_perplexity_peers.py), float32, 58M parameters
  mixtral4x58m   Mixtral of the same shape with 4 FFN experts, top-2, float32, 110M parameters
  llama1b        Llama, hidden 2048, FFN 5632, 22 layers, 32 heads / 4 KV heads, vocab 32000
                 (TinyLlama's shape), bfloat16, 1.1B parameters, 2.2 GB
  btx4x1b        `bam-mix mix --method btx` of four llama1b-shaped experts (seeds 1-4; the three
                 extra experts are deleted afterwards), bfloat16, ~6.8 GB; needs --bam-mix and
                 ~16 GB of free disk while it is made

DIR defaults to $BAM_MIX_BENCH_MODELS, else ${XDG_CACHE_HOME:-~/.cache}/bam-mix-bench-models. A model
is written under a temporary name and renamed when complete; an existing one is kept as it is. Also
writes DIR/text.txt (~1 MB of generated text, for perplexity) and DIR/prompt-512.txt (a text the
tokenizer encodes to exactly 512 tokens, the prefill prompt).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402  (tools/peers.py: the peers' venv, installed by tools/setup-peers)

peers.require("torch", "transformers", "tokenizers", "safetensors")
import torch  # noqa: E402
import transformers  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

from bench_tokenizer import prepare  # noqa: E402

NAMES = ("llama58m", "mixtral4x58m", "llama1b", "btx4x1b")
DEFAULT_NAMES = ("llama58m", "mixtral4x58m", "llama1b")
PROMPT_TOKENS = 512


def default_dir() -> Path:
    explicit = os.environ.get("BAM_MIX_BENCH_MODELS")
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "bam-mix-bench-models"


def common(**shape):
    # bos/eos: the tokenizer's only special token, <|endoftext|> (id 0); it adds no BOS itself.
    return dict(vocab_size=32000, max_position_embeddings=2048, rms_norm_eps=1e-5, rope_theta=10000.0,
                tie_word_embeddings=False, bos_token_id=0, eos_token_id=0, **shape)


SMALL = dict(hidden_size=512, intermediate_size=1408, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=8)
ONE_B = dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32, num_key_value_heads=4)


def config(name):
    if name == "llama58m":
        return transformers.LlamaConfig(**common(**SMALL)), torch.float32
    if name == "mixtral4x58m":
        return transformers.MixtralConfig(**common(**SMALL), num_local_experts=4, num_experts_per_tok=2), torch.float32
    if name == "llama1b":
        return transformers.LlamaConfig(**common(**ONE_B)), torch.bfloat16
    raise ValueError(name)


def write_random(name, out: Path, tokenizer: Path, seed: int):
    """transformers' own initialisation (normal(0, initializer_range) linears and embeddings, unit
    norms), made in the stored dtype directly so that the 1.1B model never exists in float32."""
    cfg, dtype = config(name)
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.save_pretrained(tmp, max_shard_size="20GB")
        shutil.copy(tokenizer, tmp / "tokenizer.json")
        tmp.chmod(0o755)   # mkdtemp's 0700 is for the partial folder only
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"wrote {out} ({sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters, {dtype})", flush=True)


def write_btx(out: Path, tokenizer: Path, bam_mix: str, seed_model: Path):
    if not bam_mix or not Path(bam_mix).exists():
        sys.exit(f"btx4x1b needs a bam-mix binary (--bam-mix; got {bam_mix!r})")
    scratch = Path(tempfile.mkdtemp(prefix=".btx4x1b-experts.", dir=out.parent))
    try:
        experts = [seed_model]
        for seed in (2, 3, 4):
            e = scratch / f"llama1b-seed{seed}"
            write_random("llama1b", e, tokenizer, seed)
            experts.append(e)
        tmp = out.parent / f".{out.name}.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run([bam_mix, "mix", "--method", "btx", *sum((["--expert", str(e)] for e in experts), []),
                        "--out", str(tmp), "--seed", "1"], check=True)
        os.replace(tmp, out)
        print(f"wrote {out}", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def write_texts(directory: Path, tokenizer: Path, text: Path):
    target = directory / "text.txt"
    if not target.exists():
        shutil.copy(text, target)
    prompt = directory / f"prompt-{PROMPT_TOKENS}.txt"
    if prompt.exists():
        return
    tok = Tokenizer.from_file(str(tokenizer))
    body = text.read_text(encoding="utf-8")[:20000]
    ids = tok.encode(body).ids
    # Cut at a token boundary and check that the cut text encodes back to the same tokens (a BPE
    # split can merge differently at the edge); move the cut until it does.
    for n in range(PROMPT_TOKENS, PROMPT_TOKENS + 64):
        candidate = tok.decode(ids[:n])
        if len(tok.encode(candidate).ids) == PROMPT_TOKENS:
            prompt.write_text(candidate, encoding="utf-8")
            return
    sys.exit(f"could not cut a text of exactly {PROMPT_TOKENS} tokens")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(NAMES)}")
    ap.add_argument("--dir", type=Path, default=default_dir())
    ap.add_argument("--bam-mix", default=str(Path(__file__).resolve().parent.parent / ".build/release/bam-mix"))
    args = ap.parse_args()
    unknown = [n for n in args.names if n not in NAMES]
    if unknown:
        ap.error(f"unknown model {', '.join(unknown)}: choose among {', '.join(NAMES)}")
    args.dir.mkdir(parents=True, exist_ok=True)
    tokenizer, text = prepare(args.dir, 32000, 1.0)
    write_texts(args.dir, tokenizer, text)
    names = args.names or list(DEFAULT_NAMES)
    for name in names:
        out = args.dir / name
        if (out / "config.json").exists():
            continue
        if name == "btx4x1b":
            seed_model = args.dir / "llama1b"
            if not (seed_model / "config.json").exists():
                write_random("llama1b", seed_model, tokenizer, 1)
            write_btx(out, tokenizer, args.bam_mix, seed_model)
        else:
            write_random(name, out, tokenizer, 1)


if __name__ == "__main__":
    main()
