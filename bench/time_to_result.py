"""Time to a result: the wall time, peak RSS (and peak GPU memory) of the paper's Table 1 (all
four rows) at the documented defaults, in a fresh runs folder so no teacher is reused, with every
row's accuracies beside the paper's.

    python bench/time_to_result.py [--device cpu|cuda]

The child process runs exactly ``python -m bdcore reproduce table1 --json --runs-dir DIR``
(through ``bdcore.cli.main``; ``bdcore.reproduce.run_table`` where tqdm is missing), then writes its
peak GPU memory and its own peak RSS (VmHWM) to a file."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Context, Figure, base_parser, format_table

CPU_TARGET_S = 600  # on this 2-core CPU
GPU_CNN_ROW_TARGET_S = 60  # the CNN row on an H100


def child(runs_dir: str, mem_file: str, device: str) -> int:
    import torch

    from bdcore.cli import main

    rc = main(["reproduce", "table1", "--json", "--runs-dir", runs_dir, "--device", device])
    peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    Path(mem_file).write_text(json.dumps({"cuda_peak_mb": peak, "rss_peak_mb": own_peak_rss_mb()}))
    return rc


def own_peak_rss_mb() -> float:
    """This process's own high-water RSS (VmHWM). Not ru_maxrss: a child started by posix_spawn
    inherits the parent's high-water mark through exec, so its ru_maxrss reads the parent's."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_table1(device: str) -> dict:
    """Run Table 1 in a child process: wall seconds, peak RSS, peak GPU memory, rows."""
    with tempfile.TemporaryDirectory(prefix="bench-table1-") as tmp:
        runs, mem = Path(tmp) / "runs", Path(tmp) / "mem.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(runs), str(mem), device]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        out = proc.stdout.read()
        proc.wait()
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"reproduce table1 failed with exit code {proc.returncode}")
        rows = json.loads(out.strip().splitlines()[-1])
        memory = json.loads(mem.read_text())
    return {"wall_s": wall, "peak_rss_mb": memory["rss_peak_mb"], "cuda_peak_mb": memory["cuda_peak_mb"],
            "rows": rows}


def row_text(row: dict) -> str:
    measured = {"teacher": row["teacher_acc"], "blind": row["blind_acc"],
                "finetune": row["finetune_acc"]["all"]}
    cells = ", ".join(f"{k} {measured[k]:.2%} ({row['paper'][k]:.2%})"
                      for k in ("teacher", "blind", "finetune"))
    stages = ", ".join(f"{k} {v:.1f}" for k, v in row["seconds"].items())
    return (f"{row['teacher'].upper()}->{row['student'].upper()} {sum(row['seconds'].values()):.0f} s "
            f"({stages}): {cells}")


def figures_from(result: dict, cuda: bool) -> list[Figure]:
    rows, wall = result["rows"], result["wall_s"]
    ok = sum(r["meets_paper"] for r in rows)
    cnn_row = sum(rows[0]["seconds"].values())
    figures = [
        Figure("time to a result: reproduce table1, wall time", wall, "s",
               "" if cuda else f"< {CPU_TARGET_S} s", None if cuda else wall < CPU_TARGET_S,
               f"all {len(rows)} rows, fresh runs folder, device {rows[0]['device']}"),
        Figure("time to a result: table1 rows at or above the paper", ok, "count",
               f"{len(rows)} of {len(rows)}",
               ok == len(rows), "measured (paper): " + "; ".join(row_text(r) for r in rows)),
        Figure("time to a result: table1 CNN->CNN row, stage seconds", cnn_row, "s",
               f"< {GPU_CNN_ROW_TARGET_S} s (H100)" if cuda else "",
               cnn_row < GPU_CNN_ROW_TARGET_S if cuda else None,
               ", ".join(f"{k} {v:.1f}" for k, v in rows[0]["seconds"].items())),
        Figure("peak memory: RSS of the table1 run", result["peak_rss_mb"], "MB", "", None,
               "VmHWM of the child process, read by itself at the end"),
    ]
    if result["cuda_peak_mb"] is not None:
        figures.append(Figure("peak memory: GPU, table1 run", result["cuda_peak_mb"], "MB", "", None,
                              "torch.cuda.max_memory_allocated in the child"))
    return figures


def run(ctx: Context) -> list[Figure]:
    ctx.say("  reproduce table1 (all four rows) in a child process ...")
    result = run_table1(str(ctx.device))
    ctx.shared["table1"] = result
    return figures_from(result, ctx.cuda)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        sys.exit(child(*sys.argv[2:5]))
    args = base_parser(__doc__.splitlines()[0]).parse_args()
    import torch

    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    result = run_table1("cuda" if cuda else args.device)
    print(format_table(figures_from(result, cuda)))
    for row in result["rows"]:
        print(" ", row_text(row))


if __name__ == "__main__":
    main()
