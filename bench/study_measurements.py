"""The studies issue 16 asks to measure, each launched as one study through the ordinary run queue
(real worker processes, one run at a time on a CPU) in a fresh runs folder, and timed from launch
to its last run's end:

- matrix: {mlp, cnn, cnn6, mobilenet_v2} x itself as teacher x student, quick preset, seed 0;
- tsweep: CNN -> CNN at T in {1, 2, 5, 10, 20, 50}, 3 seeds, quick preset;
- baselines: CNN -> CNN, 3 seeds, blind beside no_teacher, in_distribution and noise, quick preset.

    BD_DATA_DIR=../shared/datasets python bench/study_measurements.py --out docs/bench-studies-cpu.json

Prints each study's table (mean +- std over seeds) and wall time, and writes them with every run's
seconds to --out. The figures are reported in docs/studies.md, "Measured"."""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bdcore import jobs, studies  # noqa: E402
from bdcore.device import device_name, resolve_device  # noqa: E402
from bdcore.store import ACTIVE, RunStore  # noqa: E402
from bdcore.study_views import over_seeds, runs_frame  # noqa: E402

ARCHITECTURES = ["mlp", "cnn", "cnn6", "mobilenet_v2"]
PAIR = {"labeled": "mnist", "unlabeled": "fashion-mnist"}
STUDIES = {
    "matrix": studies.StudySpec("matrix", "quick", {**PAIR, "seed": 0},
                                {"teacher": ARCHITECTURES, "student": ARCHITECTURES}),
    "tsweep": studies.StudySpec("tsweep", "quick", {**PAIR, "teacher": "cnn", "student": "cnn"},
                                {"temperature": [1.0, 2.0, 5.0, 10.0, 20.0, 50.0], "seed": [0, 1, 2]}),
    "baselines": studies.StudySpec("baselines", "quick", {**PAIR, "teacher": "cnn", "student": "cnn"},
                                   {"seed": [0, 1, 2]},
                                   ["no_teacher", "in_distribution", "noise"]),
}


def wait(study: studies.Study, store: RunStore, poll: float = 5.0) -> None:
    """Until no run of the study is queued or running, keeping the queue moving as the app does."""
    while True:
        jobs.reap(store)
        jobs.schedule(store)
        rows = studies.records(study, store)
        if all(r is None or r.status not in ACTIVE for _p, r in rows):
            return
        done = sum(r is not None and r.status not in ACTIVE for _p, r in rows)
        print(f"  {study.spec.name}: {done}/{len(rows)} runs finished", end="\r", flush=True)
        time.sleep(poll)


def measure(spec: studies.StudySpec, store: RunStore) -> dict:
    """Launch the study and wait for it; one launched before (a bench stopped half-way) is
    resumed instead, and its wall time then covers the rest only."""
    start = time.time()
    resumed = spec.name in {s.spec.name for s in studies.list_studies(store.root)}
    if resumed:
        study = studies.load(spec.name, store.root)
        studies.resume(study, store)
    else:
        study = studies.launch(spec, store)
    wait(study, store)
    wall = time.time() - start
    rows = studies.records(study, store)
    frame = runs_frame(study, rows)
    table = over_seeds(frame, list(spec.all_axes()))
    print(f"\n{spec.name}: {len(rows)} runs, {wall:.0f} s from launch to the last run's end")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    seconds = [r.finished - r.started for _p, r in rows if r is not None and r.started and r.finished]
    return {"spec": asdict(spec), "wall_s": round(wall, 1), "resumed": resumed, "runs": len(rows),
            "failed": int((frame["status"] != "succeeded").sum()),
            "run_seconds": [round(s, 1) for s in seconds],
            "per_run": json.loads(frame.to_json(orient="records")),
            "over_seeds": json.loads(table.to_json(orient="records"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=list(STUDIES), default=list(STUDIES))
    parser.add_argument("--runs-dir", default=None, help="default: a fresh temporary folder")
    parser.add_argument("--out", default=None, help="JSON file for the results")
    args = parser.parse_args()
    runs_dir = Path(args.runs_dir or tempfile.mkdtemp(prefix="bd-studies-"))
    os.environ["BD_RUNS_DIR"] = str(runs_dir)  # the workers find the same store
    store = RunStore()
    device = device_name(resolve_device())
    print(f"runs folder {runs_dir}; device {device}")
    results = {"device": device, "runs_dir": str(runs_dir),
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "studies": {}}
    out = Path(args.out) if args.out else None
    if out is not None and out.exists():  # a bench stopped half-way: keep what it measured
        results["studies"] = json.loads(out.read_text())["studies"]
    for name in args.only:
        results["studies"][name] = measure(STUDIES[name], store)
        if out is not None:
            out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
