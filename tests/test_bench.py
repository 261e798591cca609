"""The benchmark suites' smoke tests: `bench/run_all.py --suite speed --quick` on tiny synthetic
data prints and writes every figure (the numbers themselves mean nothing at this size); the
classroom suite's parts that fit a unit test."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write_idx_dataset

ROOT = Path(__file__).resolve().parents[1]
FIGURES = [
    "loop efficiency, CNN student",
    "loop efficiency, MLP student",
    "teacher-logit caching: blind epoch speed-up",
    "augmented step",
    "versus the usual way, MLP: epoch speed-up",
    "versus the usual way, MLP: accuracy after 1 epoch",
    "versus the usual way, CNN: epoch speed-up",
    "versus the usual way, CNN: accuracy after 1 epoch",
    "bf16 + channels-last vs fp32 contiguous: CNN step speed-up",
    "bf16 vs fp32: MLP step speed-up",
    "bf16 autocast vs fp32: CNN accuracy after 1 epoch",
    "CPU threads",
    "scaling with unlabeled-set size",
    "scaling with batch size",
    "peak memory: RSS of this benchmark process",
]


def test_quick_bench_reports_every_figure(isolated_env):
    data = isolated_env / "data"
    write_idx_dataset(data / "mnist", n_train=600, n_test=200, seed=0)
    write_idx_dataset(data / "fashion-mnist", n_train=600, n_test=200, seed=10)
    out = isolated_env / "bench" / "quick.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run_all.py"), "--suite", "speed", "--quick",
                           "--device", "cpu", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    names = [f["name"] for f in report["figures"]]
    for figure in FIGURES:
        assert any(n.startswith(figure) for n in names), f"{figure!r} missing from {names}"
        assert figure in proc.stdout  # the printed table has it too
    assert not any("FAILED" in n for n in names)
    assert len(report["scaling"]["by_size"]) == 4 and len(report["scaling"]["by_batch"]) == 5
    table = [line for line in out.with_suffix(".md").read_text().splitlines() if line.startswith("| ")]
    assert len(table) == len(names) + 2  # header, rule, one row per figure


def test_table1_figures_give_every_rows_accuracies_and_stage_seconds(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    from time_to_result import figures_from

    def row(student, finetune, seconds):
        return {"teacher": "cnn", "student": student, "teacher_acc": 0.996, "blind_acc": 0.97,
                "finetune_acc": {"all": finetune}, "seconds": seconds, "device": "cpu (2 threads)",
                "paper": {"teacher": 0.995, "blind": 0.962, "finetune": 0.996},
                "meets_paper": finetune >= 0.996}

    rows = [row("cnn", 0.9965, {"data": 1.0, "teacher": 200.0, "blind": 190.0, "finetune-kall": 350.0}),
            row("mlp", 0.98, {"data": 1.0, "teacher": 0.0, "blind": 74.1, "finetune-kall": 15.8})]
    result = {"rows": rows, "wall_s": 832.0, "peak_rss_mb": 1700.0, "cuda_peak_mb": None}
    figures = {f.name: f for f in figures_from(result, cuda=False)}
    assert figures["time to a result: reproduce table1, wall time"].met is False  # over 600 s
    count = figures["time to a result: table1 rows at or above the paper"]
    assert count.measured == 1 and count.met is False
    assert "CNN->MLP 91 s (data 1.0, teacher 0.0, blind 74.1, finetune-kall 15.8)" in count.detail
    assert figures["time to a result: table1 CNN->CNN row, stage seconds"].measured == 741.0


def test_classroom_twenty_launches_figure_counts_one_run(isolated_env, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    from classroom import twenty_launches

    made, distinct, seconds = twenty_launches(isolated_env / "twenty")
    assert (made, distinct) == (1, 1) and seconds > 0


@pytest.mark.slow
def test_augment_cost_quick_reports_every_figure():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    script = ROOT / "bench" / "augment_cost.py"
    proc = subprocess.run([sys.executable, str(script), "--quick", "--device", "cpu"], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "crop_flip alone, ms per batch of 4 at 32 px" in proc.stdout
    for model in ("mobilenet_v2", "cnn", "cnn6"):
        assert f"{model} step with crop_flip / plain, 32 px" in proc.stdout
