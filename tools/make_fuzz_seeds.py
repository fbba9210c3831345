#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (Fuzzing/corpus/<target>/seed-*), small valid inputs
made by the reference implementations (gguf-py, safetensors, torch, numpy, zipfile) plus the
small fixtures under Tests/Fixtures. Run by hand with the peers venv:

    ~/.cache/bam-mix-peers/venv/bin/python tools/make_fuzz_seeds.py

Inputs libFuzzer finds during long runs are not committed wholesale; `tools/fuzz --merge`
minimises a run's corpus into Fuzzing/corpus when it adds coverage (docs/reliability.md)."""
import hashlib
import io
import json
import os
import pathlib
import shutil
import struct
import zipfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIX = ROOT / "Tests" / "Fixtures"
OUT = ROOT / "Fuzzing" / "corpus"


def put(target, data, name=None):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    h = hashlib.sha1(data).hexdigest()[:12]
    (d / f"seed-{name + '-' if name else ''}{h}").write_bytes(data)


def small_files(pattern, limit):
    for p in sorted(FIX.glob(pattern)):
        if p.is_file() and p.stat().st_size <= limit:
            yield p


def json_and_config():
    seen = set()
    for p in small_files("**/config.json", 8192):
        data = p.read_bytes()
        if data in seen:
            continue
        seen.add(data)
        put("config", data, p.parent.name)
        put("json", data, p.parent.name)
    for p in small_files("**/tokenizer_config.json", 8192):
        put("json", p.read_bytes(), "tokcfg")
    put("json", '{"a": [1, -2.5e-3, true, false, null, "\\u00e9\\ud83d\\ude00\\n"], "b": {"c": {}}, "d": [], "e": NaN}')


def tokenizers():
    seen = set()
    for p in small_files("**/tokenizer.json", 65536):
        data = p.read_bytes()
        if data in seen:
            continue
        seen.add(data)
        put("tokenizer", data, p.parent.name)


def safetensors_seeds():
    import torch
    from safetensors.torch import save

    put("safetensors", save({"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}, metadata={"format": "pt"}), "f32")
    put("safetensors", save({"a": torch.ones(4, dtype=torch.float16), "b": torch.zeros(2, 2, dtype=torch.bfloat16),
                             "c": torch.arange(3, dtype=torch.float64), "d": torch.arange(2, dtype=torch.int64)}), "mixed")
    put("safetensors", save({"e": torch.zeros(0, 4, dtype=torch.float32), "s": torch.tensor(1.5)}), "empty-scalar")
    for p in small_files("**/*.safetensors", 16384):
        put("safetensors", p.read_bytes(), p.stem)
    index = {"metadata": {"total_size": 22},
             "weight_map": {"model.embed_tokens.weight": "model-00001-of-00002.safetensors",
                            "model.norm.weight": "model-00002-of-00002.safetensors"}}
    put("safetensors-index", json.dumps(index, indent=2), "valid")
    put("safetensors-index", json.dumps({"weight_map": {"model.norm.weight": "model-00002-of-00002.safetensors"}}), "partial")


def gguf_seeds():
    import gguf

    def tiny(arch, with_tokenizer=True, tensors=True, tok_model="llama"):
        buf = io.BytesIO()
        path = OUT / "tmp.gguf"
        w = gguf.GGUFWriter(str(path), arch)
        C, F, V, H = 8, 16, 16, 2
        w.add_context_length(64)
        w.add_embedding_length(C)
        w.add_block_count(1)
        w.add_feed_forward_length(F)
        w.add_head_count(H)
        w.add_head_count_kv(1)
        w.add_layer_norm_rms_eps(1e-5)
        w.add_rope_freq_base(10000.0)
        w.add_vocab_size(V)
        if with_tokenizer:
            toks = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(4)] + ["▁", "a", "b", "▁a", "ab", "c", "d", "e", "f"]
            w.add_tokenizer_model(tok_model)
            w.add_token_list(toks[:V])
            w.add_token_scores([float(-i) for i in range(V)])
            w.add_token_types([2, 3, 3] + [6] * 4 + [1] * (V - 7))
            w.add_bos_token_id(1)
            w.add_eos_token_id(2)
            if tok_model == "gpt2":
                w.add_token_merges(["a b", "▁ a"])
        if tensors:
            rng = np.random.default_rng(0)
            def t(name, *shape):
                w.add_tensor(name, rng.standard_normal(shape).astype(np.float32))
            t("token_embd.weight", V, C)
            t("output_norm.weight", C)
            t("output.weight", V, C)
            t("blk.0.attn_norm.weight", C)
            t("blk.0.attn_q.weight", C, C)
            t("blk.0.attn_k.weight", C // H, C)
            t("blk.0.attn_v.weight", C // H, C)
            t("blk.0.attn_output.weight", C, C)
            t("blk.0.ffn_norm.weight", C)
            t("blk.0.ffn_gate.weight", F, C)
            t("blk.0.ffn_up.weight", F, C)
            t("blk.0.ffn_down.weight", C, F)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        data = path.read_bytes()
        path.unlink()
        return data

    put("gguf", tiny("llama"), "llama")
    put("gguf", tiny("qwen2", with_tokenizer=False), "qwen2")
    all_types = FIX / "gguf" / "all_types.gguf"
    put("gguf", all_types.read_bytes(), "all-types")
    put("gguf-tokenizer", tiny("llama", tensors=False), "llama-vocab")
    put("gguf-tokenizer", tiny("llama", tensors=False, tok_model="gpt2"), "gpt2-vocab")


def quant_seeds():
    rng = np.random.default_rng(1)
    put("quant-blocks", rng.integers(0, 256, 34 * 4, dtype=np.uint8).tobytes(), "random")
    put("quant-blocks", np.linspace(-2, 2, 64, dtype=np.float32).tobytes(), "floats")


def zip_and_pickle_seeds():
    import torch

    for stored in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        b = io.BytesIO()
        with zipfile.ZipFile(b, "w", compression=stored) as z:
            z.writestr("a/data.pkl", b"\x80\x02}q\x00.")
            z.writestr("a/data/0", bytes(range(64)))
            z.writestr("a/comment-free.txt", "hello " * 20)
        put("zip", b.getvalue(), "deflated" if stored else "stored")
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", allowZip64=True) as z:
        with z.open("big/data/0", "w", force_zip64=True) as f:
            f.write(b"\0" * 32)
    put("zip", b.getvalue(), "zip64")

    for p in small_files("pytorch/**/*.bin", 16384):
        data = p.read_bytes()
        put("pytorch", data, p.parent.name)
        if data[:2] == b"PK":
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                for n in z.namelist():
                    if n.endswith("data.pkl"):
                        put("pickle", z.read(n), p.parent.name)
    # A state dict whose storages are exactly the pickle target's fixed ones: 0 (16 bytes),
    # 1 (64 bytes), 2 (256 bytes).
    sd = {"model.a": torch.arange(4, dtype=torch.float32), "model.b": torch.ones(4, 4, dtype=torch.float32),
          "model.c": torch.zeros(128, dtype=torch.float16).view(8, 16)}
    sd["model.c2"] = sd["model.c"][2:4]
    b = io.BytesIO()
    torch.save(sd, b)
    with zipfile.ZipFile(io.BytesIO(b.getvalue())) as z:
        for n in z.namelist():
            if n.endswith("data.pkl"):
                put("pickle", z.read(n), "fixed-storages")
    put("pytorch", b.getvalue(), "views")


def npy_seeds():
    for arr in (np.arange(6, dtype="<f4").reshape(2, 3), np.arange(5, dtype="<i8"), np.zeros((0,), dtype="<i4"),
                np.float32(3.5)):
        b = io.BytesIO()
        np.save(b, arr)
        put("npy", b.getvalue(), str(np.asarray(arr).dtype))


def main():
    if OUT.exists():
        for d in OUT.iterdir():
            for f in d.glob("seed-*"):
                f.unlink()
    json_and_config()
    tokenizers()
    safetensors_seeds()
    gguf_seeds()
    quant_seeds()
    zip_and_pickle_seeds()
    npy_seeds()
    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"wrote seeds to {OUT} ({total} bytes)")


if __name__ == "__main__":
    main()
