"""The prepared-dataset cache's streaming format: litdata, webdataset, mosaicml-streaming on the same data.

Issue 13.

    python bench/streaming_formats.py [--n 20000] [--quick] [--formats litdata,webdataset,mosaic]
                                      [--shard-mb 64] [--dir DIR] [--keep] [--json OUT]

webdataset and mosaicml-streaming are not project requirements: install them apart (``pip install
--target``) and put that folder on PYTHONPATH for the run only, without the packages .venv already
has (mosaicml-streaming pins numpy<2.2), so that all three run on the project's numpy and torch.

The data: N uint8 images (3, 96, 96) of random content (item i is drawn from a generator seeded
with i, so any item can be checked on reading), an int label and an int index. Labels are written
in class order (10 classes, label = 10 * i // N), as a folder of class subfolders would be read,
so the labels of a shuffled batch show how well a library's shuffle mixes the written order.
Every format gets shards (chunks) of at most --shard-mb MiB and no compression.

For each format whose library imports (one that does not is skipped, and said so):
1. write: one writer process fills ``<name>.tmp`` and renames it to ``<name>`` when done (the
   atomic write the project would use); images/s and bytes on disk;
2. read one shuffled epoch with the library's own shuffle, from the main process (num_workers=0)
   and through the library's loader with 1 worker: images/s; every index must come exactly
   once; shuffle quality as the mean number of distinct labels (of 10) and the index span (as a
   fraction of N) in each run of 64 consecutive items (a uniform shuffle gives 9.99 and 0.97);
3. random access by index (where the library has it): us per item for 64 contiguous indices,
   64 random indices sorted, 64 random indices unsorted, and the open + first item time;
   for litdata, the main-process epoch and random access again with ``batch_decode=0`` (decode
   only the item asked for; "auto" decodes windows of 256 items of this size) and the epoch with
   ``item_shuffle_window="full"`` (a full permutation inside each chunk instead of 256-item blocks);
4. peak memory of the reading process (ru_maxrss, VmHWM, and the largest RssAnon / RssFile sampled
   during the epoch: mmap'ed file pages count in RSS but are page cache), each read in a fresh
   subprocess; files each phase leaves outside the output directory (the phase's TMPDIR and cwd,
   ~/.cache, ~/.lightning, /dev/shm, new entries in /tmp) and new files inside it;
5. an interrupted write (the writer's process group killed by SIGKILL at item N/2): what is on
   disk and what a reader makes of it;
6. behaviour checks on a small separate set (2,000 items, 4 MiB shards): epoch-to-epoch order
   (same object iterated twice, torch DataLoader with a worker, the library's loader), seed
   reproducibility and, for litdata, the item order optimize() keeps with 2 workers, the in-chunk
   shuffle window, and whether max_cache_size deletes chunks of a local dataset.

Absolute speeds are those of a page-cache-warm dataset (it was just written and fits in RAM) on
this machine; compare the formats within one run. The read phases run in subprocesses
(``--phase``), which is also how to rerun one of them by hand."""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHAPE = (3, 96, 96)
CLASSES = 10
BATCH = 64
SEED = 13
FORMATS = ("litdata", "webdataset", "mosaic")
MODULES = {"litdata": "litdata", "webdataset": "webdataset", "mosaic": "streaming"}
WDS_BUFFER = 5000  # webdataset's sample shuffle buffer (items held in memory)
QUICK_N = 600
CHECK_N = 2000
CHECK_SHARD_MB = 4


# ---------------------------------------------------------------- data

def item_image(i: int) -> np.ndarray:
    return np.random.default_rng([SEED, i]).integers(0, 256, SHAPE, dtype=np.uint8)


def item_label(i: int, n: int) -> int:
    return CLASSES * i // n


def make_images(n: int) -> np.ndarray:
    images = np.empty((n, *SHAPE), dtype=np.uint8)
    for i in range(n):
        images[i] = item_image(i)
    return images


def importable(fmt: str) -> str | None:
    """None if the format's library imports, else why not."""
    try:
        __import__(MODULES[fmt])
    except Exception as exc:  # noqa: BLE001 - any import failure means "skip"
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    return None


def version(fmt: str) -> str:
    from importlib.metadata import version as v
    return v({"litdata": "litdata", "webdataset": "webdataset", "mosaic": "mosaicml-streaming"}[fmt])


# ---------------------------------------------------------------- memory and files

def proc_status() -> dict[str, int]:
    """VmRSS, VmHWM, RssAnon, RssFile, RssShmem of this process in KiB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
            out[key] = int(rest.split()[0])
    return out


def child_status() -> list[dict[str, int]]:
    """proc_status of this process's children (a loader's workers)."""
    me, out = os.getpid(), []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) != me:
                continue
            status = {}
            for line in Path(entry.path, "status").read_text().splitlines():
                key, _, rest = line.partition(":")
                if key in ("VmHWM", "RssAnon", "RssFile"):
                    status[key] = int(rest.split()[0])
            out.append(status)
        except (OSError, ValueError, IndexError):
            pass
    return out


class MemSampler:
    """Memory of the reading process from now on: the peak (VmHWM) is reset when this is made, after
    the imports, so it is the reading's own; ru_maxrss (not resettable) covers the whole process."""

    def __init__(self) -> None:
        try:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
            self.reset = True
        except OSError:
            self.reset = False
        self.base = proc_status()
        self.max_anon = self.base.get("RssAnon", 0)
        self.max_file = self.base.get("RssFile", 0)
        self.worker_hwm = self.worker_anon = 0

    def sample(self) -> None:
        s = proc_status()
        self.max_anon = max(self.max_anon, s.get("RssAnon", 0))
        self.max_file = max(self.max_file, s.get("RssFile", 0))
        for c in child_status():
            self.worker_hwm = max(self.worker_hwm, c.get("VmHWM", 0))
            self.worker_anon = max(self.worker_anon, c.get("RssAnon", 0))

    def report(self) -> dict:
        s = proc_status()
        return {"rss_base_mb": self.base["VmRSS"] / 1024, "vmhwm_mb": s["VmHWM"] / 1024,
                "base_anon_mb": self.base.get("RssAnon", 0) / 1024,
                "base_file_mb": self.base.get("RssFile", 0) / 1024,
                "vmhwm_reset": self.reset,
                "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "max_anon_mb": self.max_anon / 1024, "max_file_mb": self.max_file / 1024,
                "worker_vmhwm_mb": self.worker_hwm / 1024, "worker_max_anon_mb": self.worker_anon / 1024}


def timed_imports(fmt: str) -> dict:
    """Import torch, then the library, before anything is measured; their times."""
    start = time.perf_counter()
    import torch  # noqa: F401
    mid = time.perf_counter()
    __import__(MODULES[fmt])
    return {"import_torch_s": mid - start, "import_library_s": time.perf_counter() - mid}


def dir_bytes(path: str | Path) -> tuple[int, int]:
    """(bytes, files) under path."""
    total = files = 0
    for dirpath, _, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
                files += 1
            except OSError:
                pass
    return total, files


def watched_roots() -> list[Path]:
    home = Path.home()
    return [home / ".cache", home / ".lightning", home / ".streaming", Path("/dev/shm")]


def snapshot(paths: list[Path]) -> dict[str, int]:
    """Every file under ``paths`` with its size, and the top-level entries of /tmp."""
    seen: dict[str, int] = {}
    for root in paths:
        for dirpath, _, names in os.walk(root):
            for name in names:
                p = os.path.join(dirpath, name)
                try:
                    seen[p] = os.lstat(p).st_size
                except OSError:
                    pass
    for entry in os.scandir("/tmp"):
        seen.setdefault(entry.path, -1)
    return seen


def new_files(before: dict[str, int], after: dict[str, int]) -> list[tuple[str, int]]:
    out = []
    for path, size in after.items():
        if path not in before or (size >= 0 and size != before[path]):
            if size < 0:  # a new /tmp entry: measure it
                size = dir_bytes(path)[0] if os.path.isdir(path) else os.path.getsize(path)
            out.append((path, size))
    return sorted(out)


# ---------------------------------------------------------------- writers

def write_litdata(out: str, images: np.ndarray, shard_bytes: int, crash_at: int | None,
                  workers: int = 1) -> None:
    import litdata

    n = len(images)

    def fn(i: int) -> dict:
        if crash_at is not None and i == crash_at:
            os.killpg(0, signal.SIGKILL)
        return {"image": images[i], "label": item_label(i, n), "index": i}

    # optimize() is litdata's writer; num_workers=1 is one worker process (forked, so it shares
    # ``images``) beside the coordinating one
    litdata.optimize(fn=fn, inputs=list(range(n)), output_dir=out, chunk_bytes=shard_bytes,
                     num_workers=workers, start_method="fork", verbose=False)


def write_webdataset(out: str, images: np.ndarray, shard_bytes: int, crash_at: int | None) -> None:
    import webdataset as wds

    n = len(images)
    os.makedirs(out, exist_ok=True)
    with wds.ShardWriter(os.path.join(out, "shard-%06d.tar"), maxcount=10**9, maxsize=shard_bytes,
                         verbose=0) as sink:
        for i in range(n):
            if crash_at is not None and i == crash_at:
                os.killpg(0, signal.SIGKILL)
            sink.write({"__key__": f"{i:08d}", "npy": images[i], "cls": item_label(i, n)})


def write_mosaic(out: str, images: np.ndarray, shard_bytes: int, crash_at: int | None) -> None:
    from streaming import MDSWriter

    n = len(images)
    columns = {"image": "ndarray:uint8:" + ",".join(map(str, SHAPE)), "label": "int", "index": "int"}
    with MDSWriter(out=out, columns=columns, size_limit=shard_bytes) as writer:
        for i in range(n):
            if crash_at is not None and i == crash_at:
                os.killpg(0, signal.SIGKILL)
            writer.write({"image": images[i], "label": item_label(i, n), "index": i})


WRITERS = {"litdata": write_litdata, "webdataset": write_webdataset, "mosaic": write_mosaic}


# ---------------------------------------------------------------- readers: (image, label, index)

def wds_shards(data: str) -> list[str]:
    return sorted(str(p) for p in Path(data).glob("shard-*.tar"))


def wds_dataset(data: str, seed: int):
    import webdataset as wds
    shards = wds_shards(data)
    # shard order shuffled (the whole list), then a buffer of WDS_BUFFER samples
    return (wds.WebDataset(shards, shardshuffle=len(shards), seed=seed, empty_check=False)
            .shuffle(WDS_BUFFER, seed=seed).decode()
            .map(lambda s: (s["npy"], s["cls"], int(s["__key__"]))))


def litdata_dataset(data: str, seed: int, **kw):
    from litdata import StreamingDataset
    return StreamingDataset(data, shuffle=True, seed=seed, **kw)


def mosaic_dataset(data: str, seed: int):
    from streaming import StreamingDataset
    return StreamingDataset(local=data, shuffle=True, shuffle_seed=seed, batch_size=BATCH)


def item_tuple(fmt: str, item) -> tuple[np.ndarray, int, int]:
    if fmt == "webdataset":
        return item
    return item["image"], int(item["label"]), int(item["index"])


def batch_arrays(fmt: str, batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A loader's batch as (images, labels, indices) arrays."""
    if fmt == "webdataset":
        x, y, i = batch
        return np.asarray(x), np.asarray(y), np.asarray(i)
    return np.asarray(batch["image"]), np.asarray(batch["label"]), np.asarray(batch["index"])


def main_epoch(fmt: str, ds, mem: MemSampler | None = None):
    """Iterate one epoch in the main process, gathering batches of BATCH with np.stack (what a
    training loop needs: a contiguous batch); yields the indices."""
    images, order, labels = [], [], []
    for item in ds:
        x, y, i = item_tuple(fmt, item)
        images.append(x)
        labels.append(y)
        order.append(i)
        if len(images) == BATCH:
            np.stack(images)
            images = []
            if mem is not None and len(order) % (20 * BATCH) == 0:
                mem.sample()
    if images:
        np.stack(images)
    return order, labels


def loader_epoch(fmt: str, ds, workers: int, mem: MemSampler | None = None):
    if fmt == "litdata":
        from litdata import StreamingDataLoader
        loader = StreamingDataLoader(ds, batch_size=BATCH, num_workers=workers)
    elif fmt == "mosaic":
        from streaming import StreamingDataLoader
        loader = StreamingDataLoader(ds, batch_size=BATCH, num_workers=workers)
    else:
        import webdataset as wds
        loader = wds.WebLoader(ds.batched(BATCH), batch_size=None, num_workers=workers)
    order, labels = [], []
    for k, batch in enumerate(loader):
        x, y, i = batch_arrays(fmt, batch)
        assert x.shape[1:] == SHAPE and x.dtype == np.uint8, (x.shape, x.dtype)
        order.extend(i.tolist())
        labels.extend(y.tolist())
        if mem is not None and k % 10 == 0:
            mem.sample()
    return order, labels


def open_dataset(fmt: str, data: str, seed: int = SEED):
    if fmt == "litdata":
        return litdata_dataset(data, seed)
    if fmt == "mosaic":
        return mosaic_dataset(data, seed)
    return wds_dataset(data, seed)


def shuffle_quality(order: list[int], labels: list[int], n: int) -> dict:
    classes, spans = [], []
    for k in range(0, len(order) - BATCH + 1, BATCH):
        classes.append(len(set(labels[k:k + BATCH])))
        window = order[k:k + BATCH]
        spans.append((max(window) - min(window)) / n)
    return {"classes_per_batch": float(np.mean(classes)) if classes else 0.0,
            "span_per_batch": float(np.mean(spans)) if spans else 0.0,
            "first_20": order[:20]}


# ---------------------------------------------------------------- phases (each in its own process)

def phase_write(args) -> dict:
    fmt, n = args.format, args.n
    timed_imports(fmt)  # not in the write time
    t0 = time.perf_counter()
    images = make_images(n)
    gen_s = time.perf_counter() - t0
    tmp = args.data + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    crash_at = n // 2 if args.crash else None
    start = time.perf_counter()
    WRITERS[fmt](tmp, images, args.shard_mb * 2**20, crash_at)
    write_s = time.perf_counter() - start
    os.rename(tmp, args.data)  # a reader never sees a half-written cache under the final name
    size, files = dir_bytes(args.data)
    return {"generate_s": gen_s, "write_s": write_s, "write_img_s": n / write_s, "bytes": size,
            "files": files, "raw_bytes": images.nbytes}


def phase_read(args) -> dict:
    fmt, n = args.format, args.n
    imports = timed_imports(fmt)
    mem = MemSampler()
    start = time.perf_counter()
    if args.variant:  # litdata: full permutation inside each chunk, and/or items decoded one by one
        ds = litdata_dataset(args.data, SEED, **litdata_variant(args.variant))
    else:
        ds = open_dataset(fmt, args.data)
    open_s = time.perf_counter() - start
    start = time.perf_counter()
    if args.workers == 0:
        order, labels = main_epoch(fmt, ds, mem)
    else:
        order, labels = loader_epoch(fmt, ds, args.workers, mem)
    seconds = time.perf_counter() - start
    mem.sample()
    out = {**imports, "open_s": open_s, "seconds": seconds, "img_s": len(order) / seconds,
           "items": len(order),
           "unique": len(set(order)), "complete": sorted(order) == list(range(n)),
           "labels_ok": all(lab == item_label(i, n) for i, lab in zip(order, labels, strict=True))}
    out.update(shuffle_quality(order, labels, n))
    out.update(mem.report())
    return out


def litdata_variant(variant: str) -> dict:
    """StreamingDataset arguments of a variant: ``full-window`` (a full permutation inside each chunk
    instead of 256-item blocks) and ``item-decode`` (batch_decode=0: deserialize the item asked for
    only; "auto" picks windows of 256 items for numpy leaves of this size)."""
    kw: dict = {}
    if "full-window" in variant:
        kw["item_shuffle_window"] = "full"
    if "item-decode" in variant:
        kw["batch_decode"] = 0
    return kw


def getter(fmt: str, data: str, variant: str = ""):
    """A function index -> (image, label, index), or None where the library has no random access."""
    if fmt == "webdataset":
        return None
    if fmt == "litdata":
        from litdata import StreamingDataset
        ds = StreamingDataset(data, **litdata_variant(variant))
    else:
        from streaming import StreamingDataset
        ds = StreamingDataset(local=data, batch_size=BATCH)
    return lambda i: item_tuple(fmt, ds[i])


def phase_random(args) -> dict:
    fmt, n = args.format, args.n
    imports = timed_imports(fmt)
    mem = MemSampler()
    start = time.perf_counter()
    get = getter(fmt, args.data, args.variant)
    if get is None:
        return {"supported": False}
    first = get(n // 3)
    open_first_s = time.perf_counter() - start
    assert first[2] == n // 3 and np.array_equal(first[0], item_image(n // 3)), "wrong item"
    rng = random.Random(SEED)
    reps = 20
    kinds = {"contiguous": lambda: list(range(s := rng.randrange(n - BATCH), s + BATCH)),
             "sorted": lambda: sorted(rng.sample(range(n), BATCH)),
             "random": lambda: rng.sample(range(n), BATCH)}
    out = {**imports, "supported": True, "open_first_ms": open_first_s * 1000}
    for kind, draw in kinds.items():
        batches = [draw() for _ in range(reps)]
        start = time.perf_counter()
        got = [[get(i) for i in b] for b in batches]
        seconds = time.perf_counter() - start
        out[f"{kind}_us"] = seconds / (reps * BATCH) * 1e6
        for b, items in zip(batches[:2], got[:2], strict=True):
            for i, (x, y, idx) in zip(b, items, strict=True):
                assert idx == i and y == item_label(i, n) and np.array_equal(x, item_image(i)), (fmt, i)
    mem.sample()
    out.update(mem.report())
    return out


def phase_readback(args) -> dict:
    """After an interrupted write: what does the reader make of the directory? (main process)"""
    fmt = args.format
    start = time.perf_counter()
    order: list[int] = []
    try:
        for item in open_dataset(fmt, args.data):
            order.append(item_tuple(fmt, item)[2])
    except BaseException as exc:  # noqa: BLE001 - the outcome is the point
        return {"outcome": "error", "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:200],
                "items_before_error": len(order), "seconds": time.perf_counter() - start}
    return {"outcome": "read", "items": len(order), "unique": len(set(order)),
            "seconds": time.perf_counter() - start}


def epoch_orders(fmt: str, ds, how: str, epochs: int = 2) -> list[list[int]]:
    import torch
    orders = []
    if how == "main":
        for _ in range(epochs):
            orders.append(main_epoch(fmt, ds)[0])
    elif how == "torch":
        loader = torch.utils.data.DataLoader(ds if fmt != "webdataset" else ds.batched(BATCH),
                                             batch_size=BATCH if fmt != "webdataset" else None,
                                             num_workers=1)
        for _ in range(epochs):
            orders.append([int(i) for b in loader for i in batch_arrays(fmt, b)[2]])
    else:  # the library's loader, 1 worker, one loader object over both epochs
        if fmt == "litdata":
            from litdata import StreamingDataLoader
            loader = StreamingDataLoader(ds, batch_size=BATCH, num_workers=1)
        elif fmt == "mosaic":
            from streaming import StreamingDataLoader
            loader = StreamingDataLoader(ds, batch_size=BATCH, num_workers=1)
        else:
            import webdataset as wds
            loader = wds.WebLoader(ds.batched(BATCH), batch_size=None, num_workers=1)
        for _ in range(epochs):
            orders.append([int(i) for b in loader for i in batch_arrays(fmt, b)[2]])
    return orders


def phase_checks(args) -> dict:
    """Behaviour checks on a small set (CHECK_N items) written here; see the module docstring."""
    fmt, n = args.format, CHECK_N
    work = Path(args.data)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    images = make_images(n)
    data = str(work / "set")
    WRITERS[fmt](data, images, CHECK_SHARD_MB * 2**20, None)
    out: dict = {"n": n, "shard_mb": CHECK_SHARD_MB, "files": dir_bytes(data)[1]}
    for how in ("main", "torch", "library_loader"):
        if fmt == "mosaic" and how == "torch":
            continue  # mosaic's loader is a torch DataLoader subclass
        try:
            if fmt == "mosaic":
                from streaming.base.util import clean_stale_shared_memory
                clean_stale_shared_memory()
            e1, e2 = epoch_orders(fmt, open_dataset(fmt, data), how)
            out[f"{how}: epoch 2 order differs from epoch 1"] = e1 != e2
            out[f"{how}: each epoch complete"] = sorted(e1) == sorted(e2) == list(range(n))
            if how == "main":
                again = epoch_orders(fmt, open_dataset(fmt, data), how, epochs=1)[0]
                out["main: a fresh dataset, same seed, repeats epoch 1"] = again == e1
                other = epoch_orders(fmt, open_dataset(fmt, data, seed=SEED + 1), how, epochs=1)[0]
                out["main: another seed gives another order"] = other != e1
        except Exception as exc:  # noqa: BLE001
            out[f"{how}: error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
    if fmt == "litdata":
        out.update(litdata_checks(work, data, images))
    return out


def err(exc: BaseException, limit: int = 200) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:limit]


def loader_order(data: str, workers: int) -> list[int]:
    from litdata import StreamingDataLoader, StreamingDataset
    loader = StreamingDataLoader(StreamingDataset(data, shuffle=True, seed=SEED), batch_size=BATCH,
                                 num_workers=workers)
    return [int(i) for b in loader for i in b["index"]]


def litdata_checks(work: Path, data: str, images: np.ndarray) -> dict:
    from litdata import StreamingDataset

    n = len(images)
    everything = list(range(n))
    out: dict = {}

    def epoch(path: str, **kw) -> list[int]:
        return main_epoch("litdata", StreamingDataset(path, **kw))[0]

    first = epoch(data, shuffle=True, seed=SEED)
    ds = StreamingDataset(data, shuffle=True, seed=SEED)
    ds.set_epoch(2)
    out["set_epoch(2) on a fresh dataset: order differs from epoch 1"] = main_epoch("litdata", ds)[0] != first
    w0, w1, w2 = (loader_order(data, w) for w in (0, 1, 2))
    out["StreamingDataLoader epoch 1: same order at 0 and 1 workers"] = w0 == w1
    out["StreamingDataLoader epoch 1: same order at 1 and 2 workers"] = w1 == w2
    out["StreamingDataLoader 2 workers: epoch complete"] = sorted(w2) == everything
    quality = shuffle_quality(first, [item_label(i, n) for i in first], n)
    out["default shuffle: classes per batch of 64 (of 10)"] = quality["classes_per_batch"]
    full = epoch(data, shuffle=True, seed=SEED, item_shuffle_window="full")
    out["item_shuffle_window='full': classes per batch"] = shuffle_quality(
        full, [item_label(i, n) for i in full], n)["classes_per_batch"]
    per_chunk = max(1, n // max(1, len(list(Path(data).glob("*.bin")))))
    chunks = [len({i // per_chunk for i in first[k:k + BATCH]}) for k in range(0, n - BATCH + 1, BATCH)]
    out["default shuffle: chunks per batch of 64 (approx.)"] = float(np.mean(chunks))
    sh = StreamingDataset(data, shuffle=True, seed=SEED)
    out["ds[i] with shuffle=True returns written item i"] = all(int(sh[i]["index"]) == i
                                                              for i in (0, 7, n - 1))
    # optimize() with 2 workers: is the written order the input order?
    two = str(work / "two-workers")
    write_litdata(two, images, CHECK_SHARD_MB * 2**20, None, workers=2)
    got = [int(StreamingDataset(two)[i]["index"]) for i in range(n)]
    out["optimize(num_workers=2) keeps the input order (ds[i]['index'] == i)"] = got == everything
    out["optimize(num_workers=2) has every item once"] = sorted(got) == everything
    # max_cache_size below the dataset's size, reading a local folder: does it delete files of the folder?
    cases = [("uncompressed", None, {}),
             ("uncompressed, LITDATA_POSIX_FAST=0", None, {"LITDATA_POSIX_FAST": "0"})]
    try:
        import zstd  # noqa: F401 - litdata's compression needs it on Python < 3.14
        cases += [("zstd per chunk", "chunk", {}), ("zstd, default level", "", {})]
    except ImportError:
        out["compressed sets: not checked"] = "zstd not importable"
    for k, (label, level, env) in enumerate(cases):
        key = f"max_cache_size='1MB', {label}"
        path = work / f"cache-{k}"
        try:
            if level is None:
                shutil.copytree(data, path)
            else:
                import litdata
                litdata.optimize(fn=lambda i: {"image": images[i], "label": item_label(i, n), "index": i},
                                 inputs=everything, output_dir=str(path), chunk_bytes=CHECK_SHARD_MB * 2**20,
                                 num_workers=1, start_method="fork", verbose=False, compression="zstd",
                                 **({"compression_level": level} if level else {}))
            before = {p.name for p in path.iterdir()}
            old = {name: os.environ.get(name) for name in env}
            os.environ.update(env)
            try:
                order = epoch(str(path), shuffle=True, seed=SEED, max_cache_size="1MB")
                complete = sorted(order) == everything
            finally:
                for name, value in old.items():
                    os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
            after = {p.name for p in path.iterdir()}
            gone, added = sorted(before - after), sorted(after - before)
            out[f"{key}: epoch complete"] = complete
            out[f"{key}: files of the set deleted"] = f"{len(gone)} of {len(before)} " + " ".join(gone[:3])
            out[f"{key}: files added to the set"] = f"{len(added)} " + " ".join(added[:3])
            if gone:
                try:
                    out[f"{key}: a second reader then gets"] = f"{len(epoch(str(path)))} items"
                except Exception as exc:  # noqa: BLE001
                    out[f"{key}: a second reader then gets"] = err(exc, 160)
        except Exception as exc:  # noqa: BLE001
            out[f"{key}: error"] = err(exc)
    return out


PHASES = {"write": phase_write, "read": phase_read, "random": phase_random, "readback": phase_readback,
          "checks": phase_checks}


# ---------------------------------------------------------------- driver

def run_phase(phase: str, fmt: str, data: Path, n: int, shard_mb: int, workers: int = 0,
              crash: bool = False, timeout: int = 1800, variant: str = "") -> dict:
    """Run one phase in a fresh process (own TMPDIR and cwd, own session), with the files it left
    outside ``data`` and the new ones inside it."""
    scratch = Path(tempfile.mkdtemp(prefix=f"fmt-{phase}-{fmt}-", dir=data.parent))
    cmd = [sys.executable, __file__, "--phase", phase, "--format", fmt, "--data", str(data), "--n", str(n),
           "--shard-mb", str(shard_mb), "--workers", str(workers)] + (["--crash"] if crash else []) + (
               ["--variant", variant] if variant else [])
    env = dict(os.environ, TMPDIR=str(scratch))
    roots = watched_roots()
    before = snapshot(roots + ([data] if data.exists() else []))
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=scratch, env=env, capture_output=True, text=True, timeout=timeout,
                          start_new_session=True)
    wall = time.perf_counter() - start
    after = snapshot(roots + ([data] if data.exists() else []))
    outside = new_files(before, after)
    inside = [(p, s) for p, s in outside if p.startswith(str(data) + os.sep)]
    outside = [(p, s) for p, s in outside if not p.startswith(str(data) + os.sep)
               and not p.startswith(str(data.parent))]
    # a new top-level entry of /tmp may be another process's (the machine is shared): listed apart
    in_tmp = [(p, s) for p, s in outside if os.path.dirname(p) == "/tmp"]
    outside = [(p, s) for p, s in outside if os.path.dirname(p) != "/tmp"]
    scratch_files = [(str(p), p.stat().st_size) for p in scratch.rglob("*") if p.is_file()]
    result = None
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[7:])
    if result is None:
        result = {"failed": True, "returncode": proc.returncode,
                  "stderr_tail": proc.stderr.strip().splitlines()[-3:] if proc.stderr.strip() else []}
    result["wall_s"] = wall
    result["outside_files"] = [[p, s] for p, s in outside + scratch_files][:12]
    result["outside_bytes"] = sum(s for _, s in outside + scratch_files)
    result["new_inside"] = [[p, s] for p, s in inside][:8]
    result["new_in_tmp"] = [[p, s] for p, s in in_tmp][:8]
    shutil.rmtree(scratch, ignore_errors=True)
    return result


def interrupted(fmt: str, base: Path, n: int, shard_mb: int) -> dict:
    data = base / f"{fmt}-crash"
    res = run_phase("write", fmt, data, n, shard_mb, crash=True)
    tmp = Path(str(data) + ".tmp")
    size, files = dir_bytes(tmp) if tmp.exists() else (0, 0)
    out = {"killed": res.get("failed", False) and res.get("returncode") == -signal.SIGKILL,
           "left": f"{files} files, {size / 2**20:.0f} MiB in {tmp.name}" if tmp.exists() else "nothing",
           "final_name_exists": data.exists(),
           "names": sorted(p.name for p in tmp.iterdir())[-4:] if tmp.exists() else []}
    if tmp.exists():
        out["read_tmp"] = run_phase("readback", fmt, tmp, n, shard_mb, timeout=600)
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(data, ignore_errors=True)
    return out


def run_format(fmt: str, base: Path, n: int, shard_mb: int, say) -> dict:
    data = base / fmt
    res: dict = {"version": version(fmt)}
    say(f"[{fmt}] write {n} images")
    res["write"] = run_phase("write", fmt, data, n, shard_mb)
    if res["write"].get("failed"):
        say(f"[{fmt}] write failed: {res['write']}")
        return res
    say(f"[{fmt}] read an epoch, main process")
    res["read0"] = run_phase("read", fmt, data, n, shard_mb, workers=0)
    say(f"[{fmt}] read an epoch, the library's loader with 1 worker")
    res["read1"] = run_phase("read", fmt, data, n, shard_mb, workers=1)
    if fmt == "litdata":
        say(f"[{fmt}] read an epoch, main process, item_shuffle_window='full'")
        res["read0full"] = run_phase("read", fmt, data, n, shard_mb, workers=0, variant="full-window")
        say(f"[{fmt}] read an epoch, main process, item_shuffle_window='full', batch_decode=0")
        res["read0full_item"] = run_phase("read", fmt, data, n, shard_mb, workers=0,
                                          variant="full-window,item-decode")
        say(f"[{fmt}] read an epoch, main process, batch_decode=0")
        res["read0_item"] = run_phase("read", fmt, data, n, shard_mb, workers=0, variant="item-decode")
        say(f"[{fmt}] random access, batch_decode=0")
        res["random_item"] = run_phase("random", fmt, data, n, shard_mb, variant="item-decode")
    say(f"[{fmt}] random access")
    res["random"] = run_phase("random", fmt, data, n, shard_mb)
    say(f"[{fmt}] interrupted write")
    res["interrupted"] = interrupted(fmt, base, n, shard_mb)
    say(f"[{fmt}] behaviour checks ({CHECK_N} items)")
    res["checks"] = run_phase("checks", fmt, base / f"{fmt}-checks", CHECK_N, CHECK_SHARD_MB)
    return res


def fmt_num(v, spec: str = ",.0f") -> str:
    return "-" if v is None else format(v, spec)


def readback_cell(r: dict) -> str:
    if "read_tmp" not in r["interrupted"]:
        return "nothing left"
    rb = r["interrupted"]["read_tmp"]
    if rb["outcome"] == "read":
        return f"{rb['items']} items, no error"
    return f"error after {rb.get('items_before_error', 0)} items"


def random_cell(key: str, spec: str = ",.1f"):
    return lambda r: fmt_num(r["random"][key], spec) if r["random"]["supported"] else "no"


def table(results: dict) -> str:
    rows = [("", *results.keys())]

    def row(name, fn):
        cells = []
        for r in results.values():
            try:
                cells.append(fn(r))
            except (KeyError, TypeError):
                cells.append("-")
        rows.append((name, *cells))

    def pair(key, spec=",.0f"):
        return lambda r: f"{format(r['read0'][key], spec)} / {format(r['read1'][key], spec)}"

    row("write img/s", lambda r: fmt_num(r["write"]["write_img_s"]))
    row("bytes on disk MiB / files", lambda r: f"{r['write']['bytes'] / 2**20:,.0f} / {r['write']['files']}")
    row("epoch img/s: main / loader 1 worker", pair("img_s"))
    row("each index once: main / loader", pair("complete", ""))
    row("classes per batch of 64 (of 10)", pair("classes_per_batch", ".2f"))
    row("index span per batch (of N)", pair("span_per_batch", ".3f"))
    row("RSS after imports -> peak MiB, main",
        lambda r: f"{r['read0']['rss_base_mb']:,.0f} -> {r['read0']['vmhwm_mb']:,.0f}")
    row("RSS peak MiB, loader: main / worker",
        lambda r: f"{r['read1']['vmhwm_mb']:,.0f} / {r['read1']['worker_vmhwm_mb']:,.0f}")
    row("  its rise in RssAnon / RssFile MiB",
        lambda r: (f"{r['read0']['max_anon_mb'] - r['read0']['base_anon_mb']:+,.0f} / "
                   f"{r['read0']['max_file_mb'] - r['read0']['base_file_mb']:+,.0f}"))
    row("import s (torch before it)", lambda r: fmt_num(r["read0"]["import_library_s"], ".2f"))
    row("random access us/item: contiguous", random_cell("contiguous_us"))
    row("  sorted random / random",
        lambda r: (f"{r['random']['sorted_us']:,.1f} / {r['random']['random_us']:,.1f}"
                   if r["random"]["supported"] else "no"))
    row("  open + first item ms", random_cell("open_first_ms", ",.0f"))
    row("MiB outside the set: write/reads",
        lambda r: " / ".join(f"{r[k]['outside_bytes'] / 2**20:,.1f}"
                             for k in ("write", "read0", "read1", "random")))
    row("killed write: reader of the tmp dir", readback_cell)
    widths = [max(len(str(r[c])) for r in rows) for c in range(len(rows[0]))]
    return "\n".join("  ".join(str(c).ljust(w) if k == 0 else str(c).rjust(w)
                               for k, (c, w) in enumerate(zip(r, widths, strict=True))) for r in rows)


def litdata_variants_table(r: dict) -> str:
    """litdata's main-process epoch and random access under the shuffle / decode settings."""
    lines = [f"{'litdata, main process':<44} {'img/s':>9}  {'classes/64':>12}  {'span/64':>10}  "
             "random access us/item: contiguous / sorted / random"]
    for name, read, rand in (("defaults (window 256, decode auto)", "read0", "random"),
                             ("batch_decode=0", "read0_item", "random_item"),
                             ("item_shuffle_window='full'", "read0full", None),
                             ("item_shuffle_window='full', batch_decode=0", "read0full_item", None)):
        e = r.get(read, {})
        ra = r.get(rand, {}) if rand else {}
        access = (f"{ra['contiguous_us']:,.0f} / {ra['sorted_us']:,.0f} / {ra['random_us']:,.0f}"
                  if ra.get("supported") else "-")
        rise = (f"  RSS +{e['vmhwm_mb'] - e['rss_base_mb']:,.0f} MiB (anon "
                f"{e['max_anon_mb'] - e['base_anon_mb']:+,.0f}, "
                f"file {e['max_file_mb'] - e['base_file_mb']:+,.0f})"
                if "vmhwm_mb" in e else "")
        lines.append(f"{name:<44} {e.get('img_s', 0):>9,.0f}  {e.get('classes_per_batch', 0):>12.2f}  "
                     f"{e.get('span_per_batch', 0):>10.3f}  {access}{rise}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="images (default: %(default)s, about 550 MB)")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_N} images: a smoke test, not a measurement")
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated (default: %(default)s)")
    parser.add_argument("--shard-mb", type=int, default=64,
                        help="shard / chunk size limit in MiB (default: 64)")
    parser.add_argument("--dir",
                        help="where to write the sets (default: a new temporary folder, removed after)")
    parser.add_argument("--keep", action="store_true", help="keep the written sets")
    parser.add_argument("--json", help="write the results here as JSON")
    # one phase, in a subprocess of the driver
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--format", choices=FORMATS, help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--crash", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase:
        result = PHASES[args.phase](args)
        print("RESULT " + json.dumps(result), flush=True)
        return 0

    n = QUICK_N if args.quick else args.n
    shard_mb = 1 if args.quick else args.shard_mb
    say = lambda msg: print(msg, flush=True)  # noqa: E731
    base = Path(args.dir or tempfile.mkdtemp(prefix="bd-formats-"))
    base.mkdir(parents=True, exist_ok=True)
    say(f"{n} images {SHAPE} uint8 ({n * int(np.prod(SHAPE)) / 1e6:,.0f} MB raw), shards <= {shard_mb} MiB, "
        f"in {base}; cpu {os.cpu_count()}, loadavg {Path('/proc/loadavg').read_text().split()[:3]}")
    results, skipped = {}, {}
    for fmt in args.formats.split(","):
        why = importable(fmt)
        if why:
            skipped[fmt] = why
            say(f"[{fmt}] skipped: {MODULES[fmt]} does not import ({why})")
            continue
        start = time.perf_counter()
        results[fmt] = run_format(fmt, base, n, shard_mb, say)
        results[fmt]["total_s"] = time.perf_counter() - start
        if not args.keep:
            shutil.rmtree(base / fmt, ignore_errors=True)
            shutil.rmtree(base / f"{fmt}-checks", ignore_errors=True)
    if not args.keep and not args.dir:
        shutil.rmtree(base, ignore_errors=True)
    say(f"\nloadavg after: {Path('/proc/loadavg').read_text().split()[:3]}\n")
    if results:
        say(table(results))
    if "read0full" in results.get("litdata", {}):
        say("\n" + litdata_variants_table(results["litdata"]))
    for fmt, r in results.items():
        say(f"\n[{fmt} {r['version']}] total {r['total_s']:.0f} s")
        say(f"  write: {json.dumps(r['write'])}")
        for key in ("read0", "read0full", "read0full_item", "read0_item", "read1", "random", "random_item"):
            if key in r:
                say(f"  {key}: {json.dumps(r[key])}")
        say(f"  interrupted: {json.dumps(r.get('interrupted'))}")
        for k, v in (r.get("checks") or {}).items():
            if k not in ("outside_files", "new_inside", "wall_s", "outside_bytes"):
                say(f"  check: {k}: {v}")
    for fmt, why in skipped.items():
        say(f"[{fmt}] skipped: {why}")
    if args.json:
        Path(args.json).write_text(json.dumps({"n": n, "shard_mb": shard_mb, "results": results,
                                               "skipped": skipped}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
