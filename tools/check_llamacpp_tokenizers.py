#!/usr/bin/env python3
"""Checks `bam-mix tokenize` on real GGUF vocabularies against llama.cpp's `llama-tokenize`.

    ~/.cache/bam-mix-peers/venv/bin/python tools/check_llamacpp_tokenizers.py [--peers DIR]
        [--bam-mix .build/debug/bam-mix] [--vocab NAME ...]

llama.cpp ships vocab-only GGUF files of real tokenizers in its source tree (models/ggml-vocab-*.gguf:
Llama's SentencePiece, Llama 3, Qwen2, DeepSeek LLM and Coder, Falcon, GPT-2, MPT, StarCoder,
Refact, Command-R, Phi-3, ...) with their test texts (*.gguf.inp). Every text of those files and
of the fixture corpus (tools/make_gguf_tokenizer_fixtures.py) is tokenised by both programs, with
special tokens parsed and not, and the ids compared. Vocabularies whose tokenizer bam-mix does not
implement (BERT's WPM, Gemma 4, Qwen 3.5, ...) must be refused with an error naming what is
unsupported; that is checked too. Exits 1 on any difference. Run by hand (not a test); the
vocabularies are megabytes each and stay outside the repository.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_gguf_tokenizer_fixtures import TEXTS, llama_tokenize  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def inp_texts(path):
    with open(path, encoding="utf-8") as f:
        return f.read().split("\n__ggml_vocab_test__\n")


def bam_tokenize(binary, vocab, text, parse_special, tmp):
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    args = [binary, "tokenize", "--tokenizer", vocab, "--text-file", tmp, "--json"]
    if not parse_special:
        args.append("--no-parse-special")
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        return None, p.stderr.strip()
    return json.loads(p.stdout), None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peers", default=os.path.expanduser("~/.cache/bam-mix-peers"))
    ap.add_argument("--bam-mix", default=os.path.join(ROOT, ".build", "debug", "bam-mix"))
    ap.add_argument("--vocab", nargs="*", help="names such as llama-spm qwen2 (default: every models/ggml-vocab-*.gguf)")
    args = ap.parse_args()
    tree = os.path.join(args.peers, "llama.cpp")
    llama = os.path.join(tree, "build", "bin", "llama-tokenize")
    for b in (llama, args.bam_mix):
        if not os.access(b, os.X_OK):
            sys.exit(f"{b} not found (build llama.cpp's llama-tokenize under --peers, and bam-mix)")
    vocabs = sorted(glob.glob(os.path.join(tree, "models", "ggml-vocab-*.gguf")))
    if args.vocab:
        vocabs = [v for v in vocabs if os.path.basename(v)[len("ggml-vocab-"):-len(".gguf")] in args.vocab]
    tmp = tempfile.mktemp(suffix=".txt")
    failures = 0
    for vocab in vocabs:
        name = os.path.basename(vocab)[len("ggml-vocab-"):-len(".gguf")]
        texts = (inp_texts(vocab + ".inp") if os.path.exists(vocab + ".inp") else []) + TEXTS
        _, error = bam_tokenize(args.bam_mix, vocab, "probe", True, tmp)
        if error:
            named = "not supported" in error or "not one bam-mix implements" in error
            print(f"{name:16s} refused by bam-mix{'' if named else ' WITHOUT naming what is unsupported'}: {error.splitlines()[0][:160]}")
            failures += 0 if named else 1
            continue
        bad = 0
        for text in texts:
            for parse in (True, False):
                ref = llama_tokenize(llama, vocab, text, parse)
                ours, err = bam_tokenize(args.bam_mix, vocab, text, parse, tmp)
                if ours != ref:
                    bad += 1
                    if bad <= 3:
                        print(f"  {name}: {text[:60]!r} (parse_special={parse})\n    llama.cpp {ref[:40]}\n    bam-mix   {ours if ours is not None else err}")
        print(f"{name:16s} {len(texts)} texts x 2: {'all ids equal' if bad == 0 else f'{bad} differ'}")
        failures += bad
    os.path.exists(tmp) and os.remove(tmp)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
