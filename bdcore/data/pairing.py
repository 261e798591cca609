"""Pairing: bring an unlabeled set to the labeled set's channels and size, and normalise both with
the labeled training set's statistics. Unlabeled labels are kept for analysis only."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import DataError
from .imageset import Images, ImageSet
from .streamed import StreamedImages

LUMA = torch.tensor([0.299, 0.587, 0.114])
CHUNK = 8192  # images converted at a time, to bound memory on big sets


def convert_images(images: Images, channels: int, size: tuple[int, int]) -> Images:
    """uint8 (N, C, H, W) to uint8 (N, channels, *size): grayscale <-> RGB, antialiased resize.
    A set already in that shape is returned as it is (a streamed set always is: it was prepared
    at the labeled set's shape)."""
    if tuple(images.shape[1:]) == (channels, *size):
        return images
    out = []
    for chunk in images.split(CHUNK):
        x = chunk.float()
        if x.shape[1] != channels:
            if channels == 3 and x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            elif channels == 1 and x.shape[1] == 3:
                x = (x * LUMA.view(1, 3, 1, 1)).sum(1, keepdim=True)
            else:
                raise ValueError(f"cannot convert {x.shape[1]} channels to {channels}")
        if tuple(x.shape[2:]) != tuple(size):
            x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        out.append(x.round().clamp(0, 255).to(torch.uint8))
    return torch.cat(out) if out else images.new_zeros((0, channels, *size))


@dataclass
class PairedData:
    """Normalised float images for the three stages (tensors, or sets streamed from disk that
    normalise each batch as it is read). ``unlabeled_labels`` never enter training."""
    train_x: Images
    train_y: torch.Tensor
    test_x: Images
    test_y: torch.Tensor
    unlabeled_x: Images
    unlabeled_labels: torch.Tensor | None
    classes: list[str]
    unlabeled_classes: list[str]
    mean: list[float]
    std: list[float]
    notes: list[str]  # plain-language facts a user must see, e.g. "demo subset in use"
    # which rows of the whole unlabeled set these are (unlabeled_limit draws a subset); None: all of
    # them. A transfer set saved from a run's explorer maps its picks back to the source with it.
    unlabeled_rows: torch.Tensor | None = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = self.train_x.shape[1:]
        return int(c), int(h), int(w)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to(self, device: torch.device) -> PairedData:
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return PairedData(move(self.train_x), move(self.train_y), move(self.test_x), move(self.test_y),
                          move(self.unlabeled_x), move(self.unlabeled_labels), self.classes,
                          self.unlabeled_classes, self.mean, self.std, self.notes, self.unlabeled_rows)


def channel_stats(images: Images) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of uint8 images, scaled to [0, 1] (a streamed set's were measured
    when it was prepared)."""
    if isinstance(images, StreamedImages):
        mean, std = images.pixel_stats
        return torch.tensor(mean), torch.tensor(std).clamp_min(1e-6)
    x = images.float().div_(255).transpose(0, 1).reshape(images.shape[1], -1)
    return x.mean(1), x.std(1).clamp_min(1e-6)


def normalise(images: Images, mean: torch.Tensor, std: torch.Tensor) -> Images:
    if isinstance(images, StreamedImages):
        return images.normalised(mean, std)
    x = images.float().div_(255)
    return x.sub_(mean.view(1, -1, 1, 1)).div_(std.view(1, -1, 1, 1))


def pair_datasets(train: ImageSet, test: ImageSet, unlabeled: ImageSet) -> PairedData:
    """Pair a labeled train/test split with any unlabeled set."""
    if train.labels is None or test.labels is None:
        raise DataError(f"{train.name} has no labels: use it as the unlabeled set, or sort its images "
                        "into class sub-folders")
    if len(train.classes) < 2:  # one class: every prediction is right, "100%" means nothing
        raise DataError(f"{train.name} has {len(train.classes)} class ({', '.join(train.classes)}): a "
                        "labeled set needs at least 2 classes (one sub-folder each)")
    if train.shape != test.shape:
        raise DataError(f"{train.name}: train images {train.shape} and test images {test.shape} differ; "
                        "give both splits the same image size and channels")
    channels, height, width = train.shape
    unlabeled_images = convert_images(unlabeled.images, channels, (height, width))
    mean, std = channel_stats(train.images)
    notes = [f"{s.name} ({s.split}): bundled demo subset of {len(s)} images, not the full dataset"
             for s in (train, test, unlabeled) if s.demo_subset]
    notes += [note for s in (train, test, unlabeled) for note in s.notes]
    notes += [f"{s.name} ({s.split}): {len(s):,} images streamed from the prepared cache on disk"
              for s in (train, test, unlabeled) if s.streamed]
    if unlabeled.shape != train.shape:
        notes.append(f"{unlabeled.name} converted from {unlabeled.shape} to {train.shape}")
    return PairedData(
        train_x=normalise(train.images, mean, std), train_y=train.labels.long(),
        test_x=normalise(test.images, mean, std), test_y=test.labels.long(),
        unlabeled_x=normalise(unlabeled_images, mean, std), unlabeled_labels=unlabeled.labels,
        classes=train.classes, unlabeled_classes=unlabeled.classes,
        mean=mean.tolist(), std=std.tolist(), notes=notes,
    )
