#!/usr/bin/env python3
"""Writes the fixtures for ggml's quantised tensor types under Tests/Fixtures/gguf/quants/.

Run by hand with the peers' Python (torch, transformers, tokenizers, gguf) and a built llama.cpp:

    ~/.cache/bam-mix-peers/venv/bin/python tools/make_quant_fixtures.py [--llama-cpp DIR]

--llama-cpp is a llama.cpp source tree with build/bin/llama-quantize (default
~/.cache/bam-mix-peers/llama.cpp). The Swift tests only read the committed outputs.

blocks.gguf (written by gguf-py, the `gguf` package):
  random.T     for every type T bam-mix reads (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K,
               Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, IQ4_NL, IQ4_XS): random block bytes (every code and
               scale bit pattern occurs), with the f16 scale fields replaced by finite values of
               every magnitude (zero, subnormal, 65504, negative).
  expected.T   F32: gguf-py's `gguf.quants.dequantize` of random.T. gguf-py has no Q8_K (ggml uses
               it for activations only); its expected values follow ggml's dequantize_row_q8_K
               (d * q, float32), computed here in NumPy.
  input        F32 [8, 256]: awkward inputs (ties in magnitude, zero and constant blocks, scales
               that underflow f16, values that overflow it, subnormals).
  quantize.T   gguf-py's `gguf.quants.quantize(input, T)` for the types bam-mix quantises (Q8_0,
               Q4_0, Q4_1, Q5_0, Q5_1) and for F16 / BF16.

convert_expected.gguf: gguf-py's Q8_0 / Q4_0 / Q4_1 / Q5_0 / Q5_1 bytes of every 2-D weight of the
tiny HF Llama fixture (gguf/tiny_llama), named "T:hf_name": what `convert --dtype T` must write.

Two small Llama models, converted by llama.cpp's convert_hf_to_gguf.py to F32 and quantised by
llama-quantize (the files people download are made this way):
  legacy/T.gguf  hidden 64 (rows of 32-value blocks): Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL
  kquant/T.gguf  hidden 256 (k-quants need rows of 256): Q2_K, Q3_K_M, Q4_K_M, Q5_K_M, Q6_K, IQ4_XS
and for each, in models.json: every tensor's type and a checksum of the same model dequantised to
F32 by `llama-quantize --allow-requantize T.gguf Y.gguf F32` (llama.cpp's own dequantisation; the
script also checks gguf-py's dequantisation of T.gguf equals Y bit for bit), and the logits of Y
computed by transformers for a fixed token sequence, with their perplexity. The F32 files are not
kept (2 MB each); the checksum is sum_i bits(y_i) * splitmix64(i) mod 2^64 over each tensor's
float32 values in file order, which any changed value alters.

llama_perplexity.json: llama.cpp's own perplexity of each of those files (`llama-perplexity -c 32`,
f32 KV cache, TEXT three times, with the token ids llama-tokenize gives): llama.cpp quantises the
activations to 8 bits per block in its quantised products, as bam-mix's decode kernels do, so the
Swift tests hold bam-mix's decode, one token at a time over the same chunks, to it.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import gguf
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType as QT

ROOT = Path(__file__).resolve().parent.parent / "Tests" / "Fixtures" / "gguf" / "quants"
TYPES = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
         "Q8_K", "IQ4_NL", "IQ4_XS"]
QUANTISED_BY_BAM_MIX = ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "F16", "BF16"]
LEGACY = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "IQ4_NL"]
KQUANT = ["Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "IQ4_XS"]

# Byte offsets of each block type's f16 scale fields (ggml-common.h); Q8_K's d is a float32 at 0.
HALF_FIELDS = {
    "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0], "Q2_K": [80, 82], "Q3_K": [108],
    "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208], "IQ4_NL": [0], "IQ4_XS": [0],
}

TEXT = (
    "The quick brown fox jumps over the lazy dog. Branch-Train-MiX mixes expert LLMs into a "
    "mixture of experts. Attention experts and feed-forward experts are routed per token. "
    "Sphinx of black quartz, judge my vow! 12345 + 678 = 13023; e^(i*pi) + 1 = 0.\n"
)


# ---------------------------------------------------------------------------------------------
# Block types: random blocks and gguf-py's values.

def scales(rng, n):
    """n finite f16 scales of every magnitude, with the special ones first."""
    special = np.array([0.0, -0.0, 65504.0, -65504.0], dtype=np.float16).view(np.uint16)
    special = np.concatenate([special, np.array([0x0001, 0x8001, 0x03FF, 0x0400], dtype=np.uint16)])
    mags = (rng.standard_normal(n) * 10.0 ** rng.uniform(-6, 2, n)).astype(np.float16).view(np.uint16)
    mags[: min(n, len(special))] = special[: min(n, len(special))]
    # No Inf/NaN (exponent all ones): those would make the expected values NaN-dependent.
    bad = (mags & 0x7C00) == 0x7C00
    mags[bad] &= 0xBBFF
    return mags


def dequantize_q8_k(raw):
    blocks = raw.reshape(-1, 292)
    d = blocks[:, :4].copy().view(np.float32)
    q = blocks[:, 4:260].copy().view(np.int8).astype(np.float32)
    return (d * q).reshape(raw.shape[0], -1)


def random_tensor(rng, name):
    """(raw bytes or float array, raw dtype, expected float32 values) for type `name`."""
    if name == "F32":
        x = (rng.standard_normal((3, 40)) * 10.0 ** rng.uniform(-40, 30, (3, 40))).astype(np.float32)
        x[0, :4] = [0.0, -0.0, 1e-45, -3.4e38]
        return x, None, x
    if name == "F16":
        bits = rng.integers(0, 1 << 16, (3, 40), dtype=np.uint16)
        bits[(bits & 0x7C00) == 0x7C00] &= 0xBBFF
        x = bits.view(np.float16)
        return x, None, x.astype(np.float32)
    if name == "BF16":
        bits = rng.integers(0, 1 << 16, (3, 40), dtype=np.uint16)
        bits[(bits & 0x7F80) == 0x7F80] &= 0xBF7F
        raw = bits.view(np.uint8).reshape(3, 80)
        return raw, QT.BF16, gguf.quants.dequantize(raw, QT.BF16)
    t = QT[name]
    block, size = GGML_QUANT_SIZES[t]
    rows, per_row = (3, 4) if block == 32 else (2, 3)
    raw = rng.integers(0, 256, (rows, per_row, size), dtype=np.uint8)
    if name == "Q8_K":
        d = (rng.standard_normal((rows, per_row)) * 10.0 ** rng.uniform(-8, 3, (rows, per_row))).astype(np.float32)
        d[0, 0] = 0.0
        raw[:, :, 0:4] = d.reshape(rows, per_row, 1).view(np.uint8)
    else:
        for off in HALF_FIELDS[name]:
            raw[:, :, off:off + 2] = scales(rng, rows * per_row).reshape(rows, per_row, 1).view(np.uint8)
    raw = raw.reshape(rows, per_row * size)
    expected = dequantize_q8_k(raw) if name == "Q8_K" else gguf.quants.dequantize(raw, t)
    return raw, t, expected.astype(np.float32)


def quantize_input():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((8, 256)).astype(np.float32)
    x[1, :32] = 0.0                                        # zero block: d = 0, id = 0
    x[1, 32:64] = rng.standard_normal(32)
    x[1, 40], x[1, 50] = 3.0, -3.0                         # equal magnitudes: the first one sets the sign of d
    x[1, 64:96] = rng.standard_normal(32)
    x[1, 70], x[1, 71] = -3.0, 3.0
    x[1, 96:128] = 0.75                                    # constant block: max == min
    x[2, :] = np.arange(256, dtype=np.float32) / 8 - 16    # codes that land on .5 boundaries
    x[3, :32] = rng.standard_normal(32) * 1e-9             # f32 scale underflows f16 (stored d = 0)
    x[3, 32:64] = rng.standard_normal(32) * 1e6            # f16 overflow (d = inf for Q4_1's range)
    x[3, 64:96] = np.float32(1e-40) * rng.integers(-5, 6, 32)  # subnormal inputs
    x[4, :] = -np.abs(x[4, :]) - 0.25                      # all negative
    x[5, :] = np.abs(x[5, :]) + 0.25                       # all positive
    x[6, :] = rng.uniform(-1, 1, 256) * 10.0 ** rng.integers(-3, 4, 256)
    x[7, :] = np.round(rng.standard_normal(256) * 4) / 4   # many exact ties
    return x.astype(np.float32)


def write_blocks():
    rng = np.random.default_rng(14)
    w = gguf.GGUFWriter(str(ROOT / "blocks.gguf"), "blocks")
    listing = {}
    for name in TYPES:
        data, raw_dtype, expected = random_tensor(rng, name)
        if raw_dtype is None:
            w.add_tensor(f"random.{name}", data)
        else:
            w.add_tensor(f"random.{name}", data, raw_dtype=raw_dtype)
        w.add_tensor(f"expected.{name}", np.ascontiguousarray(expected, dtype=np.float32))
        listing[name] = list(expected.shape)
    x = quantize_input()
    w.add_tensor("input", x)
    for name in QUANTISED_BY_BAM_MIX:
        q = gguf.quants.quantize(x, QT[name])
        if name == "F16":
            w.add_tensor(f"quantize.{name}", q)
        else:
            w.add_tensor(f"quantize.{name}", q, raw_dtype=QT[name])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return listing


def write_convert_expected():
    """gguf-py's quantisation of every 2-D weight of the tiny HF Llama fixture (make_format_fixtures.py),
    in HF layout: what `bam-mix convert --dtype T` must store (tensors named T:hf_name)."""
    from safetensors.numpy import load_file
    src = ROOT.parent / "tiny_llama" / "model.safetensors"
    weights = load_file(str(src))
    w = gguf.GGUFWriter(str(ROOT / "convert_expected.gguf"), "convert")
    for t in ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"]:
        for name, x in sorted(weights.items()):
            if x.ndim == 2:
                w.add_tensor(f"{t}:{name}", gguf.quants.quantize(x.astype(np.float32), QT[t]), raw_dtype=QT[t])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ---------------------------------------------------------------------------------------------
# Small Llama models quantised by llama-quantize.

def spm_tokenizer():
    """Llama-2-style BPE with byte fallback (llama.cpp writes it as tokenizer model "llama")."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    trainer_tok = Tokenizer(models.BPE())
    trainer_tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    trainer_tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never")
    trainer_tok.train_from_iterator([TEXT] * 4, trainers.BpeTrainer(vocab_size=60, show_progress=False))
    trained = json.loads(trainer_tok.to_str())["model"]
    specials = ["<unk>", "<s>", "</s>"]
    vocab = {t: i for i, t in enumerate(specials)}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for t, _ in sorted(trained["vocab"].items(), key=lambda kv: kv[1]):
        if t not in vocab:
            vocab[t] = len(vocab)
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in trained["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    config = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
              "unk_token": "<unk>", "clean_up_tokenization_spaces": False, "legacy": True,
              "model_max_length": 256, "tokenizer_class": "LlamaTokenizerFast"}
    return tok, config


def make_hf_model(directory, hidden, intermediate, heads, kv_heads, layers, seed):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(seed)
    tok, tcfg = spm_tokenizer()
    config = LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=hidden, intermediate_size=intermediate,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                         max_position_embeddings=256, rms_norm_eps=1e-5, rope_theta=10000.0, bos_token_id=1,
                         eos_token_id=2, tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        # Weights of unit-ish gain, so the logits spread (a near-uniform model would hide errors).
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif "embed_tokens" in name:
                p.copy_(torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) * 1.5 / p.shape[1] ** 0.5)
    if directory.exists():
        shutil.rmtree(directory)
    model.save_pretrained(str(directory), safe_serialization=True)
    (directory / "generation_config.json").unlink(missing_ok=True)
    tok.save(str(directory / "tokenizer.json"))
    (directory / "tokenizer_config.json").write_text(json.dumps(tcfg, indent=2) + "\n")
    return tok, config


def run(cmd, **kw):
    subprocess.run([str(c) for c in cmd], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


def splitmix64(n):
    z = (np.arange(n, dtype=np.uint64) + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def checksum(values):
    bits = np.ascontiguousarray(values, dtype=np.float32).reshape(-1).view(np.uint32).astype(np.uint64)
    with np.errstate(over="ignore"):
        return int(np.sum(bits * splitmix64(bits.size), dtype=np.uint64))


def unpermute(w, heads):
    """Inverse of convert_hf_to_gguf.py's Q/K permutation (rows of `heads` heads)."""
    rows = w.shape[0]
    return w.reshape(heads, rows // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def reference_logits(y_path, config, tokens):
    """transformers' logits for `tokens` with the weights of the F32 GGUF `y_path`."""
    import torch
    from transformers import LlamaForCausalLM
    reader = gguf.GGUFReader(str(y_path))
    names = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
             "output.weight": "lm_head.weight"}
    per_layer = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm", "attn_q": "self_attn.q_proj",
                 "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
                 "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
    state = {}
    for t in reader.tensors:
        assert t.tensor_type == QT.F32, (t.name, t.tensor_type)
        w = np.array(t.data, dtype=np.float32).reshape([int(d) for d in reversed(t.shape)])
        if t.name in names:
            state[names[t.name]] = w
            continue
        _, layer, kind, suffix = t.name.split(".")
        if kind == "attn_q":
            w = unpermute(w, config.num_attention_heads)
        if kind == "attn_k":
            w = unpermute(w, config.num_key_value_heads)
        state[f"model.layers.{layer}.{per_layer[kind]}.{suffix}"] = w
    model = LlamaForCausalLM(config).eval()
    missing = model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
    assert not missing.unexpected_keys and all("rotary" in k for k in missing.missing_keys), missing
    with torch.no_grad():
        logits = model(torch.tensor([tokens])).logits[0].float().numpy()
    lp = torch.log_softmax(torch.from_numpy(logits).double(), dim=-1).numpy()
    nll = [-lp[i, tokens[i + 1]] for i in range(len(tokens) - 1)]
    return logits, float(np.exp(np.mean(nll)))


def write_models(llama_cpp):
    bin_dir = Path(llama_cpp) / "build" / "bin"
    quantize = bin_dir / "llama-quantize"
    if not quantize.exists():
        sys.exit(f"{quantize} not found: build llama.cpp first (or pass --llama-cpp)")
    env = dict(os.environ, PYTHONPATH=str(Path(llama_cpp) / "gguf-py"))
    families = {"legacy": (dict(hidden=64, intermediate=128, heads=4, kv_heads=2, layers=2, seed=21), LEGACY),
                "kquant": (dict(hidden=256, intermediate=256, heads=2, kv_heads=1, layers=1, seed=22), KQUANT)}
    out = {}
    logits_writer = gguf.GGUFWriter(str(ROOT / "models_logits.gguf"), "logits")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for family, (shape, types) in families.items():
            hf = tmp / family
            tok, config = make_hf_model(hf, **shape)
            tokens = tok.encode(TEXT).ids[:24]
            f32 = tmp / f"{family}.f32.gguf"
            run([sys.executable, Path(llama_cpp) / "convert_hf_to_gguf.py", hf, "--outfile", f32, "--outtype", "f32"], env=env)
            (ROOT / family).mkdir(parents=True, exist_ok=True)
            for t in types:
                x = ROOT / family / f"{t}.gguf"
                y = tmp / f"{family}.{t}.dequantised.gguf"
                run([quantize, f32, x, t])
                run([quantize, "--allow-requantize", x, y, "F32"])
                xr, yr = gguf.GGUFReader(str(x)), gguf.GGUFReader(str(y))
                ys = {u.name: u for u in yr.tensors}
                tensors = {}
                for u in xr.tensors:
                    yv = np.array(ys[u.name].data, dtype=np.float32)
                    ours = gguf.quants.dequantize(np.array(u.data), u.tensor_type).astype(np.float32).reshape(yv.shape)
                    same = np.array_equal(ours.view(np.uint32), yv.view(np.uint32))
                    if not same:
                        print(f"WARNING {family}/{t} {u.name} ({u.tensor_type.name}): gguf-py's dequantisation differs from llama.cpp's")
                    tensors[u.name] = {"type": u.tensor_type.name, "count": int(yv.size), "checksum": str(checksum(yv)),
                                       "gguf_py_equals_llama_cpp": bool(same)}
                logits, ppl = reference_logits(y, config, tokens)
                logits_writer.add_tensor(f"{family}.{t}", logits.astype(np.float32))
                out[f"{family}/{t}"] = {"file": f"{family}/{t}.gguf", "tokens": tokens, "perplexity": ppl,
                                        "logits": f"{family}.{t}", "tensors": tensors,
                                        "bytes": x.stat().st_size}
                print(f"{family}/{t}: {x.stat().st_size} bytes, types {sorted({v['type'] for v in tensors.values()})}, ppl {ppl:.6f}")
    logits_writer.write_header_to_file()
    logits_writer.write_kv_data_to_file()
    logits_writer.write_tensors_to_file()
    logits_writer.close()
    (ROOT / "models.json").write_text(json.dumps(out, indent=1) + "\n")


def write_llama_perplexity(llama_cpp):
    """llama.cpp's own perplexity of every committed model fixture (llama_perplexity.json).

    llama-perplexity multiplies quantised weights by activations quantised to 8 bits per block (Q8_0
    or Q8_K), as bam-mix's decode kernels do, so bam-mix's decode (one token at a time) over the same
    chunks should give nearly its number; bam-mix's prefill computes in float32 and differs by what
    the 8-bit activations cost. The text is TEXT three times, tokenised by llama-tokenize (BOS
    first); chunks of CTX = 32 tokens, f32 KV cache, flash attention off, so that the attention
    is float32 on both sides.
    """
    bin_dir = Path(llama_cpp) / "build" / "bin"
    env = dict(os.environ, LD_LIBRARY_PATH=str(bin_dir))
    ctx = 32
    models = json.loads((ROOT / "models.json").read_text())
    out = {"ctx": ctx, "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        text = Path(tmp) / "text.txt"
        text.write_text(TEXT * 3)
        for key, entry in models.items():
            path = ROOT / entry["file"]
            tok = subprocess.run([bin_dir / "llama-tokenize", "-m", path, "-f", text, "--ids", "--log-disable"], env=env,
                                 check=True, capture_output=True, text=True).stdout
            ids = json.loads(tok.strip().splitlines()[-1])
            # One run in a dozen has printed nothing after its first pass here (exit status 0); run again then.
            for _ in range(3):
                res = subprocess.run([bin_dir / "llama-perplexity", "-m", path, "-f", text, "-c", str(ctx), "-b", str(ctx),
                                      "-t", "2", "-ctk", "f32", "-ctv", "f32", "-fa", "off"], env=env, check=True,
                                     capture_output=True, text=True)
                m = re.search(r"Final estimate: PPL = ([0-9.]+)", res.stdout + res.stderr)
                if m:
                    break
            assert m, (key, res.returncode, res.stdout[-3000:], res.stderr[-1000:])
            # Both families share one tokenizer (spm_tokenizer), so the ids are kept once.
            assert out.setdefault("tokens", ids) == ids, f"{key} tokenizes the text differently"
            chunks = len(ids) // ctx
            out["models"][key] = {"chunks": chunks, "perplexity": float(m.group(1))}
            print(f"{key}: llama-perplexity {m.group(1)} over {chunks} chunks of {ctx}")
    tokens = out.pop("tokens")
    text = json.dumps(out, indent=1)
    # The ids on one line: the file stays readable.
    text = text[:-2] + ',\n "tokens": ' + json.dumps(tokens) + "\n}"
    json.loads(text)
    (ROOT / "llama_perplexity.json").write_text(text + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-cpp", default=str(Path.home() / ".cache" / "bam-mix-peers" / "llama.cpp"),
                    help="llama.cpp source tree with build/bin/llama-quantize")
    ap.add_argument("--only", choices=["blocks", "models", "llama-perplexity"], help="write only one part")
    args = ap.parse_args()
    ROOT.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "blocks"):
        listing = write_blocks()
        print("blocks.gguf:", ", ".join(f"{k} {v}" for k, v in listing.items()))
        write_convert_expected()
    if args.only in (None, "models"):
        write_models(args.llama_cpp)
    if args.only in (None, "llama-perplexity"):
        write_llama_perplexity(args.llama_cpp)
    total = sum(p.stat().st_size for p in ROOT.rglob("*") if p.is_file())
    print(f"{ROOT}: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
