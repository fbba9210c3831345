"""MoE finetuning of a BAM or BTX (Mixtral) mixture, the objective and defaults of `bam-mix finetune`,
on one process or many:

    python -m bam_mix_torch.finetune --model MIX --data math=math.txt --data code=code.txt --out FT
    torchrun --nproc_per_node=8 -m bam_mix_torch.finetune --model MIX --data ... --out FT

Loss: next-token cross-entropy + sum over FFN mixture layers of alpha * balance + beta * z (losses.py),
with the loss kind and coefficients of the mixture's router recipe (config.json; flags override).
AdamW with decoupled weight decay (not on norms and biases), linear warm-up then cosine decay,
global-norm clipping (optim.py). Batches: bam-mix's seeded windows of the --data files, the same tokens
as `bam-mix finetune --seed S` draws (data.py), or the batches of a dump (--batches). Checkpoints:
bam-mix's layout, resumable by either tool (checkpoint.py). Under torchrun each micro-batch of --batch
windows is split across the processes and the model sharded with FSDP2 (distributed.py); the loss and
the update are those of the whole micro-batch, as on one process.

Arithmetic: float32, as bam-mix's, or float64 with --compute-dtype float64 (parameters, activations,
gradients, losses and AdamW moments; for a Mixtral, transformers' own model code still computes its
norms, attention and router softmaxes and RoPE angles in float32, token by token). The checkpoints'
weights are in --dtype either way (f32 by default, what bam-mix resumes; f64 keeps a float64 run's).
"""

import argparse
import faulthandler
import json
import math
import os
import sys
import time

import torch

from .checkpoint import read_training_state, restore_optimizer, save_checkpoint
from .data import BatchDump, SplitMix64, TrainingData, domain_specs, gumbel_noise, token_mask
from .distributed import Processes, shard
from .losses import batch_losses
from .modeling_bam import gumbel_temperature
from .models import PARAMETER_GROUPS, TrainableMixture, is_trainable
from .optim import AdamW, AdamWOptions, LearningRateSchedule, clip_coefficient
from .recipe import LossOptions

# --compute-dtype: the dtype of the parameters and of every step's arithmetic.
COMPUTE_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def parse_arguments(argv):
    p = argparse.ArgumentParser(
        prog="python -m bam_mix_torch.finetune",
        description="MoE finetuning of a BAM / BTX mixture: LM loss + load balancing (+ z-loss), as bam-mix finetune; "
        "under torchrun with FSDP2. See docs/distributed.md.",
    )
    p.add_argument("--model", required=True, help="the mixture: an HF directory written by bam-mix (BAM or Mixtral) with tokenizer.json")
    p.add_argument("--out", required=True, help="output directory (must not exist unless it is the --resume directory)")
    p.add_argument("--data", action="extend", nargs="+", default=[], help="domains: NAME=FILE[:WEIGHT] (repeat the name for several files)")
    p.add_argument("--val-data", action="extend", nargs="+", default=[], help="held-out text per domain: NAME=FILE")
    p.add_argument("--batches", help="train on the token batches of a dump (bam-mix finetune --dump-batches F.npy) instead of sampling")
    p.add_argument("--dump-batches", help="write the token batches of this run to F.npy ([steps, accumulation, 2, B, T] int32)")
    p.add_argument("--steps", type=int, default=100, help="optimiser steps (a resumed run continues up to this many)")
    p.add_argument("--batch", type=int, help="sequences per micro-batch, over all processes (default 4, or the dump's)")
    p.add_argument("--seq", type=int, help="tokens per sequence (default 256, or the dump's)")
    p.add_argument("--accumulate", type=int, help="micro-batches per step (default 1, or the dump's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the window sampling")
    p.add_argument("--lr", type=float, default=1e-4, help="peak learning rate")
    p.add_argument("--warmup", type=int, help="linear warm-up steps (default: 10%% of the steps, at most 100)")
    p.add_argument("--min-lr-fraction", type=float, default=0.1, help="the cosine decay ends at this fraction of the peak")
    p.add_argument("--weight-decay", type=float, default=0.1, help="AdamW decoupled weight decay (not on norms and biases)")
    p.add_argument("--decay-norms-and-biases", action="store_true", help="apply weight decay to norms and biases too")
    p.add_argument("--beta1", type=float, default=0.9)
    p.add_argument("--beta2", type=float, default=0.95)
    p.add_argument("--grad-clip", type=float, default=1.0, help="clip the global gradient norm to this (0: off)")
    p.add_argument("--train", default="all", help=f"parameter groups to train: {', '.join(PARAMETER_GROUPS)} (comma-separated)")
    p.add_argument("--aux-loss", choices=("btx", "switch", "none"), help="load-balancing loss (default: the config's router_aux_loss_kind, else btx)")
    p.add_argument("--aux-alpha", type=float, help="coefficient of the load-balancing loss (default: the config's router_aux_loss_coef, else 0.01)")
    p.add_argument("--z-loss", type=float, help="coefficient of the router z-loss (default: the config's router_z_loss_coef, else 0.001)")
    p.add_argument("--eval-every", type=int, default=0, help="validation loss every N steps (0: before and after training only)")
    p.add_argument("--eval-windows", type=int, default=32, help="held-out windows per domain in each validation")
    p.add_argument("--val-fraction", type=float, default=0.05, help="fraction of each --data file held out when no --val-data is given")
    p.add_argument("--checkpoint-every", type=int, default=0, help="save a checkpoint (with optimiser state) every N steps (0: at the end only)")
    p.add_argument("--resume", help="continue the run saved in DIR (weights, AdamW moments, step, sampler state)")
    # bam-mix calls it --log; torchrun would take `--log` for an abbreviation of its own --log-dir.
    p.add_argument("--log-file", help="JSONL log: one line per step and per validation (the fields of bam-mix's --log)")
    p.add_argument("--dtype", choices=("f32", "f16", "bf16", "f64"), default="f32",
                   help="weights dtype of the checkpoints: f32 (what bam-mix resumes), f16, bf16, or f64 (a float64 run's weights "
                   "unrounded, with float64 moments: bam-mix reads it for inference, this package resumes it)")
    p.add_argument("--compute-dtype", choices=tuple(COMPUTE_DTYPES), default="float32",
                   help="dtype of the parameters and the arithmetic: float32 (bam-mix's) or float64 (the same objective with "
                   "float64 rounding; twice the memory)")
    p.add_argument("--no-final-state", action="store_true", help="leave the optimiser state out of the final checkpoint")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA (NCCL) when available, else CPU (gloo)")
    args = p.parse_args(argv)
    if not args.data and not args.batches:
        p.error("give at least one --data NAME=FILE (or --batches F.npy)")
    groups = args.train.split(",")
    for g in groups:
        if g not in PARAMETER_GROUPS:
            p.error(f"--train: `{g}` is not a parameter group; use {', '.join(PARAMETER_GROUPS)} (comma-separated)")
    args.groups = groups
    for name, v, ok in (("--steps", args.steps, args.steps >= 1), ("--lr", args.lr, args.lr > 0 and math.isfinite(args.lr)),
                        ("--min-lr-fraction", args.min_lr_fraction, 0 <= args.min_lr_fraction <= 1),
                        ("--weight-decay", args.weight_decay, args.weight_decay >= 0),
                        ("--grad-clip", args.grad_clip, args.grad_clip >= 0),
                        ("--eval-every", args.eval_every, args.eval_every >= 0), ("--eval-windows", args.eval_windows, args.eval_windows >= 1),
                        ("--checkpoint-every", args.checkpoint_every, args.checkpoint_every >= 0),
                        ("--warmup", args.warmup, args.warmup is None or args.warmup >= 0)):
        if not ok:
            p.error(f"{name} {v} is out of range")
    for name in ("batch", "seq", "accumulate"):
        v = getattr(args, name)
        if v is not None and v < 1:
            p.error(f"--{name} must be at least 1, found {v}")
    if not (0 <= args.beta1 < 1 and 0 <= args.beta2 < 1):
        p.error("AdamW betas must be within [0, 1)")
    return args


class Finetune:
    """A run: the sharded mixture, its optimiser, the batches and the sampling state."""

    def __init__(self, args, processes):
        self.args = args
        self.processes = processes
        source = args.resume or args.model
        self.mixture = TrainableMixture.load(source, COMPUTE_DTYPES[args.compute_dtype])
        recipe = self.mixture.recipe
        self.losses = LossOptions(
            aux=args.aux_loss if args.aux_loss is not None else recipe.losses.aux,
            aux_coef=args.aux_alpha if args.aux_alpha is not None else recipe.losses.aux_coef,
            z_coef=args.z_loss if args.z_loss is not None else recipe.losses.z_coef,
        )

        self.dump = BatchDump.load(args.batches) if args.batches else None
        self.B = self._shape("batch", 4, self.dump.batch_size if self.dump else None)
        self.T = self._shape("seq", 256, self.dump.sequence_length if self.dump else None)
        self.A = self._shape("accumulate", 1, self.dump.accumulation if self.dump else None)
        if self.dump is not None and self.dump.steps < args.steps:
            raise ValueError(f"{args.batches} holds {self.dump.steps} steps; --steps is {args.steps}")
        self.mixture.check_sequence_length(self.T)
        self.rows = processes.rows(self.B)

        self.data = None
        if args.data:
            tokenizer = os.path.join(source, "tokenizer.json")
            if not os.path.isfile(tokenizer):
                raise ValueError(f"{source} has no tokenizer.json; training tokenises text with the model's own tokenizer")
            specs = domain_specs(args.data, args.val_data, default_name="data")
            self.data = TrainingData.from_specs(specs, tokenizer, args.val_fraction)

        # The factor of each process's objective that makes the reduced gradient the processes' sum.
        self.objective_scale = 1.0
        if processes.distributed:
            self.objective_scale = shard(self.mixture, processes)
        else:
            self.mixture.model.to(processes.device)
        trainable = []
        for p in self.mixture.parameters():
            train = is_trainable(p.role, args.groups)
            p.param.requires_grad_(train)
            if train:
                trainable.append(p)
        if not trainable:
            raise ValueError(f"--train {args.train} selects no parameter of this model")
        self.optimizer = AdamW(trainable, AdamWOptions(args.beta1, args.beta2, 1e-8, args.weight_decay, args.decay_norms_and_biases))
        warmup = args.warmup if args.warmup is not None else min(100, args.steps // 10)
        self.schedule = LearningRateSchedule(args.lr, warmup, args.steps, args.min_lr_fraction)
        self.step = 0
        self.tokens = 0
        self.rng = SplitMix64(args.seed)
        if args.resume:
            state = read_training_state(args.resume)
            if state.get("train") != args.groups:
                raise ValueError(f"{args.resume} was trained with --train {','.join(state.get('train', []))}; resume with the same parameter groups")
            restore_optimizer(args.resume, self.optimizer, state)
            self.step = int(state["step"])
            self.tokens = int(state["tokens"])
            self.rng = SplitMix64(int(state["rng_state"]))
        self.dumped = []

    def _shape(self, name, default, from_dump):
        given = getattr(self.args, name)
        if from_dump is not None:
            if given is not None and given != from_dump:
                raise ValueError(f"--{name} {given} differs from the batch dump's {from_dump}")
            return from_dump
        return default if given is None else given

    # -- steps -----------------------------------------------------------------------------------

    def next_batches(self):
        """The micro-batches of the next step (full [B, T] arrays; each process then takes its rows)."""
        if self.dump is not None:
            return self.dump.micro_batches(self.step)
        return [self.data.sample_batch(self.B, self.T, self.rng) for _ in range(self.A)]

    def train_step(self, batches):
        """One optimiser step on the given micro-batches: the gradient of their mean loss, clipping, AdamW."""
        started = time.perf_counter()
        proc = self.processes
        sums = {"total": 0.0, "lm": 0.0, "btx": 0.0, "switch": 0.0, "z": 0.0, "aux": 0.0}
        counts = None
        recipe = self.mixture.recipe
        for micro, (inputs, targets) in enumerate(batches):
            x = torch.as_tensor(inputs[self.rows], device=proc.device)
            y = torch.as_tensor(targets[self.rows], device=proc.device)
            # Padding (past a short stream's end) stays out of the router statistics, as in bam-mix.
            mask = torch.as_tensor(token_mask(targets)[self.rows], device=proc.device)
            if recipe.ffn_routing == "sample_top1":
                # bam-mix's noise for this step, micro-batch and layer, this process's rows of it.
                B, T = inputs.shape
                E = recipe.num_experts
                noise = [torch.as_tensor(gumbel_noise(self.args.seed, self.step, micro, l, B * T, E).reshape(B, T, E)[self.rows]
                                         .reshape(-1, E), device=proc.device) for l in range(len(self.mixture.moe_blocks()))]
                self.mixture.set_gumbel_noise(noise, gumbel_temperature(recipe.gumbel_decay, self.step))
            try:
                logits, router_logits, routings = self.mixture.forward_routed(x, mask)
            finally:
                self.mixture.set_gumbel_noise(None, None)
            losses = batch_losses(logits, y, router_logits, routings, recipe, self.losses, proc.reduce_sum, token_mask=mask)
            if not math.isfinite(losses.total):
                raise FloatingPointError(f"step {self.step + 1}: the loss is {losses.total} (LM {losses.lm}); lower --lr or raise --warmup")
            # Each process's objective carries only its own tokens' share of the global gradient; FSDP
            # reduces the shares (objective_scale makes that reduction their sum, distributed.py).
            (losses.objective * (self.objective_scale / len(batches))).backward()
            for k in sums:
                sums[k] += getattr(losses, k) / len(batches)
            counts = losses.expert_counts if counts is None else counts + losses.expert_counts
        norm = self.optimizer.gradient_norm(proc.reduce_sum)
        if not math.isfinite(norm):
            raise FloatingPointError(f"step {self.step + 1}: the gradient norm is {norm}; lower --lr")
        lr = self.schedule.rate(self.step)
        scale = clip_coefficient(norm, self.args.grad_clip) if self.args.grad_clip > 0 else 1.0
        self.optimizer.update(lr, scale, lambda layer, expert: counts[layer, expert].item() > 0)
        for p in self.optimizer.parameters:
            p.param.grad = None
        self.step += 1
        step_tokens = self.B * self.T * len(batches)
        self.tokens += step_tokens
        seconds = time.perf_counter() - started
        return {
            "step": self.step, "loss": sums["total"], "lm_loss": sums["lm"], "aux_loss": sums["aux"],
            "btx_loss": sums["btx"], "switch_loss": sums["switch"], "z_loss": sums["z"], "lr": lr, "grad_norm": norm,
            "tokens": self.tokens, "seconds": seconds, "tokens_per_second": step_tokens / seconds,
            # per FFN layer, the fraction of routed (token, slot) pairs each expert received
            "expert_load": (counts / counts.sum(1, keepdim=True)).tolist(),
        }

    def validate(self):
        """Mean next-token loss over each domain's fixed held-out windows."""
        total, count, domains = 0.0, 0, {}
        proc = self.processes
        with torch.no_grad():
            for d, domain in enumerate(self.data.domains):
                d_sum, d_count = 0.0, 0
                for inputs, targets, _ in self.data.validation_batches(d, self.B, self.T, self.args.eval_windows):
                    x = torch.as_tensor(inputs[self.rows], device=proc.device)
                    y = torch.as_tensor(targets[self.rows], device=proc.device)
                    logits, _ = self.mixture.forward(x)
                    V = logits.shape[-1]
                    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, V), y.reshape(-1), ignore_index=-1, reduction="sum")
                    s = proc.reduce_sum(torch.stack([ce.double(), (y >= 0).sum().double()]))
                    d_sum += s[0].item()
                    d_count += int(s[1].item())
                if d_count:
                    domains[domain.name] = d_sum / d_count
                total += d_sum
                count += d_count
        if count == 0:
            raise ValueError("no validation tokens: the held-out split is empty")
        return {"step": self.step, "val_loss": total / count, "val_loss_by_domain": domains, "val_tokens": count}

    def save(self, with_state):
        a = self.args
        state = {"step": self.step, "rng_state": str(self.rng.state), "tokens": self.tokens, "seed": str(a.seed),
                 "steps": a.steps, "learning_rate": a.lr, "train": a.groups}
        save_checkpoint(a.out, self.mixture, self.optimizer, state, a.dtype, with_state, self.processes.main)
        self.processes.barrier()

    # -- the run ---------------------------------------------------------------------------------

    def run(self):
        a, main = self.args, self.processes.main
        if os.path.exists(a.out) and (not a.resume or os.path.realpath(a.resume) != os.path.realpath(a.out)):
            raise ValueError(f"{a.out} already exists; choose a new --out directory (or --resume {a.out} to continue that run)")
        log = open(a.log_file, "a" if a.resume else "w") if (a.log_file and main) else None

        def write(record, kind):
            if log:
                log.write(json.dumps({**record, "type": kind}, sort_keys=True) + "\n")
                log.flush()

        steps, validations = [], []
        every = max(1, a.steps // 20)
        try:
            if self.data and self.step == 0:
                validations.append(self.validate())
                write(validations[-1], "validation")
            while self.step < a.steps:
                batches = self.next_batches()
                if a.dump_batches:
                    self.dumped.append(batches)
                r = self.train_step(batches)
                steps.append(r)
                write(r, "step")
                if main and (r["step"] % every == 0 or r["step"] == a.steps):
                    print(f"step {r['step']}/{a.steps}  loss {r['loss']:.4f}  lr {r['lr']:.2e}  {r['tokens_per_second']:.0f} tok/s",
                          file=sys.stderr, flush=True)
                if self.data and a.eval_every > 0 and self.step % a.eval_every == 0 and self.step < a.steps:
                    validations.append(self.validate())
                    write(validations[-1], "validation")
                if a.checkpoint_every > 0 and self.step % a.checkpoint_every == 0 and self.step < a.steps:
                    self.save(with_state=True)
            if self.data:
                validations.append(self.validate())
                write(validations[-1], "validation")
            self.save(with_state=not a.no_final_state)
            if a.dump_batches and main:
                BatchDump.save(a.dump_batches, self.dumped)
        finally:
            if log:
                log.close()
        if main and steps:
            seconds = sum(r["seconds"] for r in steps)
            rate = self.B * self.T * self.A * len(steps) / seconds
            print(f"finetune: {len(steps)} steps on {self.processes.world} process(es), {self.tokens} tokens seen, "
                  f"{seconds:.1f} s, {rate:.0f} tokens/s")
            print(f"  training loss {steps[0]['loss']:.4f} -> {steps[-1]['loss']:.4f} (LM {steps[0]['lm_loss']:.4f} -> {steps[-1]['lm_loss']:.4f})")
            if validations:
                print(f"  validation loss {validations[0]['val_loss']:.4f} -> {validations[-1]['val_loss']:.4f}")
            print(f"  saved {a.out}")
        return steps, validations


def main(argv=None):
    # A crash in native code (a collective, the gloo/NCCL teardown) prints each thread's Python
    # stack, so a failed multi-process run says where its rank died.
    faulthandler.enable()
    args = parse_arguments(sys.argv[1:] if argv is None else argv)
    processes = None
    try:
        processes = Processes.start(args.device)
        Finetune(args, processes).run()
    except (ValueError, NotImplementedError, FloatingPointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        if processes is not None:
            processes.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
