"""Ten runs submitted at once on this machine: they run one at a time (or per BD_MAX_JOBS) and
all finish. Prints the peak number running at once, each run's wait and run time, and the total.

    python bench/queue_ten_runs.py [--runs 10]

Uses a temporary run store and small runs on whatever data the data dir offers (the bundled demo
subset on a fresh machine)."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BD_RUNS_DIR"] = tmp
        from bdcore import jobs
        from bdcore.config import ExperimentConfig
        from bdcore.store import RunStore

        store = RunStore()
        config = dict(teacher="mlp", student="mlp", teacher_epochs=2, blind_epochs=2, finetune_epochs=1,
                      labeled_limit=2000, unlabeled_limit=2000, device="cpu")
        start = time.time()
        ids = [jobs.submit(store, ExperimentConfig(**config, seed=i % 2), force=True).run_id
               for i in range(args.runs)]
        peak = 0
        while True:
            jobs.schedule(store)
            records = [store.get(i) for i in ids]
            peak = max(peak, sum(r.status == "running" for r in records))
            if all(r.status in ("succeeded", "failed", "cancelled") for r in records):
                break
            time.sleep(0.5)
        total = time.time() - start
        print(f"limit (BD_MAX_JOBS or GPUs or 1): {jobs.max_concurrent()}")
        print(f"peak running at once: {peak}")
        for r in records:
            print(f"{r.id} {r.status:<9} waited {r.started - r.created:6.1f} s, "
                  f"ran {r.finished - r.started:5.1f} s, "
                  f"teacher reused: {r.teacher_reused}")
        print(f"all {len(records)} finished: {sum(r.status == 'succeeded' for r in records)} succeeded, "
              f"total {total:.1f} s")


if __name__ == "__main__":
    main()
