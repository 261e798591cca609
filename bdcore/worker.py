"""`python -m bdcore.worker RUN_ID --store PATH`: trains one queued run in this process and
records everything in the run store. Started by ``bdcore.jobs.schedule`` in its own session."""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import traceback

from .experiment import EventKind, RunEvent, run_experiment
from .jobs import HEARTBEAT_S, run_dir_for, schedule
from .store import RunStore, Status
from .train import EpochReport


class Cancelled(Exception):
    """Raised in the training thread when the run is cancelled (SIGTERM)."""


def _on_sigterm(_signum, _frame):
    raise Cancelled()


def _heartbeat(store: RunStore, run_id: str, stop: threading.Event) -> None:
    """Prove liveness; also turn a cancel flag set without a signal into one."""
    while not stop.wait(HEARTBEAT_S):
        try:
            if store.beat(run_id):
                os.kill(os.getpid(), signal.SIGTERM)
        except Exception as err:  # a busy database must not kill the worker; next beat retries
            print(f"heartbeat failed: {err}", file=sys.stderr, flush=True)


def stage_progress(stages: list[str], report: EpochReport) -> float:
    """Fraction done: each stage an equal share, split by its epochs."""
    index = stages.index(report.stage) if report.stage in stages else 0
    return min(1.0, (index + report.epoch / report.epochs) / len(stages))


def work(store: RunStore, run_id: str) -> Status:
    """Train the run; returns its final status."""
    record = store.get(run_id)
    config = record.config
    run = run_dir_for(store, run_id)
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
        store.mark_succeeded(run_id, result.to_dict())
        return Status.SUCCEEDED
    except Cancelled:
        store.mark_cancelled(run_id, "cancelled; finished stages and epochs are kept, resume continues")
        return Status.CANCELLED
    except Exception as err:
        traceback.print_exc()
        store.mark_failed(run_id, f"{type(err).__name__}: {err}")
        return Status.FAILED
    finally:
        stop.set()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_id")
    parser.add_argument("--store", required=True, help="path of the run store (runs.db)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    store = RunStore(args.store)
    status = work(store, args.run_id)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    schedule(store)  # hand the freed slot to the next queued run
    print(f"run {args.run_id}: {status}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
