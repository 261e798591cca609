"""`python -m bdcore jobs ...`: the run queue from the command line, over the same store as the app."""
from __future__ import annotations

import argparse
import json
import sys
import time

from . import jobs
from .cli_options import add_config_options, config_from_args
from .data import check_dataset_path
from .placement import PROCS_HELP
from .store import ACTIVE, RunStore


def _store(args: argparse.Namespace) -> RunStore:
    return RunStore(args.store)  # a file or folder it cannot use is a StoreError


def cmd_list(args: argparse.Namespace) -> int:
    store = _store(args)
    jobs.schedule(store)
    records = store.list()
    if args.json:
        print(json.dumps([r.summary() for r in records]))
        return 0
    if not records:
        print("no runs yet: python -m bdcore jobs submit --help")
        return 0
    print(f"{'id':<23} {'status':<10} {'progress':>8}  {'pair':<28} {'models':<12} final accuracies")
    for r in records:
        s = r.summary()
        accs = ""
        if s["teacher_acc"] is not None:
            tuned = ", ".join(f"k={k} {v:.2%}" for k, v in s["finetune_acc"].items())
            accs = f"teacher {s['teacher_acc']:.2%}, blind {s['blind_acc']:.2%}, {tuned}"
        elif r.error:
            accs = r.error.splitlines()[0][:60]
        pair = f"{r.config.labeled} <- {r.config.unlabeled}"
        models = f"{r.config.teacher}->{r.config.student}"
        print(f"{r.id:<23} {r.status:<10} {r.progress:>8.0%}  {pair:<28} {models:<12} {accs}")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    config = config_from_args(args).validate()
    for name in (config.labeled, config.unlabeled):  # a missing folder would only fail in the worker
        check_dataset_path(name)
    store = _store(args)
    submitted = jobs.submit(store, config, force=args.force, procs=args.procs)
    if submitted.shared:
        status = store.get(submitted.run_id).status
        print(f"run {submitted.run_id} ({status}) has these very settings: it is shared, not queued "
              "again (--force or another --seed queues a new run)", file=sys.stderr)
    print(submitted.run_id)
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    print(f"{args.run_id}: {jobs.cancel(_store(args), args.run_id)}")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    jobs.resume(_store(args), args.run_id)
    print(f"{args.run_id}: queued to resume")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    jobs.delete(_store(args), args.run_id)
    print(f"{args.run_id}: deleted")
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    """Per-epoch metrics (and the worker's own log with --worker), optionally followed."""
    store = _store(args)
    shown = 0
    while True:
        record = store.get(args.run_id)
        epochs = store.epochs([args.run_id])
        for e in epochs[shown:]:
            print(f"{e['stage']:>14} epoch {e['epoch']:>3}/{e['epochs']:<3} loss {e['train_loss']:.4f} "
                  f"test acc {e['test_acc']:.4f} ({e['seconds']:.1f}s)", flush=True)
        shown = len(epochs)
        if not args.follow or record.status not in ACTIVE:
            break
        time.sleep(1.0)
        jobs.reap(store)
    if args.worker:
        log = store.root.worker_log(args.run_id)
        print(log.read_text() if log.exists() else f"(no worker log at {log})")
    print(f"status: {record.status}" + (f" ({record.error})" if record.error else ""))
    return 0


def add_jobs_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("jobs", help="background runs: list, submit, cancel, resume, delete, logs",
                            description="Background runs in the persistent run store (shared with the app).")
    parser.add_argument("--store", default=None, help="run store file (default: $BD_RUNS_DIR/runs.db)")
    commands = parser.add_subparsers(dest="jobs_command", required=True)

    p = commands.add_parser("list", help="every run with status, progress and final accuracies")
    p.add_argument("--json", action="store_true", help="print a JSON list for scripts")
    p.set_defaults(func=cmd_list)

    p = commands.add_parser("submit", help="queue a run (same options as `run`); prints its id",
                            description="Queue a run and print its id. A queued, running or succeeded "
                                        "run with the very same settings is shared instead: its id is "
                                        "printed and nothing is trained twice.")
    add_config_options(p)
    p.add_argument("--force", action="store_true",
                   help="queue a new run even if one with the same settings exists")
    p.add_argument("--procs", type=int, default=1, help=f"{PROCS_HELP} (default: %(default)s)")
    p.set_defaults(func=cmd_submit)

    for name, func, text in (
            ("cancel", cmd_cancel, "stop a queued or running run (finished stages are kept)"),
            ("resume", cmd_resume, "continue a failed or cancelled run from its last checkpoint"),
            ("delete", cmd_delete, "delete a finished run and its files")):
        p = commands.add_parser(name, help=text, description=text)
        p.add_argument("run_id")
        p.set_defaults(func=func)

    p = commands.add_parser("logs", help="per-epoch metrics of a run")
    p.add_argument("run_id")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing until the run ends")
    p.add_argument("--worker", action="store_true", help="also print the worker process's log")
    p.set_defaults(func=cmd_logs)
