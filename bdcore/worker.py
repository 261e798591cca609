"""`python -m bdcore.worker RUN_ID --store PATH`: trains one queued run in this process and
records everything in the run store. Started by ``bdcore.jobs.schedule`` in its own session.
Once the run has succeeded and its slot is handed on, the worker computes the Embeddings page's
first view of the run at low priority before it exits, so the page opens on a cached view.

A run of several processes has torchrun start one worker per process (``jobs.worker_command``):
rank 0 does all of the above, the others only train beside it (``train_beside``)."""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import traceback
from typing import TYPE_CHECKING

from . import distributed
from .embeddings import ExploreSession, prepare_first_view
from .errors import UserError
from .experiment import EventKind, RunEvent, run_experiment
from .jobs import HEARTBEAT_S, run_dir_for, schedule
from .runs import RunDir
from .store import RunRecord, RunStore, Status
from .train import EpochReport

if TYPE_CHECKING:
    from .ray_jobs import RemoteStore


class Cancelled(Exception):
    """Raised in the training thread when the run is cancelled (SIGTERM)."""


def _on_sigterm(_signum, _frame):
    raise Cancelled()


NOT_OWNER_EXIT = 3  # exit status of a worker that found its run no longer its own
FIRST_VIEW_NICE = 10  # the first view yields the CPU to the next run's training


def owner_pid() -> int:
    """The pid the store knows this worker by: its own, or in a run of several processes that of
    torchrun, which started every rank and, signalled, stops them all."""
    return os.getppid() if distributed.is_distributed() else os.getpid()


def _owns(record: RunRecord) -> bool:
    """Whether the store still has this process training the run: running, and with this pid (or
    none yet: the process that started this worker may have died before recording it)."""
    return record.status == Status.RUNNING and record.pid in (None, owner_pid())


def _heartbeat(store: RunStore, run_id: str, stop: threading.Event) -> None:
    """Prove liveness; turn a cancel flag set without a signal into one; and leave at once when the
    run is no longer ours (marked failed while this worker was silent, or given to another worker)."""
    while not stop.wait(HEARTBEAT_S):
        try:
            # ``stop`` is set before the worker itself marks the run: then "not running" is expected
            if not _owns(store.get(run_id)) and not stop.is_set():
                print(f"run {run_id} is no longer this worker's; exiting without writing",
                      file=sys.stderr, flush=True)
                # no exception, no clean-up: the run's files and row belong to someone else now,
                # and every file of the run is written atomically, so stopping mid-write is safe
                os._exit(NOT_OWNER_EXIT)
            if store.beat(run_id) and not stop.is_set():
                os.kill(owner_pid(), signal.SIGTERM)
        except Exception as err:  # a busy database must not kill the worker; next beat retries
            print(f"heartbeat failed: {err}", file=sys.stderr, flush=True)


def stage_progress(stages: list[str], report: EpochReport) -> float:
    """Fraction done: each stage an equal share, split by its epochs."""
    index = stages.index(report.stage) if report.stage in stages else 0
    return min(1.0, (index + report.epoch / report.epochs) / len(stages))


def work(store: RunStore, run_id: str) -> Status | None:
    """Train the run; returns its final status, or None if the run was not this worker's to train."""
    record = store.get(run_id)
    if not _owns(record):  # reaped before this worker got going, or another worker has it
        return None
    store.set_worker(run_id, owner_pid())  # the app may have been killed before recording it
    config = record.config
    run = RunDir(distributed.from_main(run_dir_for(store, run_id).path))
    stages = config.stage_names()

    def on_epoch(report: EpochReport) -> None:
        store.add_epoch(run_id, report.to_dict(), stage_progress(stages, report))

    def on_event(event: RunEvent) -> None:
        store.set_message(run_id, event.text)
        if event.kind is EventKind.TEACHER_REUSED:
            store.set_teacher_reused(run_id)

    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(store, run_id, stop), daemon=True)
    beat.start()
    try:
        result = run_experiment(config, store.root, on_epoch=on_epoch, on_event=on_event, run=run)
        status, detail = Status.SUCCEEDED, result.to_dict()
    except Cancelled:
        status, detail = Status.CANCELLED, "cancelled; finished stages and epochs are kept, resume continues"
        if distributed.is_distributed() and not store.get(run_id).cancel_requested:
            # torchrun stops every process of a run when one fails
            status, detail = Status.FAILED, ("another process of this run failed (its error is in the "
                                             "worker log: jobs logs --worker); resume continues")
    except Exception as err:
        traceback.print_exc()
        status, detail = Status.FAILED, f"{type(err).__name__}: {err}"
    finally:
        # training is over: a late cancel must not interrupt the marking below, and the heartbeat
        # must not read the run leaving "running" as a takeover
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop.set()
    if not _owns(store.get(run_id)):  # taken from this worker since the last heartbeat
        return None
    mark = {Status.SUCCEEDED: store.mark_succeeded, Status.CANCELLED: store.mark_cancelled,
            Status.FAILED: store.mark_failed}[status]
    mark(run_id, detail)
    return status


def train_beside(store: RunStore, run_id: str) -> None:
    """A rank other than 0: trains the run beside rank 0, which alone writes the store and the run
    folder. Any error ends this process, and torchrun then stops the others."""
    run = RunDir(distributed.from_main(None))  # rank 0's run folder, once it has checked the run is its own
    run_experiment(store.get(run_id).config, store.root, run=run)


def open_store(path: str, ray_store: str | None) -> RunStore | RemoteStore:
    """The run store at ``path``, or, for a worker the Ray backend started on any node of its
    cluster, that store through the actor serving it (``bdcore.ray_jobs``)."""
    if ray_store is None:
        return RunStore(path)
    from .ray_jobs import RemoteStore

    return RemoteStore(ray_store, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_id")
    parser.add_argument("--store", required=True, help="path of the run store (runs.db)")
    parser.add_argument("--ray-store", metavar="NAME",
                        help="started by the Ray backend: write the store through this Ray actor")
    args = parser.parse_args(argv)
    store = open_store(args.store, args.ray_store)
    with distributed.process_group() as main:  # started by torchrun: one of the run's processes
        if not main:
            train_beside(store, args.run_id)
            return 0
        signal.signal(signal.SIGTERM, _on_sigterm)
        several = distributed.is_distributed()
        status = work(store, args.run_id)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if status is None:
        print(f"run {args.run_id} is not this worker's to train; left alone", flush=True)
        return NOT_OWNER_EXIT
    if not args.ray_store:  # on Ray every queued run was sent already (up to BD_MAX_JOBS)
        schedule(store)  # hand the freed slot to the next queued run
    print(f"run {args.run_id}: {status}", flush=True)
    if several and status is not Status.SUCCEEDED:
        return 1  # torchrun then stops the other processes, which may be waiting in a collective
    if status is Status.SUCCEEDED:
        prepare_explorer(store, args.run_id)
    return 0


def prepare_explorer(store: RunStore, run_id: str) -> None:
    """The Embeddings page's first view of a finished run, into the run's cache. A page asking
    for it meanwhile waits for it (the cache's lock) instead of computing it too; a failure here
    only means the page computes it when asked."""
    os.nice(FIRST_VIEW_NICE)
    try:
        prepare_first_view(ExploreSession(run_dir_for(store, run_id).path, run_id))
    except UserError as err:
        print(f"the Embeddings page's first view was not prepared: {err}", flush=True)
        return
    print("the Embeddings page's first view is ready", flush=True)


if __name__ == "__main__":
    sys.exit(main())
