"""The package's forward pass equals bam-mix's, and what `bam-mix mix` writes loads in transformers
with no extra step (BAM through its auto_map and model code, BTX as Mixtral) and generates with the
KV cache."""

import os
import shlex

import numpy as np
import pytest
import torch
import transformers

from conftest import FIXTURES, run
from bam_mix_torch import BamConfig, BamForCausalLM
from bam_mix_torch.compat import from_pretrained_kwargs

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
    output, with no other step: its logits are bam-mix's and the committed transformers logits."""
    out = str(tmp_path / "mixed")
    mix(bam_mix, name, out)
    ids = np.load(os.path.join(FIXTURES, "mix", name, "ids.npy")).tolist()
    model = transformers.AutoModelForCausalLM.from_pretrained(out, trust_remote_code=True, **from_pretrained_kwargs(torch.float32))
    is_bam = type(model).__name__ == "BamForCausalLM"
    assert is_bam == os.path.isfile(os.path.join(out, "modeling_bam.py"))
    if is_bam:
        # The class comes from the checkpoint's own file (remote code), not from this package.
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    with torch.no_grad():
        logits = model(torch.tensor([ids]), use_cache=False).logits[0].float().numpy()
    assert np.abs(logits - bam_mix_logits(bam_mix, out, ids, tmp_path)).max() <= TOLERANCE
    assert np.abs(logits - np.load(os.path.join(FIXTURES, "mix", name, "hf_logits.npy"))).max() <= TOLERANCE


def test_generate_uses_the_cache(bam_mix, tmp_path):
    """generate() on a BAM mix: after the prompt each forward gets one new token (the cache holds the
    rest), and the tokens are those of greedy decoding that recomputes everything."""
    out = str(tmp_path / "mixed")
    mix(bam_mix, "bam_llama_shared_kv_topk", out)
    model = transformers.AutoModelForCausalLM.from_pretrained(out, trust_remote_code=True, **from_pretrained_kwargs(torch.float32))
    lengths = []
    model.register_forward_pre_hook(lambda m, args, kwargs: lengths.append(kwargs["input_ids"].shape[1]), with_kwargs=True)
    prompt = torch.tensor([[5, 17, 33, 41, 8, 99]])
    attention_mask = torch.ones_like(prompt)
    with torch.no_grad():
        cached = model.generate(prompt, attention_mask=attention_mask, max_new_tokens=8, do_sample=False,
                                pad_token_id=0, use_cache=True)
    assert lengths == [6] + [1] * 7
    ids = prompt
    with torch.no_grad():
        for _ in range(8):
            next_id = model(ids, use_cache=False).logits[0, -1].argmax()
            ids = torch.cat([ids, next_id.view(1, 1)], dim=1)
    assert cached.tolist() == ids.tolist()
