"""A prepared image set read from its litdata chunks on disk, a batch at a time, in bounded memory.

``StreamedImages`` answers what the training loop, evaluation and the explorer ask of an in-memory
image tensor (``len``, ``shape``, ``device``, ``to``, rows by index, ``split`` into sequential
batches) and adds ``shuffled_batches`` for a training epoch. Batches come out as uint8 or, once
``normalised``, as float32 scaled with the labeled set's statistics, on ``device``."""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch


def _reader(folder: Path, shuffle: bool = False, seed: int = 0):
    from litdata import StreamingDataset  # imported on first read: the app's pages never need it

    # batch_decode=0: litdata's default decodes 256 items to return one, which makes a random
    # read ~5 ms instead of ~0.2 ms and a whole-chunk shuffle window 100x slower; "full": shuffle
    # across the whole chunk rather than within 256-item blocks that recur every epoch
    # (docs/performance.md, "Streaming format of the prepared-dataset cache")
    return StreamingDataset(str(folder), shuffle=shuffle, seed=seed, batch_decode=0,
                            item_shuffle_window="full" if shuffle else None)


@lru_cache(maxsize=8)
def _ordered_reader(folder: Path):
    """One unshuffled reader per prepared set, kept: random reads reuse its open chunk."""
    return _reader(folder)


@dataclass(frozen=True)
class StreamedImages:
    folder: Path  # the prepared set's chunk folder
    count: int  # images stored there
    image_shape: tuple[int, int, int]  # (C, H, W)
    key: str  # the prepared set's cache key: its identity for fingerprints
    rows: np.ndarray | None = None  # a view: these stored positions, in this order; None for all
    pixel_stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None  # per-channel mean, std in [0, 1]
    mean: tuple[float, ...] | None = None  # normalisation, once ``normalised``
    std: tuple[float, ...] | None = None
    device: torch.device = torch.device("cpu")

    # --- what a tensor of images answers ------------------------------------------------------
    def __len__(self) -> int:
        return self.count if self.rows is None else len(self.rows)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self), *self.image_shape))

    @property
    def ndim(self) -> int:
        return 4

    @property
    def dtype(self) -> torch.dtype:
        return torch.uint8 if self.mean is None else torch.float32

    def to(self, device: torch.device | str, non_blocking: bool = False) -> StreamedImages:
        return replace(self, device=torch.device(device))

    def __getitem__(self, index: torch.Tensor | np.ndarray | slice) -> torch.Tensor:
        """These rows, read in storage order (cheaper than random reads: one chunk after another)
        and returned in the order asked for."""
        if isinstance(index, slice):
            index = np.arange(len(self))[index]
        wanted = self._positions(np.asarray(torch.as_tensor(index).cpu()).reshape(-1))
        order = np.argsort(wanted, kind="stable")
        images = np.empty((len(wanted), *self.image_shape), dtype=np.uint8)
        reader = _ordered_reader(self.folder)
        for at in order:
            images[at] = reader[int(wanted[at])]["image"]
        return self._finish(images)

    def split(self, size: int) -> Iterator[torch.Tensor]:
        for start in range(0, len(self), size):
            yield self[np.arange(start, min(start + size, len(self)))]

    # --- what only a set on disk needs ------------------------------------------------------
    def view(self, index: torch.Tensor | np.ndarray) -> StreamedImages:
        """These rows only (a seeded subset, a fine-tune's k per class), still on disk."""
        return replace(self, rows=self._positions(np.asarray(torch.as_tensor(index).cpu()).reshape(-1)))

    def normalised(self, mean: torch.Tensor, std: torch.Tensor) -> StreamedImages:
        return replace(self, mean=tuple(mean.tolist()), std=tuple(std.tolist()))

    def fingerprint(self) -> str:
        """The set's identity for a teacher cache key: the prepared set and the rows taken."""
        rows = "all" if self.rows is None else hashlib.sha256(self.rows.tobytes()).hexdigest()[:16]
        return f"prepared:{self.key}:{rows}"

    def shuffled_batches(self, batch_size: int, steps: int,
                         seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``steps`` batches of (row indices, images) in litdata's shuffled order: chunks in a
        seeded random order, and items shuffled within each. A fresh reader per call: litdata
        repeats a reader's first order, so ``seed`` must change each epoch (``epoch_batches``
        draws it). The set was written in a seeded random order (``prepared.prepare``), so a
        chunk mixes every class."""
        local = None
        if self.rows is not None:  # a view: map stored positions to its own row numbers
            local = np.full(self.count, -1, dtype=np.int64)
            local[self.rows] = np.arange(len(self.rows))
        index, images, done = [], [], 0
        for item in _reader(self.folder, shuffle=True, seed=seed):
            row = int(item["index"]) if local is None else int(local[item["index"]])
            if row < 0:
                continue
            index.append(row)
            images.append(item["image"])
            if len(index) == batch_size:
                yield self._batch(index, images)
                index, images, done = [], [], done + 1
                if done == steps:
                    return
        if index and done < steps:
            yield self._batch(index, images)

    # --- helpers ------------------------------------------------------------------------------
    def _positions(self, index: np.ndarray) -> np.ndarray:
        index = index.astype(np.int64)
        if index.size and (index.min() < -len(self) or index.max() >= len(self)):
            raise IndexError(f"row {index.max()} out of range for {len(self)} images")
        index = np.where(index < 0, index + len(self), index)
        return index if self.rows is None else self.rows[index]

    def _batch(self, index: list[int], images: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.tensor(index, device=self.device), self._finish(np.stack(images))

    def _finish(self, images: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(images).to(self.device, non_blocking=True)
        if self.mean is None:
            return x
        mean = torch.tensor(self.mean, device=self.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=self.device).view(1, -1, 1, 1)
        return x.float().div_(255).sub_(mean).div_(std)
