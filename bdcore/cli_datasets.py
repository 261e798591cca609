"""`python -m bdcore datasets ...`: where each dataset is found, and the prepared-dataset cache
(list, prepare a collection ahead of a run, delete)."""
from __future__ import annotations

import argparse
import json
import sys
import time

from tqdm import tqdm

from .config import MAX_IMAGE_SIZE, MIN_IMAGE_SIZE
from .data import DATASETS, locate_dataset
from .data.collection import open_collection
from .data.collection_sets import collection_shape, collection_source, load_collection
from .data.prepared import PreparedSet, cache_root, delete_prepared, list_prepared
from .errors import ConfigError


def _located() -> list[dict]:
    rows = []
    for name in DATASETS:
        found, searched = locate_dataset(name)
        rows.append({"name": name, "found": found is not None,
                     "source": found.describe() if found else None,
                     "demo_subset": bool(found and found.demo_subset),
                     "searched": [str(loc.path) for loc in searched]})
    return rows


def _prepared_row(p: PreparedSet) -> dict:
    return {"key": p.key, "source": p.source, "split": p.split, "layout": p.layout,
            "shape": list(p.shape), "images": p.count, "skipped": p.skipped_count, "bytes": p.bytes,
            "seconds": round(p.seconds, 1), "created": p.created, "path": str(p.path)}


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def cmd_list(args: argparse.Namespace) -> int:
    located, prepared = _located(), [_prepared_row(p) for p in list_prepared()]
    if args.json:
        print(json.dumps({"datasets": located, "prepared": prepared}))
        return 0
    for row in located:
        if row["found"]:
            extra = "  (demo subset only: set BD_DATA_DIR for the full set)" if row["demo_subset"] else ""
            print(f"{row['name']:<15} {row['source']}{extra}")
        else:
            print(f"{row['name']:<15} not found locally; searched {', '.join(row['searched'])}")
    print("folder:PATH     any image collection: a folder (class sub-folders = labels, none = "
          "unlabeled), a zip or tar archive, a list file (.txt) or a CSV manifest (path,label)")
    print(f"\nprepared cache ({cache_root()}): {len(prepared)} set(s)")
    for row in prepared:
        shape = "x".join(map(str, row["shape"]))
        skipped = f", {row['skipped']} skipped" if row["skipped"] else ""
        print(f"  {row['key']}  {row['source']} ({row['split']}) {shape}: {row['images']:,} images"
              f"{skipped}, {_size(row['bytes'])}, prepared in {row['seconds']:.0f} s, "
              f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(row['created']))}")
    return 0


def _shape(text: str | None) -> tuple[int, int, int] | None:
    if text is None:
        return None
    try:
        c, h, w = (int(v) for v in text.lower().replace("x", ",").split(","))
    except ValueError:
        raise ConfigError(f"--shape wants C,H,W such as 3,96,96, got {text!r}") from None
    if c not in (1, 3) or not all(MIN_IMAGE_SIZE <= side <= MAX_IMAGE_SIZE for side in (h, w)):
        raise ConfigError(f"--shape: 1 or 3 channels and {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE} pixels a "
                          f"side, got {text!r}")
    return c, h, w


def cmd_prepare(args: argparse.Namespace) -> int:
    """Prepare every split of a collection now, so that a run (or a class) starts at once."""
    if args.size is not None and not MIN_IMAGE_SIZE <= args.size <= MAX_IMAGE_SIZE:
        raise ConfigError(f"--size must be from {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE} pixels, got {args.size}")
    collection = open_collection(collection_source(args.spec))
    shape = _shape(args.shape) or collection_shape(collection, args.size)
    for split in collection.splits:
        with tqdm(desc=f"{args.spec} ({split})", unit="img", file=sys.stderr, disable=args.json) as bar:
            def progress(done: int, total: int, bar: tqdm = bar) -> None:
                bar.total = total
                bar.update(done - bar.n)
            images = load_collection(args.spec, split, shape=shape, progress=progress, stream=True)
        for note in images.notes:
            tqdm.write(f"note: {note}", file=sys.stderr)
    rows = [_prepared_row(p) for p in list_prepared() if p.source == args.spec and tuple(p.shape) == shape]
    print(json.dumps(rows) if args.json else "\n".join(
        f"{r['key']}  {r['split']}: {r['images']:,} images {'x'.join(map(str, r['shape']))}" for r in rows))
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    keys = [p.key for p in list_prepared()] if args.all else args.keys
    if not keys:
        raise ConfigError("name the prepared sets to delete (keys from `python -m bdcore datasets`) or "
                          "give --all")
    for key in keys:
        delete_prepared(key)
        print(f"deleted {key}")
    return 0


def add_datasets_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("datasets", help="datasets, where each is found, and the prepared cache",
                            description="List every dataset and where it would be read from, and the "
                                        "image collections prepared in the cache ($BD_CACHE_DIR, "
                                        "default ./cache).")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=cmd_list)
    commands = parser.add_subparsers(dest="datasets_command")
    p = commands.add_parser("prepare", help="decode a collection into the cache now",
                            description="Decode every split of an image collection into the prepared "
                                        "cache, with a progress bar; runs then start without waiting.")
    p.add_argument("spec", help="folder:PATH, or caltech256, imagenet, openimages")
    p.add_argument("--size", type=int, default=None,
                   help="square side in pixels (default: the first image's size, at most 64)")
    p.add_argument("--shape", default=None,
                   help="C,H,W instead of --size: the labeled set's shape when this is an unlabeled set "
                        "(mnist: 1,28,28; cifar10: 3,32,32)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_prepare)
    p = commands.add_parser("delete", help="delete prepared sets from the cache",
                            description="Delete prepared sets; a run that needs one prepares it again.")
    p.add_argument("keys", nargs="*", help="keys as listed by `python -m bdcore datasets`")
    p.add_argument("--all", action="store_true", help="delete every prepared set")
    p.set_defaults(func=cmd_delete)
