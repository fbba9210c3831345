"""Processes and sharding: one process (plain PyTorch) or several started by torchrun (FSDP2).

Under torchrun (WORLD_SIZE, RANK and LOCAL_RANK in the environment) the process group uses NCCL on
CUDA machines and gloo on CPU-only ones; each decoder block is one FSDP2 unit (`fully_shard`), the
embeddings, final norm and output projection the root unit. Between a block's forward and backward
each rank holds the block whole — every expert — so a rank computes every expert its own tokens
chose and no collective depends on routing.
"""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Processes:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def distributed(self):
        return self.world > 1 or dist.is_initialized()

    @property
    def main(self):
        return self.rank == 0

    @staticmethod
    def start(device="auto"):
        """Joins the torchrun process group when started by torchrun, else a single process. `device`:
        "cuda", "cpu" or "auto" (CUDA when available)."""
        use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
        if use_cuda and not torch.cuda.is_available():
            raise ValueError("--device cuda: this torch has no CUDA device")
        if "WORLD_SIZE" not in os.environ:
            return Processes(rank=0, world=1, local_rank=0, device=torch.device("cuda" if use_cuda else "cpu"))
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        if use_cuda:
            torch.cuda.set_device(local_rank)
            device = torch.device("cuda", local_rank)
            backend = "nccl"
        else:
            device = torch.device("cpu")
            backend = "gloo"
        dist.init_process_group(backend=backend)
        return Processes(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=local_rank, device=device)

    def stop(self):
        if dist.is_initialized():
            # Every process reaches the teardown before any starts it: a process that destroyed its
            # gloo group while its peer was still busy (rank 0 printing its summary) was seen to
            # abort at exit ("terminate called without an active exception", SIGABRT), about one
            # run in five when rank 0 was made half a second slower.
            dist.barrier()
            dist.destroy_process_group()

    def reduce_sum(self, tensor):
        """The sum over the processes of a detached tensor (returned on the CPU)."""
        if not dist.is_initialized():
            return tensor.cpu()
        t = tensor.detach().to(self.device).clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.cpu()

    def barrier(self):
        if dist.is_initialized():
            dist.barrier()

    def rows(self, B):
        """The rows of a micro-batch of B windows this process takes: a contiguous slice."""
        if B % self.world != 0:
            raise ValueError(f"--batch {B} is not a multiple of the number of processes ({self.world}); every process takes B / processes windows")
        per = B // self.world
        return slice(self.rank * per, (self.rank + 1) * per)


def shard(mixture, processes):
    """Shards the mixture with FSDP2: one unit per decoder block, the rest in the root unit. Returns the
    factor each process multiplies its objective by so that the gradients FSDP leaves are the sum of
    the processes' gradients (`gradient_sum_scale`).

    A tensor stacking the experts along dim 0 (transformers 5's fused Mixtral experts) is sharded along
    dim 1 instead, so each rank keeps a slice of every expert and the optimiser's per-expert rule
    applies to its local shard directly."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import Shard

    mixture.model.to(processes.device)
    mesh = init_device_mesh(processes.device.type, (processes.world,))
    scale = gradient_sum_scale(mesh, processes.device, mixture.dtype)
    stacked = {id(p.param) for p in mixture.parameters() if p.stacked}

    def placement(param):
        return Shard(1) if id(param) in stacked else None

    mixture.prepare_for_sharding()
    for layer in mixture.decoder_layers():
        fully_shard(layer, mesh=mesh, shard_placement_fn=placement)
    fully_shard(mixture.model, mesh=mesh, shard_placement_fn=placement)
    return scale


def gradient_sum_scale(mesh, device, dtype):
    """The factor s such that, when every process backpropagates s times its own objective, the gradient
    FSDP2 leaves in each shard is the sum of the processes' gradients (the finetune's objective is built
    so that this sum is the whole batch's gradient, losses.py).

    FSDP2 means to average float32 gradients (a reduce-scatter with ReduceOp.AVG), which makes s the
    number of processes. But gloo's reduce-scatter in torch 2.7 (and the releases before the fix of
    pytorch/pytorch#162338) sums when asked for AVG, without an error, and a fixed s then counts every
    gradient N times. Rather than keep a table of versions and backends, this measures what FSDP2 does
    on this mesh: a one-row-per-process weight whose gradient is 1 on every process comes back as 1
    (averaged) or N (summed). The probe has the model's dtype, because FSDP2 reduces by dtype: it asks
    the backend for AVG on float32 and bfloat16 gradients only, and sums others (float64) after dividing
    them itself, so the same torch averages correctly in float64 and not in float32."""
    from torch.distributed.fsdp import fully_shard

    n = mesh.size()
    # skip_init: no draw from torch's random generator, which the run's own initialisation may use.
    probe = torch.nn.utils.skip_init(torch.nn.Linear, 1, n, bias=False, device=device, dtype=dtype)
    with torch.no_grad():
        probe.weight.zero_()
    fully_shard(probe, mesh=mesh)
    probe(torch.ones(1, 1, device=device, dtype=dtype)).sum().backward()
    reduced = probe.weight.grad.to_local().detach().cpu()
    if reduced.numel() != 1:
        raise RuntimeError(f"FSDP2 gave this process {reduced.numel()} rows of a {n}-row weight; expected one")
    value = reduced.item()
    if not (abs(value - 1.0) <= 1e-6 or abs(value - n) <= 1e-6 * n):
        raise RuntimeError(f"FSDP2 reduced a gradient of 1 on each of {n} processes to {value}: neither their mean (1) "
                           f"nor their sum ({n}); the finetune cannot tell how to scale its objective")
    return n / value


def full_tensor(t):
    """The whole tensor of a (possibly sharded) parameter or gradient; a collective under FSDP."""
    return t.full_tensor() if hasattr(t, "full_tensor") else t


def shard_like(full, param):
    """This process's shard of `full`, a tensor of `param`'s global shape, placed as `param` is."""
    if not hasattr(param, "device_mesh"):
        return full.to(param.device)
    from torch.distributed.tensor import distribute_tensor

    return distribute_tensor(full.to(param.to_local().device), param.device_mesh, param.placements).to_local()


def gather_like(local_tensor, param):
    """The whole tensor from this process's shard `local_tensor` of a tensor placed as `param`."""
    if not hasattr(param, "device_mesh"):
        return local_tensor
    from torch.distributed.tensor import DTensor

    return DTensor.from_local(local_tensor, param.device_mesh, param.placements, shape=param.shape,
                              stride=param.stride()).full_tensor()
