"""One run across processes, as started by torchrun (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` in the
environment): the process group, this process's rank, its share of rows, and the few collectives
the stages need. Started any other way (or with one process), nothing is initialised and every
helper answers for a single process, so a single-process run takes exactly the path it always
took (docs/distributed.md)."""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from .errors import ConfigError

T = TypeVar("T")


def launched_world_size() -> int:
    """How many processes torchrun started for this run (1 when not started by torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _init() -> None:
    """Join the process group torchrun set up: gloo for CPU tensors, NCCL for CUDA ones, each rank
    on the GPU of its local rank. Does nothing for a single process."""
    if launched_world_size() < 2 or is_distributed():
        return
    backend = "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        backend = "cpu:gloo,cuda:nccl"  # objects and CPU runs over gloo, a GPU run's tensors over NCCL
    store, rank_, world = next(dist.rendezvous("env://"))
    # torchrun keeps its store when it restarts the processes (--max-restarts): without a prefix of
    # its own, a restarted group read the dead group's addresses and hung or failed to connect
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    dist.init_process_group(backend, store=dist.PrefixStore(f"bdcore/attempt-{attempt}", store),
                            rank=rank_, world_size=world)


def _teardown() -> None:
    if is_distributed():
        dist.destroy_process_group()


@contextmanager
def process_group() -> Iterator[bool]:
    """In the process group for the block (joined, then left); yields whether this
    process is rank 0, the one that speaks for the run."""
    _init()
    try:
        yield is_main()
    finally:
        _teardown()


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """Rank 0: the one process that writes the run folder, the teacher cache and the store."""
    return rank() == 0


def check_batch(batch_size: int, processes: int | None = None) -> None:
    """Each of ``processes`` (default: this run's) takes an equal part of every global batch."""
    processes = processes or world_size()
    if batch_size % processes:
        raise ConfigError(f"batch size {batch_size} does not divide among {processes} processes; each "
                          f"process takes an equal part of every batch: choose a multiple of {processes}")


def _share(n: int, r: int, w: int) -> slice:
    """Rank ``r``'s contiguous share of ``n`` rows among ``w`` ranks (shares differ by at most one)."""
    return slice(r * n // w, (r + 1) * n // w)


def rank_rows(n: int) -> slice:
    """This rank's contiguous share of ``n`` rows (shares differ by at most one row)."""
    return _share(n, rank(), world_size())


def gather_rows(part: torch.Tensor, n: int) -> torch.Tensor:
    """Every rank's ``part`` (its ``rank_rows(n)`` of a result), concatenated in rank order on
    every rank: one all-gather, each part padded to the largest share."""
    if not is_distributed():
        return part
    w = world_size()
    sizes = [len(range(n)[_share(n, r, w)]) for r in range(w)]
    padded = part.new_zeros((max(sizes), *part.shape[1:]))
    padded[:len(part)] = part
    parts = [torch.empty_like(padded) for _ in range(w)]
    dist.all_gather(parts, padded)
    return torch.cat([p[:size] for p, size in zip(parts, sizes, strict=True)])


def sum_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """``values`` summed over every rank (returned as is for a single process)."""
    if not is_distributed():
        return values
    values = values.clone()
    dist.all_reduce(values)
    return values


def from_main(value: T) -> T:
    """Rank 0's ``value`` on every rank (a decision only rank 0 may take: a folder it created, a
    teacher it found in the cache)."""
    if not is_distributed():
        return value
    box: list[Any] = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def broadcast_module(model: nn.Module) -> None:
    """Rank 0's weights and buffers into ``model`` on every rank."""
    if not is_distributed():
        return
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            dist.broadcast(tensor.data, src=0)


def wrap(model: nn.Module) -> nn.Module:
    """The module a training step calls: DistributedDataParallel over ``model`` (which keeps the
    weights, so checkpoints are saved from it unwrapped), or ``model`` itself for one process."""
    if not is_distributed():
        return model
    device = next(model.parameters()).device
    return nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def in_lockstep(batches: Iterator[T], device: torch.device) -> Iterator[T]:
    """``batches`` while every rank still has one: a rank whose share of a streamed set ran out
    first ends the epoch for all, since every training step waits for every rank's gradients."""
    for batch in batches:
        if sum_over_ranks(torch.ones((), device=device)).item() < world_size():
            return
        yield batch
    sum_over_ranks(torch.zeros((), device=device))  # this rank ran out: tell the others
