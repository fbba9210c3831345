#!/usr/bin/env python3
"""A learnability probe for the generated corpora (run by hand; numbers go into docs/corpora.md).

Trains an interpolated Witten-Bell character n-gram model on each domain's train split and reports
its cross-entropy in bits per byte on every domain's held-out split: a matrix whose rows are the
training domain and whose columns are the evaluation domain. If the domains are distinct and
learnable, each column's smallest entry is on the diagonal (the in-domain model), and the general
row is second-best on the domain columns (the seed saw a little of every domain).

Usage: tools/corpus_ngram.py [--order 3] [--train-bytes 1000000] [--eval-bytes 300000] [--seed 1]
                             [--bin .build/release/bam-mix]
"""
import argparse
import collections
import math
import subprocess

DOMAINS = ["general", "math", "code", "knowledge"]


def generate(binary, domain, split, nbytes, seed):
    return subprocess.run([binary, "corpus", "--domain", domain, "--split", split, "--bytes", str(nbytes),
                           "--seed", str(seed)], check=True, capture_output=True).stdout


class WittenBell:
    """P(c | h) = (C(h c) + T(h) P(c | h')) / (C(h) + T(h)), down to a uniform distribution over bytes."""

    def __init__(self, data, order):
        self.order = order
        # tables[k][context of length k] = Counter of next bytes
        self.tables = [collections.defaultdict(collections.Counter) for _ in range(order)]
        for i in range(len(data)):
            c = data[i]
            for k in range(order):
                if i >= k:
                    self.tables[k][data[i - k:i]][c] += 1
        self.totals = [{h: (sum(cnt.values()), len(cnt)) for h, cnt in t.items()} for t in self.tables]

    def prob(self, history, c):
        p = 1.0 / 256
        for k in range(self.order):
            if len(history) < k:
                break
            h = history[len(history) - k:] if k else b""
            stats = self.totals[k].get(h)
            if stats is None:
                continue
            total, types = stats
            p = (self.tables[k][h].get(c, 0) + types * p) / (total + types)
        return p

    def bits_per_byte(self, data):
        n = self.order - 1
        bits = 0.0
        for i in range(len(data)):
            bits -= math.log2(self.prob(data[max(0, i - n):i], data[i]))
        return bits / len(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--order", type=int, default=3, help="n of the n-gram (3: two bytes of context)")
    ap.add_argument("--train-bytes", type=int, default=1_000_000)
    ap.add_argument("--eval-bytes", type=int, default=300_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bin", default=".build/release/bam-mix")
    a = ap.parse_args()
    models = {d: WittenBell(generate(a.bin, d, "train", a.train_bytes, a.seed), a.order) for d in DOMAINS}
    heldout = {d: generate(a.bin, d, "heldout", a.eval_bytes, a.seed + 1000) for d in DOMAINS}
    matrix = {(t, e): models[t].bits_per_byte(heldout[e]) for t in DOMAINS for e in DOMAINS}
    print(f"character {a.order}-gram (Witten-Bell), bits per byte; rows: trained on (train split, "
          f"{a.train_bytes} B), columns: evaluated on (held-out split, {a.eval_bytes} B)\n")
    print("| trained on \\ evaluated on | " + " | ".join(DOMAINS) + " |")
    print("|---|" + "---|" * len(DOMAINS))
    for t in DOMAINS:
        cells = []
        for e in DOMAINS:
            best = min(DOMAINS, key=lambda x: matrix[(x, e)])
            v = f"{matrix[(t, e)]:.3f}"
            cells.append(f"**{v}**" if best == t else v)
        print(f"| {t} | " + " | ".join(cells) + " |")
    diagonal_wins = all(min(DOMAINS, key=lambda x: matrix[(x, e)]) == e for e in DOMAINS)
    print(f"\ndiagonal lowest in every column: {diagonal_wins}")
    for e in DOMAINS[1:]:
        print(f"{e}: expert {matrix[(e, e)]:.3f} vs general (seed) {matrix[('general', e)]:.3f} bits/byte "
              f"(perplexity per byte {2 ** matrix[(e, e)]:.2f} vs {2 ** matrix[('general', e)]:.2f})")


if __name__ == "__main__":
    main()
