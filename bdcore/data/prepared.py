"""The prepared-dataset cache: an image collection decoded once, at the size a run needs, into
litdata chunks on disk, and reused by every later run at that size.

A prepared set is one split of one collection at one image shape. Its key hashes the files'
names, sizes and mtimes, the labels and the shape, so a changed folder is prepared again and an
unchanged one never is. Decoding runs in worker processes (JPEG draft mode, docs/performance.md,
"Preparing image collections"); damaged files are skipped and named in the manifest. A set is
written in a seeded random order, so that litdata's chunk-level shuffle still mixes classes, into
a temporary folder renamed into place at the end: a killed preparation leaves nothing half-made.

Layout under ``cache_root()`` (``$BD_CACHE_DIR``, default ``./cache``, then ``prepared/``):
    <key>/index.json, chunk-*.bin   litdata's files
    <key>/labels.npy                int64 per stored image (labeled sets only)
    <key>/positions.npy             each stored image's place in the collection's own order
    <key>/manifest.json             ``PreparedSet``: source, shape, counts, skipped files, stats
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from .collection import Entry, SkippedImage, decode, fingerprint

CACHE_VERSION = 1  # bump when the stored form changes: old sets are then prepared again
MANIFEST, LABELS, POSITIONS, LOCK = "manifest.json", "labels.npy", "positions.npy", ".lock"
CHUNK_BYTES = "64MB"
SHOW_SKIPPED = 5  # file names quoted in "N of M images skipped: ..."
PROGRESS_EVERY_S = 1.0
IN_PROCESS_BELOW = 64  # images: fewer decode faster here than worker processes start (~0.5 s)

Progress = Callable[[int, int], None]  # (images done, images in all)


class PreparedCacheError(DataError):
    """The cache folder cannot be written or a prepared set there cannot be read."""


def cache_root() -> Path:
    return Path(os.environ.get("BD_CACHE_DIR", "cache")).expanduser() / "prepared"


def prepared_folder(key: str) -> Path:
    return cache_root() / key


@dataclass(frozen=True)
class PrepareRequest:
    """What a prepared set is made from: one split's images, their labels, and the shape."""
    source: str  # what the user gave, for people ("folder:/photos", "caltech256")
    split: str
    layout: str
    entries: list[Entry]
    labels: np.ndarray | None
    classes: list[str]
    shape: tuple[int, int, int]  # (C, H, W) every image is brought to

    def key(self) -> str:
        digest = hashlib.sha256()
        labels = b"" if self.labels is None else np.ascontiguousarray(self.labels, dtype=np.int64).tobytes()
        for part in (str(CACHE_VERSION), fingerprint(self.entries), json.dumps(self.classes),
                     json.dumps(list(self.shape))):
            digest.update(part.encode() + b"\0")
        digest.update(labels)
        return digest.hexdigest()[:20]


@dataclass
class PreparedSet:
    """A prepared set's manifest: what it holds and how it was made."""
    key: str
    source: str
    split: str
    layout: str
    shape: tuple[int, int, int]
    count: int  # images stored
    total: int  # images in the source
    skipped: list[tuple[str, str]]  # (name, reason) of the first SHOW_SKIPPED skipped files
    skipped_count: int
    classes: list[str]
    mean: list[float]  # per channel, over the stored images, in [0, 1]
    std: list[float]
    seconds: float
    created: float
    bytes: int = 0
    labeled: bool = False
    folder: str = field(default="", compare=False)

    @property
    def path(self) -> Path:
        return Path(self.folder)

    def labels(self) -> np.ndarray | None:
        return np.load(self.path / LABELS) if self.labeled else None

    def positions(self) -> np.ndarray:
        return np.load(self.path / POSITIONS)

    def skipped_note(self) -> str | None:
        """"N of M images skipped: a.jpg (empty file), ..." or None when none were."""
        if not self.skipped_count:
            return None
        named = ", ".join(f"{name} ({reason})" for name, reason in self.skipped)
        more = self.skipped_count - len(self.skipped)
        return (f"{self.source} ({self.split}): {self.skipped_count} of {self.total} images skipped: "
                f"{named}{f' and {more} more' if more > 0 else ''}")

    @classmethod
    def read(cls, folder: Path) -> PreparedSet:
        try:
            record = json.loads((folder / MANIFEST).read_text())
            record["shape"] = tuple(record["shape"])
            record["skipped"] = [tuple(s) for s in record["skipped"]]
            return cls(**{**record, "folder": str(folder)})
        except (OSError, ValueError, TypeError, KeyError) as err:
            raise PreparedCacheError(f"prepared set {folder} is damaged ({err}); delete it with "
                                     f"`python -m bdcore datasets delete {folder.name}`") from err


# --- decoding, in worker processes -------------------------------------------------------------
Decoded = tuple[int, np.ndarray | None, str]  # (position, image or None, why it was skipped)


def _decode_task(job: tuple[int, Entry, tuple[int, int], int]) -> Decoded:
    at, entry, size, channels = job
    try:
        return at, decode(entry, size, channels), ""
    except SkippedImage as why:
        return at, None, str(why)


def _decoded(entries: list[Entry], shape: tuple[int, int, int], workers: int) -> Iterator[Decoded]:
    """(position, image or None, reason) for each entry, in order, decoded by ``workers`` processes."""
    channels, height, width = shape
    jobs = ((at, entry, (width, height), channels) for at, entry in enumerate(entries))
    if workers <= 1 or len(entries) < IN_PROCESS_BELOW:
        yield from map(_decode_task, jobs)
        return
    # spawn, not fork: a fork of a process that runs reader or torch threads can inherit a held
    # lock and hang for ever (it did, in the test suite). An executor, not multiprocessing.Pool:
    # Pool.terminate left an idle worker and its parent waiting on each other once, in the suite.
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        yield from pool.map(_decode_task, jobs, chunksize=8)
    finally:  # on a kill or an error mid-way, queued images are dropped, not decoded first
        pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def _locked(key: str) -> Iterator[None]:
    """One preparation of a key at a time, across processes: a second run waits, then reuses."""
    cache_root().mkdir(parents=True, exist_ok=True)
    with open(cache_root() / f"{key}{LOCK}", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def find_prepared(request: PrepareRequest) -> PreparedSet | None:
    folder = prepared_folder(request.key())
    return PreparedSet.read(folder) if (folder / MANIFEST).is_file() else None


def prepare(request: PrepareRequest, progress: Progress | None = None,
            workers: int | None = None) -> PreparedSet:
    """The prepared set for ``request``: found in the cache, or decoded and written now."""
    try:
        with _locked(request.key()):
            return find_prepared(request) or _write(request, progress, workers or os.cpu_count() or 1)
    except OSError as err:
        raise PreparedCacheError(f"cannot write the prepared-dataset cache in {cache_root()} ({err}); "
                                 "free some disk space or set BD_CACHE_DIR to a writable folder") from err


def _write(request: PrepareRequest, progress: Progress | None, workers: int) -> PreparedSet:
    from litdata.streaming.writer import BinaryWriter

    start = time.perf_counter()
    key, entries = request.key(), request.entries
    final = prepared_folder(key)
    temp = final.with_name(f"{key}.{os.getpid()}.tmp")
    shutil.rmtree(temp, ignore_errors=True)
    for stale in final.parent.glob(f"{key}.*.tmp"):  # left by a killed preparation
        shutil.rmtree(stale, ignore_errors=True)
    temp.mkdir(parents=True)
    # written in a seeded random order: litdata shuffles chunks and items within a chunk, so a
    # chunk of one class would give batches of one class
    order = np.random.default_rng(0).permutation(len(entries))
    writer = BinaryWriter(str(temp), chunk_bytes=CHUNK_BYTES)
    kept, skipped = [], []
    # per-channel mean of pixels and of their squares, summed over images (all the same size)
    pixel_sum, square_sum = np.zeros(request.shape[0]), np.zeros(request.shape[0])
    last = time.monotonic()
    decoded = _decoded([entries[i] for i in order], request.shape, workers)
    for done, (at, image, reason) in enumerate(decoded, 1):
        if image is None:
            skipped.append((entries[order[at]].name(), reason))
        else:
            writer.add_item(len(kept), {"image": image, "index": len(kept)})
            kept.append(order[at])
            pixels = image.reshape(image.shape[0], -1) / 255.0
            pixel_sum += pixels.mean(1)
            square_sum += (pixels ** 2).mean(1)
        if progress is not None and (time.monotonic() - last >= PROGRESS_EVERY_S or done == len(entries)):
            progress(done, len(entries))
            last = time.monotonic()
    if not kept:
        shutil.rmtree(temp, ignore_errors=True)
        raise DataError(f"{request.source} ({request.split}): none of its {len(entries)} images could be "
                        f"read ({'; '.join(f'{n}: {r}' for n, r in skipped[:SHOW_SKIPPED])}); "
                        "replace the files or choose another folder")
    writer.done()
    writer.merge()
    np.save(temp / POSITIONS, np.asarray(kept, dtype=np.int64))
    if request.labels is not None:
        np.save(temp / LABELS, np.asarray(request.labels, dtype=np.int64)[kept])
    mean = pixel_sum / len(kept)
    std = np.sqrt(np.maximum(square_sum / len(kept) - mean ** 2, 1e-12))
    prepared = PreparedSet(
        key=key, source=request.source, split=request.split, layout=request.layout, shape=request.shape,
        count=len(kept), total=len(entries), skipped=skipped[:SHOW_SKIPPED], skipped_count=len(skipped),
        classes=request.classes, mean=mean.tolist(), std=std.tolist(),
        seconds=time.perf_counter() - start, created=time.time(),
        bytes=sum(f.stat().st_size for f in temp.iterdir()), labeled=request.labels is not None)
    record = asdict(prepared)
    record.pop("folder")
    (temp / MANIFEST).write_text(json.dumps(record, indent=1))
    temp.rename(final)
    prepared.folder = str(final)
    return prepared


# --- the cache as a whole ----------------------------------------------------------------------
def list_prepared() -> list[PreparedSet]:
    """Every readable prepared set in the cache, newest first."""
    if not cache_root().is_dir():
        return []
    found = []
    for folder in cache_root().iterdir():
        if folder.is_dir() and (folder / MANIFEST).is_file():
            try:
                found.append(PreparedSet.read(folder))
            except PreparedCacheError:
                continue
    return sorted(found, key=lambda p: p.created, reverse=True)


def delete_prepared(key: str) -> None:
    """Delete one prepared set; the next run that needs it prepares it again."""
    folder = prepared_folder(key)
    if not key or "/" in key or key.startswith(".") or not folder.is_dir():
        raise PreparedCacheError(f"no prepared set {key!r} in {cache_root()}; "
                                 "`python -m bdcore datasets` lists them")
    with _locked(key):
        shutil.rmtree(folder)
    (cache_root() / f"{key}{LOCK}").unlink(missing_ok=True)
