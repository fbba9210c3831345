#!/usr/bin/env python3
"""Fixtures for the mixing tests: tiny dense experts branched from a seed, and the logits that
HF transformers (Mixtral) and the PyTorch BAM model (python/bam_mix_torch, through trust_remote_code)
compute on the models that `bam-mix mix` makes from them.

Run by hand (never in CI), after building bam-mix:

    tools/setup-peers   # once: the peers' venv outside the checkout (the script runs itself under it)
    swift build --product bam-mix
    python3 tools/make_mix_fixtures.py .build/debug/bam-mix

Writes Tests/Fixtures/mix/experts/{llama_seed,llama_e1,llama_e2,cohere_seed,cohere_e1,cohere_e2}
(HF directories with a tiny tokenizer.json) and Tests/Fixtures/mix/<mix-name>/{ids.npy,hf_logits.npy,command.txt}.
The Swift tests run the same mixes (same seeds) and compare their forward pass with hf_logits.npy.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402  (tools/peers.py: the peers' venv, installed by tools/setup-peers)

peers.require("numpy", "torch", "transformers", "safetensors", "tokenizers")
import numpy as np  # noqa: E402
import torch
import transformers
from tokenizers import Tokenizer, models

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "Tests", "Fixtures", "mix")
sys.path.insert(0, os.path.join(HERE, "..", "python"))

V = 128
COMMON = dict(vocab_size=V, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=256, bos_token_id=1, eos_token_id=2)


def tiny_tokenizer(path):
    # A character-level BPE over 128 printable-ish symbols: enough to tokenise router prompts.
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for c in range(32, 127):
        vocab[chr(c)] = len(vocab)
    while len(vocab) < V:
        vocab[f"<extra_{len(vocab)}>"] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.save(path)


def branch(seed_model, seed, scale):
    g = torch.Generator().manual_seed(seed)
    m = type(seed_model)(seed_model.config)
    m.load_state_dict(seed_model.state_dict())
    with torch.no_grad():
        for p in m.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return m


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=g))


def save_expert(model, name, tokenizer_path):
    out = os.path.join(ROOT, "experts", name)
    shutil.rmtree(out, ignore_errors=True)
    model.save_pretrained(out)
    shutil.copy(tokenizer_path, os.path.join(out, "tokenizer.json"))
    return out


def run_mix(binary, name, args, ids, reference):
    tmp = tempfile.mkdtemp()
    out = os.path.join(tmp, name)
    cmd = [binary, "mix", *args, "--out", out]
    subprocess.run(cmd, check=True)
    model = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32, attn_implementation="eager",
                                                              trust_remote_code=(reference == "bam"))
    model.eval()
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float().numpy()
    d = os.path.join(ROOT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    np.save(os.path.join(d, "ids.npy"), np.array(ids, dtype=np.int64))
    np.save(os.path.join(d, "hf_logits.npy"), logits.astype(np.float32))
    rel = [a.replace(ROOT + "/", "") for a in args]
    with open(os.path.join(d, "command.txt"), "w") as f:
        f.write(" ".join(["mix"] + rel) + "\n")
    print(f"{name}: {json.load(open(os.path.join(out, 'config.json')))['architectures']} |logits| max {abs(logits).max():.3f}")
    shutil.rmtree(tmp)


def main():
    binary = os.path.abspath(sys.argv[1])
    os.makedirs(ROOT, exist_ok=True)
    tok = os.path.join(tempfile.mkdtemp(), "tokenizer.json")
    tiny_tokenizer(tok)
    from transformers import CohereConfig, CohereForCausalLM, LlamaConfig, LlamaForCausalLM

    seed = LlamaForCausalLM(LlamaConfig(**COMMON, rope_theta=10000.0)); randomize(seed, 21)
    experts = [seed, branch(seed, 22, 0.05), branch(seed, 23, 0.05)]
    llama = [save_expert(m, n, tok) for m, n in zip(experts, ["llama_seed", "llama_e1", "llama_e2"])]

    cseed = CohereForCausalLM(CohereConfig(**COMMON, logit_scale=0.5)); randomize(cseed, 31)
    cexperts = [cseed, branch(cseed, 32, 0.05), branch(cseed, 33, 0.05)]
    cohere = [save_expert(m, n, tok) for m, n in zip(cexperts, ["cohere_seed", "cohere_e1", "cohere_e2"])]

    rng = np.random.default_rng(5)
    ids = [int(x) for x in rng.integers(3, V, size=16)]
    ex = lambda paths: sum((["--expert", p] for p in paths), [])
    run_mix(binary, "btx_llama", ["--method", "btx", *ex(llama), "--seed", "7"], ids, "mixtral")
    run_mix(binary, "btx_llama_weighted", ["--method", "btx", *ex(llama), "--weights", "2,1,1", "--top-k", "1", "--seed", "8"], ids, "mixtral")
    run_mix(binary, "upcycle_llama", ["--method", "upcycle", "--expert", llama[0], "--num-experts", "4", "--noise", "0.01", "--seed", "9"], ids, "mixtral")
    # Unscaled experts (--expert-scaling none): these fixtures hold the routing formula; the scaling
    # (each expert's w2 times E/K) is checked exactly in the Swift tests.
    # Random routers (--router random; mix's default would start these un-renormalised gates from
    # zero routers, every token on expert 0), so that the fixtures exercise the routing itself.
    run_mix(binary, "bam_cohere_expert_kv", ["--method", "bam", *ex(cohere), "--seed", "10", "--router", "random",
                                              "--expert-scaling", "none"], ids, "bam")
    run_mix(binary, "bam_llama_shared_kv_topk", ["--method", "bam", *ex(llama), "--router", "random", "--attention", "shared-kv",
                                                  "--attention-routing", "top-k", "--attention-top-k", "2", "--seed", "11",
                                                  "--expert-scaling", "none"], ids, "bam")
    run_mix(binary, "btx_cohere_dense_attention", ["--method", "btx", *ex(cohere), "--seed", "12"], ids, "bam")
    with open(os.path.join(ROOT, "VERSIONS.txt"), "w") as f:
        f.write(f"torch {torch.__version__}\ntransformers {transformers.__version__}\n")


if __name__ == "__main__":
    main()
