"""The in-memory form every dataset takes: uint8 images (N, C, H, W) and optional labels."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ImageSet:
    name: str
    split: str
    images: torch.Tensor  # uint8, (N, C, H, W)
    labels: torch.Tensor | None  # int64, (N,), or None for an unlabeled folder
    classes: list[str]
    source: str  # where it was read from, for people ("data dir: /x/mnist", "bundled demo subset")
    demo_subset: bool = False

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"{self.name}: images must be uint8 (N, C, H, W), got "
                             f"{self.images.dtype} {tuple(self.images.shape)}")
        if self.labels is not None and len(self.labels) != len(self.images):
            raise ValueError(f"{self.name}: {len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def shape(self) -> tuple[int, int, int]:
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    def subset(self, index: torch.Tensor) -> ImageSet:
        labels = None if self.labels is None else self.labels[index]
        return ImageSet(self.name, self.split, self.images[index], labels, self.classes,
                        self.source, self.demo_subset)
