"""The ``folder`` dataset: any folder of images, labelled by sub-folder or unlabeled.

Layouts understood:
- ``root/train/<class>/*`` and ``root/test/<class>/*``: labelled, with its own splits;
- ``root/<class>/*``: labelled, a seeded stratified fifth held out as the test split;
- ``root/*`` (images only): unlabeled; every image is in the train split.
All images are brought to the first image's size, grayscale unless any image has colour.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import DataError
from .imageset import ImageSet

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
HOLDOUT_EVERY = 5  # one image in five goes to the test split when the folder has no splits


class FolderDatasetError(DataError):
    """A folder that cannot be read as a dataset; the message says which file or why."""


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and _images_in(d))


def _is_colour(mode: str) -> bool:
    return mode not in {"L", "1", "LA", "I", "I;16", "F"}


@contextmanager
def _opened(path: Path) -> Iterator[Image.Image]:
    """``path`` opened with Pillow; an unreadable file or a decompression bomb (an image whose
    header claims more pixels than Pillow's limit, warning or error) is a FolderDatasetError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                yield img
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise FolderDatasetError(f"{path}: image too large to decode safely ({err}); remove it or "
                                 "shrink it") from err
    except (UnidentifiedImageError, OSError) as err:
        raise FolderDatasetError(f"{path}: not a readable image ({err}); remove it or replace "
                                 "it") from err


def _read(path: Path) -> Image.Image:
    with _opened(path) as img:
        img.load()
        return img.copy()


def _format(paths: list[Path]) -> tuple[bool, tuple[int, int]]:
    """Colour or grey, and the target size, decided once for the whole folder so that every split
    of it gets the same shape. Only headers are read."""
    colour, size = False, None
    for path in paths:
        with _opened(path) as img:
            colour = colour or _is_colour(img.mode)
            size = size or img.size
    return colour, size


def _decode(paths: list[Path], colour: bool, size: tuple[int, int]) -> torch.Tensor:
    arrays = [np.asarray(_read(p).convert("RGB" if colour else "L").resize(size)) for p in paths]
    stacked = np.stack(arrays)
    stacked = stacked.transpose(0, 3, 1, 2) if colour else stacked[:, None]
    return torch.from_numpy(np.ascontiguousarray(stacked))


def _holdout(labels: np.ndarray, split: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    keep = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        test = members[::HOLDOUT_EVERY]
        keep.append(test if split == "test" else np.setdiff1d(members, test))
    return np.sort(np.concatenate(keep))


def _labelled(folder: Path, classes: list[str]) -> tuple[list[Path], np.ndarray]:
    paths, labels = [], []
    for index, cls in enumerate(classes):
        members = _images_in(folder / cls) if (folder / cls).is_dir() else []
        paths += members
        labels += [index] * len(members)
    return paths, np.asarray(labels, dtype=np.int64)


def check_folder(path: str | Path) -> Path:
    """The folder of a ``folder:PATH`` dataset, if it is one (nothing is read)."""
    root = Path(path).expanduser()
    if root.is_file():  # an archive or a CSV manifest: only folders of image files are read
        raise FolderDatasetError(f"folder dataset: {root} is not a folder but a file; give a folder of "
                                 "images (extract an archive first; CSV manifests are not read)")
    if not root.is_dir():
        raise FolderDatasetError(f"folder dataset: {root} is not a folder; check the path")
    return root


def load_folder(path: str | Path, split: str) -> ImageSet:
    root = check_folder(path)
    has_splits = (root / "train").is_dir() and (root / "test").is_dir()
    name, source = f"folder:{root}", f"folder: {root / split if has_splits else root}"
    class_root = root / "train" if has_splits else root
    classes = [d.name for d in _class_dirs(class_root)]
    if not classes:
        paths = _images_in(class_root)
        if not paths:
            raise FolderDatasetError(f"folder dataset: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) "
                                     f"in {class_root}; add images or choose another folder")
        if split == "test" or has_splits:
            raise FolderDatasetError(f"folder dataset {root} is unlabeled (no class sub-folders): "
                                     "use it as the unlabeled set, or sort its images into class "
                                     "sub-folders")
        return ImageSet(name, split, _decode(paths, *_format(paths)), None, [], f"folder: {class_root}")
    if has_splits:
        extra = {d.name for d in _class_dirs(root / "test")} - set(classes)
        if extra:
            raise FolderDatasetError(f"folder dataset {root}: test/ has classes missing from train/: "
                                     f"{', '.join(sorted(extra))}; add them to train/ or remove them")
        train_paths, _ = _labelled(root / "train", classes)
        test_paths, _ = _labelled(root / "test", classes)
        colour, size = _format(train_paths + test_paths)
        paths, labels = _labelled(root / split, classes)
    else:
        paths, labels = _labelled(root, classes)
        colour, size = _format(paths)
        keep = _holdout(labels, split)
        paths, labels = [paths[i] for i in keep], labels[keep]
    if not paths:
        raise FolderDatasetError(f"folder dataset {root}: the {split} split has no images; add images "
                                 f"to {root / split if has_splits else root}")
    return ImageSet(name, split, _decode(paths, colour, size), torch.from_numpy(labels), classes, source)
