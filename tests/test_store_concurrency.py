"""The run store under many processes at once (issue 14, point 3): writers committing while readers
read, and a new store opened by many processes together (its schema made and migrated once).
Every client is a real OS process on one SQLite file, as the app, the CLI and the workers are."""
import multiprocessing as mp
import sqlite3
import time

from bdcore.config import ExperimentConfig
from bdcore.store import MIGRATIONS, RunStore

# fork: the children reuse the parent's imports (32 interpreters each importing torch would not fit)
CONTEXT = mp.get_context("fork")


def _report(results: mp.Queue, work) -> None:
    """Run ``work()`` in a child and put (its result, its error or "") on ``results``."""
    try:
        results.put((work(), ""))
    except Exception as err:  # reported, not raised: the parent counts failures
        results.put((None, f"{type(err).__name__}: {err}"))


def _open_and_add(path: str, start: float, seed: int) -> str:
    time.sleep(max(0.0, start - time.time()))  # every process opens the new store at the same moment
    return RunStore(path).add(ExperimentConfig(seed=seed))


def _commit_many(path: str, run_id: str, commits: int) -> int:
    """``commits`` writes to ``run_id`` as a worker makes them: epochs, messages, heartbeats."""
    store = RunStore(path)
    for i in range(commits):
        if i % 3 == 0:
            store.add_epoch(run_id, {"stage": "blind", "epoch": i, "epochs": commits, "train_loss": 1.0,
                                     "test_acc": 0.5, "lr": 0.1, "seconds": 0.01}, i / commits)
        elif i % 3 == 1:
            store.set_message(run_id, f"commit {i}")
        else:
            store.beat(run_id)
    return commits


def _read_until(path: str, done: mp.Event) -> int:
    """Read as the app's pages do until ``done``; returns the reads made."""
    store, reads = RunStore(path), 0
    while not done.is_set():
        store.change_stamp()
        store.list()
        store.epochs()
        reads += 1
    return reads


def _start(results: mp.Queue, work) -> mp.Process:
    process = CONTEXT.Process(target=_report, args=(results, work))
    process.start()
    return process


def _collect(results: mp.Queue, processes: list[mp.Process]) -> list[tuple]:
    found = [results.get(timeout=600) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    return found


def open_new_store(path: str, processes: int) -> dict:
    """``processes`` processes open one new store at the same moment and each queues a run."""
    results, start = CONTEXT.Queue(), time.time() + 2.0
    found = _collect(results, [_start(results, lambda s=seed: _open_and_add(path, start, s))
                               for seed in range(processes)])
    return {"errors": [e for _, e in found if e], "runs": len(RunStore(path).list())}


def commit_under_load(path: str, writers: int, commits: int, readers: int) -> dict:
    """``writers`` processes x ``commits`` commits each (one run per writer) while ``readers``
    processes read without pause; errors, seconds, commits per second, reads made."""
    store = RunStore(path)
    run_ids = [store.add(ExperimentConfig(seed=i)) for i in range(writers)]
    done, reader_results, writer_results = CONTEXT.Event(), CONTEXT.Queue(), CONTEXT.Queue()
    reading = [_start(reader_results, lambda: _read_until(path, done)) for _ in range(readers)]
    started = time.time()
    writing = _collect(writer_results, [_start(writer_results, lambda r=r: _commit_many(path, r, commits))
                                        for r in run_ids])
    seconds = time.time() - started
    done.set()
    read = _collect(reader_results, reading)
    return {"errors": [e for _, e in writing + read if e], "seconds": seconds,
            "commits_per_s": writers * commits / seconds, "reads": sum(n or 0 for n, _ in read),
            "epochs": len(store.epochs())}


def test_32_processes_open_a_new_store_at_once(tmp_path):
    path = str(tmp_path / "runs.db")
    result = open_new_store(path, 32)
    assert result["errors"] == []
    assert result["runs"] == 32
    assert RunStore(path).schema_version() == len(MIGRATIONS)


def test_eight_writers_a_thousand_commits_each_while_readers_read(tmp_path):
    """The figures in docs/reliability.md: `pytest -s tests/test_store_concurrency.py`."""
    path = str(tmp_path / "runs.db")
    result = commit_under_load(path, writers=8, commits=1000, readers=2)
    print(f"\n8 writers x 1000 commits, 2 readers: {len(result['errors'])} errors, "
          f"{result['seconds']:.1f} s, {result['commits_per_s']:.0f} commits/s, {result['reads']} reads")
    assert result["errors"] == []
    assert result["epochs"] == 8 * len(range(0, 1000, 3))
    assert result["reads"] > 0
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
