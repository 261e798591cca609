"""Sprite atlases for the explorer's hover images: every image of a run's labeled test set and of
its unlabeled set as small tiles on a few PNG sheets, written once per run into the folder the app
serves statically. The browser fetches a sheet the first time a point on it is hovered and crops
the point's tile from it (assets/hover_thumbnails.js), so no image travels with the chart: a
70,000-point chart has hover images for every point at a cost of a few megabytes fetched on use."""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .engine import SETS
from .source import ExploreSession

TILE = 32  # the largest tile edge: MNIST's 28 px stay as they are, larger images are shrunk to it
PER_ROW = 100  # tiles per sheet row
PER_SHEET = 10_000  # tiles per sheet: MNIST's test set is one sheet, its train set six (~1.5 MB each)
CHUNK = 2_000  # images decoded at a time while writing a sheet


@dataclass(frozen=True)
class Atlas:
    """Where a run's sheets are and how they are cut; ``url`` + ``/{set}-{sheet}.png``."""
    url: str  # as the browser asks for it, e.g. /app/static/atlas/3f2a.../
    tile: int  # edge of one tile, px
    per_row: int
    per_sheet: int
    counts: dict[str, int]  # images per set

    def to_dict(self) -> dict:
        return asdict(self)


def atlas_key(session: ExploreSession) -> str:
    """A name for the run's atlas folder that does not reveal its path: the run and its data."""
    parts = {"run": session.run_id, "path": str(session.path.resolve()),
             "pair": str(session.config.pair_spec()), "tile": TILE,
             "sizes": [len(session.data.test_x), len(session.data.unlabeled_x)]}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


def tile_size(image_shape: tuple[int, ...]) -> int:
    return min(TILE, max(image_shape[-2:]))


def _tiles(images: np.ndarray, edge: int) -> np.ndarray:
    """uint8 (N, C, H, W) -> (N, edge, edge) grey or (N, edge, edge, 3) colour tiles."""
    from PIL import Image

    arr = images[:, 0] if images.shape[1] == 1 else images.transpose(0, 2, 3, 1)
    if arr.shape[1:3] == (edge, edge):
        return arr
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(a)).resize((edge, edge), Image.BILINEAR))
                     for a in arr])


def _write_sheet(session: ExploreSession, which: str, sheet: int, total: int, edge: int, path: Path) -> None:
    from PIL import Image

    start, stop = sheet * PER_SHEET, min((sheet + 1) * PER_SHEET, total)
    rows = -(-(stop - start) // PER_ROW)
    colour = session.data.input_shape[0] != 1
    canvas = np.zeros((rows * edge, PER_ROW * edge, *((3,) if colour else ())), np.uint8)
    for lo in range(start, stop, CHUNK):
        hi = min(lo + CHUNK, stop)
        tiles = _tiles(session.images(which, np.arange(lo, hi)), edge)
        for i, tile in enumerate(tiles, lo - start):
            r, c = divmod(i, PER_ROW)
            canvas[r * edge:(r + 1) * edge, c * edge:(c + 1) * edge] = tile
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    Image.fromarray(canvas).save(tmp, format="PNG", compress_level=6)
    os.replace(tmp, path)  # a browser never fetches half a sheet


def write_atlas(session: ExploreSession, folder: Path, url_prefix: str) -> Atlas:
    """The run's atlas under ``folder``/<key>/ (written unless already there; several app
    processes or sessions writing at once write it once), served at ``url_prefix``<key>/."""
    key = atlas_key(session)
    out = folder / key
    out.mkdir(parents=True, exist_ok=True)
    counts = {"labeled": len(session.data.test_x), "unlabeled": len(session.data.unlabeled_x)}
    edge = tile_size(session.data.input_shape)
    with open(out / ".lock", "a") as handle:  # flock is released when it closes
        fcntl.flock(handle, fcntl.LOCK_EX)
        for which in SETS:
            for sheet in range(-(-counts[which] // PER_SHEET)):
                path = out / f"{which}-{sheet}.png"
                if not path.exists():
                    _write_sheet(session, which, sheet, counts[which], edge, path)
    return Atlas(f"{url_prefix}{key}/", edge, PER_ROW, PER_SHEET, counts)
