"""The training loop shared by every UCluster stage: epochs, schedule, checkpoints, resume.

A stage is a model, the tensors it trains on and a loss of one batch. Each epoch ends
with a checkpoint (model, optimiser, extra parameters such as the centroids, history);
a stage started again with the same checkpoint directory resumes after the last finished
epoch and, since the batch order of an epoch depends only on (seed, epoch), ends exactly
where an uninterrupted run would have.

Under torchrun (`distributed.process_group`) every process builds the same batches, trains
on its shard of each and averages the gradients with the others before the step, as
DistributedDataParallel does; only rank 0 writes checkpoints.
"""

import ctypes
import ctypes.util
import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from hepclust.io.parquet import atomic_path
from hepclust.ucluster import distributed

log = logging.getLogger(__name__)

Batch = dict[str, torch.Tensor]
BatchLoss = Callable[[Batch, int], torch.Tensor]
StepHook = Callable[[int, int, bool], None]


@dataclass(frozen=True)
class Schedule:
    """Adam's learning rate: `lr`, halved every `halving_epochs`, never below `lr_min`."""

    lr: float = 1e-3
    halving_epochs: int = 3
    lr_min: float = 1e-5

    def at(self, epoch: int) -> float:
        return max(self.lr * 0.5 ** (epoch // self.halving_epochs), self.lr_min)

    def apply(self, optimizer: torch.optim.Optimizer, epoch: int) -> float:
        """Set the learning rate of `epoch` on every group of `optimizer`; return it."""
        lr = self.at(epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr


@functools.cache
def reuse_freed_memory() -> bool:
    """Have glibc keep freed blocks of up to 32 MiB instead of returning them to the system.

    ABCNet's edge tensors (batch x particles x k x 128 floats, about 20 MB at 128 jets of 30
    particles) are above glibc's default mmap threshold, so every one was a fresh mmap whose
    pages the kernel zeroes on first touch: a third of the CPU time of a training step went
    to page faults. True where the setting took (glibc); elsewhere nothing changes."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, 1 << 30))


def batches(data: Batch, batch_size: int, seed: int, epoch: int, device: torch.device,
            rank: int = 0, world: int = 1) -> list[Batch]:
    """The shuffled batches of one epoch, the order depending only on (seed, epoch); of
    each, the shard of process `rank` of `world`. A last batch too small to give every
    process a row is dropped."""
    n = len(next(iter(data.values())))
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(n, generator=generator)
    shards = [distributed.shard(chunk, rank, world) for chunk in order.split(batch_size)
              if len(chunk) >= world]
    return [{name: tensor[rows].to(device) for name, tensor in data.items()} for rows in shards]


def train(model: nn.Module, data: Batch, batch_loss: BatchLoss, epochs: int,
          batch_size: int, checkpoints: str | Path, seed: int, device: torch.device,
          schedule: Schedule = Schedule(), extra: Sequence[nn.Parameter] = (),
          first_schedule_epoch: int = 0, desc: str = "training",
          start_optimizer: dict | None = None, freeze_norm: bool = False,
          after_step: StepHook | None = None) -> list[dict]:
    """Train for `epochs` epochs (resuming from `checkpoints`/last.pt if present) and
    return the history, one dict per epoch. `batch_loss(batch, epoch)` gives the loss;
    `epoch` counts from 0 within this stage, the schedule from `first_schedule_epoch`.
    Adam has the model's parameters in its first group, loaded from `start_optimizer` (an
    earlier stage's state, `optimizer_state`) if given, and `extra` in a second.
    `freeze_norm`: the normalisation layers keep their running statistics (evaluation
    mode) while the rest trains, so an example's output in training is the one it gets in
    evaluation (`freeze_norms`). `after_step(epoch, step, last)` runs after every optimiser
    step (`last`: the epoch's final one, before its checkpoint); it may evaluate the
    model, which then goes back to training mode."""
    checkpoints = Path(checkpoints)
    reuse_freed_memory()
    rank, world = distributed.rank_and_world()
    model.to(device)
    parameters = [*model.parameters(), *extra]
    # fused: one kernel per parameter instead of a dozen (4.5 -> 0.8 ms a step for the jets
    # network on one thread); the same update up to rounding.
    optimizer = torch.optim.Adam(model.parameters(), lr=schedule.lr, fused=True)
    if start_optimizer is not None:
        optimizer.load_state_dict(start_optimizer)
    if extra:
        optimizer.add_param_group({"params": list(extra), "lr": schedule.lr})
    history, start = _resume(checkpoints / "last.pt", model, optimizer, extra, device)
    distributed.broadcast_from_rank0([*parameters, *model.buffers()])
    for epoch in range(start, epochs):
        lr = schedule.apply(optimizer, first_schedule_epoch + epoch)
        model.train()
        if freeze_norm:
            freeze_norms(model)
        began, cpu_began, total, count = time.perf_counter(), time.process_time(), 0.0, 0
        epoch_batches = batches(data, batch_size, seed, epoch, device, rank, world)
        for step, batch in enumerate(tqdm(epoch_batches, desc=f"{desc} epoch {epoch + 1}/{epochs}",
                                          unit="batch", leave=False, disable=rank != 0)):
            optimizer.zero_grad(set_to_none=True)
            loss = batch_loss(batch, epoch)
            loss.backward()
            distributed.average_gradients(parameters)
            optimizer.step()
            size = len(next(iter(batch.values())))
            total, count = total + loss.item() * size, count + size
            if after_step is not None:
                after_step(epoch, step, step == len(epoch_batches) - 1)
                model.train()
                if freeze_norm:
                    freeze_norms(model)
        distributed.broadcast_from_rank0(model.buffers())  # BatchNorm's running statistics
        total, count = distributed.summed(total, count)
        history.append({"epoch": epoch, "lr": lr, "loss": total / count,
                        "seconds": time.perf_counter() - began,
                        "cpu_seconds": time.process_time() - cpu_began,
                        "examples": int(count)})
        log.info("%s epoch %d/%d: loss %.4f, %.1f s", desc, epoch + 1, epochs,
                 history[-1]["loss"], history[-1]["seconds"])
        if rank == 0:
            _save(checkpoints / "last.pt", model, optimizer, extra, history)
        distributed.barrier()
    return history


class WeightAverage:
    """The average of a model's parameters at the end of its epochs from `first_epoch` on
    (stochastic weight averaging, Izmailov et al., arXiv:1803.05407): `after_step` is the
    training loop's hook, `load_into` puts the average into the model. The running average
    is saved to `path` after every epoch it takes in, so a resumed training goes on with it
    (an epoch already in it is not counted twice). Batch-norm statistics are not averaged:
    set them for the averaged weights afterwards (`precise_norm_statistics`)."""

    def __init__(self, model: nn.Module, first_epoch: int, path: str | Path):
        self.parameters = list(model.parameters())
        self.first_epoch, self.path = first_epoch, Path(path)
        self.count, self.last_epoch, self.average = 0, -1, None
        if self.path.is_file():
            state = torch.load(self.path, map_location="cpu", weights_only=True)
            self.count, self.last_epoch = state["count"], state["last_epoch"]
            self.average = state["average"]

    def after_step(self, epoch: int, step: int, last: bool) -> None:
        if not last or epoch < self.first_epoch or epoch <= self.last_epoch:
            return
        current = [parameter.detach().cpu().clone() for parameter in self.parameters]
        self.count += 1
        if self.average is None:
            self.average = current
        else:
            for mean, value in zip(self.average, current, strict=True):
                mean.add_(value - mean, alpha=1.0 / self.count)
        self.last_epoch = epoch
        if distributed.rank_and_world()[0] == 0:
            with atomic_path(self.path) as tmp:
                torch.save({"count": self.count, "last_epoch": epoch,
                            "average": self.average}, tmp)

    @torch.no_grad()
    def load_into(self, model: nn.Module) -> int:
        """Copy the average into `model`'s parameters; returns the epochs averaged."""
        if self.average is None:
            raise ValueError(f"no epoch from {self.first_epoch} on has been averaged")
        for parameter, mean in zip(model.parameters(), self.average, strict=True):
            parameter.copy_(mean.to(parameter.device))
        return self.count


def freeze_norms(model: nn.Module) -> int:
    """Put every layer with running statistics (batch normalisation) in evaluation mode:
    it normalises with the running statistics and no longer updates them; its scale and
    shift still train. Returns how many layers."""
    frozen = 0
    for module in model.modules():
        if getattr(module, "running_mean", None) is not None:
            module.eval()
            frozen += 1
    return frozen


@torch.no_grad()
def precise_norm_statistics(model: nn.Module, data: Batch, batch_size: int,
                            device: torch.device) -> int:
    """Set the running statistics of every batch norm to the average of its batch
    statistics over all of `data` (batches of `batch_size`, in order), instead of the
    exponential average of the last few training batches. With small training batches
    those few batches move the evaluation-mode output enough to reshuffle a clustering
    (docs/ucluster.md). The model's parameters stay; it is left in evaluation mode.
    Returns how many layers."""
    norms = [module for module in model.modules()
             if getattr(module, "running_mean", None) is not None]
    momenta = [module.momentum for module in norms]
    for module in norms:
        module.running_mean.zero_()
        module.running_var.fill_(1.0)
    model.to(device).train()
    n = len(data["features"])
    inputs = [name for name in ("features", "mask", "global_features") if name in data]
    for index, start in enumerate(range(0, n, batch_size)):
        for module in norms:
            module.momentum = 1.0 / (index + 1)  # the running value: the mean so far
        chunk = slice(start, start + batch_size)
        model(*(data[name][chunk].to(device) for name in inputs))
    for module, momentum in zip(norms, momenta, strict=True):
        module.momentum = momentum
    model.eval()
    return len(norms)


def optimizer_state(checkpoints: str | Path) -> dict:
    """The optimiser state after the last finished epoch of a stage's `checkpoints`."""
    path = Path(checkpoints) / "last.pt"
    return torch.load(path, map_location="cpu", weights_only=True)["optimizer"]


def _save(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
          extra: Sequence[nn.Parameter], history: list[dict]) -> None:
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "extra": [p.detach().cpu() for p in extra], "history": history}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _resume(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
            extra: Sequence[nn.Parameter], device: torch.device) -> tuple[list[dict], int]:
    if not path.is_file():
        return [], 0
    state = torch.load(path, map_location=device, weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    with torch.no_grad():
        for parameter, saved in zip(extra, state["extra"], strict=True):
            parameter.copy_(saved.to(device))
    history = state["history"]
    log.info("resumed from %s after epoch %d", path, len(history))
    return history, len(history)


@torch.no_grad()
def predict(model: nn.Module, data: Batch, batch_size: int,
            device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, embeddings) of every example, in order, on the CPU. The model gets the
    features, the mask and, where `data` has them, the per-event ``global_features``."""
    reuse_freed_memory()
    model.to(device).eval()
    n = len(data["features"])
    inputs = [name for name in ("features", "mask", "global_features") if name in data]
    logits, embeddings = [], []
    for start in range(0, n, batch_size):
        chunk = slice(start, start + batch_size)
        out_logits, out_embedding = model(*(data[name][chunk].to(device) for name in inputs))
        logits.append(out_logits.cpu())
        embeddings.append(out_embedding.cpu())
    return torch.cat(logits), torch.cat(embeddings)
