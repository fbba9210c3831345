#!/usr/bin/env python3
"""Reference fixtures for BamTokenizers: small tokenizers of each family, trained with HF
`tokenizers` on a generated corpus (no downloads), and the ids / decoded text HF produces for a
varied set of texts.

Run by hand (not in CI), from the repository root:

    tools/setup-peers   # once: the peers' venv outside the checkout (the script runs itself under it)
    python3 tools/make_tokenizer_fixtures.py

(written against tokenizers 0.23.3; any python with tokenizers, transformers and numpy works). It writes
Tests/Fixtures/tokenizers/<name>/{tokenizer.json, tokenizer_config.json, cases.json}, which
Tests/BamMixTests/TokenizerTests.swift reads. Everything is deterministic: rerunning it rewrites
the same files.

Families:
  gpt2          byte-level BPE, ByteLevel pre-tokenizer with GPT-2's regex
  llama3        Split(Llama-3 regex) + ByteLevel(use_regex=false), ignore_merges, BOS template
  llama2        SentencePiece-style: Prepend+Replace normalizer, byte_fallback, fuse_unk,
                Replace+ByteFallback+Fuse+Strip decoder, BOS template
  llama2-metaspace  the same model behind a Metaspace(prepend_scheme=first, split=false) pre-tokenizer
  added         byte-level BPE with NFC+Lowercase, Digits, add_prefix_space, many added tokens
                (lstrip / rstrip / normalized / single_word / special), RobertaProcessing
  misc-a        Strip+NFKC+Replace(regex), Split(String)/Split(Regex) behaviours, Punctuation, BertProcessing
  misc-b        NFD+StripAccents+Lowercase, WhitespaceSplit, Metaspace(split), inverted Split,
                Digits, unk with fuse_unk (no byte fallback), Metaspace decoder
  misc-c        CharDelimiterSplit + Whitespace, continuing_subword_prefix / end_of_word_suffix,
                BPEDecoder, string TemplateProcessing
  bytes         the project's own tokenizer (ByteLevelTokenizerBuilder in Swift; rebuilt here
                from the same recipe, and the Swift test checks the two are identical)
"""

import json
import os
import random
import sys
import unicodedata
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402  (tools/peers.py: the peers' venv, installed by tools/setup-peers)

peers.require("tokenizers", "transformers", "numpy")
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "Fixtures" / "tokenizers"

GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")

# ---------------------------------------------------------------------------------------------
# Corpus

WORDS = """the of and to in is was for on that with as by it at from his an were are which this be or
has had not but first one their its new after who they have her she two been other when there all
during into school time may years more most only over city some world would where later up such used
many can state about national out known university united then made year between both under however
three film part series well since season while group second music company where game people being
through population number states another album team including american government following did
before however against them because released became city born general early area life until death
war large these old each any south north west east river small public high work women like long
very different last what quick brown fox jumps lazy dog hello program function return value string
token model mixture expert router attention layer weight train data""".split()

ACCENTED = ["café", "naïve", "résumé", "Ångström", "São", "Paulo", "Zürich", "Straße", "façade", "jalapeño",
            "crème", "brûlée", "Ærøskøbing", "Łódź", "İstanbul", "ΣΑΣ", "Москва", "déjà", "vu"]
CJK = ["中文", "测试", "日本語", "テキスト", "한국어", "텍스트", "東京", "北京", "漢字"]
EMOJI = ["😀", "👍🏽", "🇫🇷", "👩‍👩‍👧‍👦", "❤️", "🚀", "🎉"]
CONTRACTIONS = ["it's", "don't", "they're", "we'll", "I'd", "you've", "I'm", "JOHN'S", "IT'S", "can't"]
CODE = [
    "def {w}(x, y):\n\treturn x + y  # {w}\n",
    "if (a && b) {{\n    c->{w} = 42;\n}}\n",
    "for i in range(10):\n        print(i, '{w}')\n",
    "const {w} = [1, 2, 3].map((v) => v * 2);\r\n",
    "    {w}: Int = 0x1F  ;;\n\n\n",
]


def make_corpus(seed: int, lines: int, unicode_share: float = 0.15) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(lines):
        r = rng.random()
        if r < 0.15:
            out.append(rng.choice(CODE).format(w=rng.choice(WORDS)))
            continue
        n = rng.randint(4, 16)
        words = []
        for k in range(n):
            u = rng.random()
            if u < unicode_share * 0.5:
                words.append(rng.choice(ACCENTED))
            elif u < unicode_share * 0.8:
                words.append(rng.choice(CJK))
            elif u < unicode_share:
                words.append(rng.choice(EMOJI))
            elif u < unicode_share + 0.06:
                words.append(rng.choice(CONTRACTIONS))
            elif u < unicode_share + 0.12:
                words.append(str(rng.randint(0, 100000)))
            else:
                words.append(rng.choice(WORDS))
        s = " ".join(words)
        s = s[0].upper() + s[1:] + rng.choice([".", ".", ",", "!", "?", ";", " (see above).", "..."])
        out.append(s)
    return out


# ---------------------------------------------------------------------------------------------
# Texts every tokenizer is checked on

COMMON_TEXTS = [
    "Hello world! This is a simple test.",
    "The quick brown fox jumps over the lazy dog. It's John's book; they're here, we'll see, I'd've gone.",
    "IT'S JOHN'S BOOK, THEY'RE HERE, WE'LL SEE, I'D GO. 'S 'T 'LL",
    "x'ſx 'Kx 'rEx '''s 'x ''",
    "def foo(x):\n\treturn x  +   1\n\n\n    if (a&&b) { c->d = 3; }\n",
    "line one\r\nline two\r\n\r\nline four\n\r\n",
    "café naïve résumé Ångström Straße",
    unicodedata.normalize("NFD", "café naïve résumé Ångström Straße"),
    "中文测试，日本語のテキスト、한국어 텍스트。",
    "👩‍👩‍👧‍👦 family, 🇫🇷🇯🇵 flags, 👍🏽 thumbs, ❤️ heart 🚀",
    "1234567890 3.14159 2024-01-01 ١٢٣٤ 12345678901234567890 ½ ⅷ",
    "",
    " ",
    "   ",
    "\n",
    "\t\t",
    "\n\n\n",
    " \n \t ",
    "  leading and trailing  ",
    " x",
    "x ",
    "a\u00a0b\u3000c\u2028d\u000be\u0085f\u200bg\u001ch",
    "a  \u00a0b   c\u3000\u3000d",
    "Ünïcödé ſtraße ΣΑΣ ς ﬁ ligature ＡＢＣ full-width İ",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa !!!!!!!?????",
    "\u0000 control \u0001\u001f chars",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𐍈 \U0010fffd",
    "model mixture expert router attention layer weight train data",
    "<s>Hello</s> world<s> <unk> </s>",
    "a<|endoftext|>b <|endoftext|> c",
    "hello-world 42-is-the-answer | pipe|separated|values ... (parens) [brackets]",
]


def corpus_sample() -> list[str]:
    return make_corpus(99, 6)


# ---------------------------------------------------------------------------------------------
# Builders


def train(tok: Tokenizer, trainer, lines: list[str]) -> Tokenizer:
    tok.train_from_iterator(lines, trainer=trainer)
    return tok


def reload(tok: Tokenizer, edit=None) -> Tokenizer:
    """Round-trips through JSON (optionally editing it), as a saved tokenizer.json would be."""
    doc = json.loads(tok.to_str())
    if edit:
        edit(doc)
    return Tokenizer.from_str(json.dumps(doc, ensure_ascii=False))


def build_gpt2(corpus):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=1000, min_frequency=2, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok = train(tok, trainer, corpus)
    config = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
              "tokenizer_class": "GPT2Tokenizer", "add_prefix_space": False}
    return tok, config


def build_llama3(corpus):
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|start_header_id|>",
                "<|end_header_id|>", "<|eot_id|>"]
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1000, min_frequency=2, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok = train(tok, trainer, corpus)

    def edit(doc):
        # Like Llama 3's own vocabulary, include whole-word tokens that the merges do not build,
        # so that ignore_merges changes the result.
        vocab = doc["model"]["vocab"]
        for w in ["Ġquick", "Ġbrown", "Ġjumps", "ĠJohn", "ĠHello", "Ġmixture", "Ġattention", "Ġrouter"]:
            if w not in vocab:
                vocab[w] = len(vocab)
        doc["model"]["ignore_merges"] = True

    tok = reload(tok, edit)
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|>:1 $B:1",
                                      special_tokens=[("<|begin_of_text|>", bos)]),
    ])
    config = {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>", "tokenizer_class": "PreTrainedTokenizerFast"}
    return tok, config


def sentencepiece_style_model(corpus):
    """A Llama-2-like vocabulary: <unk> <s> </s>, the 256 <0xXX> byte tokens, then trained pieces."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never", split=True)
    latin = [line for line in corpus if all(ord(c) < 0x250 for c in line)]
    trainer = trainers.BpeTrainer(vocab_size=500, min_frequency=2, special_tokens=["<unk>", "<s>", "</s>"],
                                  limit_alphabet=70, show_progress=False)
    tok = train(tok, trainer, latin)
    doc = json.loads(tok.to_str())
    vocab = doc["model"]["vocab"]
    specials = ["<unk>", "<s>", "</s>"]
    new_vocab = {t: i for i, t in enumerate(specials)}
    for b in range(256):
        new_vocab[f"<0x{b:02X}>"] = len(new_vocab)
    for t, _ in sorted(vocab.items(), key=lambda kv: kv[1]):
        if t not in new_vocab:
            new_vocab[t] = len(new_vocab)
    doc["model"]["vocab"] = new_vocab
    doc["added_tokens"] = [
        {"id": new_vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True} for t in specials
    ]
    doc["pre_tokenizer"] = None
    return doc


def build_llama2(doc):
    doc = json.loads(json.dumps(doc))
    tok = Tokenizer.from_str(json.dumps(doc, ensure_ascii=False))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B:1",
                                                       special_tokens=[("<s>", tok.token_to_id("<s>"))])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    config = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
              "unk_token": "<unk>", "tokenizer_class": "LlamaTokenizer", "legacy": True}
    return tok, config


def build_llama2_metaspace(doc):
    doc = json.loads(json.dumps(doc))
    doc["normalizer"] = None
    tok = Tokenizer.from_str(json.dumps(doc, ensure_ascii=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B:1",
                                                       special_tokens=[("<s>", tok.token_to_id("<s>"))])
    tok.decoder = decoders.Sequence([decoders.ByteFallback(),
                                     decoders.Metaspace(replacement="▁", prepend_scheme="first", split=False)])
    config = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "tokenizer_class": "PreTrainedTokenizerFast"}
    return tok, config


def build_added(corpus):
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=800, min_frequency=2, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok = train(tok, trainer, corpus)
    tok.add_special_tokens([
        AddedToken("<mask>", special=True, lstrip=True, normalized=False),
        AddedToken("<sep>", special=True, rstrip=True, normalized=False),
        AddedToken("[BOTH]", special=True, lstrip=True, rstrip=True, normalized=False),
        AddedToken("ΣΑΣ", special=True, normalized=True),
    ])
    tok.add_tokens([
        AddedToken("Hello World", normalized=True),
        AddedToken("<raw>", normalized=False),
        AddedToken("cat", single_word=True, normalized=False),
        AddedToken("Ünïcode", normalized=True),
        AddedToken("the", normalized=False, single_word=True, lstrip=True),
    ])
    tok.post_processor = processors.RobertaProcessing(("<sep>", tok.token_to_id("<sep>")),
                                                      ("<|endoftext|>", tok.token_to_id("<|endoftext|>")),
                                                      trim_offsets=False, add_prefix_space=True)
    config = {"bos_token": "<|endoftext|>", "eos_token": "<sep>", "tokenizer_class": "PreTrainedTokenizerFast"}
    return tok, config


def build_misc_a(corpus):
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.Sequence([normalizers.Strip(left=True, right=True), normalizers.NFKC(),
                                           normalizers.Replace(Regex(r"\s+"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split("-", behavior="merged_with_previous"),
        pre_tokenizers.Split(Regex(r"\d+"), behavior="merged_with_next"),
        pre_tokenizers.Punctuation(behavior="isolated"),
        pre_tokenizers.Split(Regex(r"[aeiou]"), behavior="merged_with_next", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, min_frequency=2, special_tokens=["[CLS]", "[SEP]"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok = train(tok, trainer, corpus)
    tok.post_processor = processors.BertProcessing(("[SEP]", tok.token_to_id("[SEP]")),
                                                   ("[CLS]", tok.token_to_id("[CLS]")))
    config = {"bos_token": "[CLS]", "eos_token": "[SEP]", "tokenizer_class": "PreTrainedTokenizerFast"}
    return tok, config


def build_misc_b(corpus):
    tok = Tokenizer(models.BPE(unk_token="[UNK]", fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True),
        pre_tokenizers.Split(Regex(r"[a-m]+"), behavior="contiguous", invert=True),
        pre_tokenizers.Digits(individual_digits=False),
    ])
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=400, min_frequency=2, special_tokens=["[UNK]"], limit_alphabet=40,
                                  show_progress=False)
    tok = train(tok, trainer, corpus)
    config = {"unk_token": "[UNK]", "tokenizer_class": "PreTrainedTokenizerFast"}
    return tok, config


def train_prefixed_bpe(words: dict[str, int], vocab_size: int, specials: list[str], prefix: str, suffix: str):
    """A small deterministic BPE trainer for the continuing_subword_prefix / end_of_word_suffix
    scheme (HF's trainer orders those symbols by hash, so its output changes from run to run).
    Ties between pair counts go to the lexicographically smallest pair."""
    def symbols(w):
        out = [(prefix if i else "") + c for i, c in enumerate(w)]
        out[-1] += suffix
        return out
    seqs = {w: symbols(w) for w in words}
    vocab = list(specials) + sorted({t for seq in seqs.values() for t in seq})
    merges = []
    while len(vocab) < vocab_size:
        counts = {}
        for w, seq in seqs.items():
            for a, b in zip(seq, seq[1:]):
                counts[(a, b)] = counts.get((a, b), 0) + words[w]
        if not counts:
            break
        (a, b), n = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        if n < 2:
            break
        new = a + b[len(prefix):]
        merges.append([a, b])
        if new not in vocab:
            vocab.append(new)
        for w, seq in seqs.items():
            i, out = 0, []
            while i < len(seq):
                if i + 1 < len(seq) and seq[i] == a and seq[i + 1] == b:
                    out.append(new)
                    i += 2
                else:
                    out.append(seq[i])
                    i += 1
            seqs[w] = out
    return {t: i for i, t in enumerate(vocab)}, merges


def build_misc_c(corpus):
    pre = pre_tokenizers.Sequence([pre_tokenizers.CharDelimiterSplit("|"), pre_tokenizers.Whitespace()])
    words: dict[str, int] = {}
    for line in corpus[:1500]:
        for w, _ in pre.pre_tokenize_str(line):
            words[w] = words.get(w, 0) + 1
    vocab, merges = train_prefixed_bpe(words, 600, ["<unk>", "[CLS]", "[SEP]"], "##", "</w>")
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[tuple(m) for m in merges], unk_token="<unk>",
                               continuing_subword_prefix="##", end_of_word_suffix="</w>"))
    tok.add_special_tokens(["<unk>", "[CLS]", "[SEP]"])
    tok.pre_tokenizer = pre
    tok.decoder = decoders.BPEDecoder(suffix="</w>")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    config = {"bos_token": "[CLS]", "eos_token": "[SEP]", "unk_token": "<unk>", "tokenizer_class": "PreTrainedTokenizerFast"}
    return tok, config


def bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def project_byte_level_json(special_tokens=("<s>", "</s>", "<pad>")) -> dict:
    """The same recipe as ByteLevelTokenizerBuilder.tokenizerJSON in Swift."""
    table = bytes_to_unicode()
    specials = [(t, 256 + i) for i, t in enumerate(special_tokens)]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}
    post = None
    if specials:
        bos, bos_id = specials[0]
        st = lambda type_id: {"SpecialToken": {"id": bos, "type_id": type_id}}
        seq = lambda name, type_id: {"Sequence": {"id": name, "type_id": type_id}}
        post = {"type": "TemplateProcessing", "single": [st(0), seq("A", 0)],
                "pair": [st(0), seq("A", 0), st(1), seq("B", 1)],
                "special_tokens": {bos: {"id": bos, "ids": [bos_id], "tokens": [bos]}}}
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for t, i in specials],
        "normalizer": None, "pre_tokenizer": byte_level, "post_processor": post, "decoder": dict(byte_level),
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {table[b]: b for b in range(256)}, "merges": []},
    }


def project_byte_level_config(special_tokens=("<s>", "</s>", "<pad>")) -> dict:
    tok = lambda i: special_tokens[i] if i < len(special_tokens) else None
    return {"add_bos_token": bool(special_tokens), "add_eos_token": False, "bos_token": tok(0), "eos_token": tok(1),
            "pad_token": tok(2), "unk_token": None, "clean_up_tokenization_spaces": False,
            "model_max_length": 1000000000, "tokenizer_class": "PreTrainedTokenizerFast"}


# ---------------------------------------------------------------------------------------------
# Recording


FAMILY_TEXTS = {
    "gpt2": ["<|endoftext|>The end.<|endoftext|>", " <|endoftext|> spaced <|endoftext|>"],
    "llama3": ["<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>",
               "The quick brown fox, Hello mixture attention router.", " quick quickly Quick"],
    "llama2": ["<s>[INST] Hi there [/INST]</s>", "<s> spaced <s>  double", "▁already▁metaspace ▁"],
    "llama2-metaspace": ["<s>[INST] Hi there [/INST]</s>", "<s> spaced <s>  double", "▁already▁metaspace ▁"],
    "added": ["<mask> hello <mask>there  <mask>", "a  <mask>b", "x<sep>   y <sep>", " [BOTH]  z [BOTH][BOTH]",
              "HELLO WORLD and hello world and Hello  World", "concatenate cat cat. (cat) cats _cat cat_",
              "<raw>RAW<RAW> <raw>", "ÜNÏCODE ünïcode Ünïcode", "σας ΣΑΣ ςας", "the theme, the  the\tthe",
              "12a34 5 6"],
    "misc-a": ["  spaced   out\t\ttext  ", "x-y-z 123abc456 -leading trailing-", "a.b,c!d?e(f)g"],
    "misc-b": ["Crème Brûlée à la carte", "zzz qqq xylophone 987 654", "ÅÄÖ åäö"],
    "misc-c": ["a|b|c words|in|pipes", "unbelievable unknown ⁂ ⁂⁂ tokens", "[CLS] inside [SEP]"],
    "bytes": ["<s>already has bos</s><pad>", "\u00ff\u00fe bytes"],
}


def record(name: str, tok: Tokenizer, config: dict) -> None:
    d = OUT / name
    d.mkdir(parents=True, exist_ok=True)
    tok.save(str(d / "tokenizer.json"))
    with open(d / "tokenizer_config.json", "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=2)
        f.write("\n")
    # Reload from disk: the fixture is what the file says, not what the Python object held.
    tok = Tokenizer.from_file(str(d / "tokenizer.json"))

    texts = COMMON_TEXTS + corpus_sample() + FAMILY_TEXTS.get(name, [])
    cases = []
    for text in texts:
        ids = tok.encode(text, add_special_tokens=True).ids
        ids_plain = tok.encode(text, add_special_tokens=False).ids
        decoded = tok.decode(ids, skip_special_tokens=False)
        cases.append({
            "text": text,
            "ids": ids,
            "ids_no_special": ids_plain,
            "decoded": decoded,
            "decoded_skip_special": tok.decode(ids, skip_special_tokens=True),
            "lossless": tok.decode(ids_plain, skip_special_tokens=False) == text,
        })

    # Decoding arbitrary id runs: partial UTF-8 sequences, special tokens, unknown ids.
    rng = random.Random(7)
    all_ids = [i for c in cases for i in c["ids"]]
    decode_cases = []
    for _ in range(40):
        if not all_ids:
            break
        k = rng.randrange(len(all_ids))
        run = all_ids[k:k + rng.randint(1, 6)]
        decode_cases.append(run)
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    decode_cases.append([vocab_size + 5, 0, vocab_size + 100])
    decode_cases.append(list(range(min(vocab_size, 300))))
    decodes = [{"ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False),
                "decoded_skip_special": tok.decode(ids, skip_special_tokens=True)} for ids in decode_cases]

    # BOS / EOS as transformers sees them (tokenizer_config.json + tokenizer.json).
    from transformers import AutoTokenizer
    hf = AutoTokenizer.from_pretrained(str(d))
    probe = tok.encode("probe", add_special_tokens=True).ids
    bos = hf.bos_token_id
    for text in texts[:5]:
        assert hf(text)["input_ids"] == tok.encode(text).ids, (name, text)

    vocab = tok.get_vocab(with_added_tokens=True)
    rng = random.Random(11)
    lookups = [{"token": t, "id": vocab[t]} for t in rng.sample(sorted(vocab), min(60, len(vocab)))]
    # HF's id_to_token gives the *normalized* content of a normalized added token (and decode
    # uses it), while token_to_id takes the original content.
    added = [{"id": i, "content": t.content, "token_to_id": tok.token_to_id(t.content), "id_to_token": tok.id_to_token(i)}
             for i, t in sorted(tok.get_added_tokens_decoder().items())]

    doc = {
        "name": name,
        "tokenizers_version": __import__("tokenizers").__version__,
        "vocab_size": vocab_size,
        "bos_token_id": bos,
        "eos_token_id": hf.eos_token_id,
        "adds_bos": bos is not None and len(probe) > 0 and probe[0] == bos,
        "cases": cases,
        "decode_cases": decodes,
        "lookups": lookups,
        "added_tokens": added,
    }
    with open(d / "cases.json", "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    size = sum(p.stat().st_size for p in d.iterdir())
    print(f"{name:18s} vocab {vocab_size:5d}  {len(cases)} cases  {size / 1024:.0f} KiB")


def main() -> None:
    corpus = make_corpus(1234, 4000)
    sp = sentencepiece_style_model(corpus)
    builders = {
        "gpt2": lambda: build_gpt2(corpus),
        "llama3": lambda: build_llama3(corpus),
        "llama2": lambda: build_llama2(sp),
        "llama2-metaspace": lambda: build_llama2_metaspace(sp),
        "added": lambda: build_added(corpus),
        "misc-a": lambda: build_misc_a(corpus),
        "misc-b": lambda: build_misc_b(corpus),
        "misc-c": lambda: build_misc_c(corpus),
        "bytes": lambda: (Tokenizer.from_str(json.dumps(project_byte_level_json(), ensure_ascii=False)),
                          project_byte_level_config()),
    }
    only = set(sys.argv[1:])
    for name, build in builders.items():
        if only and name not in only:
            continue
        tok, config = build()
        record(name, tok, config)
    # The project's tokenizer, exactly as the Swift builder writes it, for the Swift test to compare.
    (OUT / "bytes").mkdir(parents=True, exist_ok=True)
    with open(OUT / "bytes" / "expected_builder_output.json", "w", encoding="utf-8") as f:
        json.dump({"tokenizer": project_byte_level_json(), "config": project_byte_level_config()}, f,
                  ensure_ascii=False, indent=1)
        f.write("\n")
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"total {total / 1024:.0f} KiB in {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
