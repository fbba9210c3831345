"""The package's forward pass equals bam-mix's, and what `bam-mix mix` writes loads in transformers
with no extra step (BAM through its auto_map and model code, BTX as Mixtral) and generates with the
KV cache."""

import json
import os
import shlex
import sys

import numpy as np
import pytest
import torch

from conftest import FIXTURES, HERE, run
from bam_mix_torch import BamConfig, BamForCausalLM
from bam_mix_torch.compat import from_pretrained_kwargs
from bam_mix_torch.models import TrainableMixture

BAM_FIXTURES = sorted(d for d in os.listdir(os.path.join(FIXTURES, "bam")) if os.path.isdir(os.path.join(FIXTURES, "bam", d)))
MIX_FIXTURES = sorted(d for d in os.listdir(os.path.join(FIXTURES, "mix"))
                      if os.path.isfile(os.path.join(FIXTURES, "mix", d, "command.txt")))
TOLERANCE = 1e-4


def bam_mix_logits(bam_mix, model_dir, ids, tmp_path):
    out = str(tmp_path / "logits.npy")
    run([bam_mix, "forward", "--model", model_dir, "--ids", ",".join(map(str, ids)), "--logits-out", out])
    return np.load(out)


@pytest.mark.parametrize("name", BAM_FIXTURES)
def test_bam_fixture_logits(name, bam_mix, tmp_path):
    """Tests/Fixtures/bam: the package's BamForCausalLM against bam-mix's forward and the committed
    reference logits (which bam-mix's own tests hold to 1e-4)."""
    d = os.path.join(FIXTURES, "bam", name)
    ids = np.load(os.path.join(d, "ids.npy")).tolist()
    model = BamForCausalLM.from_pretrained(d, config=BamConfig.from_pretrained(d), **from_pretrained_kwargs(torch.float32))
    with torch.no_grad():
        logits = model(torch.tensor([ids]), use_cache=False).logits[0].numpy()
    ours = bam_mix_logits(bam_mix, d, ids, tmp_path)
    assert np.abs(logits - ours).max() <= TOLERANCE
    assert np.abs(logits - np.load(os.path.join(d, "logits.npy"))).max() <= TOLERANCE


def mix(bam_mix, name, out):
    """Runs Tests/Fixtures/mix/<name>/command.txt (paths relative to Tests/Fixtures/mix) into `out`."""
    with open(os.path.join(FIXTURES, "mix", name, "command.txt")) as f:
        args = shlex.split(f.read())
    root = os.path.join(FIXTURES, "mix")
    args = [os.path.join(root, a) if a.startswith("experts/") else a for a in args]
    run([bam_mix, *args, "--out", out])


@pytest.mark.parametrize("name", MIX_FIXTURES)
def test_mixes_load_in_transformers(name, bam_mix, tmp_path):
    """`AutoModelForCausalLM.from_pretrained(out, trust_remote_code=True)` on a fresh `bam-mix mix`
    output with no other step, in a process that does not import this package (transformers_load.py):
    BAM runs on the model code `mix` wrote beside it, BTX-as-Mixtral on transformers' own. Its logits
    are bam-mix's and the committed transformers logits; generate() feeds one token per step after
    the prompt (the KV cache holds the rest) and gives greedy decoding's tokens."""
    out = str(tmp_path / "mixed")
    mix(bam_mix, name, out)
    ids = np.load(os.path.join(FIXTURES, "mix", name, "ids.npy")).tolist()
    logits_path = str(tmp_path / "hf.npy")
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    p = run([sys.executable, os.path.join(HERE, "transformers_load.py"), out, ",".join(map(str, ids)), logits_path],
            cwd=str(tmp_path), env=env)
    report = json.loads(p.stdout.strip().splitlines()[-1])
    is_bam = os.path.isfile(os.path.join(out, "modeling_bam.py"))
    with open(os.path.join(out, "config.json")) as f:
        config = json.load(f)
    if is_bam:
        assert config["auto_map"]["AutoModelForCausalLM"] == "modeling_bam.BamForCausalLM"
        assert report["class"] == "BamForCausalLM" and report["module"].startswith("transformers_modules"), report
    else:
        assert "auto_map" not in config and report["class"] == "MixtralForCausalLM", report
    logits = np.load(logits_path)
    assert np.abs(logits - bam_mix_logits(bam_mix, out, ids, tmp_path)).max() <= TOLERANCE
    assert np.abs(logits - np.load(os.path.join(FIXTURES, "mix", name, "hf_logits.npy"))).max() <= TOLERANCE
    assert report["generate_input_lengths"] == [6] + [1] * 7
    assert report["generated"] == report["greedy"]


def test_mixtral_config_in_transformers_5_form(bam_mix, tmp_path):
    """A Mixtral config.json that states RoPE only as transformers 5's `rope_parameters` (the finetune
    fixture's: mixed from experts saved by transformers 5, before bam-mix wrote the classic keys) runs
    in the package with bam-mix's RoPE under every supported transformers; transformers 4 by itself
    would give it Mixtral's default theta of 1e6 (compat.mixtral_config)."""
    d = os.path.join(FIXTURES, "finetune", "btx_llama_mixtral", "model")
    with open(os.path.join(d, "config.json")) as f:
        config = json.load(f)
    assert config["rope_parameters"]["rope_theta"] == 10000 and "rope_theta" not in config
    mixture = TrainableMixture.load(d)
    mixture.model.eval()
    ids = list(range(3, 40))
    with torch.no_grad():
        logits, _ = mixture.forward(torch.tensor([ids]))
    assert np.abs(logits[0].numpy() - bam_mix_logits(bam_mix, d, ids, tmp_path)).max() <= TOLERANCE
