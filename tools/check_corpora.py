#!/usr/bin/env python3
"""Checks the generated corpora with Python itself (run by hand, not in CI; tests need no Python).

  code: every document parses with `ast`, and runs (each in a fresh namespace, stdout discarded,
        2 s limit) without an exception;
  math: every "=" chunk evaluates to equal values with exact fractions, independently of the Swift
        checker in Tests/BamMixTests/CorpusTests.swift.

Usage: tools/check_corpora.py [--bytes N] [--seed S] [--bin .build/release/bam-mix]
"""
import argparse
import ast
import collections
import contextlib
import io
import re
import signal
import subprocess
import sys
from fractions import Fraction


def generate(binary, domain, split, nbytes, seed):
    out = subprocess.run([binary, "corpus", "--domain", domain, "--split", split, "--bytes", str(nbytes),
                          "--seed", str(seed)], check=True, capture_output=True).stdout.decode()
    return [d for d in out.split("\n\n") if d.strip()]


class Timeout(Exception):
    pass


def check_code(docs):
    failures = collections.Counter()
    examples = {}
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(Timeout()))
    for doc in docs:
        try:
            ast.parse(doc)
        except SyntaxError as e:
            failures["SyntaxError"] += 1
            examples.setdefault("SyntaxError", (doc, e))
            continue
        signal.alarm(2)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(doc, "<corpus>", "exec"), {"__name__": "__main__"})
        except Exception as e:  # noqa: BLE001 - we count every kind
            failures[type(e).__name__] += 1
            examples.setdefault(type(e).__name__, (doc, e))
        finally:
            signal.alarm(0)
    return failures, examples


CHUNK = re.compile(r": |, |\. |\.$|\?$")
PURE = re.compile(r"^[0-9a-z +\-*/()=]+$")


def to_python(expr):
    # implicit multiplication: 3x, 3(x), )( , x(
    expr = re.sub(r"(\d)([a-z(])", r"\1*\2", expr)
    expr = re.sub(r"\)([0-9a-z(])", r")*\1", expr)
    expr = re.sub(r"(\d+)", r"Fraction(\1)", expr)
    return expr


def check_math(docs):
    checked = bad = 0
    examples = []
    for doc in docs:
        env = {}
        for line in doc.split("\n"):
            if line.startswith("Answer: "):
                for m in re.finditer(r"\b([a-z]) = (-?\d+)\b", line):
                    env[m.group(1)] = Fraction(int(m.group(2)))
        for line in doc.split("\n"):
            for chunk in CHUNK.split(line):
                if "=" not in chunk:
                    continue
                if not PURE.match(chunk) or re.search(r"[a-z]{2}", chunk):
                    bad += 1
                    examples.append((doc, chunk, "not pure arithmetic"))
                    continue
                values = [eval(to_python(side), {"Fraction": Fraction}, dict(env)) for side in chunk.split("=")]
                checked += 1
                if any(v != values[0] for v in values):
                    bad += 1
                    examples.append((doc, chunk, values))
    return checked, bad, examples


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bytes", type=int, default=300_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bin", default=".build/release/bam-mix")
    a = ap.parse_args()
    ok = True
    for split in ("train", "heldout"):
        docs = generate(a.bin, "code", split, a.bytes, a.seed)
        failures, examples = check_code(docs)
        print(f"code/{split}: {len(docs)} modules, {sum(failures.values())} failed {dict(failures)}")
        for kind, (doc, e) in examples.items():
            ok = False
            print(f"--- {kind}: {e}\n{doc}\n")
        docs = generate(a.bin, "math", split, a.bytes, a.seed)
        checked, bad, examples = check_math(docs)
        print(f"math/{split}: {len(docs)} problems, {checked} equalities checked, {bad} wrong")
        for doc, chunk, why in examples[:5]:
            ok = False
            print(f"--- {chunk!r}: {why}\n{doc}\n")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
