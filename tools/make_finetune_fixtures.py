#!/usr/bin/env python3
"""Fixtures that hold bam_mix_torch's finetune to `bam-mix finetune`: the same batches must give the
same per-step losses (router losses included) for five steps.

Run by hand (never in CI), after building bam-mix; only the standard library is needed:

    swift build --product bam-mix
    python3 tools/make_finetune_fixtures.py .build/debug/bam-mix [CASE ...]

For each case, from the tiny dense experts of Tests/Fixtures/mix/experts, writes
Tests/Fixtures/finetune/<case>/:
    model/              the mixture `bam-mix mix` made (config.json, model.safetensors, tokenizer.json;
                        the BAM model code and provenance are left out: the tests use the package's)
    data/<domain>.txt   training text (`bam-mix corpus`)
    batches.npy         `bam-mix finetune --dump-batches`: int32 [steps, accumulation, 2, B, T]
    bam_mix_steps.json  bam-mix's per-step log records (loss, lm_loss, btx/switch/z/aux losses, lr, grad_norm)
    finetune_args.json  the finetune flags, paths relative to the case directory
python/tests/test_against_bam_mix.py trains the same model on the same flags with the package and
compares.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "Tests", "Fixtures")
ROOT = os.path.join(FIXTURES, "finetune")
EXPERTS = os.path.join(FIXTURES, "mix", "experts")

COMMON = ["--steps", "5", "--batch", "4", "--seq", "24", "--lr", "3e-3", "--warmup", "2", "--eval-windows", "2"]
PADDED = ["--steps", "5", "--batch", "4", "--seq", "48", "--lr", "3e-3", "--warmup", "2", "--eval-windows", "2"]
CASES = {
    # BAM: expert-KV soft attention, FFN top-1 without renormalisation, BTX balance loss + z-loss,
    # two micro-batches per step.
    "bam_llama_expert_kv": {
        "mix": ["--method", "bam", "--router", "random", "--seed", "3"], "family": "llama",
        "finetune": COMMON + ["--accumulate", "2", "--seed", "11", "--aux-loss", "btx", "--aux-alpha", "0.01", "--z-loss", "0.001"],
    },
    # BTX written as Mixtral (transformers' MixtralForCausalLM on the Python side), Switch balance loss.
    "btx_llama_mixtral": {
        "mix": ["--method", "btx", "--seed", "7"], "family": "llama",
        "finetune": COMMON + ["--seed", "12", "--aux-loss", "switch", "--aux-alpha", "0.02", "--z-loss", "0.001"],
    },
    # BAM of a Cohere family: parallel blocks, LayerNorm, tied embeddings, shared K/V, top-2 attention
    # and top-2 FFN routing; only the routers and norms train.
    "bam_cohere_shared_kv_topk": {
        "mix": ["--method", "bam", "--router", "random", "--attention", "shared-kv", "--attention-routing", "top-k", "--attention-top-k", "2",
                "--top-k", "2", "--seed", "4"], "family": "cohere",
        "finetune": COMMON + ["--seed", "13", "--train", "routers,norms", "--aux-loss", "btx", "--aux-alpha", "0.01", "--z-loss", "0.001"],
    },
    # BTX's routing ablation with padding: a domain whose one stream is shorter than --seq + 1 tokens
    # (SHORT_TEXT, 40 bytes = tokens of the fixtures' byte-level tokenizer, 38 after the held-out
    # 5 %), so its windows are padded and the router statistics must leave the padding out.
    # Sampled top-1: the Gumbel noise of bam-mix's seeded stream (the package draws the same).
    "bam_llama_sample_top1_padded": {
        "mix": ["--method", "bam", "--ffn-routing", "sample-top1", "--gumbel-decay", "0.1", "--seed", "5"], "family": "llama",
        "finetune": PADDED + ["--seed", "14", "--aux-loss", "btx", "--aux-alpha", "0.01", "--z-loss", "0.001"], "short": True,
    },
    # Switch with a capacity factor that drops tokens, BTX's mixture written in the BAM format.
    "btx_llama_switch_padded": {
        "mix": ["--method", "btx", "--ffn-routing", "switch", "--capacity-factor", "1.0", "--seed", "6"], "family": "llama",
        "finetune": PADDED + ["--seed", "15", "--aux-loss", "switch", "--aux-alpha", "0.02", "--z-loss", "0.001"], "short": True,
    },
}
SHORT_TEXT = "Add: 3 + 4 = 7. Then 7 * 2 = 14. Done!!\n"
DOMAINS = {"math": 1, "code": 2}
KEPT_MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json")


def run(cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    binary = os.path.abspath(argv[1])
    only = argv[2:]  # case names (default: every case)
    for name, case in CASES.items():
        if only and name not in only:
            continue
        out = os.path.join(ROOT, name)
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(os.path.join(out, "data"))
        tmp = tempfile.mkdtemp()
        try:
            experts = [os.path.join(EXPERTS, f"{case['family']}_{s}") for s in ("seed", "e1", "e2")]
            mixed = os.path.join(tmp, "mixed")
            run([binary, "mix", *sum((["--expert", e] for e in experts), []), *case["mix"], "--out", mixed])
            os.makedirs(os.path.join(out, "model"))
            for f in KEPT_MODEL_FILES:
                shutil.copyfile(os.path.join(mixed, f), os.path.join(out, "model", f))
            with open(os.path.join(out, "model", "config.json")) as f:
                config = json.load(f)
            config.pop("auto_map", None)
            config["bam_sources"] = [f"Tests/Fixtures/mix/experts/{os.path.basename(e)}" for e in experts]
            with open(os.path.join(out, "model", "config.json"), "w") as f:
                json.dump(config, f, indent=2)
                f.write("\n")
            data = []
            for domain, seed in DOMAINS.items():
                path = os.path.join(out, "data", f"{domain}.txt")
                run([binary, "corpus", "--domain", domain, "--split", "train", "--bytes", "2500", "--seed", str(seed), "--out", path])
                data += ["--data", f"{domain}=data/{domain}.txt"]
            if case.get("short"):
                with open(os.path.join(out, "data", "short.txt"), "w") as f:
                    f.write(SHORT_TEXT)
                data += ["--data", "short=data/short.txt:2"]
            args = case["finetune"] + data
            log = os.path.join(tmp, "log.jsonl")
            subprocess.run([binary, "finetune", "--model", "model", *args, "--out", os.path.join(tmp, "ft"),
                            "--dump-batches", "batches.npy", "--log", log], check=True, cwd=out, stdout=subprocess.DEVNULL)
            keys = ("step", "loss", "lm_loss", "aux_loss", "btx_loss", "switch_loss", "z_loss", "lr", "grad_norm", "tokens")
            with open(log) as f:
                steps = [{k: r[k] for k in keys} for r in map(json.loads, f) if r["type"] == "step"]
            with open(os.path.join(out, "bam_mix_steps.json"), "w") as f:
                json.dump(steps, f, indent=1)
                f.write("\n")
            with open(os.path.join(out, "finetune_args.json"), "w") as f:
                json.dump(args, f, indent=1)
                f.write("\n")
            print(f"{name}: losses {[round(s['loss'], 4) for s in steps]}")
        finally:
            shutil.rmtree(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
