"""Makes a BAM checkpoint directory loadable by transformers with trust_remote_code.

    python -m bam_mix_torch.install CHECKPOINT_DIR [CHECKPOINT_DIR ...]

`bam-mix mix` already does this for every BAM checkpoint it writes; this is for checkpoints written
before it did, or converted back from GGUF. Copies the package's configuration_bam.py and
modeling_bam.py next to the checkpoint and adds to its config.json

    "auto_map": {"AutoConfig": "configuration_bam.BamConfig",
                 "AutoModelForCausalLM": "modeling_bam.BamForCausalLM"}

(other config keys are kept as they are; config.json is replaced atomically). Afterwards:

    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(CHECKPOINT_DIR, trust_remote_code=True)
"""
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FILES = ("configuration_bam.py", "modeling_bam.py")
AUTO_MAP = {
    "AutoConfig": "configuration_bam.BamConfig",
    "AutoModelForCausalLM": "modeling_bam.BamForCausalLM",
}


def install(directory):
    config_path = os.path.join(directory, "config.json")
    if not os.path.isfile(config_path):
        raise SystemExit(f"{directory}: no config.json")
    with open(config_path) as f:
        config = json.load(f)
    if config.get("model_type") != "bam":
        raise SystemExit(f"{directory}: model_type is {config.get('model_type')!r}, not 'bam'")
    for name in FILES:
        shutil.copyfile(os.path.join(HERE, name), os.path.join(directory, name))
    config["auto_map"] = {**(config.get("auto_map") or {}), **AUTO_MAP}
    tmp = f"{config_path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    os.replace(tmp, config_path)


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if len(argv) >= 2 else 2
    for directory in argv[1:]:
        install(directory)
        print(f"{directory}: installed {', '.join(FILES)} and auto_map")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
