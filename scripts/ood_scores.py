"""Which out-of-distribution score tells a run's unlabeled set from its labeled test set best.

    BD_DATA_DIR=../shared/datasets python scripts/ood_scores.py RUN_DIR [RUN_DIR ...]

For each model of each run (teacher, blind and fine-tuned students): the AUROC of energy,
max-logit and 1 - confidence at telling the unlabeled images (positives, e.g. Fashion-MNIST)
from the labeled test images (e.g. MNIST test), as a Markdown table, with the machine it ran on.
The logits are the explorer's (``set_outputs``: cached in the run's explore cache)."""
from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch

from bdcore.curation.scores import OOD_SCORES, ood_separation
from bdcore.device import autocast_dtype
from bdcore.embeddings import ExploreSession, set_outputs


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders")
    args = parser.parse_args()
    print(f"{cpu_name()}, torch {torch.__version__} on {torch.get_num_threads()} threads")
    print()
    print("| run | model | arch | logits | in-distribution | out | " + " | ".join(OOD_SCORES) + " |")
    print("| --- | --- | --- | --- | --- | --- | " + " | ".join("---:" for _ in OOD_SCORES) + " |")
    for path in args.runs:
        session = ExploreSession(path)
        config = session.config
        # the explorer's models run on the CPU, in bf16 only where it runs that natively
        precision = "bf16" if config.amp and autocast_dtype(torch.device("cpu")) else "fp32"
        for role in session.roles:
            inside = set_outputs(session, role, "labeled")["logits"]
            outside = set_outputs(session, role, "unlabeled")["logits"]
            auc = ood_separation(inside, outside)
            arch = config.teacher if role == "teacher" else config.student
            figures = " | ".join(f"{auc[n]:.4f}" for n in OOD_SCORES)
            sets = f"{config.labeled} test ({len(inside):,}) | {config.unlabeled} ({len(outside):,})"
            print(f"| {session.run_id} | {role} | {arch} | {precision} | {sets} | {figures} |")


if __name__ == "__main__":
    main()
