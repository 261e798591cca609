"""Where a worker process runs: on a GPU machine, which GPU (several small runs share one, each
pinned to its own ``cuda:N``), how many runs at once, and whether a run of several processes fits."""
from __future__ import annotations

import os

import torch

from .distributed import check_batch
from .errors import ConfigError

RUN_GPU_MEMORY_GIB = 2.0  # one run of the paper's models on MNIST-size data, its data on the device included
MAX_RUNS_PER_GPU = 8  # beyond this, small runs only queue up for the GPU's compute
GIB = 2**30


def runs_per_gpu(index: int) -> int:
    """``$BD_RUNS_PER_GPU``, else as many runs as fit the GPU's memory (at most MAX_RUNS_PER_GPU)."""
    if os.environ.get("BD_RUNS_PER_GPU"):
        return max(1, int(os.environ["BD_RUNS_PER_GPU"]))
    total = torch.cuda.get_device_properties(index).total_memory
    return max(1, min(MAX_RUNS_PER_GPU, int(total / GIB // RUN_GPU_MEMORY_GIB)))


def max_concurrent() -> int:
    """``$BD_MAX_JOBS``, else the sum of every GPU's slots, else one CPU run at a time."""
    if os.environ.get("BD_MAX_JOBS"):
        return max(1, int(os.environ["BD_MAX_JOBS"]))
    return max(1, sum(runs_per_gpu(i) for i in range(torch.cuda.device_count())))


def pick_gpu(in_use: list[int]) -> int | None:
    """The GPU for the next run: the one with the fewest running runs (``in_use`` lists each running
    run's GPU) that still has a free slot; None without CUDA or with every GPU full."""
    free = [(in_use.count(i), i) for i in range(torch.cuda.device_count())
            if in_use.count(i) < runs_per_gpu(i)]
    return min(free)[1] if free else None


def worker_env(gpu: int | None) -> dict[str, str]:
    """The environment of a worker process, pinned to ``gpu`` (torch's index in this process; the
    worker sees that GPU as cuda:0). CPU threads keep torch's defaults: OMP_WAIT_POLICY=PASSIVE and
    one thread were measured against them, alone and beside a busy core, and lost
    (docs/performance.md, "The worker's CPU threads")."""
    env = dict(os.environ)
    if gpu is not None:  # torch's index counts the GPUs this process sees, which may be a subset
        visible = [d.strip() for d in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
        env["CUDA_VISIBLE_DEVICES"] = visible[gpu] if gpu < len(visible) else str(gpu)
    return env


PROCS_HELP = ("train the run in this many processes on this machine, one GPU each where there are GPUs "
              "(torchrun, DistributedDataParallel; the same results within noise: docs/distributed.md)")


def procs_worth_offering() -> int:
    """The most processes to offer a run on this machine: one per GPU; 1 on CPUs, where one
    process already uses every core."""
    return max(1, torch.cuda.device_count())


def check_procs(procs: int, batch_size: int, device: str) -> None:
    """A run of ``procs`` processes fits this machine: each takes an equal part of every batch, and
    on GPUs each its own GPU (the worker then sees every GPU, not the one it was placed on)."""
    if procs < 1:
        raise ConfigError(f"a run needs at least one process, not {procs}")
    if procs == 1:
        return
    check_batch(batch_size, procs)
    if device.startswith("cuda:"):
        raise ConfigError(f"a run of {procs} processes takes one GPU each: choose device auto or cuda, "
                          f"not {device}")
    gpus = torch.cuda.device_count()
    if device in ("auto", "cuda") and 0 < gpus < procs:
        raise ConfigError(f"a run of {procs} processes takes one GPU each; this machine has {gpus}")
