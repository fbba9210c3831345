#!/usr/bin/env python3
"""A 7B-class layer shape with a 152k vocabulary, against transformers: matrices of more than 2 GiB.

    ~/.cache/bam-mix-peers/venv/bin/python tools/check_wide_vocab.py [--bam-mix PATH] [--workdir DIR] [--keep]

The tests' models are tiny, and the benchmarks' largest matrix (the 1.1B shape's 32000 x 2048
output projection) is 131 MB in bf16. Checkpoints people have are wider: Qwen2-7B's output
projection is 152064 x 3584, 1.09 GB in bf16 and 2.18 GB once widened to float32, more than 2^31
bytes — where a 32-bit byte offset or count anywhere (a kernel's row pointer, a mapping's length,
a GGUF tensor's size) would wrap. This script makes such a model with transformers' own random
initialisation, in bf16 (Qwen2: hidden 3584, FFN 18944, 28 heads / 4 KV heads with Q/K/V biases,
untied embeddings, vocab 152064; 2 layers instead of 28: 1.56B parameters, 3.1 GB), and checks:

  1. `bam-mix forward` on the bf16 checkpoint (matrices in place) against transformers' logits for
     the same checkpoint loaded in float32: max |difference| <= 1e-4 (the widening is exact);
  2. the same with `--weights f32` (every matrix widened at load; the output projection 2.18 GB);
  3. `bam-mix convert --dtype q8_0` to GGUF, then `bam-mix forward` on that file against
     `--weights q8_0` on the checkpoint: equal to the last bit (the same quantisation, either way);
     against transformers with every 2-D weight quantised to Q8_0 and back by the gguf package:
     within 1e-4 in prefill (16 tokens: dequantised panels, float32 sums), and within 7 % of the
     largest logit through the decode kernels (8 tokens: activations quantised to 8 bits per block,
     as llama.cpp's are; the tests' bound);
  4. `bam-mix generate` on the q8_0 GGUF (a GPT-2-style test tokenizer, embedded by convert): a prefill and
     8 decode steps through the fused kernels.

Needs ~16 GB of memory (transformers holds the model in float32 for the reference) and ~10 GB of
disk; about 5 minutes on two cores. Run by hand (not a test).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
IDS = [1, 151_000, 17, 99_999, 3, 152_063, 4096, 65_535]   # ids near the vocabulary's end too
LONG_IDS = IDS + [7, 120_000, 31, 2, 150_001, 77, 5, 9]     # more than 8 tokens: the prefill path


def run(cmd, **kw):
    t = time.time()
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if out.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} exited {out.returncode}:\n{out.stderr.strip()}")
    print(f"  {Path(str(cmd[0])).name} {cmd[1]}: {time.time() - t:.1f} s", flush=True)
    return out.stdout


def main():
    peers.require("torch", "transformers", "numpy", "gguf")   # gguf: the Q8_0 reference quantiser
    import numpy as np
    import torch
    import transformers

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bam-mix", default=str(ROOT / ".build/release/bam-mix"))
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep the workdir (the model and its GGUF)")
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bam-mix-wide-vocab."))
    work.mkdir(parents=True, exist_ok=True)
    model_dir, gguf_path = work / "qwen2-wide", work / "qwen2-wide-q8_0.gguf"
    failures = []

    def check(name, ok, detail):
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}", flush=True)
        if not ok:
            failures.append(name)

    try:
        cfg = transformers.Qwen2Config(vocab_size=152064, hidden_size=3584, intermediate_size=18944,
                                       num_hidden_layers=2, num_attention_heads=28, num_key_value_heads=4,
                                       max_position_embeddings=4096, rope_theta=1_000_000.0, rms_norm_eps=1e-6,
                                       tie_word_embeddings=False)
        if not (model_dir / "config.json").exists():
            torch.manual_seed(0)
            model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
            model.save_pretrained(model_dir, max_shard_size="20GB")
            # A GPT-2-style test tokenizer (smaller than the vocabulary, as Qwen2's own is: ids past it
            # are padding), which a GGUF can embed.
            shutil.copy(ROOT / "Tests" / "Fixtures" / "tokenizers" / "gpt2" / "tokenizer.json", model_dir / "tokenizer.json")
            del model
            print(f"wrote {model_dir}", flush=True)
        # transformers' reference: the bf16 checkpoint loaded in float32 (exact widening).
        ref_model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        with torch.no_grad():
            ref = ref_model(torch.tensor([IDS])).logits[0].numpy()
        del ref_model
        scale = float(np.abs(ref).max())

        def bam_forward(model, *extra, ids=IDS):
            out = work / "logits.npy"
            run([args.bam_mix, "forward", "--model", model, "--ids", ",".join(map(str, ids)), "--logits-out", out, *extra])
            return np.load(out)

        got = bam_forward(model_dir)
        d = float(np.abs(got - ref).max())
        check("bf16 in place vs transformers (f32)", d <= 1e-4, f"max |diff| {d:.2e} (largest logit {scale:.3f})")
        got = bam_forward(model_dir, "--weights", "f32")
        d = float(np.abs(got - ref).max())
        check("--weights f32 (2.18 GB output projection) vs transformers", d <= 1e-4, f"max |diff| {d:.2e}")
        gguf_path.unlink(missing_ok=True)   # a kept workdir's earlier file: convert never overwrites
        run([args.bam_mix, "convert", "--input", model_dir, "--output", gguf_path, "--dtype", "q8_0"])
        from_file = bam_forward(gguf_path, ids=LONG_IDS)
        at_load = bam_forward(model_dir, "--weights", "q8_0", ids=LONG_IDS)
        check("q8_0 GGUF == --weights q8_0", np.array_equal(from_file, at_load),
              f"max |diff| {float(np.abs(from_file - at_load).max()):.2e}")
        # The q8_0 reference: every 2-D weight quantised and dequantised by the gguf package, in
        # transformers (float32).
        from gguf import GGMLQuantizationType, quants
        q8 = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        with torch.no_grad():
            for p in q8.parameters():
                if p.dim() == 2:
                    w = p.numpy()
                    p.copy_(torch.from_numpy(quants.dequantize(quants.quantize(w, GGMLQuantizationType.Q8_0),
                                                               GGMLQuantizationType.Q8_0)))
            ref_q8 = q8(torch.tensor([LONG_IDS])).logits[0].numpy()
        del q8
        d = float(np.abs(from_file - ref_q8).max())
        check(f"q8_0 prefill ({len(LONG_IDS)} tokens: dequantised panels, float32) vs transformers on the dequantised weights",
              d <= 1e-4, f"max |diff| {d:.2e}")
        # Up to 8 tokens take the fused kernels, whose activations are quantised to 8 bits per block
        # as llama.cpp's are: the tests' bound for that (7 % of the largest logit).
        short = bam_forward(gguf_path, ids=IDS)
        d, top = float(np.abs(short - ref_q8[:len(IDS)]).max()), float(np.abs(ref_q8[:len(IDS)]).max())
        check(f"q8_0 decode kernels ({len(IDS)} tokens) vs the same", d <= 0.07 * top,
              f"max |diff| {d:.4f} = {100 * d / top:.2f} % of the largest logit")
        out = json.loads(run([args.bam_mix, "generate", "--model", gguf_path, "--prompt", "The wide vocabulary",
                              "--max-tokens", "8", "--temperature", "0", "--ignore-eos", "--json"]))
        check("generate on the q8_0 GGUF", out["generated_tokens"] == 8,
              f"{out['generated_tokens']} tokens, prefill {out['prefill_tokens_per_second']:.1f} tok/s, "
              f"decode {out['decode_tokens_per_second']:.2f} tok/s")
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    if failures:
        sys.exit(f"{len(failures)} check(s) failed: {', '.join(failures)}")
    print("all checks passed")


if __name__ == "__main__":
    main()
