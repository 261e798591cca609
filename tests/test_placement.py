"""Where workers run: GPU slots (several small runs per GPU, each pinned to its own GPU), the
worker's CPU thread policy, and the fixed batch shape of a CUDA-graphed stage. No GPU is needed:
the GPUs are simulated, and the code paths that decide are the ones a GPU machine runs."""
import subprocess
from types import SimpleNamespace

import pytest
import torch

from bdcore import jobs, placement
from bdcore.config import ExperimentConfig
from bdcore.store import RunStore
from bdcore.train import steps_in_epoch

GIB = 2**30


@pytest.fixture
def two_gpus(monkeypatch):
    """A simulated machine with a 16 GiB and a 6 GiB GPU."""
    memory = [16 * GIB, 6 * GIB]
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda i: SimpleNamespace(total_memory=memory[i]))
    monkeypatch.delenv("BD_MAX_JOBS", raising=False)
    monkeypatch.delenv("BD_RUNS_PER_GPU", raising=False)


def test_as_many_runs_per_gpu_as_fit_its_memory(two_gpus, monkeypatch):
    assert [placement.runs_per_gpu(i) for i in range(2)] == [placement.MAX_RUNS_PER_GPU, 3]
    assert placement.max_concurrent() == placement.MAX_RUNS_PER_GPU + 3
    monkeypatch.setenv("BD_RUNS_PER_GPU", "2")
    assert placement.max_concurrent() == 4
    monkeypatch.setenv("BD_MAX_JOBS", "5")
    assert placement.max_concurrent() == 5


def test_next_run_goes_to_the_least_busy_gpu_with_a_free_slot(two_gpus):
    assert placement.pick_gpu([]) == 0
    assert placement.pick_gpu([0]) == 1
    assert placement.pick_gpu([0, 1, 0]) == 1
    assert placement.pick_gpu([1, 1, 1, 0, 0, 0, 0]) == 0  # GPU 1 (3 slots) is full
    assert placement.pick_gpu([0] * 8 + [1] * 3) is None


def test_without_cuda_no_gpu_and_one_cpu_run(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.delenv("BD_MAX_JOBS", raising=False)
    assert placement.pick_gpu([]) is None and placement.max_concurrent() == 1


def test_worker_env_pins_the_gpu_and_keeps_the_users_settings(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert placement.worker_env(3)["CUDA_VISIBLE_DEVICES"] == "3"
    env = placement.worker_env(None)
    assert "CUDA_VISIBLE_DEVICES" not in env and env["OMP_NUM_THREADS"] == "1"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")  # a scheduler gave this app two GPUs
    assert placement.worker_env(1)["CUDA_VISIBLE_DEVICES"] == "3"  # torch's cuda:1 is physical GPU 3


def test_a_resumed_run_is_placed_afresh(two_gpus, isolated_env, monkeypatch):
    monkeypatch.setenv("BD_RUNS_PER_GPU", "1")
    store = RunStore()
    run_id = store.add(ExperimentConfig())
    assert store.claim_next(2, jobs.LocalBackend().place) == (run_id, 0)
    store.mark_failed(run_id, "killed")
    store.requeue(run_id)
    assert store.gpus_in_use() == []
    # its old GPU is not counted against it
    assert store.claim_next(2, jobs.LocalBackend().place) == (run_id, 0)


def test_schedule_spreads_runs_over_gpus_and_pins_each(two_gpus, isolated_env, monkeypatch):
    monkeypatch.setenv("BD_RUNS_PER_GPU", "2")
    spawned = []

    def popen(command, env, **kwargs):
        spawned.append((command[3], env.get("CUDA_VISIBLE_DEVICES")))
        return SimpleNamespace(pid=10_000 + len(spawned))

    monkeypatch.setattr(subprocess, "Popen", popen)
    monkeypatch.setattr(jobs, "reap", lambda store: [])  # the simulated workers have no processes
    store = RunStore()
    ids = [store.add(ExperimentConfig(seed=s)) for s in range(5)]
    named = store.add(ExperimentConfig(seed=9, device="cpu"))
    started = jobs.schedule(store)
    assert started == ids[:4]  # 2 GPUs x 2 slots; the rest wait
    assert [gpu for _, gpu in spawned] == ["0", "1", "0", "1"]
    assert [store.get(i).gpu for i in ids[:4]] == [0, 1, 0, 1]
    assert sorted(store.gpus_in_use()) == [0, 0, 1, 1]
    store.mark_succeeded(ids[0], {})
    assert jobs.schedule(store) == [ids[4]] and spawned[-1] == (ids[4], "0")
    store.mark_succeeded(ids[1], {})
    assert jobs.schedule(store) == [named] and store.get(named).gpu is None  # it named its device


def test_a_graphed_stage_uses_whole_batches_only():
    assert steps_in_epoch(1000, 128) == 8 and steps_in_epoch(1000, 128, same_size=True) == 7
    assert steps_in_epoch(1024, 128, same_size=True) == 8
    assert steps_in_epoch(100, 128, same_size=True) == 1  # fewer images than a batch: one batch
