"""The form every dataset takes: uint8 images (N, C, H, W), in memory or streamed from the
prepared cache on disk, and optional labels."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .streamed import StreamedImages

Images = torch.Tensor | StreamedImages  # a set's images: in memory, or on disk (streamed.py)


def take_rows(images: Images, index: torch.Tensor) -> Images:
    """These rows of a set: a new tensor in memory, a view of a set on disk (nothing is read)."""
    return images.view(index) if isinstance(images, StreamedImages) else images[index]


@dataclass
class ImageSet:
    name: str
    split: str
    images: Images  # uint8, (N, C, H, W)
    labels: torch.Tensor | None  # int64, (N,), or None for an unlabeled folder
    classes: list[str]
    source: str  # where it was read from, for people ("data dir: /x/mnist", "bundled demo subset")
    demo_subset: bool = False
    notes: list[str] = field(default_factory=list)  # facts a user must see ("3 of 300 images skipped: ...")

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"{self.name}: images must be uint8 (N, C, H, W), got "
                             f"{self.images.dtype} {tuple(self.images.shape)}")
        if self.labels is not None and len(self.labels) != len(self.images):
            raise ValueError(f"{self.name}: {len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def streamed(self) -> bool:
        return isinstance(self.images, StreamedImages)

    @property
    def shape(self) -> tuple[int, int, int]:
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    def subset(self, index: torch.Tensor) -> ImageSet:
        labels = None if self.labels is None else self.labels[index]
        return ImageSet(self.name, self.split, take_rows(self.images, index), labels, self.classes,
                        self.source, self.demo_subset, self.notes)
