"""Image collections as datasets: any folder, archive, list file or CSV manifest (``folder:PATH``),
and the paper's large sets found in the data directory (caltech256, imagenet, openimages).

Each split is prepared once into the cache (prepared.py), then held in memory when its normalised
float32 form fits in ``in_memory_limit()`` (the index-batch fast path; ``$BD_IN_MEMORY_MB`` moves
that line), else streamed from disk a batch at a time (streamed.py). Image shape: a labeled
collection takes ``image_size`` square, or without it its first image's size with the longer side
at most ``DEFAULT_MAX_SIDE``; grey unless one of up to ``COLOUR_SAMPLE`` evenly spaced images has
colour. An unlabeled set always takes the labeled set's shape, so it is decoded once, at the size
training needs."""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .collection import Collection, CollectionError, SkippedImage, open_collection, read_header
from .imageset import ImageSet
from .prepared import PrepareRequest, find_prepared, prepare
from .sources import DatasetNotFoundError, data_dir
from .streamed import StreamedImages

IN_MEMORY_MB = 1024  # default of $BD_IN_MEMORY_MB
DEFAULT_MAX_SIDE = 64
COLOUR_SAMPLE = 256
GREY_MODES = {"L", "1", "LA", "I", "I;16", "I;16B", "I;16L", "F"}

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class CollectionSpec:
    """A large collection the paper uses, found by name in the data directory."""
    folder: str  # under the data dir
    expected: str  # what a person should put there
    download: str  # where to get it


COLLECTION_SPECS: dict[str, CollectionSpec] = {
    "caltech256": CollectionSpec(
        "caltech256", "class folders such as 001.ak47/ (the extracted 256_ObjectCategories.tar)",
        "https://data.caltech.edu/records/nyy15-4j048 (256_ObjectCategories.tar, 1.2 GB)"),
    "imagenet": CollectionSpec(
        "imagenet", "train/<wnid>/*.JPEG and val/<wnid>/*.JPEG (ILSVRC2012, val sorted into class "
        "folders)", "https://image-net.org/download (ILSVRC2012 train and val, 150 GB; needs an account)"),
    "openimages": CollectionSpec(
        "openimages", "image files, flat or in sub-folders (labels are not needed)",
        "https://storage.googleapis.com/openimages/web/download_v7.html (any part of the train set)"),
}


def in_memory_limit() -> int:
    """Bytes of normalised float32 images a set may take in memory before it is streamed."""
    try:
        return int(os.environ.get("BD_IN_MEMORY_MB", IN_MEMORY_MB)) << 20
    except ValueError:
        raise DataError(f"BD_IN_MEMORY_MB must be a whole number of megabytes, got "
                        f"{os.environ['BD_IN_MEMORY_MB']!r}") from None


def collection_root(name: str) -> Path:
    """Where the named collection is read from: ``<data dir>/<name>``, or the one folder inside it
    (archives extract to 256_ObjectCategories/, ILSVRC/ ...)."""
    root = data_dir() / COLLECTION_SPECS[name].folder
    inner = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")] if root.is_dir() else []
    wrapped = len(inner) == 1 and not any(p.is_file() for p in root.iterdir())
    if wrapped and inner[0].name not in {"train", "val"}:
        return inner[0] if any(p.is_dir() for p in inner[0].iterdir()) else root
    return root


def _named_source(name: str) -> Path:
    spec, root = COLLECTION_SPECS[name], collection_root(name)
    if not root.is_dir() or not any(root.iterdir()):
        raise DatasetNotFoundError(
            f"dataset {name!r} was not found in {data_dir() / spec.folder}: expected {spec.expected}. "
            f"Download: {spec.download}. Put it in {data_dir() / spec.folder} or set BD_DATA_DIR to "
            f"a folder that holds {spec.folder}/.")
    return root


def collection_source(spec: str) -> Path:
    """The folder or file a collection spec names (``folder:PATH``, or a named collection)."""
    if spec.startswith("folder:"):
        return Path(spec.removeprefix("folder:")).expanduser()
    if spec not in COLLECTION_SPECS:
        raise CollectionError(f"{spec!r} is not an image collection: give folder:PATH or one of "
                              f"{', '.join(COLLECTION_SPECS)}")
    return _named_source(spec)


def collection_shape(collection: Collection, image_size: int | None) -> tuple[int, int, int]:
    """The (C, H, W) a labeled collection is prepared at (module docstring)."""
    entries = sorted((e for split in collection.splits.values() for e in split),
                     key=lambda e: (e.path, e.member or ""))
    picks = entries if len(entries) <= COLOUR_SAMPLE else [
        entries[i] for i in np.linspace(0, len(entries) - 1, COLOUR_SAMPLE).astype(int)]
    colour, first = False, None
    for entry in picks:
        try:
            mode, size = read_header(entry)
        except SkippedImage:
            continue
        colour = colour or mode not in GREY_MODES
        first = first or size
    if first is None:
        raise CollectionError(f"{collection.root}: none of {len(picks)} sampled images can be read; "
                              "replace the files or choose another folder")
    if image_size is not None:
        return (3 if colour else 1), image_size, image_size
    width, height = first
    scale = min(1.0, DEFAULT_MAX_SIDE / max(width, height))
    return (3 if colour else 1), max(1, round(height * scale)), max(1, round(width * scale))


def _request(source: str, collection: Collection, split: str, shape: tuple[int, int, int]) -> PrepareRequest:
    if split not in collection.splits:
        raise CollectionError(f"{source} is unlabeled (no class sub-folders): use it as the unlabeled "
                              "set, or sort its images into class sub-folders")
    return PrepareRequest(source, split, collection.layout, collection.splits[split],
                          collection.labels.get(split), collection.classes, shape)


def load_collection(spec: str, split: str, *, shape: tuple[int, int, int] | None = None,
                    image_size: int | None = None, progress: Progress | None = None,
                    stream: bool | None = None, prepare_missing: bool = True,
                    need_labels: bool = False) -> ImageSet:
    """One split of a collection (``folder:PATH`` or a name in ``COLLECTION_SPECS``), prepared at
    ``shape`` (an unlabeled set: the labeled set's), else at the shape ``collection_shape`` picks.
    ``stream``: True or False forces streaming or memory; None decides by size. Without
    ``prepare_missing`` a set not yet prepared is an error instead of being decoded here. With
    ``need_labels`` (the labeled role) a collection without 2 classes is refused before any
    image is decoded."""
    path = collection_source(spec)
    collection = open_collection(path)
    if need_labels and len(collection.classes) < 2:
        raise CollectionError(
            f"{spec} has no labels (no class sub-folders): use it as the unlabeled set, or sort its "
            "images into class sub-folders" if not collection.classes else
            f"{spec} has 1 class ({collection.classes[0]}): a labeled set needs at least 2 classes "
            "(one sub-folder each)")
    shape = shape or collection_shape(collection, image_size)
    request = _request(spec, collection, split, shape)
    prepared = prepare(request, progress) if prepare_missing else find_prepared(request)
    if prepared is None:
        raise DataError(f"{spec} ({split}) is not prepared at {shape}; run "
                        f"`python -m bdcore datasets prepare {spec}` or launch a run that uses it")
    labels = prepared.labels()
    streamed = StreamedImages(prepared.path, prepared.count, prepared.shape, prepared.key,
                              pixel_stats=(tuple(prepared.mean), tuple(prepared.std)))
    float_bytes = prepared.count * int(np.prod(prepared.shape)) * 4
    if stream is False or (stream is None and float_bytes <= in_memory_limit()):
        # in memory, in the collection's own sorted order (the cache holds a shuffled order)
        order = np.argsort(prepared.positions())
        images, labels = streamed[order], None if labels is None else labels[order]
    else:
        images = streamed
    notes = [note] if (note := prepared.skipped_note()) else []
    return ImageSet(spec, split, images, None if labels is None else torch.from_numpy(labels),
                    collection.classes, f"{'folder' if spec.startswith('folder:') else 'data dir'}: "
                    f"{path} ({collection.layout})", notes=notes)
