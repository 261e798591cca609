"""Render time of the Runs page with many runs in the store (issue: stays responsive at 100).

    python bench/runs_page_render.py [--runs 100] [--repeats 5]

Fills a temporary run store with finished runs (three stages of epochs each), then renders the
page with streamlit's AppTest and prints the time of each full render and of the store query."""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def fill(store, runs: int) -> None:
    from bdcore.config import ExperimentConfig

    for i in range(runs):
        run_id = store.add(ExperimentConfig(seed=i, student=("cnn", "mlp")[i % 2]))
        for stage, epochs in (("teacher", 10), ("blind", 15), ("finetune-kall", 8)):
            for epoch in range(1, epochs + 1):
                store.add_epoch(run_id, {"stage": stage, "epoch": epoch, "epochs": epochs,
                                         "train_loss": 1 / epoch, "test_acc": 0.9 + epoch / 200,
                                         "lr": 1e-3, "seconds": 10.0}, 1.0)
        store.mark_succeeded(run_id, {
            "teacher_acc": 0.995, "blind_acc": 0.97, "finetune_acc": {"all": 0.996},
            "seconds": {"teacher": 100.0, "blind": 150.0, "finetune-kall": 80.0}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BD_RUNS_DIR"] = tmp
        os.environ["BD_OFFLINE"] = "1"
        from streamlit.testing.v1 import AppTest

        from bdcore import jobs
        from bdcore.store import RunStore

        store = RunStore()
        fill(store, args.runs)
        jobs.schedule = lambda _store: []  # measure rendering, not worker start-up
        start = time.perf_counter()
        records = store.list()
        store.epochs([r.id for r in records[:3]])
        query = time.perf_counter() - start
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            at = (AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
                  .run().switch_page("ui/runs.py").run())
            times.append(time.perf_counter() - start)
            assert not at.exception, at.exception
        print(f"runs in store: {len(records)}")
        print(f"store query (list + epochs of 3 runs): {query * 1000:.1f} ms")
        print(f"Runs page full render: median {statistics.median(times):.2f} s, "
              f"min {min(times):.2f} s, max {max(times):.2f} s over {args.repeats} renders")


if __name__ == "__main__":
    main()
