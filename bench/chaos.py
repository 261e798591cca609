"""Killed at any moment, nothing lost: SIGKILLs real workers at random moments and checks that no
data is lost. Prints the figures docs/reliability.md quotes.

    python bench/chaos.py [--kills 100] [--app-rounds 3] [--seed 0]

Each kill is either injected (``$BD_FAULT``: a random fault point of bdcore.faults and a random
visit of it, so kills land inside checkpoint writes and store commits) or external (``os.kill``
from here at a random time after the worker started). After each kill: every checkpoint and JSON
file under its final name must load, ``PRAGMA integrity_check`` must say ok, and the run is resumed
(reaped as failed, queued again) until it succeeds; then its final weights must equal (torch.equal,
every tensor) those of an uninterrupted run of the same config, every epoch must be in the store
and no temporary file may be left. Then the app-server scenario: an "app" process submits 3 runs
and is killed with SIGKILL; a restarted app (``jobs.Housekeeper`` at its usual pace) must find
every run adopted (worker alive, beating) or failed within 30 s, with no orphaned or zombie worker.

Runs on tiny synthetic data in a temporary runs folder, one worker at a time (three in the app
scenario), with OMP_NUM_THREADS=1."""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np
import torch
from safetensors.torch import load_file

from bdcore import jobs
from bdcore.config import ExperimentConfig
from bdcore.data.idx import write_idx
from bdcore.faults import ENV, POINTS
from bdcore.runs import TMP, RunDir, RunsRoot
from bdcore.store import RunStore, Status

# Small enough that a worker's life is mostly its start (importing torch, about 3 s here).
CONFIG = dict(teacher="mlp", student="mlp", teacher_epochs=2, blind_epochs=3, finetune_epochs=2,
              finetune_ks=["10", "all"], finetune_min_steps=1, batch_size=64, device="cpu")
# The app scenario's runs train long enough (about 20 s each) to be running when the app dies.
APP_CONFIG = {**CONFIG, "blind_epochs": 150}
ATTEMPT_TIMEOUT_S = 180.0
ADOPT_LIMIT_S = 30.0
ZOMBIE_WAIT_S = 30.0
WORKER_EXIT_S = 60.0  # a finished worker still preparing the first view is not an orphan until then
EXTERNAL_SHARE = 0.3  # of the kills: external os.kill at a random time; the rest at fault points


def write_tiny_data(folder: Path, seed: int = 0) -> None:
    """'mnist' and 'fashion-mnist' of 200 training and 100 test images (random, as only the
    bookkeeping is under test), in the layout the data dir uses."""
    rng = np.random.default_rng(seed)
    names = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 200),
             "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 100)}
    for dataset in ("mnist", "fashion-mnist"):
        (folder / dataset).mkdir(parents=True, exist_ok=True)
        for images, labels, n in names.values():
            write_idx(folder / dataset / images, rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
            write_idx(folder / dataset / labels, (np.arange(n) % 10).astype(np.uint8))


def isolated_environment(work: Path) -> None:
    """Tiny data, an empty runs folder, no downloads; workers inherit it through os.environ."""
    write_tiny_data(work / "data")
    os.environ.update(BD_DATA_DIR=str(work / "data"), BD_RUNS_DIR=str(work / "runs"), BD_OFFLINE="1",
                      OMP_NUM_THREADS="1", BD_MAX_JOBS="1")
    os.environ.pop(ENV, None)


# checks


def unloadable_files(root: RunsRoot) -> list[str]:
    """Files under their final names (checkpoints, training states, JSON records) that do not load,
    and per-epoch checkpoints an index names but that are missing."""
    bad = []
    for path in root.path.rglob("*"):
        if not path.is_file() or path.name.endswith(TMP):
            continue
        try:
            if path.name.endswith(".safetensors"):
                load_file(str(path))
            elif path.name.endswith(".pt"):
                torch.load(path, weights_only=True)
            elif path.name.endswith(".json"):
                json.loads(path.read_text())
        except Exception as err:  # any failure to load is what is being counted
            bad.append(f"{path}: {type(err).__name__}: {err}")
    for index in root.path.glob("*/*.last.json"):
        run, stage = RunDir(index.parent), index.name.removesuffix(".last.json")
        epoch = json.loads(index.read_text())["epoch"]
        bad += [f"{p}: named by {index.name} but missing" for p in run.epoch_files(stage, epoch)
                if not p.exists()]
    return bad


def integrity_ok(store: RunStore) -> bool:
    with sqlite3.connect(store.path) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def temp_files(root: RunsRoot) -> list[Path]:
    return sorted(root.path.rglob(f"*{TMP}"))


def final_weights(run: RunDir) -> dict[str, dict[str, torch.Tensor]]:
    return {stage: load_file(str(run.checkpoint(stage))) for stage in run.checkpoint_stages()}


def same_weights(a: dict[str, dict[str, torch.Tensor]], b: dict[str, dict[str, torch.Tensor]]) -> bool:
    return a.keys() == b.keys() and all(
        a[s].keys() == b[s].keys() and all(torch.equal(a[s][k], b[s][k]) for k in a[s]) for s in a)


def epoch_keys(store: RunStore, run_id: str) -> list[tuple[str, int]]:
    return sorted((e["stage"], e["epoch"]) for e in store.epochs([run_id]))


# one attempt of a worker


def _wait(pid: int, deadline: float, kill_at: float | None) -> int:
    """Wait for our child ``pid``, SIGKILLing it at ``kill_at``; returns its wait status."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        now = time.monotonic()
        if kill_at is not None and now >= kill_at:
            os.kill(pid, signal.SIGKILL)
            kill_at = None
        if now > deadline:
            raise TimeoutError(f"worker {pid} still running after {ATTEMPT_TIMEOUT_S:.0f} s")
        time.sleep(0.02)


@dataclass
class Attempt:
    killed: bool
    how: str  # the fault point, "external", or "" when not killed
    seconds: float


def attempt(store: RunStore, run_id: str, fault: str | None, kill_after_s: float | None) -> Attempt:
    """Start the queued run's worker the way the app does (``jobs.schedule``), with ``$BD_FAULT``
    set to ``fault`` for it, and wait for it to end, SIGKILLing it ``kill_after_s`` after start."""
    if fault:
        os.environ[ENV] = fault  # read by the worker at its start; this process read it at import
    try:
        started = time.monotonic()
        assert jobs.schedule(store) == [run_id], "the run was not started"
    finally:
        os.environ.pop(ENV, None)
    pid = store.get(run_id).pid
    kill_at = None if kill_after_s is None else started + kill_after_s
    status = _wait(pid, started + ATTEMPT_TIMEOUT_S, kill_at)
    seconds = time.monotonic() - started
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    if not killed:
        return Attempt(False, "", seconds)
    if kill_after_s is not None:
        return Attempt(True, "external", seconds)
    point = fault.rpartition(":")[0]
    last = store.root.worker_log(run_id).read_text(errors="replace").splitlines()[-1]
    injected = last.startswith(f"fault point {point}: SIGKILL")
    return Attempt(True, point if injected else "unexplained", seconds)


# the kill loop


@dataclass
class ChaosResult:
    kills: Counter = field(default_factory=Counter)  # how -> count
    attempts: int = 0
    runs: int = 0
    unloadable: list[str] = field(default_factory=list)
    integrity_failures: int = 0
    not_resumable: list[str] = field(default_factory=list)
    weight_mismatches: list[str] = field(default_factory=list)
    epochs_lost: list[str] = field(default_factory=list)
    temp_left: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total_kills(self) -> int:
        return sum(self.kills.values())


def _visits(config: ExperimentConfig) -> dict[str, int]:
    """About how often a fresh worker reaches each point in one run: a random visit is drawn up
    to this (a later one than a resumed worker reaches just lets it finish)."""
    stages = len(config.stage_names())
    epochs = config.teacher_epochs + config.blind_epochs + config.finetune_epochs * len(config.finetune_ks)
    return {"weights.before_replace": epochs + stages + 1,  # per epoch, per stage, the teacher cache
            "file.before_replace": 2 * epochs + stages + 3,  # state and index; ledger; cache, final, config
            "checkpoint.between_files": epochs, "checkpoint.before_index": epochs,
            "checkpoint.before_cleanup": epochs, "stage.before_ledger": stages, "stage.before_clear": stages,
            "store.commit": epochs + 8}  # epochs; worker, messages, heartbeats, final mark, claim


def chaos(kills_wanted: int, rng: random.Random, root: RunsRoot, log=print) -> ChaosResult:
    """Kill, check and resume runs of CONFIG until ``kills_wanted`` kills were made."""
    result, start = ChaosResult(), time.monotonic()
    store = RunStore(root.store_path)
    config = ExperimentConfig(**CONFIG)
    visits = _visits(config)
    reference_id = store.add(config)
    clean = attempt(store, reference_id, None, None)
    assert store.get(reference_id).status == Status.SUCCEEDED, store.get(reference_id).error
    reference = store.get(reference_id)
    reference_weights = final_weights(RunDir(reference.run_dir))
    reference_epochs = epoch_keys(store, reference_id)
    while result.total_kills < kills_wanted:
        shutil.rmtree(root.path / "teachers", ignore_errors=True)  # each run trains its teacher
        run_id = store.add(config)
        result.runs += 1
        while True:
            if rng.random() < EXTERNAL_SHARE:
                fault, kill_after = None, rng.uniform(0.0, clean.seconds)
            else:
                point = rng.choice(POINTS)
                fault, kill_after = f"{point}:{rng.randint(1, visits[point])}", None
            outcome = attempt(store, run_id, fault, kill_after)
            result.attempts += 1
            if outcome.killed:
                result.kills[outcome.how] += 1
                jobs.reap(store)
            result.unloadable += unloadable_files(root)
            result.integrity_failures += not integrity_ok(store)
            record = store.get(run_id)
            if record.status == Status.SUCCEEDED:
                break
            if not outcome.killed or record.status != Status.FAILED:  # failed on its own: a bug
                result.not_resumable.append(f"{run_id}: {record.status} {record.error}")
                break
            store.requeue(run_id)
        record = store.get(run_id)
        if record.status == Status.SUCCEEDED:
            if not same_weights(final_weights(RunDir(record.run_dir)), reference_weights):
                result.weight_mismatches.append(run_id)
            keys = ("teacher_acc", "blind_acc", "finetune_acc", "teacher_reused")
            final = {k: record.final[k] for k in keys}
            if final != {k: reference.final[k] for k in keys}:
                result.weight_mismatches.append(f"{run_id}: final.json {final}")
            if epoch_keys(store, run_id) != reference_epochs:
                result.epochs_lost.append(run_id)
        result.temp_left += [str(p) for p in temp_files(root)]
        log(f"run {result.runs}: {record.status}, kills so far {result.total_kills}, "
            f"{time.monotonic() - start:.0f} s")
    result.seconds = time.monotonic() - start
    return result


# the app server killed while 3 runs train


def worker_processes(store: RunStore) -> dict[int, str]:
    """pid -> run id of every live worker process of this store (found in /proc)."""
    found = {}
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile, or not a process
            continue
        words = [a.decode(errors="replace") for a in argv]
        if "bdcore.worker" in words and str(store.path) in words:
            found[int(proc.name)] = words[words.index("bdcore.worker") + 1]
    return found


def is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(") ")[2].startswith("Z")
    except OSError:  # gone: waited for
        return False


def settled(store: RunStore, since: float) -> bool:
    """Every run adopted (running, its worker alive and beating since ``since``) or marked failed
    (or already finished)."""
    for record in store.list():
        if record.status in (Status.FAILED, Status.SUCCEEDED):
            continue
        adopted = (record.status == Status.RUNNING and jobs.process_alive(record.pid, record.id)
                   and record.heartbeat is not None and record.heartbeat > since)
        if not adopted:
            return False
    return True


@dataclass
class AppRound:
    killed_after_s: float
    runs: int
    adopted: int
    failed: int
    settle_s: float
    orphans: list[str]
    zombies_at_end: int  # exited workers not yet waited for when the runs were done
    zombies: list[int]  # and still not waited for ZOMBIE_WAIT_S later: accumulating
    not_resumable: list[str]
    unloadable: list[str]
    temp_left: list[str]


def app_round(rng: random.Random, root: RunsRoot, mid_submit: bool) -> AppRound:
    """An app process submits 3 runs and is SIGKILLed (while submitting when ``mid_submit``, else
    while they train); this process then plays the restarted app."""
    store = RunStore(root.store_path)
    os.environ["BD_MAX_JOBS"] = "3"
    app = subprocess.Popen([sys.executable, __file__, "--as-app", str(store.path)], stdout=subprocess.PIPE,
                           text=True)
    assert app.stdout.readline().strip() == "ready"
    delay = rng.uniform(0.0, 0.15) if mid_submit else rng.uniform(2.0, 6.0)
    time.sleep(delay)
    app.kill()
    app.wait()
    restarted = time.time()
    housekeeper = jobs.Housekeeper(store)  # the app's pace: HOUSEKEEPING_S
    seen: set[int] = set()
    while not settled(store, restarted):
        housekeeper.tick()
        seen |= set(worker_processes(store))
        if time.time() - restarted > 2 * ADOPT_LIMIT_S:
            break
        time.sleep(0.1)
    settle_s = time.time() - restarted
    records = store.list()
    adopted = sum(r.status in (Status.RUNNING, Status.SUCCEEDED) for r in records)
    failed = sum(r.status == Status.FAILED for r in records)
    # every run to the end, the failed ones resumed (a run failing again on its own is not resumable)
    deadline = time.time() + 300
    while time.time() < deadline:
        jobs.schedule(store)
        seen |= set(worker_processes(store))
        for r in store.list((Status.FAILED,)):
            if r.attempts < 3:
                jobs.resume(store, r.id)
        if not store.list((Status.QUEUED, Status.RUNNING)) and all(
                r.attempts >= 3 for r in store.list((Status.FAILED,))):
            break
        time.sleep(0.5)
    not_resumable = [f"{r.id}: {r.status} {r.error}" for r in store.list() if r.status != Status.SUCCEEDED]
    # finished workers exit after scheduling and preparing the Embeddings page's first view
    settle = time.time() + WORKER_EXIT_S
    while worker_processes(store) and time.time() < settle:
        time.sleep(0.5)
    jobs.schedule(store)  # waits for this process's finished workers
    orphans = [f"pid {pid} (run {run_id})" for pid, run_id in worker_processes(store).items()]
    # the killed app's workers were handed to init, which waits for them at its own pace
    zombies_at_end = sum(is_zombie(pid) for pid in seen)
    give_up = time.time() + ZOMBIE_WAIT_S
    while any(is_zombie(pid) for pid in seen) and time.time() < give_up:
        time.sleep(0.5)
    return AppRound(delay, len(store.list()), adopted, failed, settle_s, orphans, zombies_at_end,
                    sorted(pid for pid in seen if is_zombie(pid)), not_resumable, unloadable_files(root),
                    [str(p) for p in temp_files(root)])


def as_app(store_path: str) -> None:
    """The app's part: submit 3 runs (each starts its worker), then keep house until killed."""
    store = RunStore(store_path)
    print("ready", flush=True)
    for seed in range(3):
        jobs.submit(store, ExperimentConfig(**APP_CONFIG, seed=seed), force=True)
    housekeeper = jobs.Housekeeper(store)
    while True:
        housekeeper.tick()
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100, help="SIGKILLs of workers, at least")
    parser.add_argument("--app-rounds", type=int, default=3, help="app-server kills (3 runs each)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--as-app", metavar="STORE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.as_app:
        as_app(args.as_app)
        return
    rng = random.Random(args.seed)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        isolated_environment(Path(tmp))
        result = chaos(args.kills, rng, RunsRoot(Path(tmp) / "runs"),
                       log=lambda line: print(line, flush=True))
        rounds = [app_round(rng, RunsRoot(Path(tmp) / f"app{i}"), mid_submit=i % 2 == 0)
                  for i in range(args.app_rounds)]
    print()
    print(f"kills injected: {result.total_kills} ({result.runs} runs, {result.attempts} worker starts)")
    for how, count in sorted(result.kills.items()):
        print(f"  {how}: {count}")
    print(f"unloadable checkpoints under final names: {len(result.unloadable)}")
    print(f"integrity_check failures: {result.integrity_failures}")
    print(f"runs not resumable: {len(result.not_resumable)}")
    print(f"weight mismatches vs uninterrupted run: {len(result.weight_mismatches)}")
    print(f"epochs lost from the store: {len(result.epochs_lost)}")
    print(f"temp files left: {len(result.temp_left)}")
    print(f"kill loop wall time: {result.seconds:.0f} s")
    for i, r in enumerate(rounds, 1):
        print(f"app kill {i}: killed {r.killed_after_s:.2f} s after start, {r.runs} runs; after restart "
              f"{r.adopted} adopted, {r.failed} failed, all settled in {r.settle_s:.1f} s; orphaned workers "
              f"{len(r.orphans)}, zombies {len(r.zombies)} ({r.zombies_at_end} not yet waited for at the "
              f"end), not resumable {len(r.not_resumable)}, unloadable {len(r.unloadable)}, "
              f"temp files {len(r.temp_left)}")
    print(f"total wall time: {time.monotonic() - started:.0f} s")
    slow = [f"app kill {i}: settled in {r.settle_s:.1f} s" for i, r in enumerate(rounds, 1)
            if r.settle_s > ADOPT_LIMIT_S]
    problems = result.unloadable + result.not_resumable + result.weight_mismatches + result.epochs_lost
    problems += result.temp_left + slow
    for r in rounds:
        problems += r.orphans + r.not_resumable + r.unloadable + r.temp_left
        problems += [f"zombie {z}" for z in r.zombies]
    for problem in problems:
        print(f"PROBLEM: {problem}")


if __name__ == "__main__":
    main()
