#!/usr/bin/env python3
"""Writes the GGUF-tokenizer fixtures under Tests/Fixtures/gguf/llamacpp_tokenizers: small
vocab-only GGUF files, one per llama.cpp pre-tokenizer bam-mix implements plus SentencePiece
variants, and the ids llama.cpp's own `llama-tokenize` gives for a corpus of hard cases.

Run by hand with the peers (never in CI; the Swift tests only read the committed outputs):

    ~/.cache/bam-mix-peers/venv/bin/python tools/make_gguf_tokenizer_fixtures.py \\
        [--peers ~/.cache/bam-mix-peers] [--bam-mix .build/debug/bam-mix]

For every byte-level BPE pre-tokenizer a vocabulary of ~600 tokens is trained with HF `tokenizers`
on the corpus, its pre-tokenizer being that pre-type's regexes exactly as llama.cpp lists them, so
that the merges exercise what the regexes cut. It is written with gguf-py's GGUFWriter (tokens,
token types with control and user-defined tokens, merges, `tokenizer.ggml.pre`), and
`llama-tokenize` (vocab-only load) gives the ids of every corpus text, with and without special
tokens parsed. The script then checks that the regexes decide: the same vocabulary under
another pre-type name must give other ids for some text, or the fixture could not catch a wrong
regex. The SentencePiece vocabularies come from a small `sentencepiece` BPE model with byte
fallback and a user-defined symbol, written as llama.cpp's convert_hf_to_gguf.py writes them
(pieces, scores, token types), once with llama.cpp's defaults and once with add_space_prefix and
add_bos off.

With --bam-mix it also checks the other direction of issue 14: `bam-mix convert` turns each
vocabulary (inside a throw-away tiny Llama) into tokenizer.json + tokenizer_config.json, and HF
`tokenizers` loading that tokenizer.json must give llama.cpp's ids on every text. Exits 1 on any
mismatch. Everything stays well under 1 MB.
"""
import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import gguf
from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "Fixtures" / "gguf" / "llamacpp_tokenizers"

# The pre-tokenizers, with llama.cpp's regexes (src/llama-vocab.cpp, llm_tokenizer_bpe) copied
# character for character; bam-mix's GGUFPreTokenizer must list the same strings.
GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
LLAMA3 = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2 = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
CJK = "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+"
DEEPSEEK_LETTERS = (
    "\\s?[A-Za-z\u00b5\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u01ba\u01bc-\u01bf\u01c4-\u0293\u0295-\u02af\u0370"
    "-\u0373\u0376\u0377\u037b-\u037d\u037f\u0386\u0388-\u038a\u038c\u038e-\u03a1\u03a3-\u03f5\u03f7-"
    "\u0481\u048a-\u052f\u0531-\u0556\u10a0-\u10c5\u13a0-\u13f5\u13f8-\u13fd\u1c90-\u1cba\u1cbd-\u1cbf"
    "\u1d00-\u1d2b\u1d6b-\u1d77\u1d79-\u1d9a\u1e00-\u1f15\u1f18-\u1f1d\u1f20-\u1f45\u1f48-\u1f4d\u1f50-"
    "\u1f57\u1f59\u1f5b\u1f5d\u1f5f-\u1f7d\u1f80-\u1fb4\u1fb6-\u1fbc\u1fbe\u1fc2-\u1fc4\u1fc6-\u1fcc"
    "\u1fd0-\u1fd3\u1fd6-\u1fdb\u1fe0-\u1fec\u1ff2-\u1ff4\u1ff6-\u1ffc\u2102\u2107\u210a-\u2113\u2115"
    "\u2119-\u211d\u2124\u2126\u2128\u212a-\u212d\u212f-\u2134\u2139\u213c-\u213f\u2145-\u2149\u214e"
    "\u2183\u2184\u2c00-\u2c7b\u2c7e-\u2ce4\u2ceb-\u2cee\u2cf2\u2cf3\ua640-\ua66d\ua680-\ua69b\ua722-"
    "\ua76f\ua771-\ua787\ua78b-\ua78e\uab70-\uabbf\ufb00-\ufb06\ufb13-\ufb17\uff21-\uff3a\uff41-\uff5a"
    "\U00010400-\U0001044f\U000104b0-\U000104d3\U000104d8-\U000104fb\U00010c80-\U00010cb2\U00010cc0-"
    "\U00010cf2\U000118a0-\U000118df\U0001e900-\U0001e943]+"
)
PRE_TYPES = {
    "default": [r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"],
    "gpt-2": [GPT2],
    "llama-bpe": [LLAMA3],
    "dbrx": [LLAMA3],
    "qwen2": [QWEN2],
    "deepseek-llm": ["[\r\n]", DEEPSEEK_LETTERS, "\\s?[!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+", r"\s+$", CJK, r"\p{N}+"],
    "deepseek-coder": ["[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", CJK, r"\p{N}"],
    "falcon": [r"[\p{P}\$\+<=>\^~\|`]+", GPT2, r"[0-9][0-9][0-9]"],
    "starcoder": [r"\p{N}", GPT2],
    "tekken": [r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"],
}
# Other names llama.cpp gives one of the tokenizations above (fixtures with the same vocabulary
# under these names check bam-mix's name table, and that their flags are read: olmo, smollm,
# command-r, refact take the shared regexes; dbrx is Llama 3's regex without ignore_merges and BOS).
ALIASES = {"olmo": "gpt-2", "mpt": "gpt-2", "smollm": "starcoder", "command-r": "starcoder", "refact": "starcoder",
           "smaug-bpe": "dbrx", "llama3": "llama-bpe", "stablelm2": "qwen2"}

CONTROL = ["<|endoftext|>", "<s>", "</s>", "<|im_start|>"]
USER_DEFINED = ["<tool_call>"]

# The hard cases: whitespace runs, digits, CJK, emoji, code, special-token strings, leading
# spaces, newlines, case, scripts with marks, Unicode spaces.
TEXTS = [
    "Hello world",
    " leading space",
    "  two leading spaces",
    "\tTab first",
    "trailing spaces   ",
    "Whitespace   runs\t\tand\n\n\nnewlines\r\nCRLF \r\n end",
    "   ",
    "\n",
    "\n\n  \n",
    "digits 1 12 123 1234 12345 3.14159 1,000,000 0x1F 007",
    "12345678901234567890",
    "Arabic-Indic ٣٤٥ and roman ⅷ and superscript x² and fraction ½",
    "CJK 你好世界，这是一个测试。日本語のテキスト 한국어 텍스트",
    "emoji 🙂👍🏽 🇩🇪 ❤️ family 👨‍👩‍👧 end",
    "def f(x):\n    return x**2  # comment\n\tif (a && b) { c->d[0] = \"s\"; }\n",
    "for (int i = 0; i < n; ++i) {\n  sum += a[i] * b[i];\n}\n",
    "<s> begin </s> end <|endoftext|> text <|im_start|>user",
    "<tool_call> x<tool_call>y <tool_call>\n",
    "a</s>b<s>c",
    "<|assistant|>  reply<|end|>\n next <|endoftext|> after",
    "I'm, you're, it's, we'll, they've, she'd, DON'T, I'M, 'ſ 'S",
    "HelloWorld CamelCase ALLCAPS mIxEd iPhone XMLHttpRequest",
    "Élan ÉCOLE école naïve café résumé Ærø",
    "Ελληνικά κείμενο, русский текст, Ωμέγα ΣΊΣΥΦΟΣ",
    "مرحبا بالعالم नमस्ते दुनिया สวัสดีครับ",
    "no\u00a0break\u3000ideographic\u2003em\u200bzero-width\u0085nel",
    "Wait...!!! ?? (((nested))) --- *** ~~~ $$$ +++ <<>> ^^ || ``` @@@ ###",
    "e\u0301 vs \u00e9 combining; Å vs A\u030a",
    "ＡＢＣ！？ １２３ fullwidth",
    "line one\n  indented\n\n    more\n",
    " \t \n \t",
    "∑ x² ≤ ∞ ± √2 → ∀x∈S",
    "https://example.com/path?q=1&r=2 user@example.org",
    "The quick brown fox jumps over the lazy dog. The end.",
]

WORDS = ("the of and to in is was that for it with as his on be at by had are but from or have an they which one "
         "you were all we her she there would their will when who him been has more if no out so said what up its "
         "about into than them can only other new some could time these two may then do first any my now such like "
         "our over man me even most made after also did many before must through back years where much your way "
         "model token expert router mixture branch train attention layer vocabulary merge space digit code").split()


def training_corpus(seed=0):
    rng = random.Random(seed)
    lines = []
    for _ in range(1500):
        n = rng.randint(4, 14)
        words = [rng.choice(WORDS) for _ in range(n)]
        if rng.random() < 0.3:
            words[0] = words[0].capitalize()
        if rng.random() < 0.2:
            words.insert(rng.randrange(len(words)), str(rng.randint(0, 99999)))
        lines.append(" ".join(words) + rng.choice([".", ",", "!", "?", ":", ""]))
    return lines + TEXTS * 20


def train_bpe(regexes, vocab_size=600):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(r), behavior="isolated") for r in regexes]
        + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=CONTROL + USER_DEFINED,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(training_corpus(), trainer)
    spec = json.loads(tok.to_str())
    vocab = spec["model"]["vocab"]
    tokens = [None] * len(vocab)
    for t, i in vocab.items():
        tokens[i] = t
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    return tokens, merges


def hparams(w, n_vocab):
    # What llama.cpp's loader asks of a llama file even when it loads the vocabulary only.
    w.add_context_length(2048)
    w.add_embedding_length(16)
    w.add_block_count(1)
    w.add_feed_forward_length(32)
    w.add_head_count(2)
    w.add_head_count_kv(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(8)
    w.add_vocab_size(n_vocab)


def tiny_tensors(w, n_vocab):
    """A 1-layer Llama around the vocabulary, for `bam-mix convert` (the weights do not matter)."""
    rng = np.random.default_rng(0)
    f = lambda *s: (rng.standard_normal(s) * 0.02).astype(np.float32)
    w.add_tensor("token_embd.weight", f(n_vocab, 16))
    w.add_tensor("output_norm.weight", np.ones(16, dtype=np.float32))
    w.add_tensor("output.weight", f(n_vocab, 16))
    w.add_tensor("blk.0.attn_norm.weight", np.ones(16, dtype=np.float32))
    for n in ("attn_q", "attn_k", "attn_v", "attn_output"):
        w.add_tensor(f"blk.0.{n}.weight", f(16, 16))
    w.add_tensor("blk.0.ffn_norm.weight", np.ones(16, dtype=np.float32))
    w.add_tensor("blk.0.ffn_gate.weight", f(32, 16))
    w.add_tensor("blk.0.ffn_up.weight", f(32, 16))
    w.add_tensor("blk.0.ffn_down.weight", f(16, 32))


def write_gguf(path, meta, with_tensors=False):
    w = gguf.GGUFWriter(str(path), "llama")
    n = len(meta["tokens"])
    hparams(w, n)
    w.add_name(meta.get("name", "bam-mix tokenizer fixture"))
    w.add_tokenizer_model(meta["model"])
    if "pre" in meta:
        w.add_tokenizer_pre(meta["pre"])
    w.add_token_list(meta["tokens"])
    if "scores" in meta:
        w.add_token_scores(meta["scores"])
    w.add_token_types(meta["types"])
    if "merges" in meta:
        w.add_token_merges(meta["merges"])
    for key, fn in (("bos", w.add_bos_token_id), ("eos", w.add_eos_token_id), ("unk", w.add_unk_token_id)):
        if key in meta:
            fn(meta[key])
    for key, fn in (("add_bos", w.add_add_bos_token), ("add_eos", w.add_add_eos_token),
                    ("add_space_prefix", w.add_add_space_prefix)):
        if key in meta:
            fn(meta[key])
    if with_tensors:
        tiny_tensors(w, n)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def bpe_meta(pre, tokens, merges, add_bos=None):
    types = [gguf.TokenType.NORMAL] * len(tokens)
    for t in CONTROL:
        types[tokens.index(t)] = gguf.TokenType.CONTROL
    for t in USER_DEFINED:
        types[tokens.index(t)] = gguf.TokenType.USER_DEFINED
    meta = {"model": "gpt2", "pre": pre, "tokens": tokens, "types": [int(t) for t in types], "merges": merges,
            "bos": tokens.index("<s>"), "eos": tokens.index("</s>")}
    if add_bos is not None:
        meta["add_bos"] = add_bos
    return meta


def spm_meta(workdir, add_space_prefix, add_bos):
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb
    prefix = str(workdir / "spm")
    if not os.path.exists(prefix + ".model"):
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(training_corpus()), model_prefix=prefix, model_type="bpe", vocab_size=700,
            byte_fallback=True, character_coverage=0.995, user_defined_symbols=USER_DEFINED,
            bos_id=1, eos_id=2, unk_id=0, pad_id=-1, num_threads=1, minloglevel=2)
    proto = pb.ModelProto()
    proto.ParseFromString(open(prefix + ".model", "rb").read())
    tokens, scores, types = [], [], []
    # As convert_hf_to_gguf.py's _create_vocab_sentencepiece, with user-defined symbols typed as such.
    kinds = {1: gguf.TokenType.NORMAL, 2: gguf.TokenType.UNKNOWN, 3: gguf.TokenType.CONTROL,
             4: gguf.TokenType.USER_DEFINED, 5: gguf.TokenType.UNUSED, 6: gguf.TokenType.BYTE}
    for p in proto.pieces:
        tokens.append(p.piece)
        scores.append(p.score)
        types.append(int(kinds[p.type]))
    meta = {"model": "llama", "tokens": tokens, "scores": scores, "types": types, "bos": 1, "eos": 2, "unk": 0}
    if add_space_prefix is not None:
        meta["add_space_prefix"] = add_space_prefix
    if add_bos is not None:
        meta["add_bos"] = add_bos
    return meta


def llama_tokenize(binary, gguf_path, text, parse_special):
    args = [binary, "-m", str(gguf_path), "--stdin", "--ids", "--no-escape", "--log-disable"]
    if not parse_special:
        args.append("--no-parse-special")
    p = subprocess.run(args, input=text.encode("utf-8"), capture_output=True)
    if p.returncode != 0:
        sys.exit(f"llama-tokenize failed on {gguf_path} (exit {p.returncode}):\n{p.stderr.decode(errors='replace')[-3000:]}")
    out = p.stdout.decode().strip().splitlines()
    line = [l for l in out if l.startswith("[")]
    if not line:
        sys.exit(f"llama-tokenize printed no ids for {gguf_path}:\n{p.stdout.decode()}")
    return json.loads(line[-1])


def hf_check(bam_mix, meta, expected, workdir, name):
    """`bam-mix convert` the vocabulary (inside a tiny Llama) to HF; HF tokenizers must give llama.cpp's ids."""
    model = workdir / f"{name}-model.gguf"
    out = workdir / f"{name}-hf"
    write_gguf(model, meta, with_tensors=True)
    shutil.rmtree(out, ignore_errors=True)
    p = subprocess.run([bam_mix, "convert", "--input", str(model), "--output", str(out)], capture_output=True, text=True)
    if p.returncode != 0 or not (out / "tokenizer.json").exists():
        return [f"{name}: bam-mix convert wrote no tokenizer.json:\n{p.stdout}\n{p.stderr}"]
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    bad = []
    for i, text in enumerate(TEXTS):
        for parse, key in ((True, "ids"), (False, "ids_no_parse_special")):
            tok.encode_special_tokens = not parse
            ids = tok.encode(text, add_special_tokens=True).ids
            if ids != expected[key][i]:
                bad.append(f"{name}: HF tokenizers on bam-mix's tokenizer.json, text {i} {text!r} "
                           f"(parse_special={parse}):\n   llama.cpp {expected[key][i]}\n   HF        {ids}")
    return bad


def compact_json(obj):
    """Indented JSON with every list of ids on one line."""
    text = json.dumps(obj, ensure_ascii=False, indent=1)
    return re.sub(r"\[\s*(-?\d+(?:,\s*-?\d+)*)\s*\]", lambda m: "[" + re.sub(r"\s+", "", m.group(1)) + "]", text) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peers", default=os.path.expanduser("~/.cache/bam-mix-peers"))
    ap.add_argument("--bam-mix", help="a built bam-mix binary: also check the tokenizer.json `convert` writes")
    args = ap.parse_args()
    binary = os.path.join(args.peers, "llama.cpp", "build", "bin", "llama-tokenize")
    if not os.access(binary, os.X_OK):
        sys.exit(f"{binary} not found: build llama.cpp's llama-tokenize (peers/setup.sh) or pass --peers")

    workdir = Path(tempfile.mkdtemp(prefix="bam-mix-gguf-tok-"))
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    cases, metas, problems = {}, {}, []

    vocabs = {pre: train_bpe(regexes) for pre, regexes in PRE_TYPES.items()}
    for pre in PRE_TYPES:
        tokens, merges = vocabs[pre]
        metas[pre] = bpe_meta(pre, tokens, merges)
    for alias, base in ALIASES.items():
        tokens, merges = vocabs[base]
        metas[alias] = bpe_meta(alias, tokens, merges)
    # A BPE vocabulary whose file turns BOS on, and Llama 3's default turned off by the file.
    metas["gpt-2+bos"] = bpe_meta("gpt-2", *vocabs["gpt-2"], add_bos=True)
    metas["llama-bpe-bos-off"] = bpe_meta("llama-bpe", *vocabs["llama-bpe"], add_bos=False)
    metas["spm"] = spm_meta(workdir, None, None)
    metas["spm-no-prefix-no-bos"] = spm_meta(workdir, False, False)
    # A Phi-3 name makes llama.cpp strip the whitespace after special tokens (rstrip), except after
    # <unk>, <s> and <|endoftext|>, which it then requires in the vocabulary; Phi-3's chat tokens
    # are appended as control tokens.
    phi3 = dict(spm_meta(workdir, None, None), name="Phi-3 mini fixture")
    for t in ("<|endoftext|>", "<|assistant|>", "<|end|>"):
        phi3["tokens"] = phi3["tokens"] + [t]
        phi3["scores"] = phi3["scores"] + [0.0]
        phi3["types"] = phi3["types"] + [int(gguf.TokenType.CONTROL)]
    metas["spm-phi3"] = phi3

    for name, meta in metas.items():
        path = OUT / f"{name}.gguf"
        write_gguf(path, meta)
        case = {"file": path.name, "ids": [], "ids_no_parse_special": []}
        for text in TEXTS:
            case["ids"].append(llama_tokenize(binary, path, text, True))
            case["ids_no_parse_special"].append(llama_tokenize(binary, path, text, False))
        cases[name] = case
        print(f"{name}: {sum(map(len, case['ids']))} ids", file=sys.stderr)

    # The regexes must decide: under another pre-type name the same vocabulary tokenizes some text differently.
    for pre in list(PRE_TYPES) + list(ALIASES):
        other = "default" if pre != "default" else "gpt-2"
        probe = workdir / f"probe-{pre}.gguf"
        write_gguf(probe, dict(metas[pre], pre=other))
        differs = any(llama_tokenize(binary, probe, t, False) != cases[pre]["ids_no_parse_special"][i]
                      for i, t in enumerate(TEXTS))
        if not differs:
            problems.append(f"{pre}: the vocabulary gives the same ids under pre-type `{other}`; the corpus does not test its regexes")

    if args.bam_mix:
        before = len(problems)
        for name, meta in metas.items():
            problems += hf_check(args.bam_mix, meta, cases[name], workdir, name)
        print(f"HF tokenizers on the tokenizer.json `bam-mix convert` wrote: {len(metas)} vocabularies x "
              f"{len(TEXTS)} texts x 2: {'all ids equal' if len(problems) == before else f'{len(problems) - before} differ'}",
              file=sys.stderr)

    # The ids llama-perplexity scores for the GGUF that llama.cpp's own converter made of the tiny
    # Llama fixture (tools/make_format_fixtures.py): the whole text, BOS as the file says, special
    # tokens not parsed.
    model = ROOT / "Tests" / "Fixtures" / "gguf" / "tiny_llama.llamacpp.gguf"
    text = (ROOT / "Tests" / "Fixtures" / "gguf" / "perplexity.txt").read_text(encoding="utf-8") + " odd   spacing <s> </s>"
    checkpoint = {"file": "tiny_llama.llamacpp.gguf", "text": text, "ids": llama_tokenize(binary, model, text, False)}

    with open(OUT / "expected.json", "w", encoding="utf-8") as f:
        f.write(compact_json({"generator": "tools/make_gguf_tokenizer_fixtures.py (llama-tokenize, vocab-only load)",
                              "texts": TEXTS, "cases": cases, "checkpoint": checkpoint}))
    shutil.rmtree(workdir, ignore_errors=True)
    size = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(cases)} vocabularies, {len(TEXTS)} texts, {size / 1024:.0f} kB under {OUT}", file=sys.stderr)
    for p in problems:
        print("PROBLEM: " + p, file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
