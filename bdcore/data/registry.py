"""``DATASETS``: every dataset name mapped to the function that loads one split of it; any other
image collection is ``folder:PATH`` (a folder, archive, list file or CSV manifest), and a saved
transfer set is ``subset:NAME`` (bdcore/curation/transfer_sets.py)."""
from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from ..errors import ConfigError
from .collection import CollectionError, open_collection
from .collection_sets import COLLECTION_SPECS, Progress, collection_root, load_collection
from .idx_sets import IDX_SPECS, load_idx_dataset
from .idx_sets import candidate_locations as idx_candidates
from .idx_sets import locate as locate_idx
from .imageset import ImageSet
from .noise_set import NOISE, load_noise
from .sources import Location, data_dir
from .vision_sets import VISION_SPECS, load_vision_dataset
from .vision_sets import candidate_locations as vision_candidates
from .vision_sets import locate as locate_vision

DATASETS: dict[str, Callable[[str], ImageSet]] = {
    **{name: partial(load_idx_dataset, name) for name in IDX_SPECS},
    NOISE: load_noise,
    **{name: partial(load_vision_dataset, name) for name in VISION_SPECS},
    **{name: partial(load_collection, name) for name in COLLECTION_SPECS},
}
SPLITS = ("train", "test")
TRANSFER_SET = "subset:"  # the prefix of a saved transfer set's spec


def is_collection(spec: str) -> bool:
    """Read through the prepared cache (collection_sets.py) rather than whole into memory."""
    return spec.startswith("folder:") or spec in COLLECTION_SPECS


def load_dataset(spec: str, split: str, *, shape: tuple[int, int, int] | None = None,
                 image_size: int | None = None, progress: Progress | None = None,
                 prepare_missing: bool = True, need_labels: bool = False) -> ImageSet:
    """Load one split of a dataset named in ``DATASETS`` or given as ``folder:PATH``. The other
    arguments apply to image collections only (``load_collection``)."""
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; choose train or test")
    if spec.startswith(TRANSFER_SET):  # rows of other sets, each loaded here
        from ..curation.transfer_sets import load_images

        return load_images(spec.removeprefix(TRANSFER_SET), split, lambda source, at: load_dataset(
            source, "train", shape=at, progress=progress, prepare_missing=prepare_missing), shape)
    if spec == NOISE:  # generated at the labeled set's shape, not resized to it
        return load_noise(split, shape)
    if is_collection(spec):
        return load_collection(spec, split, shape=shape, image_size=image_size, progress=progress,
                               prepare_missing=prepare_missing, need_labels=need_labels)
    if spec not in DATASETS:
        raise ConfigError(f"unknown dataset {spec!r}; choose one of {', '.join(DATASETS)} "
                         "or folder:PATH")
    return DATASETS[spec](split)


def check_dataset_path(spec: str) -> None:
    """What can be checked without loading: a ``folder:PATH`` exists and is a kind of source a
    collection can be read from, a ``subset:NAME`` is saved. (A named dataset may still be
    downloaded when it runs.)"""
    if spec.startswith(TRANSFER_SET):
        from ..curation.transfer_sets import load

        load(spec.removeprefix(TRANSFER_SET))
    if spec.startswith("folder:"):
        path = Path(spec.removeprefix("folder:")).expanduser()
        if not path.exists():
            raise CollectionError(f"{path} does not exist; check the path")
        if path.is_file():  # an archive, list or manifest: its listing is cheap, check it now
            open_collection(path)


def locate_dataset(name: str) -> tuple[Location | None, list[Location]]:
    """Where ``name`` would be read from now (no download), and every place that was searched."""
    if name in IDX_SPECS:
        return locate_idx(name), idx_candidates(name)
    if name in VISION_SPECS:
        return locate_vision(name), vision_candidates(name)
    if name == NOISE:
        return Location(Path("uniform random pixels, made when used"), "generated"), []
    if name in COLLECTION_SPECS:
        root = collection_root(name)
        found = root.is_dir() and any(root.iterdir())
        return (Location(root, "data dir") if found else None), [Location(data_dir() / name, "data dir")]
    raise ConfigError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
