"""Checkpoints in the layout bam-mix reads and writes (docs/training.md, "Checkpoints and resume").

An HF directory, replaced atomically: config.json (the input's, with its dtype), model.safetensors
(the full state, gathered from the shards, in the bam-mix layout), the tokenizer and generation files
of the input and, for BAM, the model code with `auto_map` (so transformers loads it). Beside the
weights, for resuming:
    training_state.safetensors  exp_avg.<name>, exp_avg_sq.<name>  (per trained parameter; float32,
                                float64 beside f64 weights)
    training_state.json         step, rng_state (decimal string), tokens, seed, steps, learning_rate,
                                train, weights_dtype ("F32", bam-mix's name), parameter_steps {name: AdamW updates}
bam-mix and this package read each other's checkpoints, resume included.

The weights are written in the dtype asked for (--dtype), whatever the run computed in: f32 by default,
the checkpoints bam-mix writes and resumes; f16 or bf16 for smaller files; f64 keeps a float64 run's
weights unrounded (--compute-dtype float64), with float64 moments. bam-mix reads f64 weights for
inference (perplexity, forward, compare: it converts them to float32) but resumes only f32 checkpoints;
this package resumes f32 and f64 ones.
"""

import json
import os
import shutil
import uuid

import torch
from safetensors.torch import load_file, save_file

from .distributed import full_tensor, gather_like, shard_like
from .models import from_bam_mix_layout, to_bam_mix_layout

STATE_TENSORS = "training_state.safetensors"
STATE_JSON = "training_state.json"
SIDE_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
              "tokenizer.model", "vocab.json", "merges.txt")
MODEL_CODE = ("configuration_bam.py", "modeling_bam.py")
AUTO_MAP = {"AutoConfig": "configuration_bam.BamConfig", "AutoModelForCausalLM": "modeling_bam.BamForCausalLM"}
# --dtype -> (torch dtype, config.json's "dtype", training_state.json's weights_dtype: bam-mix's DType name)
DTYPES = {"f32": (torch.float32, "float32", "F32"), "f16": (torch.float16, "float16", "F16"),
          "bf16": (torch.bfloat16, "bfloat16", "BF16"), "f64": (torch.float64, "float64", "F64")}
# The weights dtypes a run resumes from: what training writes (float32; float64 for a float64 run).
RESUMABLE = ("F32", "F64")
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def gather_state(mixture, optimizer, with_moments, main):
    """({name: full weight}, {name: moment}) in the bam-mix layout, on the main process (empty on the
    others). A collective: every process calls it; each gathers one tensor at a time, and only the
    main process keeps them (the whole model and, with the moments, three times that in its CPU memory)."""
    weights, moments = {}, {}
    trained = {id(p.param): i for i, p in enumerate(optimizer.parameters)}
    for p in mixture.parameters():
        full = full_tensor(p.param.data).detach().cpu()
        if main:
            weights.update(to_bam_mix_layout(p, full))
        i = trained.get(id(p.param))
        if with_moments and i is not None:
            m = gather_like(optimizer.m[i], p.param.data).detach().cpu()
            v = gather_like(optimizer.v[i], p.param.data).detach().cpu()
            if main:
                moments.update({"exp_avg." + k: t for k, t in to_bam_mix_layout(p, m).items()})
                moments.update({"exp_avg_sq." + k: t for k, t in to_bam_mix_layout(p, v).items()})
    return weights, moments


def parameter_steps(mixture, optimizer):
    """{bam-mix name: AdamW updates} of every trained parameter (per expert for stacked tensors)."""
    out = {}
    for p, steps in zip(optimizer.parameters, optimizer.steps):
        if p.stacked:
            per = len(p.slices)
            for j, name in enumerate(p.names):
                out[name] = steps[j // per]
        else:
            out[p.names[0]] = steps
    return out


def save_checkpoint(directory, mixture, optimizer, state, dtype, with_state, main):
    """Writes the checkpoint (`state`: the training_state.json fields but parameter_steps). Every
    process must call it (the gather is collective); the main process writes."""
    weights, moments = gather_state(mixture, optimizer, with_state, main)
    if not main:
        return
    torch_dtype, dtype_name, state_name = DTYPES[dtype]
    # The moments as precise as the weights: float32 (what bam-mix resumes), float64 beside f64 weights.
    moments_dtype = torch.float64 if torch_dtype == torch.float64 else torch.float32
    parent = os.path.dirname(os.path.abspath(directory))
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{os.path.basename(directory)}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    os.makedirs(tmp)
    try:
        save_file({k: t.to(torch_dtype).clone().contiguous() for k, t in weights.items()}, os.path.join(tmp, "model.safetensors"),
                  metadata={"format": "pt"})
        config = dict(mixture.config)
        config.pop("torch_dtype", None)
        config["dtype"] = dtype_name
        for name in SIDE_FILES:
            src = os.path.join(mixture.path, name)
            if os.path.isfile(src):
                shutil.copyfile(src, os.path.join(tmp, name))
        if mixture.architecture == "bam":
            # The package's own model code, so transformers loads the checkpoint with trust_remote_code.
            for name in MODEL_CODE:
                shutil.copyfile(os.path.join(PACKAGE_DIR, name), os.path.join(tmp, name))
            config["auto_map"] = {**config.get("auto_map", {}), **AUTO_MAP}
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
            f.write("\n")
        if with_state:
            save_file({k: t.to(moments_dtype).clone().contiguous() for k, t in moments.items()}, os.path.join(tmp, STATE_TENSORS))
            with open(os.path.join(tmp, STATE_JSON), "w") as f:
                json.dump({**state, "weights_dtype": state_name, "parameter_steps": parameter_steps(mixture, optimizer)}, f,
                          indent=2, sort_keys=True)
                f.write("\n")
        if os.path.exists(directory):
            old = os.path.join(parent, f".{os.path.basename(directory)}.old-{os.getpid()}")
            os.replace(directory, old)
            os.replace(tmp, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_training_state(directory):
    path = os.path.join(directory, STATE_JSON)
    if not os.path.isfile(path):
        raise ValueError(f"{directory} has no {STATE_JSON}; --resume needs a checkpoint written by a finetune with its training state")
    with open(path) as f:
        state = json.load(f)
    # bam-mix writes its DType name ("F32"); this package wrote "f32" before it used the same name.
    weights = str(state.get("weights_dtype")).upper()
    if weights not in RESUMABLE:
        raise ValueError(f"{directory} holds {state.get('weights_dtype')} weights; resuming needs the float32 checkpoints "
                         "training writes by default (--dtype f32), or float64 ones (--dtype f64)")
    return state


def restore_optimizer(directory, optimizer, state):
    """Loads the moments and step counts of `directory` into `optimizer` (each process its shard)."""
    tensors = load_file(os.path.join(directory, STATE_TENSORS))
    steps = state["parameter_steps"]
    for i, p in enumerate(optimizer.parameters):
        for prefix, target in (("exp_avg.", optimizer.m), ("exp_avg_sq.", optimizer.v)):
            named = {}
            for name in p.names:
                t = tensors.get(prefix + name)
                if t is None:
                    raise ValueError(f"{directory}/{STATE_TENSORS}: no `{prefix}{name}`; was the run started with other --train groups or another model?")
                named[name] = t
            full = from_bam_mix_layout(p, named)
            if tuple(full.shape) != tuple(p.param.shape):
                raise ValueError(f"{directory}/{STATE_TENSORS}: `{prefix}{p.names[0]}` has shape {list(full.shape)}, the model {list(p.param.shape)}")
            target[i].copy_(shard_like(full.to(target[i].dtype), p.param.data))
        missing = [n for n in p.names if n not in steps]
        if missing:
            raise ValueError(f"{directory}/{STATE_JSON}: parameter_steps has no entry for `{missing[0]}`")
        if p.stacked:
            per = len(p.slices)
            optimizer.steps[i] = [int(steps[p.names[e * per]]) for e in range(p.param.shape[0])]
        else:
            optimizer.steps[i] = int(steps[p.names[0]])
