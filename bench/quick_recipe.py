"""The quick preset's recipe search: each trial is one `python -m bdcore run` on the bundled demo
subset, in a fresh runs folder (no teacher reused), timed from launch to exit as a user sees it.

    python bench/quick_recipe.py '{"teacher_epochs": 3, "blind_epochs": 3}' '{...}' --seeds 0 1 2

Each argument is a JSON object of ExperimentConfig overrides on top of the paper's settings;
prints one line per trial (wall seconds, per-stage seconds, accuracies). The search itself is in
docs/results.md ("The quick preset")."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def flags(overrides: dict) -> list[str]:
    out = []
    for name, value in overrides.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            out.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, list):
            out += [flag.removesuffix("s"), *map(str, value)]
        else:
            out += [flag, str(value)]
    return out


def trial(overrides: dict, seed: int, preset: str | None) -> dict:
    with tempfile.TemporaryDirectory() as runs:
        command = [sys.executable, "-m", "bdcore", "run", "--json", "--runs-dir", runs, "--seed", str(seed),
                   *(["--preset", preset] if preset else []), *flags(overrides)]
        env = {k: v for k, v in os.environ.items() if k != "BD_DATA_DIR"}  # the fresh-machine default
        start = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"trial {overrides} failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"wall": wall, "result": result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trials", nargs="*", default=["{}"], help="JSON objects of config overrides")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--preset", default=None, help="start from this preset, not the paper's settings")
    args = parser.parse_args()
    for text in args.trials:
        overrides = json.loads(text)
        for seed in args.seeds:
            measured = trial(overrides, seed, args.preset)
            r = measured["result"]
            seconds = " ".join(f"{k} {v:.1f}" for k, v in r["seconds"].items())
            tuned = " ".join(f"{v:.2%}" for v in r["finetune_acc"].values())
            print(f"{text} seed {seed}: wall {measured['wall']:.1f} s | teacher {r['teacher_acc']:.2%} "
                  f"blind {r['blind_acc']:.2%} fine-tune {tuned} | {seconds}", flush=True)


if __name__ == "__main__":
    main()
