"""MNIST-family datasets stored as IDX files: mnist, fashion-mnist, kmnist, emnist-letters."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .idx import CorruptFileError, read_idx
from .imageset import ImageSet
from .sources import (
    DEMO_DIR,
    SYSTEM_DIRS,
    Location,
    data_dir,
    download_timeout,
    find_file,
    not_found,
    offline,
)

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]
KMNIST_CLASSES = ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]


@dataclass(frozen=True)
class IdxSpec:
    torchvision_name: str  # folder name torchvision uses: <root>/<name>/raw
    classes: list[str]
    prefix: str = ""  # file name prefix, e.g. "emnist-letters-"
    test_stem: str = "t10k"  # EMNIST calls its test split "test"
    transpose: bool = False  # EMNIST stores images transposed
    label_offset: int = 0  # EMNIST letters are labelled 1..26
    has_demo: bool = False
    download_kwargs: dict = field(default_factory=dict)

    def files(self, split: str) -> tuple[str, str]:
        stem = "train" if split == "train" else self.test_stem
        return (f"{self.prefix}{stem}-images-idx3-ubyte", f"{self.prefix}{stem}-labels-idx1-ubyte")


IDX_SPECS: dict[str, IdxSpec] = {
    "mnist": IdxSpec("MNIST", [str(d) for d in range(10)], has_demo=True),
    "fashion-mnist": IdxSpec("FashionMNIST", FASHION_CLASSES, has_demo=True),
    "kmnist": IdxSpec("KMNIST", KMNIST_CLASSES),
    "emnist-letters": IdxSpec("EMNIST", [chr(ord("a") + i) for i in range(26)],
                              prefix="emnist-letters-", test_stem="test", transpose=True,
                              label_offset=1, download_kwargs={"split": "letters"}),
}


def candidate_locations(name: str) -> list[Location]:
    """Every folder that may hold ``name``'s files, in the order they are tried (no download)."""
    spec, root = IDX_SPECS[name], data_dir()
    found = [Location(root / name, "data dir"),
             Location(root / spec.torchvision_name / "raw", "torchvision layout")]
    found += [Location(d / name, "system install") for d in SYSTEM_DIRS]
    if spec.has_demo:
        found.append(Location(DEMO_DIR / name, "bundled demo subset"))
    return found


def _complete(location: Location, spec: IdxSpec) -> bool:
    return all(find_file(location.path, f) for split in ("train", "test") for f in spec.files(split))


def locate(name: str, include_demo: bool = True) -> Location | None:
    """The first local folder holding all of ``name``'s files, or None."""
    spec = IDX_SPECS[name]
    return next((loc for loc in candidate_locations(name) if _complete(loc, spec)
                 and (include_demo or not loc.demo_subset)), None)


def _download(name: str) -> tuple[Location | None, str]:
    """Fetch with torchvision into the data dir; returns the location and a note on failure."""
    if offline():
        return None, "skipped (BD_OFFLINE is set)"
    import torchvision.datasets as tvd

    spec = IDX_SPECS[name]
    cls = getattr(tvd, spec.torchvision_name)
    try:
        with download_timeout():
            for train in (True, False):
                cls(str(data_dir()), train=train, download=True, **spec.download_kwargs)
    except Exception as err:  # network, HTTP, checksum: all mean "not available this way"
        return None, f"failed ({type(err).__name__}: {err})"
    location = Location(data_dir() / spec.torchvision_name / "raw", "download")
    return (location, "") if _complete(location, spec) else (None, "finished but files are missing")


def load_idx_dataset(name: str, split: str) -> ImageSet:
    spec = IDX_SPECS[name]
    location = locate(name, include_demo=False)
    if location is None:
        location, note = _download(name)
        location = location or locate(name)  # the bundled demo subset comes last
        if location is None:
            expected = [f for s in ("train", "test") for f in spec.files(s)]
            raise not_found(name, expected, [loc.path for loc in candidate_locations(name)], note)
    image_file, label_file = (find_file(location.path, f) for f in spec.files(split))
    images, labels = read_idx(image_file), read_idx(label_file)
    if images.dtype != np.uint8 or images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise CorruptFileError(f"{name} {split}: images {images.dtype} {images.shape} and labels "
                               f"{labels.shape} in {location.path} do not match "
                               "(uint8 images, one label each); replace them with the dataset's own files")
    if spec.transpose:
        images = images.transpose(0, 2, 1)
    labels = labels.astype(np.int64) - spec.label_offset
    if len(labels) == 0:
        raise CorruptFileError(f"{name} {split}: {image_file} holds no images; replace it with the "
                               "dataset's own file")
    if labels.min() < 0 or labels.max() >= len(spec.classes):
        raise CorruptFileError(f"{name} {split}: labels outside 0..{len(spec.classes) - 1} "
                               f"in {label_file}; replace it with the dataset's own file")
    return ImageSet(name, split, torch.from_numpy(np.ascontiguousarray(images))[:, None],
                    torch.from_numpy(labels), spec.classes, location.describe(),
                    demo_subset=location.demo_subset)

