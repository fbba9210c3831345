"""The data pipeline draws bam-mix's batches token for token."""

import json
import os

import numpy as np
import pytest

from conftest import FIXTURES
from bam_mix_torch.data import BatchDump, Domain, DomainSpec, SplitMix64, TrainingData, domain_specs

FINETUNE = os.path.join(FIXTURES, "finetune")
CASES = sorted(os.listdir(FINETUNE))


def test_splitmix64_reference_values():
    # SplitMix64 from seed 0 (Steele, Lea & Flood; the outputs of Vigna's reference C code).
    g = SplitMix64(0)
    assert [g.next() for _ in range(3)] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    g = SplitMix64(0)
    assert g.uniform() == (0xE220A8397B1DCDAF >> 40) / 2**24


def test_domain_parsing():
    assert DomainSpec.parse("math=data/m.txt:0.3", "d") == DomainSpec("math", ["data/m.txt"], 0.3)
    assert DomainSpec.parse("data/m.txt", "d") == DomainSpec("d", ["data/m.txt"], 1.0)
    # "=" inside a path is not a name; a non-number after the last colon is part of the file name.
    assert DomainSpec.parse("a/b=c.txt", "d") == DomainSpec("d", ["a/b=c.txt"], 1.0)
    assert DomainSpec.parse("x=c:drive.txt", "d") == DomainSpec("x", ["c:drive.txt"], 1.0)
    with pytest.raises(ValueError, match="positive"):
        DomainSpec.parse("m=f.txt:0", "d")
    specs = domain_specs(["m=a.txt", "m=b.txt", "c=c.txt:2"], ["m=v.txt"])
    assert [(s.name, s.files, s.weight, s.validation_files) for s in specs] == [
        ("m", ["a.txt", "b.txt"], 1.0, ["v.txt"]), ("c", ["c.txt"], 2.0, None)]
    with pytest.raises(ValueError, match="no --data domain"):
        domain_specs(["m=a.txt", "c=c.txt"], ["x=v.txt"])


@pytest.mark.parametrize("case", CASES)
def test_sampler_reproduces_bam_mix_batches(case):
    """The batches bam-mix finetune dumped (tools/make_finetune_fixtures.py) are the ones the package's
    sampler draws from the same files, seed and shape."""
    d = os.path.join(FINETUNE, case)
    with open(os.path.join(d, "finetune_args.json")) as f:
        args = json.load(f)
    flags = {args[i]: args[i + 1] for i in range(len(args) - 1) if args[i].startswith("--") and not args[i + 1].startswith("--")}
    data = [args[i + 1] for i, a in enumerate(args) if a == "--data"]
    specs = domain_specs([s.split("=")[0] + "=" + os.path.join(d, s.split("=")[1]) for s in data])
    training = TrainingData.from_specs(specs, os.path.join(d, "model", "tokenizer.json"))
    dump = BatchDump.load(os.path.join(d, "batches.npy"))
    B, T, A = int(flags["--batch"]), int(flags["--seq"]), int(flags.get("--accumulate", 1))
    assert (dump.batch_size, dump.sequence_length, dump.accumulation, dump.steps) == (B, T, A, int(flags["--steps"]))
    rng = SplitMix64(int(flags["--seed"]))
    for step in range(dump.steps):
        for a, (inputs, targets) in enumerate(dump.micro_batches(step)):
            x, y = training.sample_batch(B, T, rng)
            assert np.array_equal(x, inputs), f"step {step + 1} micro-batch {a + 1}: inputs differ"
            assert np.array_equal(y, targets), f"step {step + 1} micro-batch {a + 1}: targets differ"


def test_short_streams_are_padded_and_unscored():
    data = TrainingData([Domain("d", 1.0, [[5, 6, 7]])])
    x, y = data.sample_batch(2, 6, SplitMix64(1))
    assert x.tolist() == [[5, 6, 7, 0, 0, 0]] * 2
    assert y.tolist() == [[6, 7, -1, -1, -1, -1]] * 2


def test_batch_dump_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    batches = [[(rng.integers(0, 9, (2, 3)), rng.integers(-1, 9, (2, 3))) for _ in range(2)] for _ in range(3)]
    path = str(tmp_path / "b.npy")
    BatchDump.save(path, batches)
    dump = BatchDump.load(path)
    assert (dump.steps, dump.accumulation, dump.batch_size, dump.sequence_length) == (3, 2, 2, 3)
    for s in range(3):
        for (x, y), (a, b) in zip(dump.micro_batches(s), batches[s]):
            assert np.array_equal(x, a) and np.array_equal(y, b)


def test_gumbel_noise_is_bam_mix_noise():
    """The seeded Gumbel noise of sampled top-1 routing: the values bam-mix's TrainingModel draws
    (Tests/BamMixTests/RoutingTests.swift, `seededNoise`, holds the same numbers)."""
    from bam_mix_torch.data import gumbel_noise
    g = gumbel_noise(5, 2, 1, 3, 2, 3)
    assert g.dtype == np.float32 and g.shape == (2, 3)
    assert g.ravel().tolist() == [0.8895124197006226, -0.22905971109867096, 3.022806167602539, 1.2952001094818115,
                                  1.5540416240692139, 1.0367470979690552]


def test_token_mask_marks_padding_after_a_streams_end():
    from bam_mix_torch.data import token_mask
    targets = np.array([[5, 6, 7, 8], [5, 6, -1, -1], [-1, -1, -1, -1]])
    assert token_mask(targets).tolist() == [[True] * 4, [True, True, True, False], [True, False, False, False]]
