"""`python -m bdcore subsets ...`: transfer sets from the command line: pick one from a run's
teacher with a strategy (and relaunch the run on it), list, show, join and delete them."""
from __future__ import annotations

import argparse
import json
import sys

from tqdm import tqdm

from . import jobs
from .curation import transfer_sets
from .curation.loop import child_config, curate, open_run
from .curation.strategies import STRATEGIES
from .data import load_dataset
from .errors import ConfigError
from .stage_names import TEACHER
from .store import RunStore


def _row(ts: transfer_sets.TransferSet) -> dict:
    return {"name": ts.name, "spec": ts.spec, "size": ts.size, "created": ts.created,
            "parts": [{"source": p.source, "count": len(p.rows)} for p in ts.parts],
            "provenance": ts.provenance}


def cmd_list(args: argparse.Namespace) -> int:
    saved = transfer_sets.list_transfer_sets()
    if args.json:
        print(json.dumps([_row(ts) for ts in saved]))
    elif not saved:
        print("no transfer sets yet: python -m bdcore subsets make --help")
    for ts in [] if args.json else saved:
        print(f"{ts.spec:<32} {ts.describe()}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    ts = transfer_sets.load(args.name)
    if args.json:
        print(json.dumps(_row(ts)))
        return 0
    print(f"{ts.spec}: {ts.describe()}")
    for key, value in ts.provenance.items():
        print(f"  {key}: {value}")
    return 0


def cmd_make(args: argparse.Namespace) -> int:
    transfer_sets.check_name(args.name)  # what can be refused before the run's data is loaded
    if args.budget < 1:
        raise ConfigError(f"a transfer set's budget must be at least 1 image, got {args.budget}")
    store = RunStore()
    session = open_run(args.run, store)
    session.model(args.model)  # a model the run does not have: said before the progress bar
    bar = tqdm(total=1.0, desc=f"{args.model} soft labels", disable=args.json, file=sys.stderr,
               bar_format="{desc}: {percentage:3.0f}%")

    def progress(fraction: float, _message: str) -> None:
        bar.update(min(fraction, 1.0) - bar.n)

    try:
        ts = curate(session, args.strategy, args.budget, args.name, args.model, args.seed, progress)
    finally:
        bar.close()
    out = _row(ts)
    if args.relaunch:
        submitted = jobs.submit(store, child_config(session.config, ts))
        out["relaunched"] = submitted.run_id
    if args.json:
        print(json.dumps(out))
    else:
        print(f"saved {ts.spec}: {ts.describe()}")
        if args.relaunch:
            print(f"relaunched as run {out['relaunched']} (teacher of {session.run_id} reused); "
                  f"follow it with: python -m bdcore jobs logs -f {out['relaunched']}")
    return 0


def cmd_union(args: argparse.Namespace) -> int:
    sizes = {s: len(load_dataset(s, "train")) for s in args.sets if not transfer_sets.is_transfer_set(s)}
    ts = transfer_sets.union(args.sets, args.name, sizes=sizes)
    print(f"saved {ts.spec}: {ts.describe()}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    for name in args.names:
        transfer_sets.delete(name)
        print(f"deleted {transfer_sets.spec_of(name)}")
    return 0


def add_subsets_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "subsets", help="transfer sets: make one from a run's teacher, list, show, union, delete",
        description="Transfer sets are named subsets of unlabeled sets, saved under the runs folder "
                    "($BD_RUNS_DIR) as the rows they keep; a run trains on one with --unlabeled "
                    "subset:NAME. docs/curation.md has the whole loop.")
    parser.set_defaults(func=cmd_list, json=False)
    commands = parser.add_subparsers(dest="subsets_command")

    p = commands.add_parser("list", help="every saved transfer set")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_list)

    p = commands.add_parser("show", help="one transfer set's sources and provenance")
    p.add_argument("name")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_show)

    strategies = "; ".join(f"{name}: {s.help.rstrip('.')}" for name, s in STRATEGIES.items())
    p = commands.add_parser("make", help="pick a transfer set from a run's soft labels",
                            description="Pick a transfer set from a finished run's soft labels over its "
                                        f"unlabeled set, with a strategy. Strategies: {strategies}")
    p.add_argument("run", help="run id (python -m bdcore jobs list) or run folder")
    p.add_argument("--strategy", choices=list(STRATEGIES), default="balanced",
                   help="how to pick (default: %(default)s)")
    p.add_argument("--budget", type=int, required=True, help="at most this many images")
    p.add_argument("--name", required=True, help="the set's name: letters, digits, '.', '_', '-'")
    p.add_argument("--model", default=TEACHER,
                   help="whose soft labels: teacher, blind or finetune-kK (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the strategy's random draws")
    p.add_argument("--relaunch", action="store_true",
                   help="queue the run again on the new set (same settings, teacher reused)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_make)

    p = commands.add_parser("union", help="join transfer sets and whole datasets into a new set")
    p.add_argument("name", help="the new set's name")
    p.add_argument("sets", nargs="+", help="subset:NAME or dataset names (their whole train split)")
    p.set_defaults(func=cmd_union)

    p = commands.add_parser("delete", help="delete transfer sets (runs trained on them keep their results)")
    p.add_argument("names", nargs="+")
    p.set_defaults(func=cmd_delete)
