"""`python -m bdcore ...`: run experiments, list datasets, reproduce the paper's tables, queue
runs (jobs), curate transfer sets (subsets) and launch studies of many runs (study)."""
from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import time
from typing import NoReturn

from tqdm import tqdm

from . import distributed
from .cli_datasets import add_datasets_parser
from .cli_jobs import add_jobs_parser
from .cli_options import add_config_options, config_from_args, writable_folder
from .cli_studies import add_study_parser
from .cli_subsets import add_subsets_parser
from .device import resolve_device
from .errors import ConfigError, UserError
from .experiment import EventKind, ExperimentResult, RunEvent, run_experiment
from .reproduce import TABLES, check_table_data, run_table
from .runs import RunsRoot
from .train import EpochReport

# A full or read-only disk found in the middle of a command: the machine's state, never a bug
STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}
RUNS_DIR_HELP = "where run directories go (default: $BD_RUNS_DIR or ./runs)"


class ProgressBar:
    """One tqdm bar per stage, fed by the experiment's epoch callback; silent under --json."""

    def __init__(self, enabled: bool):
        self.enabled, self.bar, self.stage = enabled, None, None

    def epoch(self, r: EpochReport) -> None:
        if not self.enabled:
            return
        if r.stage != self.stage:
            self.close()
            self.stage = r.stage
            self.bar = tqdm(total=r.epochs, desc=f"{r.stage:>14}", unit="epoch", file=sys.stderr)
        self.bar.set_postfix(loss=f"{r.train_loss:.4f}", acc=f"{r.test_acc:.4f}")
        self.bar.update(1)

    def event(self, event: RunEvent) -> None:
        if not self.enabled:
            return
        if event.kind is EventKind.PREPARING:  # a bar per collection being prepared
            what = event.text.split(":")[0]
            if what != self.stage:
                self.close()
                self.stage = what
                self.bar = tqdm(total=event.total, desc=what, unit="img", file=sys.stderr)
            self.bar.update(event.done - self.bar.n)
            return
        tqdm.write(f"note: {event.text}", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def one_line(text: str) -> str:
    """A message as one line, however its parts were written."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _percent(x: float) -> str:
    return f"{100 * x:.2f}%"


def print_summary(result: ExperimentResult) -> None:
    print(f"teacher accuracy       {_percent(result.teacher_acc)}"
          f"{'  (reused from cache)' if result.teacher_reused else ''}")
    print(f"blind student accuracy {_percent(result.blind_acc)}")
    for k, acc in result.finetune_acc.items():
        print(f"fine-tuned, k={k:<9} {_percent(acc)}")
    print("seconds per stage      " + ", ".join(f"{s} {t:.1f}" for s, t in result.seconds.items()))
    print(f"device {result.device}, seed {result.seed}")
    print(f"run directory {result.run_dir}")
    for note in result.notes:
        print(f"note: {note}")


def check_device(name: str) -> None:
    """The device asked for exists on this machine (before any file of the run is written)."""
    try:
        resolve_device(name)
    except ConfigError as err:
        raise ConfigError(f"{err}; choose another with --device (auto: the best one here)") from err


def _runs_root(args: argparse.Namespace) -> RunsRoot:
    """The runs folder asked for, checked before anything is written into it."""
    root = RunsRoot.default() if args.runs_dir is None else RunsRoot(args.runs_dir)
    writable_folder(root.path, "runs folder", "choose another with --runs-dir or BD_RUNS_DIR")
    return root


def cmd_run(args: argparse.Namespace) -> int:
    if args.runs_dir is not None:  # the transfer sets a run may train on (subset:NAME) live there too
        os.environ["BD_RUNS_DIR"] = args.runs_dir
    # settings, device and runs folder are checked before run_experiment creates the run folder
    config = config_from_args(args).validate()
    distributed.check_batch(config.batch_size, distributed.launched_world_size())
    check_device(config.device)
    root = _runs_root(args)
    with distributed.process_group() as main:  # started by torchrun: one of its processes
        progress = ProgressBar(enabled=not args.json and main)
        try:
            result = run_experiment(config, root, progress.epoch, progress.event)
        finally:
            progress.close()
    if not main:  # rank 0 speaks for the run
        return 0
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print_summary(result)
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    check_device(args.device)
    check_table_data(args.table)  # before the runs folder is made: missing data leaves nothing behind
    if args.seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {args.seeds}")
    root = _runs_root(args)
    start = time.perf_counter()
    by_seed = []
    with distributed.process_group() as main:  # started by torchrun: every row across its processes
        progress = ProgressBar(enabled=not args.json and main)
        try:
            for seed in range(args.seed, args.seed + args.seeds):
                by_seed.append(run_table(
                    args.table, seed=seed, device=args.device, root=root, on_epoch=progress.epoch,
                    on_event=progress.event,
                    on_row=None if args.json or not main else
                    lambda r, s=seed: tqdm.write(f"seed {s}: {r.headline()}", file=sys.stderr)))
        finally:
            progress.close()
    if not main:
        return 0
    table, wall = TABLES[args.table], time.perf_counter() - start
    if args.json:
        print(json.dumps([{**r.to_dict(), "seed": seed}
                          for seed, rows in enumerate(by_seed, start=args.seed) for r in rows]))
    elif args.seeds == 1:
        print(table.format(by_seed[0], wall))
    else:
        print(table.format_seeds(by_seed, wall))
    return 0


class Parser(argparse.ArgumentParser):
    """argparse with its errors in one line, like every other error of the CLI (argparse's own
    prints the whole usage first). Sub-commands' parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m bdcore", description=(
        "Blind distillation: train a teacher on a labeled set, distill a student from its soft "
        "labels on an unlabeled set, then fine-tune the student on k labeled samples per class."))
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run teacher, blind distillation and fine-tuning",
                         description="Run all three stages and print a summary.")
    add_config_options(run)
    run.add_argument("--runs-dir", default=None, help=RUNS_DIR_HELP)
    run.add_argument("--json", action="store_true",
                     help="print one JSON object instead of progress and a summary")
    run.set_defaults(func=cmd_run)

    add_datasets_parser(sub)

    reproduce = sub.add_parser("reproduce", help="reproduce a table of the paper",
                               description="Run a table of the paper at its documented recipe "
                                           "(docs/results.md) and print it beside the paper's numbers. "
                                           "Every dataset it needs is looked for first. Run again in "
                                           "the same runs folder, it continues where it stopped: rows "
                                           "already run are loaded, an unfinished one resumes from its "
                                           "last checkpoint (a fresh --runs-dir measures anew).")
    reproduce.add_argument("table", choices=sorted(TABLES), help="which table")
    reproduce.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    reproduce.add_argument("--seeds", type=int, default=1,
                           help="run the table with this many seeds (--seed, --seed+1, ...) and print "
                                "each figure as mean +- std (default: %(default)s)")
    reproduce.add_argument("--device", default="auto", help="auto, cuda, mps or cpu (default: %(default)s)")
    reproduce.add_argument("--runs-dir", default=None, help=RUNS_DIR_HELP)
    reproduce.add_argument("--json", action="store_true", help="print a JSON list, one object per row")
    reproduce.set_defaults(func=cmd_reproduce)

    add_jobs_parser(sub)
    add_subsets_parser(sub)
    add_study_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as err:
        print(f"error: {one_line(str(err))}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.errno not in STORAGE_ERRNOS:
            raise  # anything else is a bug and keeps its traceback
        print(f"error: cannot write {err.filename}: {err.strerror}; free some space or choose another "
              "folder (--runs-dir or BD_RUNS_DIR)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
