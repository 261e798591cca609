"""Build the bundled demo subset in assets/demo/ from full MNIST / Fashion-MNIST IDX files.

    python scripts/make_demo_subset.py ../shared/datasets

A stratified, seeded 1,000 train + 200 test images per class of each dataset, written in the
same IDX gzip layout as the originals, so the normal IDX reader serves them."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bdcore.data.idx import read_idx, write_idx
from bdcore.data.idx_sets import IDX_SPECS
from bdcore.data.sources import DEMO_DIR, find_file

PER_CLASS = {"train": 1000, "test": 200}


def stratified(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picks = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(picks))


def build(source: Path, name: str) -> None:
    spec = IDX_SPECS[name]
    out = DEMO_DIR / name
    out.mkdir(parents=True, exist_ok=True)
    for split, per_class in PER_CLASS.items():
        image_name, label_name = spec.files(split)
        images = read_idx(find_file(source / name, image_name))
        labels = read_idx(find_file(source / name, label_name))
        keep = stratified(labels, per_class, seed=0)
        write_idx(out / f"{image_name}.gz", images[keep])
        write_idx(out / f"{label_name}.gz", labels[keep])
        print(f"{name} {split}: {len(keep)} images -> {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="folder holding mnist/ and fashion-mnist/ IDX files")
    args = parser.parse_args()
    for dataset in ("mnist", "fashion-mnist"):
        build(args.source, dataset)
