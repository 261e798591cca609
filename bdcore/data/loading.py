"""Loading a run's data: both datasets, their seeded subsets, paired and normalised (on the CPU)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .imageset import ImageSet
from .pairing import PairedData, pair_datasets
from .registry import load_dataset


@dataclass(frozen=True)
class PairSpec:
    """Which labeled and unlabeled sets a run uses, how many images of each, and the seeds that
    draw those subsets (``ExperimentConfig.pair_spec`` builds it)."""
    labeled: str
    unlabeled: str
    labeled_limit: int | None
    unlabeled_limit: int | None
    labeled_seed: int
    unlabeled_seed: int


def _limit(images: ImageSet, limit: int | None, seed: int) -> ImageSet:
    if limit is None or limit >= len(images):
        return images
    return images.subset(torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:limit])


def load_pair(spec: PairSpec) -> PairedData:
    """Load and pair the spec's datasets, applying its limits."""
    train = _limit(load_dataset(spec.labeled, "train"), spec.labeled_limit, spec.labeled_seed)
    test = load_dataset(spec.labeled, "test")
    unlabeled = _limit(load_dataset(spec.unlabeled, "train"), spec.unlabeled_limit, spec.unlabeled_seed)
    return pair_datasets(train, test, unlabeled)
