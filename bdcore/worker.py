"""`python -m bdcore.worker RUN_ID --store PATH`: trains one queued run in this process and
records everything in the run store. Started by ``bdcore.jobs.schedule`` in its own session."""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
import traceback

from .experiment import run_experiment
from .jobs import HEARTBEAT_S, run_dir_for, schedule
from .store import RunStore
from .train import EpochReport


class Cancelled(Exception):
    """Raised in the training thread when the run is cancelled (SIGTERM)."""


def _on_sigterm(_signum, _frame):
    raise Cancelled()


def _heartbeat(store: RunStore, run_id: str, stop: threading.Event) -> None:
    """Prove liveness; also turn a cancel flag set without a signal into one."""
    while not stop.wait(HEARTBEAT_S):
        try:
            store.update(run_id, heartbeat=time.time())
            if store.get(run_id).cancel_requested:
                os.kill(os.getpid(), signal.SIGTERM)
        except Exception as err:  # a busy database must not kill the worker; next beat retries
            print(f"heartbeat failed: {err}", file=sys.stderr, flush=True)


def stage_progress(stages: list[str], report: EpochReport) -> float:
    """Fraction done: each stage an equal share, split by its epochs."""
    index = stages.index(report.stage) if report.stage in stages else 0
    return min(1.0, (index + report.epoch / report.epochs) / len(stages))


def work(store: RunStore, run_id: str) -> str:
    """Train the run; returns its final status."""
    record = store.get(run_id)
    config = record.config
    run = run_dir_for(store, run_id)
    stages = ["teacher", "blind", *[f"finetune-k{k}" for k in config.finetune_ks]]

    def on_epoch(report: EpochReport) -> None:
        store.add_epoch(run_id, report.to_dict(), stage_progress(stages, report))

    def on_message(text: str) -> None:
        store.update(run_id, message=text, **({"teacher_reused": 1} if "teacher reused" in text else {}))

    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(store, run_id, stop), daemon=True)
    beat.start()
    try:
        result = run_experiment(config, on_epoch=on_epoch, on_message=on_message, run=run)
        store.update(run_id, status="succeeded", progress=1.0, final=result.to_dict(),
                     teacher_reused=int(result.teacher_reused), finished=time.time(), pid=None)
        return "succeeded"
    except Cancelled:
        store.update(run_id, status="cancelled", finished=time.time(), pid=None,
                     message="cancelled; finished stages and epochs are kept, resume continues")
        return "cancelled"
    except Exception as err:
        traceback.print_exc()
        store.update(run_id, status="failed", error=f"{type(err).__name__}: {err}",
                     finished=time.time(), pid=None)
        return "failed"
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
