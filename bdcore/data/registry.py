"""``DATASETS``: every dataset name mapped to the function that loads one split of it."""
from __future__ import annotations

from collections.abc import Callable
from functools import partial

from ..errors import ConfigError
from .folder import check_folder, load_folder
from .idx_sets import IDX_SPECS, load_idx_dataset
from .idx_sets import candidate_locations as idx_candidates
from .idx_sets import locate as locate_idx
from .imageset import ImageSet
from .sources import Location
from .vision_sets import VISION_SPECS, load_vision_dataset
from .vision_sets import candidate_locations as vision_candidates
from .vision_sets import locate as locate_vision

DATASETS: dict[str, Callable[[str], ImageSet]] = {
    **{name: partial(load_idx_dataset, name) for name in IDX_SPECS},
    **{name: partial(load_vision_dataset, name) for name in VISION_SPECS},
}
SPLITS = ("train", "test")


def load_dataset(spec: str, split: str) -> ImageSet:
    """Load one split of a dataset named in ``DATASETS`` or given as ``folder:PATH``."""
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; choose train or test")
    if spec.startswith("folder:"):
        return load_folder(spec.removeprefix("folder:"), split)
    if spec not in DATASETS:
        raise ConfigError(f"unknown dataset {spec!r}; choose one of {', '.join(DATASETS)} "
                         "or folder:PATH")
    return DATASETS[spec](split)


def check_dataset_path(spec: str) -> None:
    """What can be checked without loading: a ``folder:PATH`` is a folder. (A named dataset may
    still be downloaded when it runs.)"""
    if spec.startswith("folder:"):
        check_folder(spec.removeprefix("folder:"))


def locate_dataset(name: str) -> tuple[Location | None, list[Location]]:
    """Where ``name`` would be read from now (no download), and every place that was searched."""
    if name in IDX_SPECS:
        return locate_idx(name), idx_candidates(name)
    if name in VISION_SPECS:
        return locate_vision(name), vision_candidates(name)
    raise ConfigError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
