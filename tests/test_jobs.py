"""The run store and the job queue with real worker processes on tiny data."""
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from bdcore import jobs
from bdcore.config import ExperimentConfig
from bdcore.errors import ConfigError
from bdcore.store import MIGRATIONS, RunStore

TINY = dict(teacher="mlp", student="mlp", teacher_epochs=1, blind_epochs=1, finetune_epochs=1,
            finetune_ks=["all"], finetune_min_steps=1, batch_size=64, device="cpu")
LONG = {**TINY, "teacher_epochs": 3, "blind_epochs": 400, "labeled_limit": 200}


def wait_for(predicate, timeout=90.0, every=0.2):
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s")


@pytest.fixture
def store(tiny_data, isolated_env, monkeypatch):
    monkeypatch.setenv("BD_MAX_JOBS", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # tiny workers must not fight over 2 cores
    return RunStore()


def test_store_survives_a_restart_and_migrates_once(isolated_env):
    first = RunStore()
    run_id = first.add(ExperimentConfig(**TINY))
    first.add_epoch(run_id, {"stage": "teacher", "epoch": 1, "epochs": 1, "train_loss": 0.5,
                             "test_acc": 0.9, "lr": 0.001, "seconds": 1.0}, 0.3)
    again = RunStore()  # a new process would do exactly this
    assert again.schema_version() == len(MIGRATIONS)
    record = again.get(run_id)
    assert record.status == "queued" and record.progress == 0.3 and record.config == ExperimentConfig(**TINY)
    assert again.epochs([run_id])[0]["test_acc"] == 0.9
    with sqlite3.connect(again.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again.cancel(run_id)  # an active run cannot be deleted
    again.delete(run_id)
    assert again.epochs([run_id]) == []  # cascade


def test_a_run_goes_from_queued_to_succeeded(store):
    run_id = jobs.submit(store, ExperimentConfig(**TINY)).run_id
    record = wait_for(lambda: (r := store.get(run_id)).status not in ("queued", "running") and r)
    assert record.status == "succeeded", record.error
    assert record.progress == 1.0 and set(record.final) >= {"teacher_acc", "blind_acc", "finetune_acc"}
    assert [e["stage"] for e in store.epochs([run_id])] == ["teacher", "blind", "finetune-kall"]
    assert os.path.exists(os.path.join(record.run_dir, "final.json"))


def test_a_finished_run_s_worker_prepares_the_embeddings_first_view(store):
    """The worker computes the Embeddings page's first view after marking the run succeeded, then
    exits; the page then loads it from the run's cache."""
    from bdcore.embeddings import ExploreSession, prepare_first_view

    run_id = jobs.submit(store, ExperimentConfig(**TINY)).run_id
    record = wait_for(lambda: (r := store.get(run_id)).status == "succeeded" and r)
    log = store.root.worker_log(run_id)
    wait_for(lambda: "first view is ready" in log.read_text(), timeout=120)
    assert prepare_first_view(ExploreSession(record.run_dir, run_id)).cached


def test_queue_respects_the_concurrency_limit(store):
    ids = [jobs.submit(store, ExperimentConfig(**{**TINY, "seed": s})).run_id for s in range(3)]
    peak = 0

    def all_done():
        nonlocal peak
        jobs.schedule(store)
        statuses = [store.get(i).status for i in ids]
        peak = max(peak, statuses.count("running"))
        return all(s in ("succeeded", "failed") for s in statuses)

    wait_for(all_done, timeout=180)
    assert peak == 1
    assert [store.get(i).status for i in ids] == ["succeeded"] * 3
    second = store.get(ids[1])
    assert second.teacher_reused is False  # each seed trains its own teacher


def test_cancel_stops_a_running_job_within_seconds(store):
    run_id = jobs.submit(store, ExperimentConfig(**LONG)).run_id
    wait_for(lambda: any(e["stage"] == "blind" for e in store.epochs([run_id])))
    asked = time.time()
    assert jobs.cancel(store, run_id) == "cancelling"
    wait_for(lambda: store.get(run_id).status == "cancelled", timeout=10)
    assert time.time() - asked < 5
    record = store.get(run_id)
    assert os.path.exists(os.path.join(record.run_dir, "teacher.safetensors"))  # finished stage kept


def test_a_killed_worker_is_detected_and_resumes_to_the_same_final_format(store):
    run_id = jobs.submit(store, ExperimentConfig(**{**LONG, "blind_epochs": 60})).run_id
    wait_for(lambda: sum(e["stage"] == "blind" for e in store.epochs([run_id])) >= 3)
    os.kill(store.get(run_id).pid, signal.SIGKILL)
    killed = time.time()
    wait_for(lambda: jobs.schedule(store) is not None and store.get(run_id).status == "failed", timeout=30)
    assert time.time() - killed < 30
    assert "resume" in store.get(run_id).error
    done_before = sum(e["stage"] == "blind" for e in store.epochs([run_id]))
    jobs.resume(store, run_id)
    record = wait_for(lambda: (r := store.get(run_id)).status in ("succeeded", "failed") and r, timeout=120)
    assert record.status == "succeeded", record.error
    assert set(record.final["finetune_acc"]) == {"all"} and 0 <= record.final["blind_acc"] <= 1
    blind = [e["epoch"] for e in store.epochs([run_id]) if e["stage"] == "blind"]
    assert blind == list(range(1, 61)) and done_before >= 3
    assert record.attempts == 2


def test_invalid_actions_are_refused(store):
    run_id = store.add(ExperimentConfig(**TINY))
    with pytest.raises(ValueError, match="only failed or cancelled"):
        jobs.resume(store, run_id)
    with pytest.raises(ValueError, match="cancel it before deleting"):
        jobs.delete(store, run_id)
    assert jobs.cancel(store, run_id) == "cancelled"
    with pytest.raises(KeyError):
        store.get("nope")


def test_cli_jobs_submit_list_logs_cancel_resume(store, capsys):
    from bdcore.cli import main

    assert main(["jobs", "submit", "--teacher", "mlp", "--student", "mlp", "--teacher-epochs", "1",
                 "--blind-epochs", "1", "--finetune-epochs", "1", "--finetune-min-steps", "1",
                 "--batch-size", "64", "--device", "cpu"]) == 0
    run_id = capsys.readouterr().out.strip()
    wait_for(lambda: store.get(run_id).status in ("succeeded", "failed"))
    assert main(["jobs", "list", "--json"]) == 0
    import json

    [row] = json.loads(capsys.readouterr().out)
    assert row["id"] == run_id and row["status"] == "succeeded" and row["progress"] == 1.0
    assert 0 <= row["teacher_acc"] <= 1 and set(row["finetune_acc"]) == {"all"}
    assert main(["jobs", "list"]) == 0
    assert run_id in capsys.readouterr().out
    assert main(["jobs", "logs", run_id]) == 0
    out = capsys.readouterr().out
    assert "teacher epoch   1/1" in out and "status: succeeded" in out
    assert main(["jobs", "resume", run_id]) == 2  # refused: it succeeded
    assert "only failed or cancelled" in capsys.readouterr().err
    assert main(["jobs", "cancel", "nope"]) == 2
    assert "no run with id" in capsys.readouterr().err
    assert main(["jobs", "delete", run_id]) == 0
    assert store.list() == []


def test_an_unknown_backend_is_one_clear_error(isolated_env, monkeypatch):
    monkeypatch.setenv("BD_JOBS_BACKEND", "slurm")
    with pytest.raises(ConfigError, match="local, ray"):
        jobs.job_backend()


def test_the_local_backend_never_loads_ray(isolated_env):
    """The default needs no Ray: submit, cancel and schedule in a fresh process leave ray
    unimported."""
    code = ("import sys; from bdcore import jobs; from bdcore.config import ExperimentConfig; "
            "from bdcore.store import RunStore; store = RunStore(); "
            f"run_id = jobs.submit(store, ExperimentConfig(**{TINY!r}), start=False).run_id; "
            "jobs.cancel(store, run_id); jobs.schedule(store); assert 'ray' not in sys.modules, 'ray loaded'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
