"""Background jobs: each run trains in its own OS process, in its own session, so a browser
refresh or a restart of the app does not stop it. There is no daemon: whoever touches the queue
(submit, a finishing worker, the app every HOUSEKEEPING_S, `jobs list`) calls ``schedule``, which marks
dead workers failed and starts queued runs while slots are free. Where they start is the backend's
(``job_backend``): processes of this machine, or actors of a Ray cluster (``bdcore.ray_jobs``)."""
from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .config import ExperimentConfig
from .errors import ConfigError, UserError
from .placement import check_procs, max_concurrent, pick_gpu, worker_env
from .runs import RunDir
from .store import RunRecord, RunStore, Status

HEARTBEAT_S = 2.0  # a worker writes its heartbeat this often
STALE_AFTER_S = 30.0  # a running worker silent this long is hung: it is stopped and marked failed
HOUSEKEEPING_S = 10.0  # how often the app reaps dead workers and starts queued runs
# A claimed run whose worker never recorded a pid this long after the claim: whoever claimed it
# died before starting the worker (or before recording it, and the worker itself has not come up).
# Short enough that an app killed mid-spawn has the run failed within 30 s of its restart.
START_GRACE_S = 15.0
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def process_alive(pid: int | None, run_id: str) -> bool:
    """True if ``pid`` is still our worker for ``run_id`` (guards against a reused pid)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return False
        if "bdcore.worker" not in text or run_id not in text:
            return False
        status = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1]
        return status != "Z"  # a zombie has finished
    return True


def reap(store: RunStore) -> list[str]:
    """Mark runs whose worker died (killed, out of memory, machine restart) as failed."""
    backend, now, dead = job_backend(), time.time(), []
    for record in store.list((Status.RUNNING,)):
        alive = backend.alive(record)
        if alive and record.pid is None:  # sent to a cluster, waiting there for its resources
            continue
        # until the worker records its pid, the heartbeat is the claim's time
        patience = STALE_AFTER_S if record.pid else START_GRACE_S
        silent = record.heartbeat is None or now - record.heartbeat > patience
        if not silent and (alive or record.pid is None):  # healthy, or being started right now
            continue
        if alive:  # hung: stop it so it cannot write after being marked failed
            backend.stop(record, signal.SIGKILL)
            reason = f"the worker stopped responding for over {STALE_AFTER_S:.0f} s and was stopped"
        elif record.pid is None:
            reason = backend.never_started
        else:
            reason = ("the worker process stopped without finishing (killed, out of memory, or the "
                      "machine restarted)")
        store.mark_failed(record.id, f"{reason}; resume continues from the last checkpoint")
        dead.append(record.id)
    return dead


# Workers this process started and has not yet waited for: a finished worker stays a zombie of
# its parent (a long-lived app) until waited for.
_children: set[int] = set()


def _wait_for_finished_workers() -> None:
    for pid in list(_children):
        try:
            done, _status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # already waited for (subprocess's own clean-up) or not ours
            done = pid
        if done:
            _children.discard(pid)


def worker_command(run_id: str, store_path: Path, procs: int) -> list[str]:
    """The worker of a run; of a run in several processes, torchrun starting that many workers on
    this machine (its pid is the one the store knows, ``worker.owner_pid``)."""
    worker = ["-m", "bdcore.worker", run_id, "--store", str(store_path)]
    if procs == 1:
        return [sys.executable, *worker]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}",
            *worker]


class JobBackend(Protocol):
    """Where queued runs train: how many at once, on which GPU, starting, watching and signalling
    their workers."""

    never_started: str  # why a claimed run whose worker never came up failed

    def capacity(self) -> int: ...

    def place(self, config: ExperimentConfig, in_use: list[int]) -> int | None: ...

    def start(self, store: RunStore, record: RunRecord, gpu: int | None, command: list[str],
              cwd: Path) -> int | None: ...

    def alive(self, record: RunRecord) -> bool: ...

    def stop(self, record: RunRecord, number: int = signal.SIGTERM) -> None: ...


class LocalBackend:
    """Workers as processes of this machine, each in its own session, pinned to a GPU when there
    are GPUs (the default backend; ``bdcore.ray_jobs`` sends runs to a Ray cluster instead)."""

    never_started = "the worker never started (the process starting it was stopped)"

    def capacity(self) -> int:
        return max_concurrent()

    def place(self, config: ExperimentConfig, in_use: list[int]) -> int | None:
        """The GPU of a run that lets the machine choose its device ("auto" or "cuda"); a run that
        names its device (cpu, cuda:N) is left to it."""
        return pick_gpu(in_use) if config.device in ("auto", "cuda") else None

    def start(self, store: RunStore, record: RunRecord, gpu: int | None, command: list[str],
              cwd: Path) -> int | None:
        log = store.root.worker_log(record.id)
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            process = subprocess.Popen(command, cwd=cwd, env=worker_env(gpu if record.procs == 1 else None),
                                       stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True)
        _children.add(process.pid)
        return process.pid

    def alive(self, record: RunRecord) -> bool:
        return process_alive(record.pid, record.id)

    def stop(self, record: RunRecord, number: int = signal.SIGTERM) -> None:
        if process_alive(record.pid, record.id):
            os.kill(record.pid, number)


BACKENDS = ("local", "ray")


def job_backend() -> JobBackend:
    """The backend ``$BD_JOBS_BACKEND`` names (default local): where queued runs train. A runs
    folder is served by one backend at a time: switch only while none of its runs is active."""
    name = os.environ.get("BD_JOBS_BACKEND") or "local"
    if name == "local":
        return LocalBackend()
    if name == "ray":
        try:
            from .ray_jobs import RayBackend
        except ImportError:
            raise ConfigError("BD_JOBS_BACKEND=ray needs Ray: pip install -r requirements-ray.txt") from None
        return RayBackend()
    raise ConfigError(f"BD_JOBS_BACKEND must be one of {', '.join(BACKENDS)}, not {name!r}")


def schedule(store: RunStore) -> list[str]:
    """Reap dead workers, then start queued runs (oldest first) while the backend has room, each
    on the least busy GPU when there are GPUs (chosen in the claim's transaction)."""
    _wait_for_finished_workers()
    reap(store)
    backend, started = job_backend(), []
    while (claimed := store.claim_next(backend.capacity(), backend.place)) is not None:
        run_id, gpu = claimed
        record = store.get(run_id)
        command = worker_command(run_id, store.path, record.procs)
        try:
            pid = backend.start(store, record, gpu, command, PROJECT_ROOT)
        except (OSError, UserError) as err:  # no process, no room on the cluster: the run says why
            store.mark_failed(run_id, f"could not start a worker: {err}")
            continue
        if pid is not None:
            store.set_worker(run_id, pid)
        started.append(run_id)
    return started


class Housekeeper:
    """``schedule`` at most once every ``every_s`` seconds, however many pages and sessions ask:
    the app's share of keeping the queue moving (workers and ``submit`` schedule on their own)."""

    def __init__(self, store: RunStore, every_s: float = HOUSEKEEPING_S):
        self.store, self.every_s = store, every_s
        self._lock = threading.Lock()
        self._last = -math.inf

    def tick(self) -> list[str]:
        """Started run ids, or [] when the last schedule was too recent."""
        with self._lock:
            if time.monotonic() - self._last < self.every_s:
                return []
            self._last = time.monotonic()
        return schedule(self.store)


@dataclass(frozen=True)
class Submission:
    run_id: str
    shared: bool  # True: an earlier queued, running or succeeded run with this very config


def submit(store: RunStore, config: ExperimentConfig, start: bool = True, force: bool = False,
           procs: int = 1) -> Submission:
    """Queue a run (ConfigError if its config is invalid) and start it if a slot is free. A run
    with the same config that is queued, running or succeeded is shared instead of trained twice,
    unless ``force``: another seed or ``force`` gives a run of its own. With ``procs`` > 1 its
    worker trains it in that many processes on this machine (docs/distributed.md)."""
    check_procs(procs, config.batch_size, config.device)
    run_id, shared = (store.add(config, procs), False) if force else store.add_or_share(config, procs)
    if start:  # a shared run may be waiting in the queue too
        schedule(store)
    return Submission(run_id, shared)


def cancel(store: RunStore, run_id: str) -> str:
    """Cancel a queued run at once, or ask a running worker to stop (it keeps what it finished)."""
    record = store.cancel(run_id)
    if record.status == Status.QUEUED:
        return "cancelled"
    backend, record = job_backend(), store.get(run_id)  # as it is now: it may have started meanwhile
    if record.pid is None and backend.alive(record):  # waiting in a cluster: nothing trained yet
        backend.stop(record)
        store.mark_cancelled(run_id, "cancelled before it started")
        return "cancelled"
    backend.stop(record)
    return "cancelling"


def resume(store: RunStore, run_id: str) -> None:
    """Queue a failed or cancelled run again; it continues from its last checkpoint."""
    store.requeue(run_id)
    schedule(store)


def delete(store: RunStore, run_id: str, remove_files: bool = True) -> None:
    """Delete a run that is not active, with its run directory."""
    record = store.delete(run_id)
    if remove_files and record.run_dir:
        shutil.rmtree(record.run_dir, ignore_errors=True)


def run_dir_for(store: RunStore, run_id: str) -> RunDir:
    """The run's directory, created on its first start (named after the run id)."""
    record = store.get(run_id)
    if record.run_dir:
        return RunDir(Path(record.run_dir))
    run = RunDir.create(record.config, store.root, name=run_id)
    store.set_run_dir(run_id, run.path)
    return run
