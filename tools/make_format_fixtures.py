#!/usr/bin/env python3
"""Writes the GGUF and PyTorch .bin reference fixtures under Tests/Fixtures/{gguf,pytorch}.

Run by hand (never in CI; the Swift tests only read the committed outputs):

    tools/setup-peers   # once: a venv with torch transformers safetensors gguf numpy tokenizers, and llama.cpp,
                        # under ${XDG_CACHE_HOME:-~/.cache}/bam-mix-peers (the script runs itself under that venv)
    python3 tools/make_format_fixtures.py [--llama-cpp DIR | --no-llama-cpp]

--llama-cpp points at a llama.cpp source tree (default: the peers' copy above, when it is there; or
one unpacked from the llama-cpp-python sdist: `pip download --no-binary :all: --no-deps
llama-cpp-python`, then vendor/llama.cpp). Its own convert_hf_to_gguf.py converts the tiny HF
models, so the tests compare bam-mix against llama.cpp's real output (Q/K permutation, expert
stacking, metadata). Without a tree (or with --no-llama-cpp) those fixtures are left as they are.

Everything is seeded and tiny (the whole fixture tree stays well under 1 MB).
"""
import argparse
import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402  (tools/peers.py: the peers' venv and llama.cpp, installed by tools/setup-peers)

peers.require("numpy", "torch", "gguf", "safetensors", "tokenizers")
import numpy as np  # noqa: E402
import torch
import gguf
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

ROOT = Path(__file__).resolve().parent.parent / "Tests" / "Fixtures"
GGUF_DIR = ROOT / "gguf"
PT_DIR = ROOT / "pytorch"

TEXT = (
    "The quick brown fox jumps over the lazy dog. Branch-Train-MiX mixes expert LLMs into a "
    "mixture of experts. Attention experts and feed-forward experts are routed per token. "
    "Sphinx of black quartz, judge my vow! 12345 + 678 = 13023; e^(i*pi) + 1 = 0. "
    "Ünïcödé and emoji 🙂 fall back to bytes when the vocabulary lacks them.\n"
)


def floats(a):
    """Exact float32 values as JSON numbers (repr of a float32 round-trips through float64)."""
    return [float(x) for x in np.asarray(a, dtype=np.float32).reshape(-1)]


# ---------------------------------------------------------------------------------------------
# GGUF written by gguf-py: every metadata type and the tensor types bam-mix reads.

def write_all_types():
    rng = np.random.default_rng(1)
    path = GGUF_DIR / "all_types.gguf"
    w = gguf.GGUFWriter(str(path), "test")
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 0.15625)
    w.add_bool("test.bool", True)
    w.add_string("test.string", "héllo, wörld")
    w.add_uint64("test.u64", 2**63 + 5)
    w.add_int64("test.i64", -(2**62))
    w.add_float64("test.f64", 1.0 / 3.0)
    w.add_array("test.array_i32", [1, -2, 3])
    w.add_array("test.array_str", ["a", "bc", ""])
    w.add_array("test.array_nested", [[1, 2], [3]])
    f32 = rng.standard_normal((3, 4)).astype(np.float32)
    f16 = rng.standard_normal((2, 8)).astype(np.float16)
    bf16_src = rng.standard_normal((4, 2)).astype(np.float32)
    q8_src = rng.standard_normal((2, 64)).astype(np.float32)
    bf16 = gguf.quants.quantize(bf16_src, gguf.GGMLQuantizationType.BF16)
    q8 = gguf.quants.quantize(q8_src, gguf.GGMLQuantizationType.Q8_0)
    w.add_tensor("t.f32", f32)
    w.add_tensor("t.f16", f16)
    w.add_tensor("t.bf16", bf16, raw_dtype=gguf.GGMLQuantizationType.BF16)
    w.add_tensor("t.q8_0", q8, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    expected = {
        "t.f32": {"shape": list(f32.shape), "type": "F32", "values": floats(f32)},
        "t.f16": {"shape": list(f16.shape), "type": "F16", "values": floats(f16.astype(np.float32))},
        "t.bf16": {"shape": list(bf16_src.shape), "type": "BF16",
                   "values": floats(gguf.quants.dequantize(bf16, gguf.GGMLQuantizationType.BF16))},
        "t.q8_0": {"shape": list(q8_src.shape), "type": "Q8_0",
                   "values": floats(gguf.quants.dequantize(q8, gguf.GGMLQuantizationType.Q8_0))},
    }
    (GGUF_DIR / "all_types.json").write_text(json.dumps(expected, indent=1) + "\n")


def write_q8_reference():
    """Inputs, gguf-py's Q8_0 bytes and its dequantised values, including awkward blocks."""
    rng = np.random.default_rng(2)
    blocks = [
        rng.standard_normal(32) * 0.02,
        rng.standard_normal(32) * 50,
        np.zeros(32),
        np.linspace(-1, 1, 32),                     # exact halves after scaling
        np.array([127.0] + [63.5] * 31),            # ties round away from zero
        np.array([-3.0, 1.5, 0.75] + [0.0] * 29),
        np.full(32, 1e-30),                         # subnormal-ish scale
    ]
    x = np.concatenate(blocks).astype(np.float32)
    q = gguf.quants.quantize(x, gguf.GGMLQuantizationType.Q8_0)
    d = gguf.quants.dequantize(q, gguf.GGMLQuantizationType.Q8_0)
    (GGUF_DIR / "q8_0_reference.json").write_text(json.dumps({
        "input": floats(x), "quantized_hex": bytes(q.reshape(-1)).hex(), "dequantized": floats(d),
    }) + "\n")


# ---------------------------------------------------------------------------------------------
# Tiny tokenizers: SentencePiece-style BPE with byte fallback (Llama 2) and byte-level BPE (GPT-2).

def spm_style_tokenizer():
    trainer_tok = Tokenizer(models.BPE())
    trainer_tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    trainer_tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never")
    trainer = trainers.BpeTrainer(vocab_size=120, show_progress=False)
    trainer_tok.train_from_iterator([TEXT] * 4, trainer)
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
    from tokenizers import AddedToken
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    config = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
              "unk_token": "<unk>", "clean_up_tokenization_spaces": False, "legacy": True,
              "model_max_length": 128, "tokenizer_class": "LlamaTokenizerFast"}
    return tok, config


def byte_level_tokenizer():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=300, show_progress=False, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([TEXT] * 4, trainer)
    config = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
              "add_bos_token": False, "clean_up_tokenization_spaces": False, "model_max_length": 128,
              "tokenizer_class": "GPT2TokenizerFast"}
    return tok, config


def save_tokenizer(directory, tok, config):
    directory.mkdir(parents=True, exist_ok=True)
    tok.save(str(directory / "tokenizer.json"))
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


def write_tokenizers():
    tok, cfg = byte_level_tokenizer()
    save_tokenizer(GGUF_DIR / "tokenizers" / "bytelevel", tok, cfg)
    ids = tok.encode(TEXT).ids
    (GGUF_DIR / "tokenizers" / "bytelevel" / "encoded.json").write_text(json.dumps({"text": TEXT, "ids": ids}) + "\n")


# ---------------------------------------------------------------------------------------------
# Tiny HF models and llama.cpp's own GGUF conversion of them.

def tiny_model(kind, directory, dtype):
    from transformers import LlamaConfig, LlamaForCausalLM, MixtralConfig, MixtralForCausalLM
    torch.manual_seed(3 if kind == "llama" else 4)
    tok, tcfg = spm_style_tokenizer()
    vocab = tok.get_vocab_size()
    common = dict(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                  rms_norm_eps=1e-5, rope_theta=10000.0, bos_token_id=1, eos_token_id=2,
                  tie_word_embeddings=False)
    if kind == "llama":
        model = LlamaForCausalLM(LlamaConfig(**common))
    else:
        common["intermediate_size"] = 32
        model = MixtralForCausalLM(MixtralConfig(**common, num_local_experts=2, num_experts_per_tok=1))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    model = model.to(dtype)
    if directory.exists():
        shutil.rmtree(directory)
    model.save_pretrained(str(directory), safe_serialization=True)
    for extra in ("generation_config.json",):
        (directory / extra).unlink(missing_ok=True)
    save_tokenizer(directory, tok, tcfg)
    # transformers 5 may write fused expert tensors; the tests want the legacy Mixtral layout
    # (what docs/formats.md says bam-mix writes), so rewrite them if needed.
    from safetensors.torch import load_file
    sd = load_file(str(directory / "model.safetensors"))
    fixed = {}
    for k, v in sd.items():
        if k.endswith("mlp.experts.gate_up_proj"):
            base = k[: -len("mlp.experts.gate_up_proj")]
            inter = v.shape[1] // 2
            for e in range(v.shape[0]):
                fixed[f"{base}block_sparse_moe.experts.{e}.w1.weight"] = v[e, :inter].contiguous()
                fixed[f"{base}block_sparse_moe.experts.{e}.w3.weight"] = v[e, inter:].contiguous()
        elif k.endswith("mlp.experts.down_proj"):
            base = k[: -len("mlp.experts.down_proj")]
            for e in range(v.shape[0]):
                fixed[f"{base}block_sparse_moe.experts.{e}.w2.weight"] = v[e].contiguous()
        elif k.endswith("mlp.gate.weight"):
            fixed[k.replace("mlp.gate.weight", "block_sparse_moe.gate.weight")] = v
        else:
            fixed[k] = v
    if fixed.keys() != sd.keys():
        save_file(fixed, str(directory / "model.safetensors"), metadata={"format": "pt"})
    return model


def llama_cpp_convert(llama_cpp, directory, out, outtype):
    env = dict(os.environ, PYTHONPATH=str(Path(llama_cpp) / "gguf-py"))
    subprocess.run([sys.executable, str(Path(llama_cpp) / "convert_hf_to_gguf.py"), str(directory),
                    "--outfile", str(out), "--outtype", outtype], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def write_models(llama_cpp):
    tiny_model("llama", GGUF_DIR / "tiny_llama", torch.float32)
    tiny_model("mixtral", GGUF_DIR / "tiny_mixtral", torch.bfloat16)
    if llama_cpp:
        llama_cpp_convert(llama_cpp, GGUF_DIR / "tiny_llama", GGUF_DIR / "tiny_llama.llamacpp.gguf", "f32")
        llama_cpp_convert(llama_cpp, GGUF_DIR / "tiny_mixtral", GGUF_DIR / "tiny_mixtral.llamacpp.gguf", "bf16")
    (GGUF_DIR / "perplexity.txt").write_text(TEXT * 6)


# ---------------------------------------------------------------------------------------------
# PyTorch .bin checkpoints with their safetensors twins.

def write_pytorch():
    if PT_DIR.exists():
        shutil.rmtree(PT_DIR)
    torch.manual_seed(5)
    # plain: f32/f16, a view with a storage offset, tied (shared storage) tensors, a 0-d scalar.
    big = torch.randn(10)
    w = torch.randn(3, 4)
    sd = {
        "a.weight": torch.randn(3, 4),
        "b.bias": torch.randn(5),
        "c.half": torch.randn(2, 3, 2).half(),
        "view.offset": big[2:7],
        "tied.first": w,
        "tied.second": w,
        "scalar": torch.tensor(2.5),
        "ids": torch.arange(6, dtype=torch.int64),
    }
    (PT_DIR / "plain").mkdir(parents=True)
    torch.save(sd, PT_DIR / "plain" / "pytorch_model.bin")
    save_file({k: v.clone().contiguous() for k, v in sd.items()}, str(PT_DIR / "plain" / "twin.safetensors"))

    # bf16
    sd16 = {"x.weight": torch.randn(4, 6).bfloat16(), "y.bias": torch.randn(6).bfloat16()}
    (PT_DIR / "bf16").mkdir()
    torch.save(sd16, PT_DIR / "bf16" / "pytorch_model.bin")
    save_file(sd16, str(PT_DIR / "bf16" / "twin.safetensors"))

    # the plain checkpoint re-zipped with deflate (valid, though torch itself stores entries)
    (PT_DIR / "deflated").mkdir()
    with zipfile.ZipFile(PT_DIR / "plain" / "pytorch_model.bin") as src, \
            zipfile.ZipFile(PT_DIR / "deflated" / "pytorch_model.bin", "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))

    # sharded: a real tiny Llama saved by transformers as .bin shards with an index
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(6)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                                         tie_word_embeddings=False))
    sharded = PT_DIR / "sharded"
    sharded.mkdir()
    model.config.save_pretrained(str(sharded))
    # transformers 5 no longer writes .bin shards, so lay them out the way 4.x did: torch.save per
    # shard plus pytorch_model.bin.index.json.
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    names = list(state)
    shards = [names[: len(names) // 2], names[len(names) // 2:]]
    weight_map = {}
    for i, part in enumerate(shards):
        fname = f"pytorch_model-{i + 1:05d}-of-{len(shards):05d}.bin"
        torch.save({k: state[k] for k in part}, sharded / fname)
        weight_map.update({k: fname for k in part})
    total = sum(v.numel() * v.element_size() for v in state.values())
    (sharded / "pytorch_model.bin.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2) + "\n")
    # The twin is not named *.safetensors, so Checkpoint.open still sees a PyTorch directory.
    save_file(state, str(sharded / "twin.st"))

    # non-contiguous tensor (a transpose): refused with a clear error
    (PT_DIR / "noncontiguous").mkdir()
    torch.save({"t": torch.randn(3, 5).t()}, PT_DIR / "noncontiguous" / "pytorch_model.bin")

    # legacy (pre-1.6) serialisation: refused
    (PT_DIR / "legacy").mkdir()
    torch.save({"t": torch.randn(2)}, PT_DIR / "legacy" / "pytorch_model.bin", _use_new_zipfile_serialization=False)

    # hostile pickles in a torch-style zip: GLOBAL os.system (protocol 2) and STACK_GLOBAL builtins.eval (protocol 4)
    (PT_DIR / "evil").mkdir()
    class Boom:
        def __reduce__(self):
            return (os.system, ("echo pwned",))
    evil2 = pickle.dumps(Boom(), protocol=2)
    assert b"cposix\nsystem" in evil2 or b"cos\nsystem" in evil2
    evil2 = evil2.replace(b"cposix\nsystem", b"cos\nsystem")
    evil4 = b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x94\x8c\x04eval\x94\x93\x94\x8c\x051+1\x94\x85\x94R\x94."
    for name, payload in (("os_system.bin", evil2), ("builtins_eval.bin", evil4)):
        with zipfile.ZipFile(PT_DIR / "evil" / name, "w", zipfile.ZIP_STORED) as z:
            z.writestr("archive/data.pkl", payload)
            z.writestr("archive/version", "3\n")


def main():
    ap = argparse.ArgumentParser()
    peers_tree = peers.LLAMA_CPP if (peers.LLAMA_CPP / "convert_hf_to_gguf.py").exists() else None
    ap.add_argument("--llama-cpp", default=peers_tree,
                    help=f"llama.cpp source tree with convert_hf_to_gguf.py (default: {peers.LLAMA_CPP} when it exists)")
    ap.add_argument("--no-llama-cpp", action="store_true", help="keep the llama.cpp-converted fixtures as they are")
    args = ap.parse_args()
    if args.no_llama_cpp:
        args.llama_cpp = None
    elif args.llama_cpp:
        print(f"llama.cpp converter: {args.llama_cpp}")
    GGUF_DIR.mkdir(parents=True, exist_ok=True)
    write_all_types()
    write_q8_reference()
    write_tokenizers()
    write_models(args.llama_cpp)
    write_pytorch()
    total = sum(p.stat().st_size for d in (GGUF_DIR, PT_DIR) for p in d.rglob("*") if p.is_file())
    print(f"fixtures written: {total} bytes")


if __name__ == "__main__":
    main()
