"""Killed at any moment, nothing lost: real workers SIGKILLed at each fault point of bdcore.faults,
then resumed; a stage with dropout resumed bit-exact; a worker that lost its run leaves; the long
random version is bench/chaos.py (test_chaos_briefly, slow)."""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bdcore import faults, jobs
from bdcore.checkpoints import StageCheckpointer
from bdcore.config import ExperimentConfig
from bdcore.experiment import run_experiment
from bdcore.runs import RunDir, RunsRoot, remove_temp_files, temporary
from bdcore.stage_settings import StageSettings
from bdcore.store import RunStore, Status
from bdcore.train import fit

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("chaos", ROOT / "bench" / "chaos.py")
chaos = sys.modules["chaos"] = importlib.util.module_from_spec(_spec)  # dataclasses look it up
_spec.loader.exec_module(chaos)  # the checks and the worker driver are the chaos bench's own
LONG = {**chaos.CONFIG, "blind_epochs": 400}  # still training when the test acts on it


def wait_for(predicate, timeout: float):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s")

# Each kill lands where the previous attempts left the run (CONFIG: teacher 2 epochs, blind 3,
# fine-tunes k10 and kall 2 each), so together they cover every point.
KILLS = [
    "checkpoint.between_files:1",  # teacher epoch 1: weights saved, state not
    "checkpoint.before_index:2",  # teacher epoch 2 saved, the index still names epoch 1
    "weights.before_replace:2",  # epoch 2 again, then killed caching the teacher (a .tmp left)
    "stage.before_ledger:1",  # the teacher's final weights saved, stages.json not updated
    "stage.before_clear:1",  # stages.json says done, the teacher's epoch files still there
    "checkpoint.before_cleanup:2",  # blind epoch 2 indexed, epoch 1's files not yet removed
    "file.before_replace:3",  # blind epoch 3's state and index, then stages.json half-written
    "store.commit:3",  # a few store transactions into the fine-tunes
]


@pytest.fixture
def store(tiny_data, isolated_env, monkeypatch):
    monkeypatch.setenv("BD_MAX_JOBS", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return RunStore()


@pytest.mark.slow  # about 100 s: a worker killed at each fault point in turn (make test-all)
def test_a_run_killed_at_every_fault_point_resumes_to_the_uninterrupted_weights(store):
    config = ExperimentConfig(**chaos.CONFIG)
    reference_id = store.add(config)
    chaos.attempt(store, reference_id, None, None)
    reference = store.get(reference_id)
    assert reference.status == Status.SUCCEEDED, reference.error
    shutil.rmtree(store.root.path / "teachers")  # or the reference's teacher is reused, not trained
    run_id = store.add(config)
    for fault in KILLS:
        outcome = chaos.attempt(store, run_id, fault, None)
        assert outcome.killed and outcome.how == fault.partition(":")[0], (fault, outcome)
        assert jobs.reap(store) == [run_id]
        assert chaos.unloadable_files(store.root) == [] and chaos.integrity_ok(store)
        if fault.startswith("weights.before_replace"):
            assert chaos.temp_files(store.root)  # left by the kill; never read, removed by the resume
        store.requeue(run_id)
    assert not chaos.attempt(store, run_id, None, None).killed
    record = store.get(run_id)
    assert record.status == Status.SUCCEEDED, record.error
    run = RunDir(record.run_dir)
    assert chaos.same_weights(chaos.final_weights(run), chaos.final_weights(RunDir(reference.run_dir)))
    for key in ("teacher_acc", "blind_acc", "finetune_acc", "teacher_reused"):
        assert record.final[key] == reference.final[key], key
    assert chaos.epoch_keys(store, run_id) == chaos.epoch_keys(store, reference_id)
    assert chaos.temp_files(store.root) == []
    assert sorted(p.name for p in run.path.iterdir() if ".e" in p.name or "last" in p.name) == []
    assert record.attempts == len(KILLS) + 1


class Halt(Exception):
    """Stops a stage after a given epoch was saved, as a kill would."""


class HaltAfter(StageCheckpointer):
    def __init__(self, run: RunDir, stage: str, epoch: int):
        super().__init__(run, stage)
        self.epoch = epoch

    def save(self, state, report):
        super().save(state, report)
        if report.epoch == self.epoch:
            raise Halt


def test_a_stage_with_dropout_resumes_bit_exact(isolated_env):
    """Dropout draws from the global generator, not the stage's own: the checkpoint keeps it."""
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(96, 20, generator=generator), torch.randint(0, 3, (96,), generator=generator)
    settings = StageSettings(epochs=3, lr=0.01, batch_size=16)

    def train(run: RunDir, halt_after: int | None = None) -> nn.Module:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 3))
        checkpointer = HaltAfter(run, "blind", halt_after) if halt_after else StageCheckpointer(run, "blind")
        fit(model, x, lambda logits, index, _x: F.cross_entropy(logits, y[index]), x, y, settings,
            stage="blind", seed=1, amp=False, checkpointer=checkpointer)
        return model

    root = RunsRoot(isolated_env / "runs")
    whole = train(RunDir.create(ExperimentConfig(), root, name="whole"))
    halted = RunDir.create(ExperimentConfig(), root, name="halted")
    with pytest.raises(Halt):
        train(halted, halt_after=1)
    torch.manual_seed(123)  # a new process: the global generator starts elsewhere
    resumed = train(halted)
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(),
                                                 strict=True))


def test_a_fine_tune_with_dropout_retrained_after_loaded_stages_is_the_same(tiny_data, isolated_env):
    config = ExperimentConfig(**{**chaos.CONFIG, "student": "cnn6", "blind_epochs": 1, "finetune_ks": ["all"],
                                 "finetune_epochs": 1, "labeled_limit": 50, "unlabeled_limit": 50})
    root = RunsRoot(isolated_env / "runs")
    run = RunDir(run_experiment(config, root).run_dir)
    before = chaos.final_weights(run)
    ledger = json.loads(run.ledger_path.read_text())
    del ledger["finetune-kall"]  # as if killed before the fine-tune was recorded
    run.ledger_path.write_text(json.dumps(ledger))
    run_experiment(config, root, run=run)  # teacher and blind loaded, the fine-tune trained again
    assert chaos.same_weights(chaos.final_weights(run), before)


def test_temp_files_of_live_writers_are_kept_and_others_removed(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    mine = temporary(folder / "a.json")
    other = folder / "b.json.1.tmp"  # pid 1 is alive and never one of ours
    gone = folder / f"c.json.{2**22 + 1}.tmp"  # above the largest pid Linux gives
    old = folder / "d.tmp"  # named before temporary files carried their writer
    host = mine.name.removesuffix(".tmp").rpartition(".")[2].rpartition("-")[0]
    gone_here = folder / f"e.json.{host}-{2**22 + 1}.tmp"
    elsewhere = folder / f"f.json.othernode-{2**22 + 1}.tmp"  # a cluster node's, maybe being written
    for path in (mine, other, gone, old, gone_here, elsewhere):
        path.write_text("{")
    remove_temp_files(folder)
    assert sorted(p.name for p in folder.iterdir()) == [other.name, elsewhere.name]


def test_fault_points_are_named_and_off_by_default():
    assert faults._TARGET is None  # the test process runs without $BD_FAULT
    faults.fault_point("store.commit")  # a no-op
    with pytest.raises(ValueError, match="NAME:N"):
        faults._target("nowhere:1")
    assert faults._target("store.commit:3") == ("store.commit", 3)


def test_a_worker_that_lost_its_run_leaves_without_writing(store):
    run_id = jobs.submit(store, ExperimentConfig(**LONG)).run_id
    wait_for(lambda: any(e["stage"] == "blind" for e in store.epochs([run_id])), timeout=60)
    pid = store.get(run_id).pid
    store.mark_failed(run_id, "a reaper that took the worker for dead")
    wait_for(lambda: not jobs.process_alive(pid, run_id), timeout=3 * jobs.HEARTBEAT_S + 2)
    # schedule waits for finished workers: no zombie is left behind (retried: a process that has
    # left its command line behind may need a moment more to exit and be waited for)
    wait_for(lambda: not jobs.schedule(store) and not chaos.is_zombie(pid), timeout=10)
    record = store.get(run_id)
    assert record.status == Status.FAILED and record.error.startswith("a reaper")  # not overwritten
    log = store.root.worker_log(run_id).read_text()
    assert "no longer this worker's" in log


def test_a_claimed_run_whose_worker_never_started_fails_within_the_grace(store, monkeypatch):
    run_id = store.add(ExperimentConfig(**LONG))
    assert store.claim_next(1) is not None  # the claimer dies before starting a worker
    assert jobs.reap(store) == []  # a worker may still be coming up
    claimed = time.time()
    monkeypatch.setattr(jobs.time, "time", lambda: claimed + jobs.START_GRACE_S + 1)
    assert jobs.reap(store) == [run_id]
    assert "never started" in store.get(run_id).error


def test_a_worker_for_a_run_that_is_not_running_leaves_it_alone(store):
    run_id = store.add(ExperimentConfig(**LONG))
    done = subprocess.run([sys.executable, "-m", "bdcore.worker", run_id, "--store", str(store.path)],
                          cwd=ROOT, capture_output=True, text=True, env=os.environ, timeout=60)
    assert done.returncode == 3 and "left alone" in done.stdout
    assert store.get(run_id).status == Status.QUEUED and store.get(run_id).pid is None


@pytest.mark.slow
def test_chaos_briefly(isolated_env):
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "chaos.py"), "--kills", "12",
                           "--app-rounds", "1", "--seed", "1"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "PROBLEM" not in out, out
    for zero in ("unloadable checkpoints under final names: 0", "integrity_check failures: 0",
                 "runs not resumable: 0", "weight mismatches vs uninterrupted run: 0", "temp files left: 0"):
        assert zero in out, out
    assert "orphaned workers 0, zombies 0" in out
