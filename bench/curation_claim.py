"""Does a curated transfer set teach better than a random one? Issue 15's claim, through the
product's own loop: for each seed, a parent run on all 60,000 Fashion-MNIST images (Table 1's
row recipe, seed s), then transfer sets of at most --budget images picked from the parent
teacher's soft labels (bdcore.curation.loop.curate: the strategies see no label), and one child
run per set, relaunched with the parent's settings (its teacher reused from the cache).

    BD_DATA_DIR=../shared/datasets python bench/curation_claim.py [--rows mlp-mlp cnn-mlp]
        [--seeds 0 1 2] [--budget 10000] [--out docs/bench-curation-cpu.json]

Prints blind (and k=10 fine-tuned) accuracy, mean +- std over the seeds, per row and set; the
primary strategy ("balanced", chosen before any figure was seen) is compared with "random"."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import common  # noqa: F401  (puts the repository on sys.path)

from bdcore.curation import transfer_sets
from bdcore.curation.loop import child_config, curate
from bdcore.embeddings import ExploreSession
from bdcore.experiment import run_experiment
from bdcore.reproduce import TABLE1
from bdcore.runs import RunsRoot

PRIMARY, BASELINE = "balanced", "random"
STRATEGIES = (BASELINE, PRIMARY, "top_confident")
ROWS = {f"{r.teacher}-{r.student}": r for r in TABLE1.rows}


def row_config(row: str, seed: int):
    spec = ROWS[row]
    return replace(TABLE1.base, teacher=spec.teacher, student=spec.student, seed=seed, finetune_ks=["10"],
                   **spec.overrides)


def mean_std(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2%} +- {sd:.2%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=["mlp-mlp", "cnn-mlp"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--budget", type=int, default=10_000)
    parser.add_argument("--out", default=None, help="write every run's figures here as JSON")
    parser.add_argument("--equal-steps", action="store_true",
                        help="children train for as many optimiser steps as the parent (blind epochs "
                             "scaled by 60,000 / set size), so a set is compared at equal compute")
    parser.add_argument("--runs-dir", default=None,
                        help="keep runs, teachers and transfer sets here (default: a temporary folder); "
                             "a second invocation then reuses the teachers")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.runs_dir or tmp
        root = RunsRoot(folder)
        os.environ["BD_RUNS_DIR"] = folder  # transfer sets are saved under the runs root
        for row in args.rows:
            for seed in args.seeds:
                start = time.perf_counter()
                parent = run_experiment(row_config(row, seed), root)
                results.append({"row": row, "seed": seed, "set": "full", "size": 60_000,
                                "blind": parent.blind_acc, "k10": parent.finetune_acc["10"],
                                "seconds": time.perf_counter() - start})
                print(json.dumps(results[-1]), flush=True)
                session = ExploreSession(Path(parent.run_dir))
                for strategy in STRATEGIES:
                    start = time.perf_counter()
                    name = f"{row}-{strategy}-s{seed}-{args.budget}"
                    ts = (transfer_sets.load(name) if root.transfer_set(name).exists()
                          else curate(session, strategy, args.budget, name, seed=seed))
                    config = child_config(session.config, ts)
                    if args.equal_steps:
                        config = replace(config, blind_epochs=round(config.blind_epochs * 60_000 / ts.size))
                    child = run_experiment(config, root)
                    assert child.teacher_reused, "the child must reuse its parent's teacher"
                    results.append({"row": row, "seed": seed, "set": strategy, "size": ts.size,
                                    "blind_epochs": config.blind_epochs,
                                    "blind": child.blind_acc, "k10": child.finetune_acc["10"],
                                    "seconds": time.perf_counter() - start})
                    print(json.dumps(results[-1]), flush=True)
    print(f"\n{'row':<8} {'transfer set':<22} {'blind, mean +- std':>22} {'k=10 fine-tune':>22}")
    for row in args.rows:
        for name in ("full", *STRATEGIES):
            got = [r for r in results if r["row"] == row and r["set"] == name]
            label = "all 60,000" if name == "full" else f"{name} {args.budget:,}"
            print(f"{row:<8} {label:<22} {mean_std([r['blind'] for r in got]):>22} "
                  f"{mean_std([r['k10'] for r in got]):>22}")
    if args.out:
        Path(args.out).write_text(json.dumps({"budget": args.budget, "seeds": args.seeds, "runs": results},
                                             indent=1))


if __name__ == "__main__":
    main()
