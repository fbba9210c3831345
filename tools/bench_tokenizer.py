#!/usr/bin/env python3
"""Encoding speed of BamTokenizers against HF `tokenizers` (Rust), single thread.

Trains (once, cached in the work directory) a 32k byte-level BPE (GPT-2 style: ByteLevel
pre-tokenizer with GPT-2's regex) on ~4 MB of generated text, writes a different ~1 MB text, times
HF's `Tokenizer.encode` on the whole text (best of N, TOKENIZERS_PARALLELISM=false,
RAYON_NUM_THREADS=1), then runs

    swift run -c release --scratch-path .build-tok BamBench tokenizer <tokenizer.json> <text> --runs N --ids-out <file>

from the repository root, checks that the Swift ids equal HF's, and prints both speeds and the ratio
(Swift MB/s over HF MB/s; the target is >= 0.5). Run by hand, not in CI (`tools/bench tokenizer`
runs it against its own release build):

    tools/setup-peers   # once: tokenizers in the peers' venv (this script runs itself under it)
    python3 tools/bench_tokenizer.py [--workdir DIR] [--runs 5] [--mb 1.0]
        [--swift-cmd "path/to/executable"]   # another build of the same benchmark entry point
"""

import argparse
import os
import random
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAYON_NUM_THREADS"] = "1"

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
# The peers (the tools compared against) live outside the checkout, where tools/setup-peers installs them.
import peers  # noqa: E402

peers.require("tokenizers")
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402

SYLLABLES = ("ka lo mi ne ru ta sha pe dor lin qu bre st the an ing ion er ou ar al en or es ed it is at ra "
             "ti co ve ma po de si na le ri mo ga be fu zo vi ha ke ul om ex pro con tra").split()
CJK = "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持音".strip()


def make_words(rng: random.Random, n: int) -> list[str]:
    words = set()
    while len(words) < n:
        k = rng.choice([1, 2, 2, 3, 3, 3, 4, 5])
        w = "".join(rng.choice(SYLLABLES) for _ in range(k))
        words.add(w)
    return sorted(words)


def make_text(seed: int, target_bytes: int, words: list[str]) -> str:
    """Zipf-distributed pseudo-words in sentences, with code, numbers, URLs and some CJK/accents."""
    rng = random.Random(seed)
    cum, total = [], 0.0
    for r in range(len(words)):
        total += 1.0 / (r + 1)
        cum.append(total)
    parts: list[str] = []
    size = 0
    while size < target_bytes:
        r = rng.random()
        if r < 0.08:
            name = rng.choice(words[:2000])
            line = rng.choice([
                f"def {name}(self, x, y=None):\n\tif x is None:\n\t\treturn {rng.randint(0, 999)}\n    return x + y\n",
                f"for (int i = 0; i < {rng.randint(1, 4096)}; ++i) {{ {name}[i] = i * 2; }}\n",
                f"    \"{name}\": [{rng.randint(0, 99)}, {rng.random():.4f}, null, true],\n",
                f"https://example.org/{name}/{rng.randint(1, 99999)}?q={name}&lang=en\n",
            ])
        elif r < 0.11:
            line = "".join(rng.choice(CJK) for _ in range(rng.randint(5, 40))) + "。\n"
        else:
            n = rng.randint(5, 25)
            ws = rng.choices(words, cum_weights=cum, k=n)
            if rng.random() < 0.3:
                ws[rng.randrange(n)] = rng.choice(["café", "naïve", "Zürich", "Ångström", "São", "Paulo", "crème"])
            if rng.random() < 0.2:
                ws[rng.randrange(n)] = str(rng.randint(0, 10 ** rng.randint(1, 7)))
            if rng.random() < 0.2:
                ws[rng.randrange(n)] = rng.choice(["it's", "don't", "we'll", "they're", "I'd", "you've"])
            s = " ".join(ws)
            line = s[0].upper() + s[1:] + rng.choice([". ", ", ", "! ", "? ", ".\n", ".\n\n", "; "])
        parts.append(line)
        size += len(line.encode("utf-8"))
    return "".join(parts)


def prepare(workdir: Path, vocab_size: int, mb: float) -> tuple[Path, Path]:
    words = make_words(random.Random(5), 60000)
    tok_path = workdir / f"bytelevel-{vocab_size}.tokenizer.json"
    text_path = workdir / f"text-{mb:g}MB.txt"
    if not tok_path.exists():
        corpus = make_text(1, 4_000_000, words).splitlines()
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=["<|endoftext|>"],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
        t0 = time.time()
        tok.train_from_iterator(corpus, trainer=trainer)
        tok.save(str(tok_path))
        print(f"trained {tok.get_vocab_size()} tokens in {time.time() - t0:.1f} s -> {tok_path}")
    if not text_path.exists():
        text_path.write_text(make_text(2, int(mb * 1_000_000), words), encoding="utf-8")
    return tok_path, text_path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bam-tokenizer-bench")
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--mb", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--swift-cmd", default="swift run -c release --scratch-path .build-tok BamBench tokenizer",
                    help="command that runs the Swift benchmark entry point (tokenizer.json and text are appended)")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    tok_path, text_path = prepare(args.workdir, args.vocab, args.mb)

    tok = Tokenizer.from_file(str(tok_path))
    text = text_path.read_text(encoding="utf-8")
    megabytes = len(text.encode("utf-8")) / 1e6
    hf_ids = tok.encode(text).ids  # warm-up
    best = float("inf")
    for _ in range(args.runs):
        t0 = time.perf_counter()
        hf_ids = tok.encode(text).ids
        best = min(best, time.perf_counter() - t0)
    hf_speed = megabytes / best
    print(f"HF tokenizers {__import__('tokenizers').__version__}: {tok.get_vocab_size()} tokens, "
          f"{megabytes:.2f} MB -> {len(hf_ids)} ids, encode {best:.4f} s (best of {args.runs}), {hf_speed:.2f} MB/s")

    ids_path = args.workdir / "swift_ids.txt"
    cmd = shlex.split(args.swift_cmd) + [str(tok_path), str(text_path), "--runs", str(args.runs), "--ids-out", str(ids_path)]
    print("$ " + " ".join(shlex.quote(c) for c in cmd))
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        print(out.stdout + out.stderr)
        return 1
    print(out.stdout.strip())
    m = re.search(r"encode: ([0-9.]+) s .*?, ([0-9.]+) MB/s", out.stdout)
    if not m:
        print("could not parse the Swift output")
        return 1
    swift_speed = float(m.group(2))
    swift_ids = [int(x) for x in ids_path.read_text().split()]
    same = swift_ids == hf_ids
    if not same:
        i = next((k for k, (a, b) in enumerate(zip(swift_ids, hf_ids)) if a != b), min(len(swift_ids), len(hf_ids)))
        print(f"IDS DIFFER at position {i}: swift {swift_ids[i:i + 5]} vs HF {hf_ids[i:i + 5]}")
    print(f"ids identical: {same}")
    print(f"ratio (Swift / HF speed): {swift_speed / hf_speed:.2f}x")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
