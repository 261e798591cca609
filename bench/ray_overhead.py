"""The Ray job backend's cost per run: seconds from ``jobs.submit`` to the run's first finished
epoch in the store, local backend vs Ray backend, alternating, on a
Ray head this script starts on this machine (2 CPUs). Each run is an MLP -> MLP run of the real
MNIST <- Fashion-MNIST, cancelled after its first epoch; one warm-up run per backend is not counted
(it starts Ray's store actor and fills the file cache).

    BD_DATA_DIR=../shared/datasets python bench/ray_overhead.py --repeats 3 --out docs/bench-ray-cpu.json

Reported in docs/performance.md, "Many runs on Ray"."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bdcore import jobs  # noqa: E402
from bdcore.config import ExperimentConfig  # noqa: E402
from bdcore.store import RunStore  # noqa: E402

RAY = str(Path(sys.executable).parent / "ray")
QUICK = dict(labeled="mnist", unlabeled="fashion-mnist", teacher="mlp", student="mlp", teacher_epochs=1,
             blind_epochs=1, finetune_epochs=1, finetune_ks=["all"], device="cpu")


def wait_for(predicate, timeout: float = 300.0, every: float = 0.05):
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        if value := predicate():
            return value
        time.sleep(every)
    raise TimeoutError(f"nothing after {timeout:.0f} s")


def one_run(store: RunStore, backend: str, seed: int) -> dict:
    os.environ["BD_JOBS_BACKEND"] = backend
    started = time.perf_counter()
    run_id = jobs.submit(store, ExperimentConfig(**{**QUICK, "seed": seed}), force=True).run_id
    wait_for(lambda: store.epochs([run_id]))
    first_epoch = time.perf_counter() - started
    jobs.cancel(store, run_id)
    wait_for(lambda: store.get(run_id).status not in ("queued", "running"))
    if backend == "ray":  # its launcher hands its CPU back before the next run is timed
        time.sleep(2.0)
    return {"backend": backend, "seed": seed, "to_first_epoch_s": first_epoch}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    temp = Path(tempfile.mkdtemp(prefix="/tmp/bdray-bench-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run([RAY, "start", "--head", f"--port={port}", "--num-cpus=2", "--num-gpus=0",
                    "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp / 'ray'}"],
                   check=True, capture_output=True)
    os.environ.update(RAY_ADDRESS=f"127.0.0.1:{port}", BD_RUNS_DIR=str(temp / "runs"), BD_MAX_JOBS="1")
    results = []
    try:
        store = RunStore()
        for warm_up, backend in enumerate(("local", "ray")):
            one_run(store, backend, seed=100 + warm_up)
        for repeat in range(args.repeats):
            for backend in ("local", "ray"):
                result = one_run(store, backend, seed=repeat)
                results.append(result)
                print(f"{backend:>5}: first epoch {result['to_first_epoch_s']:.2f} s after submit")
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True)
        shutil.rmtree(temp, ignore_errors=True)
    summary = {backend: statistics.median(r["to_first_epoch_s"] for r in results if r["backend"] == backend)
               for backend in ("local", "ray")}
    print(f"median to first epoch: local {summary['local']:.2f} s, Ray {summary['ray']:.2f} s: Ray adds "
          f"{summary['ray'] - summary['local']:.2f} s per run")
    if args.out:
        args.out.write_text(json.dumps({"runs": results, "median": summary}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
