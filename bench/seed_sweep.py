"""Seeds of one experiment through the queue, as a study would run them: the wall time of one run
alone, then of N seeds submitted at once (on a GPU machine the queue packs as many runs per GPU
as fit, bdcore.placement), and the ratio. Table 1's CNN row by default; the target on a GPU is
16 seeds in <= 2x one run's time.

    python bench/seed_sweep.py [--seeds 16] [--preset paper|quick] [--device auto|cuda|cpu]

On a 2-core CPU the queue runs one run at a time, so the ratio is about N: the figure is for GPU
machines (docs/performance.md, "The GPU path")."""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from common import Figure, format_table

from bdcore import jobs
from bdcore.placement import max_concurrent
from bdcore.presets import PRESETS, preset_config
from bdcore.runs import RunsRoot
from bdcore.store import ACTIVE, RunStore


def sweep(folder: Path, seeds: list[int], preset: str, device: str) -> float:
    """Seconds from submitting every seed to the last one finishing; fails on a failed run."""
    os.environ["BD_RUNS_DIR"] = str(folder)
    store = RunStore(RunsRoot(folder).store_path)
    start = time.time()
    ids = [jobs.submit(store, preset_config(preset, seed=s, device=device)).run_id for s in seeds]
    while any(store.get(i).status in ACTIVE for i in ids):
        time.sleep(1.0)
        jobs.schedule(store)
    failed = [i for i in ids if store.get(i).status != "succeeded"]
    if failed:
        raise SystemExit(f"runs failed: {', '.join(failed)} (python -m bdcore jobs logs ID --worker)")
    return max(store.get(i).finished for i in ids) - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--preset", choices=list(PRESETS), default="paper")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        # a separate runs folder each, and one seed apart, so nothing is shared or reused
        one = sweep(Path(tmp) / "one", [1000], args.preset, args.device)
        many = sweep(Path(tmp) / "many", list(range(args.seeds)), args.preset, args.device)
    print(format_table([Figure(f"{args.seeds} seeds / one run, wall time", many / one, "x", "<= 2 on a GPU",
                               many / one <= 2, f"{many:.0f} s against {one:.0f} s; queue slots "
                                                f"{max_concurrent()}")]))


if __name__ == "__main__":
    main()
