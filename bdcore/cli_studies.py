"""`python -m bdcore study ...`: launch a study (a TOML file, or --axis options), list studies,
show one's table (text, JSON, CSV or LaTeX), wait for one, and cancel, resume or delete one as a
group."""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

from . import jobs, studies
from .errors import ConfigError
from .presets import DEFAULT_PRESET, PRESETS
from .store import ACTIVE, RunStore
from .study_views import over_seeds, runs_frame, to_latex


def _pairs(items: list[str], what: str) -> list[tuple[str, str]]:
    out = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not value:
            raise ConfigError(f"{what} {item!r}: write FIELD=VALUE")
        out.append((name.strip().replace("-", "_"), value))
    return out


def spec_from_args(args: argparse.Namespace) -> studies.StudySpec:
    if args.file:
        spec = studies.StudySpec.from_toml(args.file)
        return spec if args.name is None else replace(spec, name=args.name)
    if not args.name:
        raise ConfigError("give a study file, or --name with --axis options")
    base = {name: studies.parse_value(name, value) for name, value in _pairs(args.set, "--set")}
    axes = {name: [studies.parse_value(name, v) for v in values.split(",")]
            for name, values in _pairs(args.axis, "--axis")}
    return studies.StudySpec(args.name, args.preset, base, axes, args.baseline).validate()


def cmd_launch(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    if args.dry_run:
        for point in spec.points():
            print(json.dumps(point))
        print(f"{spec.size()} runs (nothing queued: --dry-run)")
        return 0
    study = studies.launch(spec, RunStore())
    print(f"study {spec.name}: {len(study.run_ids)} runs queued or shared; watch with "
          f"python -m bdcore study show {spec.name}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    store = RunStore()
    found = studies.list_studies(store.root)
    if not found:
        print("no studies yet: python -m bdcore study launch --help")
    for study in found:
        statuses = studies.statuses(study, store)
        done = sum(s == "succeeded" for s in statuses)
        print(f"{study.spec.name:<24} {done}/{len(statuses)} runs succeeded; axes: "
              + ", ".join(f"{k} ({len(v)})" for k, v in study.spec.all_axes().items()))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    store = RunStore()
    study = studies.load(args.name, store.root)
    frame = runs_frame(study, studies.records(study, store))
    table = frame if args.runs else over_seeds(frame, list(study.spec.all_axes()))
    if args.format == "json":
        print(table.to_json(orient="records"))
    elif args.format == "csv":
        print(table.to_csv(index=False), end="")
    elif args.format == "latex":
        print(to_latex(table, f"Study {study.spec.name}: test accuracy (%)"), end="")
    else:
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


def cmd_wait(args: argparse.Namespace) -> int:
    """Keep the queue moving and print the study's progress until none of its runs is queued or
    running; exit 1 if any did not succeed (for scripts and cluster jobs)."""
    if not args.every > 0:
        raise ConfigError(f"--every must be a positive number of seconds, not {args.every}")
    store, last = RunStore(), None
    study = studies.load(args.name, store.root)
    while True:
        jobs.schedule(store)
        statuses = studies.statuses(study, store)
        counts = ", ".join(f"{statuses.count(s)} {s}" for s in dict.fromkeys(sorted(statuses)))
        if counts != last:
            print(f"{time.strftime('%H:%M:%S')} study {args.name}: {counts}", flush=True)
            last = counts
        if not any(s in ACTIVE for s in statuses):
            return 0 if all(s == "succeeded" for s in statuses) else 1
        time.sleep(args.every)


def _group(action, done: str):
    """A command acting on every run of a study; ``done`` says what happened to them."""
    def command(args: argparse.Namespace) -> int:
        store = RunStore()
        n = action(studies.load(args.name, store.root), store)
        print(f"study {args.name}: {n} runs {done}")
        return 0
    return command


def cmd_delete(args: argparse.Namespace) -> int:
    studies.delete(args.name, RunStore().root)
    print(f"study {args.name} deleted (its runs stay, with their results: python -m bdcore jobs list)")
    return 0


def add_study_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("study", help="many runs as one launch: sweeps, model matrices, seeds",
                            description="A study is a base config plus axes; every combination is one "
                                        "run in the ordinary queue. docs/studies.md has the file form.")
    commands = parser.add_subparsers(dest="study_command", required=True)

    p = commands.add_parser("launch", help="queue every run of a study",
                            description="Queue a study from a TOML file (name, preset, [base], [axes]) or "
                                        "from options, e.g. --name tsweep --preset quick --axis "
                                        "temperature=1,2,5 --axis seed=0,1,2.")
    p.add_argument("file", nargs="?", help="a study file (.toml)")
    p.add_argument("--name", help="the study's name (overrides the file's)")
    p.add_argument("--preset", choices=list(PRESETS), default=DEFAULT_PRESET,
                   help="starting settings (default: %(default)s)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="a config field for every run (repeatable)")
    p.add_argument("--axis", action="append", default=[], metavar="FIELD=V1,V2,...",
                   help="an axis: one run per value, combined with every other axis (repeatable); "
                        "finetune_ks values join ks with '+', e.g. finetune_ks=10+all,all")
    p.add_argument("--baseline", action="append", default=[], choices=list(studies.BASELINES),
                   help="run this baseline beside every combination (repeatable): no_teacher (the k "
                        "labeled samples alone), in_distribution (the labeled set's own images, labels "
                        "unused), noise (random pixels)")
    p.add_argument("--dry-run", action="store_true", help="print the runs instead of queueing them")
    p.set_defaults(func=cmd_launch)

    p = commands.add_parser("list", help="every study and how far it is")
    p.set_defaults(func=cmd_list)

    p = commands.add_parser("show", help="a study's figures, mean +- std over seeds")
    p.add_argument("name")
    p.add_argument("--runs", action="store_true", help="one row per run instead of per combination")
    p.add_argument("--format", choices=["text", "json", "csv", "latex"], default="text")
    p.set_defaults(func=cmd_show)

    for name, action, text, done in (
            ("cancel", studies.cancel, "cancel every queued or running run", "cancelled"),
            ("resume", studies.resume, "queue every failed or cancelled run again", "queued to resume")):
        p = commands.add_parser(name, help=text, description=text)
        p.add_argument("name")
        p.set_defaults(func=_group(action, done))

    p = commands.add_parser("wait", help="print progress until every run has finished (exit 1 if any "
                                         "did not succeed)")
    p.add_argument("name")
    p.add_argument("--every", type=float, default=10.0, help="seconds between checks (default: %(default)s)")
    p.set_defaults(func=cmd_wait)

    p = commands.add_parser("delete", help="forget a study (its runs and results stay)")
    p.add_argument("name")
    p.set_defaults(func=cmd_delete)
