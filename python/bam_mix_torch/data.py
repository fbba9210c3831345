"""Training data exactly as `bam-mix finetune` builds it (Sources/BamTraining/TrainingData.swift).

Each text file is tokenised with the model's tokenizer.json (special tokens as its post-processor adds
them) into one token stream; unless held-out files are given, the last `validation_fraction` of each
stream is held out. A training batch is B windows of T + 1 tokens drawn from a SplitMix64 generator:
for each window a domain by weight, then a file in proportion to its number of window starts, then a
start uniformly. The same seed therefore gives bam-mix's batches token for token, and a batch dump
written by `bam-mix finetune --dump-batches F.npy` can be read back instead (`BatchDump`).
"""

import math
import os
import re
from dataclasses import dataclass, field

import numpy as np

MASK64 = (1 << 64) - 1


class SplitMix64:
    """bam-mix's generator (Sources/BamModels/CheckpointWriter.swift): the state advances by the golden
    gamma and each output is the state mixed by two multiply-xorshift rounds."""

    def __init__(self, seed):
        self.state = int(seed) & MASK64

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def uniform(self):
        """Uniform in [0, 1): the top 24 bits over 2^24 (bam-mix computes it in float32, where it is exact)."""
        return (self.next() >> 40) * (1.0 / 16777216.0)


def token_mask(targets):
    """The token mask (True: a token, False: padding) of windows [B, T] as bam-mix's TrainingData pads
    them: a window cut short by the end of its stream has inputs 0 past the stream's last token,
    whose target is the window's first -1; so a position is padding when the previous one's target is
    -1 (targets are -1 nowhere else in a training window)."""
    mask = np.ones(targets.shape, dtype=bool)
    mask[:, 1:] = targets[:, :-1] >= 0
    return mask


def gumbel_noise(seed, step, micro_batch, layer, n, e):
    """bam-mix's Gumbel noise for sampled top-1 routing (TrainingModel's `.seeded` source): n x e
    samples -log(-log u) from a SplitMix64 seeded by (seed, step, micro-batch, layer), u the 24-bit
    draws offset by half a step (float32 [n, e])."""
    mix = (int(seed) ^ ((step * 0x9E3779B97F4A7C15) & MASK64) ^ ((micro_batch * 0xC2B2AE3D27D4EB4F) & MASK64)
           ^ ((layer * 0x165667B19E3779F9) & MASK64)) & MASK64
    rng = SplitMix64(mix)
    u = np.array([((rng.next() >> 40) + 0.5) / 16777216.0 for _ in range(n * e)], dtype=np.float64)
    return (-np.log(-np.log(u))).astype(np.float32).reshape(n, e)


# ------------------------------------------------------------------------------------------------
# Domains: NAME=FILE[:WEIGHT]
# ------------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


@dataclass
class DomainSpec:
    """One domain of `--data`: a name, its files, a sampling weight and optional held-out files."""

    name: str
    files: list
    weight: float = 1.0
    validation_files: list | None = None

    @staticmethod
    def parse(text, default_name):
        """`NAME=FILE[:WEIGHT]` or a bare `FILE` (domain `default_name`); the weight is what follows the
        last colon when it is a number, as bam-mix parses it."""
        name, rest = default_name, text
        eq = text.find("=")
        if eq >= 0 and "/" not in text[:eq]:
            name, rest = text[:eq], text[eq + 1 :]
        weight = 1.0
        colon = rest.rfind(":")
        if colon >= 0 and _NUMBER.match(rest[colon + 1 :]):
            weight = float(rest[colon + 1 :])
            if not (weight > 0 and math.isfinite(weight)):
                raise ValueError(f"`{text}`: the domain weight must be a positive number, found {weight}")
            rest = rest[:colon]
        if not name or not rest:
            raise ValueError(f"`{text}`: expected NAME=FILE[:WEIGHT] (e.g. math=data/math.txt:0.3) or FILE")
        return DomainSpec(name=name, files=[rest], weight=weight)


def domain_specs(data, val_data=(), default_name="data"):
    """The domains of `--data` (a name given twice gathers its files) with the held-out files of
    `--val-data` (FILE when there is one domain, or NAME=FILE) — bam-mix's `domainSpecs`."""
    specs = []
    for d in data:
        s = DomainSpec.parse(d, default_name)
        same = [x for x in specs if x.name == s.name]
        if same:
            if s.weight != 1 and s.weight != same[0].weight:
                raise ValueError(f"domain `{s.name}` has two weights ({same[0].weight} and {s.weight})")
            same[0].files += s.files
        else:
            specs.append(s)
    for v in val_data:
        s = DomainSpec.parse(v, specs[0].name if len(specs) == 1 else "")
        same = [x for x in specs if x.name == s.name]
        if not same:
            raise ValueError(f"--val-data `{v}`: no --data domain is named `{s.name}`")
        same[0].validation_files = (same[0].validation_files or []) + s.files
    return specs


# ------------------------------------------------------------------------------------------------
# Token streams and batches
# ------------------------------------------------------------------------------------------------


def _round_half_away(x):
    """Swift's `rounded()` (to nearest, ties away from zero) for x >= 0."""
    f = math.floor(x)
    return int(f + 1) if x - f >= 0.5 else int(f)


@dataclass
class Domain:
    name: str
    weight: float
    train: list  # one list of token ids per training file
    validation: list = field(default_factory=list)  # one per held-out file (or held-out tail)


class TrainingData:
    """Token streams for training and validation with bam-mix's seeded window sampling."""

    def __init__(self, domains):
        if not domains:
            raise ValueError("no training data: give at least one --data file")
        kept = []
        for d in domains:
            if not d.weight > 0:
                raise ValueError(f"domain `{d.name}` has weight {d.weight}; weights must be positive")
            # A stream of fewer than 2 tokens holds no (input, next token) pair.
            d.train = [s for s in d.train if len(s) >= 2]
            if not d.train:
                raise ValueError(f"domain `{d.name}` has no training text (every file tokenises to fewer than 2 tokens)")
            kept.append(d)
        self.domains = kept

    @staticmethod
    def from_specs(specs, tokenizer_path, validation_fraction=0.05):
        """Tokenises every file with the tokenizer.json at `tokenizer_path` (HF tokenizers, whose ids
        bam-mix's tokenizer reproduces); holds out the last `validation_fraction` of each training
        file when its domain has no held-out files of its own."""
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(tokenizer_path))

        def tokens(path):
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
            except (OSError, UnicodeDecodeError) as e:
                raise ValueError(f"{path}: cannot read as UTF-8 text ({e})") from None
            return tokenizer.encode(text, add_special_tokens=True).ids

        domains = []
        for spec in specs:
            if any(d.name == spec.name for d in domains):
                raise ValueError(f"domain `{spec.name}` is given twice; give each name once")
            train = [tokens(p) for p in spec.files]
            if spec.validation_files is not None:
                validation = [tokens(p) for p in spec.validation_files]
            else:
                validation = []
                for i, stream in enumerate(train):
                    held = _round_half_away(len(stream) * validation_fraction)
                    if held < 2 or len(stream) - held < 2:
                        raise ValueError(
                            f"{spec.files[i]}: {len(stream)} tokens are too few to hold out "
                            f"{int(validation_fraction * 100)}% for validation; give more text or --val-data"
                        )
                    validation.append(stream[len(stream) - held :])
                    train[i] = stream[: len(stream) - held]
            domains.append(Domain(spec.name, spec.weight, train, validation))
        return TrainingData(domains)

    @property
    def training_tokens(self):
        return sum(len(s) for d in self.domains for s in d.train)

    def sample_batch(self, B, T, rng):
        """B random windows as (inputs, targets), int64 arrays [B, T]; a stream shorter than T + 1
        tokens gives a window padded with input 0 and target -1 (not scored)."""
        inputs = np.zeros((B, T), dtype=np.int64)
        targets = np.full((B, T), -1, dtype=np.int64)
        total_weight = 0.0
        for d in self.domains:
            total_weight += d.weight
        for b in range(B):
            r = rng.uniform() * total_weight
            chosen = len(self.domains) - 1
            for i, d in enumerate(self.domains):
                if r < d.weight:
                    chosen = i
                    break
                r -= d.weight
            streams = self.domains[chosen].train
            # A stream of n tokens has n - T starts for a full window of T + 1 tokens (at least one).
            starts = [max(1, len(s) - T) for s in streams]
            s = rng.next() % sum(starts)
            f = 0
            while s >= starts[f]:
                s -= starts[f]
                f += 1
            _window(streams[f], s, T, inputs[b], targets[b])
        return inputs, targets

    def validation_batches(self, domain, B, T, max_windows):
        """The fixed validation windows of domain index `domain`: consecutive windows of T + 1 tokens
        (stride T) over each held-out stream, at most `max_windows`, in batches of B (the last padded
        with unscored windows). Yields (inputs, targets, windows)."""
        windows = []
        for stream in self.domains[domain].validation:
            if len(stream) < 2:
                continue
            start = 0
            while start + 1 < len(stream) and len(windows) < max_windows:
                windows.append((stream, start))
                start += T
            if len(windows) >= max_windows:
                break
        for chunk in range(0, len(windows), B):
            part = windows[chunk : chunk + B]
            inputs = np.zeros((B, T), dtype=np.int64)
            targets = np.full((B, T), -1, dtype=np.int64)
            for row, (stream, start) in enumerate(part):
                _window(stream, start, T, inputs[row], targets[row])
            yield inputs, targets, len(part)


def _window(stream, start, T, inputs_row, targets_row):
    """tokens[start ..< start+T] as inputs and tokens[start+1 ... start+T] as targets; past the end of
    the stream input 0 and target -1."""
    n = len(stream)
    for t in range(T):
        i = start + t
        inputs_row[t] = stream[i] if i < n else 0
        targets_row[t] = stream[i + 1] if i + 1 < n else -1


# ------------------------------------------------------------------------------------------------
# Batch dumps: `--dump-batches F.npy`
# ------------------------------------------------------------------------------------------------


class BatchDump:
    """The token batches of a run as written by `bam-mix finetune --dump-batches F.npy` (and by this
    package's finetune): one int32 .npy of shape [steps, accumulation, 2, B, T] where [s, a, 0] are
    the inputs and [s, a, 1] the targets (-1: not scored) of micro-batch a of the run's step s."""

    def __init__(self, array):
        if array.ndim != 5 or array.shape[2] != 2:
            raise ValueError(f"a batch dump has shape [steps, accumulation, 2, B, T], found {list(array.shape)}")
        self.array = array

    @staticmethod
    def load(path):
        return BatchDump(np.load(path))

    @property
    def steps(self):
        return self.array.shape[0]

    @property
    def accumulation(self):
        return self.array.shape[1]

    @property
    def batch_size(self):
        return self.array.shape[3]

    @property
    def sequence_length(self):
        return self.array.shape[4]

    def micro_batches(self, step_index):
        """[(inputs, targets)] of the run's step `step_index` (0-based), int64 [B, T] each."""
        return [(m[0].astype(np.int64), m[1].astype(np.int64)) for m in self.array[step_index]]

    @staticmethod
    def save(path, batches):
        """Writes `batches` (per step, a list of (inputs, targets)) atomically."""
        array = np.array([[np.stack([i, t]) for i, t in step] for step in batches], dtype=np.int32)
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "wb") as f:
            np.save(f, array)
        os.replace(tmp, path)
