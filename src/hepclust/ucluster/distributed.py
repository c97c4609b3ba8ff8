"""The process group of a torchrun launch: one model replica per process, each training on
its shard of every batch, the gradients averaged after each backward as PyTorch's
DistributedDataParallel does. Every helper does nothing when there is no process group.
"""

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist


@contextmanager
def process_group(device: torch.device) -> Iterator[torch.device]:
    """Join the process group that torchrun's environment (WORLD_SIZE, RANK, LOCAL_RANK)
    describes, if it has more than one process, and yield the device this process trains
    on: cuda:LOCAL_RANK for CUDA. Gloo connects CPU processes, NCCL GPUs."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        yield device
        return
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        dist.init_process_group("gloo")
    try:
        yield device
    finally:
        dist.destroy_process_group()


def rank_and_world() -> tuple[int, int]:
    if not dist.is_initialized():
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


def shard(rows: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """The rows of a batch that `rank` trains on."""
    return rows[rank::world]


def average_gradients(parameters: Iterable[torch.nn.Parameter]) -> None:
    """Replace every gradient by its mean over the processes, in one all_reduce."""
    if not dist.is_initialized():
        return
    parameters = list(parameters)
    for parameter in parameters:
        if parameter.grad is None:  # unused by this shard's loss; the others must match
            parameter.grad = torch.zeros_like(parameter)
    flat = torch.cat([parameter.grad.reshape(-1) for parameter in parameters])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    for parameter, mean in zip(parameters, flat.split([p.numel() for p in parameters]),
                               strict=True):
        parameter.grad.copy_(mean.view_as(parameter))


@torch.no_grad()
def broadcast_from_rank0(tensors: Iterable[torch.Tensor]) -> None:
    """Overwrite the tensors (parameters, buffers) of every process with rank 0's."""
    if not dist.is_initialized():
        return
    for tensor in tensors:
        dist.broadcast(tensor, src=0)


def summed(*values: float) -> list[float]:
    """Each value summed over the processes."""
    if not dist.is_initialized():
        return list(values)
    device = (torch.device("cuda", torch.cuda.current_device())
              if dist.get_backend() == "nccl" else torch.device("cpu"))
    totals = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(totals)
    return totals.tolist()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()
