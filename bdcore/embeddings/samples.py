"""Which samples an embedding shows: N labeled test images and N unlabeled images, stratified by
class where the labels are known and drawn with a seed, so the same spec always gives the same
points (and teacher and student can be compared on identical samples)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class SampleSpec:
    n_labeled: int = 1000
    n_unlabeled: int = 1000
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SampleSet:
    """Indices into the labeled test set and into the unlabeled set (sorted)."""
    labeled: np.ndarray
    unlabeled: np.ndarray

    def __len__(self) -> int:
        return len(self.labeled) + len(self.unlabeled)


def stratified_indices(labels: np.ndarray | None, total: int, n: int,
                       rng: np.random.Generator) -> np.ndarray:
    """``n`` of ``total`` indices, each class getting its share (largest remainder) when
    ``labels`` are given, uniformly at random otherwise."""
    n = min(max(n, 0), total)
    if labels is None or n == total:
        return np.sort(rng.choice(total, size=n, replace=False))
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts / counts.sum() * n
    take = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - take), kind="stable")[: n - take.sum()]:
        take[i] += 1
    picked = [rng.choice(np.flatnonzero(labels == c), size=min(k, m), replace=False)
              for c, k, m in zip(classes, take, counts, strict=True)]
    return np.sort(np.concatenate(picked))


def draw_samples(test_labels: np.ndarray, unlabeled_labels: np.ndarray | None,
                 unlabeled_total: int, spec: SampleSpec) -> SampleSet:
    """The labeled and unlabeled indices for ``spec`` (independent seeded streams per set)."""
    labeled_rng, unlabeled_rng = (np.random.default_rng([spec.seed, i]) for i in (0, 1))
    return SampleSet(
        stratified_indices(np.asarray(test_labels), len(test_labels), spec.n_labeled, labeled_rng),
        stratified_indices(None if unlabeled_labels is None else np.asarray(unlabeled_labels),
                           unlabeled_total, spec.n_unlabeled, unlabeled_rng))
