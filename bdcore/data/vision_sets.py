"""Colour datasets read through torchvision's own loaders: cifar10, cifar100, svhn."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .imageset import ImageSet
from .sources import Location, data_dir, download_timeout, not_found, offline


@dataclass(frozen=True)
class VisionSpec:
    torchvision_name: str
    expected: str  # what a person should put in the folder

    def construct(self, root: Path, split: str, download: bool):
        import torchvision.datasets as tvd

        cls = getattr(tvd, self.torchvision_name)
        if self.torchvision_name == "SVHN":
            return cls(str(root), split=split, download=download)
        return cls(str(root), train=split == "train", download=download)


VISION_SPECS: dict[str, VisionSpec] = {
    "cifar10": VisionSpec("CIFAR10", "cifar-10-batches-py/ (the extracted cifar-10-python.tar.gz)"),
    "cifar100": VisionSpec("CIFAR100", "cifar-100-python/ (the extracted cifar-100-python.tar.gz)"),
    "svhn": VisionSpec("SVHN", "train_32x32.mat, test_32x32.mat"),
}


def candidate_locations(name: str) -> list[Location]:
    return [Location(data_dir() / name, "data dir"), Location(data_dir(), "torchvision layout")]


def _open(name: str, split: str, location: Location):
    try:
        return VISION_SPECS[name].construct(location.path, split, download=False)
    except RuntimeError:  # torchvision: "Dataset not found or corrupted"
        return None


def locate(name: str) -> Location | None:
    return next((loc for loc in candidate_locations(name) if _open(name, "test", loc) is not None), None)


def load_vision_dataset(name: str, split: str) -> ImageSet:
    spec = VISION_SPECS[name]
    location = locate(name)
    dataset = None if location is None else _open(name, split, location)
    note = "skipped (BD_OFFLINE is set)"
    if dataset is None and not offline():
        location = Location(data_dir(), "download")
        try:
            with download_timeout():
                dataset = spec.construct(location.path, split, download=True)
        except Exception as err:  # network, HTTP, checksum: all mean "not available this way"
            note = f"failed ({type(err).__name__}: {err})"
    if dataset is None:
        raise not_found(name, [spec.expected], [loc.path for loc in candidate_locations(name)], note)
    images = np.asarray(dataset.data)
    if images.shape[-1] == 3:  # CIFAR stores (N, H, W, C)
        images = images.transpose(0, 3, 1, 2)
    labels = np.asarray(getattr(dataset, "targets", None) or dataset.labels, dtype=np.int64)
    classes = list(getattr(dataset, "classes", [str(i) for i in range(int(labels.max()) + 1)]))
    return ImageSet(name, split, torch.from_numpy(np.ascontiguousarray(images)),
                    torch.from_numpy(labels), classes, location.describe())
