"""Dataset previews for the app: a grid of sample images and where the dataset comes from. An
image collection is never decoded whole here (the app server would hold it): a preview decodes
a handful of its images; preparing it for training happens in the run's worker process."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from .curation import transfer_sets
from .data import load_dataset
from .data.collection import SkippedImage, decode, open_collection
from .data.collection_sets import collection_shape, collection_source
from .data.registry import TRANSFER_SET, is_collection
from .errors import UserError


@dataclass
class Preview:
    name: str
    ok: bool
    grid: np.ndarray | None  # uint8 (H, W) or (H, W, 3)
    source: str  # where it was found, or the error text saying how to get it
    size: int = 0
    shape: tuple[int, int, int] | None = None
    classes: list[str] | None = None
    demo_subset: bool = False


def image_grid(images: torch.Tensor, columns: int = 8, pad: int = 2) -> np.ndarray:
    """uint8 (N, C, H, W) tiled into one picture, ``columns`` wide."""
    n, c, h, w = images.shape
    rows = -(-n // columns)
    grid = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, c), 255, dtype=np.uint8)
    for i, img in enumerate(images.numpy()):
        r, col = divmod(i, columns)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[top: top + h, left: left + w] = img.transpose(1, 2, 0)
    return grid[..., 0] if c == 1 else grid


def _preview_collection(name: str, count: int, seed: int) -> Preview:
    """``count`` images of a collection decoded at its training shape, from a seeded sample."""
    collection = open_collection(collection_source(name))
    entries = [e for split in collection.splits.values() for e in split]
    shape = collection_shape(collection, None)
    rng = np.random.default_rng(seed)
    images, unreadable = [], 0
    for at in rng.permutation(len(entries))[:2 * count]:  # room for a few unreadable files
        try:
            images.append(decode(entries[at], (shape[2], shape[1]), shape[0]))
        except SkippedImage:
            unreadable += 1
        if len(images) == count:
            break
    if not images:
        return Preview(name, False, None, f"{name}: none of {unreadable} sampled images can be read")
    source = (f"{collection.root} ({collection.layout}); decoded into the prepared cache when a run "
              "first uses it" + (f"; {unreadable} sampled file(s) unreadable, skipped" if unreadable else ""))
    return Preview(name, True, image_grid(torch.from_numpy(np.stack(images))), source, len(entries),
                   shape, collection.classes)


def preview_dataset(name: str, count: int = 32, seed: int = 0) -> Preview:
    """A seeded sample grid of the train split, or the reason it cannot be loaded."""
    try:
        if is_collection(name):
            return _preview_collection(name, count, seed)
        if name.startswith(TRANSFER_SET):
            ts = transfer_sets.load(name.removeprefix(TRANSFER_SET))
            if any(is_collection(p.source) for p in ts.parts):  # never decoded whole in the app server
                shown = _preview_collection(ts.parts[0].source, count, seed)
                return replace(shown, name=name, size=ts.size, classes=None,
                               source=f"{ts.describe()}; pictured: images of {ts.parts[0].source}")
        data = load_dataset(name, "train")
    except UserError as err:
        return Preview(name, False, None, str(err))
    pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:count]
    return Preview(name, True, image_grid(data.images[pick]), data.source, len(data), data.shape,
                   data.classes, data.demo_subset)
