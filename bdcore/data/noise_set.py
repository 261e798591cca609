"""``noise``: images of uniform random pixels, generated at the labeled set's shape. Distilled on
them, a student shows what a teacher's soft labels teach with no natural images at all: the
lower bound beside blind distillation (a study's "noise" baseline)."""
from __future__ import annotations

import torch

from ..errors import DataError
from .collection_sets import in_memory_limit
from .imageset import ImageSet

NOISE = "noise"
NOISE_IMAGES = 60_000  # as many as Fashion-MNIST's train split, where they fit in memory
DEFAULT_SHAPE = (1, 28, 28)


def load_noise(split: str, shape: tuple[int, int, int] | None = None) -> ImageSet:
    """The train split: seeded uniform noise at ``shape``, at most as many images as fit in
    ``in_memory_limit()`` as normalised floats."""
    if split != "train":
        raise DataError("noise is an unlabeled set: it has no test split, so use it as the unlabeled set")
    c, h, w = shape or DEFAULT_SHAPE
    n = max(1, min(NOISE_IMAGES, in_memory_limit() // (4 * c * h * w)))
    seeded = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, c, h, w), dtype=torch.uint8, generator=seeded)
    notes = [] if n == NOISE_IMAGES else [f"noise: {n:,} images at {c}x{h}x{w} (as many as fit in "
                                          f"BD_IN_MEMORY_MB), not {NOISE_IMAGES:,}"]
    return ImageSet(NOISE, split, images, None, [], "generated: uniform random pixels, seed 0", notes=notes)
