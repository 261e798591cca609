"""Loading a run's data: both datasets, their seeded subsets, paired and normalised (on the CPU)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .imageset import ImageSet
from .pairing import PairedData, pair_datasets
from .registry import load_dataset

PrepareProgress = Callable[[str, int, int], None]  # (which set, images done, images in all)


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
    image_size: int | None = None  # a labeled image collection's side; None: collection_sets decides


def limit_rows(total: int, limit: int | None, seed: int) -> torch.Tensor | None:
    """The rows a seeded ``limit`` keeps of ``total`` images (None: all of them)."""
    if limit is None or limit >= total:
        return None
    return torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:limit]


def _limit(images: ImageSet, rows: torch.Tensor | None) -> ImageSet:
    return images if rows is None else images.subset(rows)


def load_pair(spec: PairSpec, progress: PrepareProgress | None = None,
              prepare_missing: bool = True) -> PairedData:
    """Load and pair the spec's datasets, applying its limits. An image collection is prepared at
    the shape training needs (the unlabeled one at the labeled set's), with ``progress`` told how
    far each preparation is; without ``prepare_missing`` one not prepared yet is an error."""
    def told(what: str):
        return None if progress is None else (lambda done, total: progress(what, done, total))

    def load(name: str, split: str, role: str, **shape):
        return load_dataset(name, split, progress=told(f"{role} {name} ({split})"),
                            prepare_missing=prepare_missing, **shape)

    full_train = load(spec.labeled, "train", "labeled", image_size=spec.image_size, need_labels=True)
    train = _limit(full_train, limit_rows(len(full_train), spec.labeled_limit, spec.labeled_seed))
    test = load(spec.labeled, "test", "labeled", shape=full_train.shape)
    full_unlabeled = load(spec.unlabeled, "train", "unlabeled", shape=full_train.shape)
    rows = limit_rows(len(full_unlabeled), spec.unlabeled_limit, spec.unlabeled_seed)
    paired = pair_datasets(train, test, _limit(full_unlabeled, rows))
    paired.unlabeled_rows = rows
    return paired
