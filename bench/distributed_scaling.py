"""Table 1's MLP row in 1 process and in 2 processes (torchrun, gloo), side by side, same seed and
global batch: the accuracies (issue 17: within 0.5 points) and images/s of each stage, from each
run's metrics.jsonl. On a 2-core CPU the 1-process run has 2 threads and each of the 2 processes 1.

    BD_DATA_DIR=../shared/datasets python bench/distributed_scaling.py --seeds 0 1 2 \
        --out docs/bench-distributed-cpu.json

With --shared-teacher both runs of a seed use one runs folder, so the 2-process run reuses the
1-process run's cached teacher: the blind and fine-tuned figures are then compared on one teacher.

Reported in docs/performance.md, "One run in several processes"."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROW = ["--teacher", "mlp", "--student", "mlp", "--no-teacher-augment", "--teacher-input-noise", "0",
       "--blind-epochs", "10", "--finetune-epochs", "10", "--finetune-lr", "0.001", "--finetune-k", "all",
       "--device", "cpu", "--json"]
IMAGES = {"teacher": 60_000, "blind": 60_000, "finetune-kall": 60_000}  # MNIST / Fashion-MNIST train sets


def run(procs: int, seed: int, runs_dir: Path) -> dict:
    command = [sys.executable, "-m", "bdcore", "run", *ROW, "--seed", str(seed), "--runs-dir", str(runs_dir)]
    env = dict(os.environ)
    if procs > 1:
        command[1:2] = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}", "-m"]
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // procs))
    started = time.perf_counter()
    out = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    final = json.loads(out.stdout.strip().splitlines()[-1])
    [folder] = [p for p in runs_dir.iterdir() if p.is_dir() and (p / "metrics.jsonl").exists()
                and ("torchrun" in p.name) == (procs > 1)]
    lines = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    per_stage = {}
    for stage, images in IMAGES.items():
        epochs = [e["seconds"] for e in lines if e.get("stage") == stage]
        if epochs:  # a reused teacher has no epochs of its own
            per_stage[stage] = images / statistics.median(epochs)
    return {"procs": procs, "seed": seed, "seconds": seconds, "teacher_acc": final["teacher_acc"],
            "blind_acc": final["blind_acc"], "finetune_acc": final["finetune_acc"]["all"],
            "images_per_s": per_stage}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--shared-teacher", action="store_true",
                        help="the 2-process run reuses the 1-process run's teacher")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="bd-ddp-") as temp:
        for seed in args.seeds:
            for procs in (1, 2):
                folder = f"s{seed}" if args.shared_teacher else f"p{procs}-s{seed}"
                result = run(procs, seed, Path(temp) / folder)
                results.append(result)
                rates = ", ".join(f"{k} {v:,.0f}" for k, v in result["images_per_s"].items())
                print(f"seed {seed}, {procs} process(es): teacher {result['teacher_acc']:.2%}, blind "
                      f"{result['blind_acc']:.2%}, fine-tuned {result['finetune_acc']:.2%}; "
                      f"{result['seconds']:.0f} s; "
                      f"images/s (median epoch) {rates}", flush=True)
    for figure in ("teacher_acc", "blind_acc", "finetune_acc"):
        means = [statistics.mean(r[figure] for r in results if r["procs"] == p) for p in (1, 2)]
        print(f"{figure}: 1 process {means[0]:.2%}, 2 processes {means[1]:.2%} (difference "
              f"{100 * (means[1] - means[0]):+.2f} points)")
    if args.out:
        args.out.write_text(json.dumps({"cpu_count": os.cpu_count(), "shared_teacher": args.shared_teacher,
                                        "runs": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
