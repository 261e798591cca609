"""Transfer sets: named subsets of unlabeled sets, saved as a manifest over their sources (never a
copy of the images). A run trains on one as ``--unlabeled subset:NAME``. Each lives in its own
folder under the runs root (``RunsRoot.transfer_set``): ``manifest.json`` (sources, sizes,
provenance) and ``rows.npz`` (the rows kept of each source's train split)."""
from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..data.collection_sets import in_memory_limit
from ..data.imageset import ImageSet
from ..data.pairing import PairedData, convert_images
from ..data.registry import TRANSFER_SET as SPEC_PREFIX
from ..data.streamed import StreamedImages
from ..errors import DataError, UserError
from ..runs import TMP, RunsRoot, read_json, temporary, write_json_atomic

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MANIFEST, ROWS = "manifest.json", "rows.npz"


class TransferSetError(UserError):
    """A transfer set that cannot be saved, found or used; the message says why and what to do."""


@dataclass(frozen=True)
class Part:
    """The rows a transfer set keeps of one source's train split."""
    source: str  # a dataset spec a run accepts: a name in DATASETS or folder:PATH (never a subset)
    rows: np.ndarray  # int64, sorted, unique
    source_size: int | None = None  # the source's size when saved, checked when it is loaded


@dataclass
class TransferSet:
    name: str
    parts: list[Part]
    provenance: dict  # where it came from: run, model, how (strategy, filters, selection), details
    created: float = field(default_factory=time.time)

    @property
    def size(self) -> int:
        return sum(len(p.rows) for p in self.parts)

    @property
    def spec(self) -> str:
        """What a run's ``unlabeled`` field takes to train on it."""
        return spec_of(self.name)

    @property
    def sources(self) -> list[str]:
        return [p.source for p in self.parts]

    def describe(self) -> str:
        """One line for people: size, sources and how it was made."""
        sources = " + ".join(f"{len(p.rows):,} of {p.source}" for p in self.parts)
        how = self.provenance.get("how", "saved")
        run = self.provenance.get("run")
        return f"{self.size:,} images ({sources}); {how}" + (f" from run {run}" if run else "")


def spec_of(name: str) -> str:
    return f"{SPEC_PREFIX}{name}"


def is_transfer_set(spec: str) -> bool:
    return spec.startswith(SPEC_PREFIX)


def name_of(spec: str) -> str:
    return spec.removeprefix(SPEC_PREFIX)


def check_name(name: str) -> str:
    if not NAME.fullmatch(name or ""):
        raise TransferSetError(f"transfer set name {name!r} is not usable: use 1 to 64 letters, digits, "
                               "'.', '_' or '-', starting with a letter or digit")
    return name


def _root(root: RunsRoot | None) -> RunsRoot:
    return root or RunsRoot.default()


def save(name: str, parts: list[Part], provenance: dict, root: RunsRoot | None = None) -> TransferSet:
    """Write a new transfer set; an existing name is refused (delete it first), so a run that
    trained on a set can always be traced to the rows it used."""
    check_name(name)
    parts = [Part(p.source, np.unique(np.asarray(p.rows, dtype=np.int64)), p.source_size)
             for p in parts if len(p.rows)]
    if not parts:
        raise TransferSetError(f"transfer set {name!r} would be empty: select at least one unlabeled image")
    if any(is_transfer_set(p.source) for p in parts):
        raise ValueError("a part's source must be a dataset, not another transfer set")
    folder = _root(root).transfer_set(name)
    if folder.exists():
        raise TransferSetError(f"a transfer set named {name!r} exists already: choose another name, or "
                               f"delete it first (python -m bdcore subsets delete {name})")
    ts = TransferSet(name, parts, provenance)
    staging = temporary(folder)  # written whole, then renamed into place: never half a set
    staging.mkdir(parents=True)
    np.savez(staging / ROWS, **{f"part{i}": p.rows for i, p in enumerate(parts)})
    write_json_atomic(staging / MANIFEST, {
        "name": name, "created": ts.created, "size": ts.size, "provenance": provenance,
        "parts": [{"source": p.source, "count": len(p.rows), "source_size": p.source_size} for p in parts]})
    try:
        staging.rename(folder)
    except OSError as err:  # another session saved the same name a moment before
        shutil.rmtree(staging, ignore_errors=True)
        raise TransferSetError(f"a transfer set named {name!r} exists already: choose another name") from err
    return ts


def _manifest(name: str, root: RunsRoot | None) -> dict:
    folder = _root(root).transfer_set(check_name(name))
    if not (folder / MANIFEST).exists():
        known = ", ".join(ts.name for ts in list_transfer_sets(root)) or "none saved yet"
        raise TransferSetError(f"no transfer set named {name!r} (saved: {known})")
    return read_json(folder / MANIFEST, f"transfer set {name}",
                     f"delete the folder {folder} and save the set again")


def provenance(name: str, root: RunsRoot | None = None) -> dict:
    """Where a transfer set came from (its manifest only: cheap enough for every redraw of a page)."""
    return dict(_manifest(name, root).get("provenance") or {})


def load(name: str, root: RunsRoot | None = None) -> TransferSet:
    manifest = _manifest(name, root)
    folder = _root(root).transfer_set(name)
    try:
        with np.load(folder / ROWS) as saved:
            parts = [Part(str(p["source"]), saved[f"part{i}"].astype(np.int64), p.get("source_size"))
                     for i, p in enumerate(manifest["parts"])]
        return TransferSet(name, parts, dict(manifest.get("provenance") or {}), float(manifest["created"]))
    except (OSError, KeyError, TypeError, ValueError) as err:
        raise DataError(f"transfer set {name} is damaged ({type(err).__name__}: {err}); delete the folder "
                        f"{folder} and save the set again") from err


def list_transfer_sets(root: RunsRoot | None = None) -> list[TransferSet]:
    """Every saved transfer set, newest first (a damaged one is left out, not fatal to the list)."""
    folder = _root(root).transfer_sets
    found = []
    for path in sorted(folder.glob(f"*/{MANIFEST}")) if folder.is_dir() else []:
        if path.parent.name.endswith(TMP):  # being written, or left by a save that was killed
            continue
        try:
            found.append(load(path.parent.name, root))
        except UserError:
            continue
    return sorted(found, key=lambda ts: ts.created, reverse=True)


def delete(name: str, root: RunsRoot | None = None) -> None:
    load(name, root)  # a clear error for a name that is not there
    shutil.rmtree(_root(root).transfer_set(name))


def run_origin(unlabeled: str, data: PairedData,
               root: RunsRoot | None = None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Where each row of a run's unlabeled set comes from: the sources, and per row the source it
    is in and its row there (a run on a transfer set, or with ``unlabeled_limit``, maps through)."""
    if is_transfer_set(unlabeled):
        ts = load(name_of(unlabeled), root)
        sources = ts.sources
        part = np.concatenate([np.full(len(p.rows), i, dtype=np.int64) for i, p in enumerate(ts.parts)])
        rows = np.concatenate([p.rows for p in ts.parts])
    else:
        total = len(data.unlabeled_x) if data.unlabeled_rows is None else int(data.unlabeled_rows.max()) + 1
        sources, part, rows = [unlabeled], np.zeros(total, dtype=np.int64), np.arange(total)
    if data.unlabeled_rows is not None:  # the run drew a random subset (unlabeled_limit)
        picked = data.unlabeled_rows.cpu().numpy()
        part, rows = part[picked], rows[picked]
    return sources, part, rows


def save_from_run(session, rows: np.ndarray, name: str, provenance: dict,
                  root: RunsRoot | None = None) -> TransferSet:
    """Save ``rows`` of an explored run's unlabeled set (``session``: an ExploreSession) as a
    transfer set over the run's sources, with the run named in its provenance."""
    rows = np.unique(np.asarray(rows, dtype=np.int64))
    if len(rows) and (rows[0] < 0 or rows[-1] >= len(session.data.unlabeled_x)):
        raise TransferSetError(f"rows must be from 0 to {len(session.data.unlabeled_x) - 1}")
    sources, part, source_rows = run_origin(session.config.unlabeled, session.data, root)
    whole = session.data.unlabeled_rows is None and not is_transfer_set(session.config.unlabeled)
    parts = [Part(source, source_rows[rows][part[rows] == i],
                  len(session.data.unlabeled_x) if whole else None) for i, source in enumerate(sources)]
    return save(name, parts, {"run": session.run_id, **provenance}, root)


def union(specs: list[str], name: str, root: RunsRoot | None = None,
          sizes: dict[str, int] | None = None) -> TransferSet:
    """One transfer set holding every image of ``specs``: saved transfer sets (``subset:NAME``)
    and whole datasets (``sizes`` gives each whole dataset's train-split size)."""
    if len(specs) < 2:
        raise TransferSetError("a union needs at least two sets")
    rows: dict[str, list[np.ndarray]] = {}
    for spec in specs:
        if is_transfer_set(spec):
            for p in load(name_of(spec), root).parts:
                rows.setdefault(p.source, []).append(p.rows)
        else:
            rows.setdefault(spec, []).append(np.arange((sizes or {})[spec]))
    parts = [Part(source, np.unique(np.concatenate(r))) for source, r in rows.items()]
    return save(name, parts, {"how": "union", "details": " + ".join(specs)}, root)


def _materialised(images, source: str):
    """A streamed part read into memory, so parts can be joined; refused when too big for that."""
    if not isinstance(images, StreamedImages):
        return images
    if len(images) * int(np.prod(images.shape[1:])) * 4 > in_memory_limit():
        raise DataError(f"{source}: a transfer set joining a large prepared collection with other sources "
                        "is not supported (it would not fit in memory): save one transfer set per source")
    return images[torch.arange(len(images))]


def load_images(name: str, split: str, load_source, shape: tuple[int, int, int] | None = None) -> ImageSet:
    """The images of transfer set ``name`` as one unlabeled ImageSet: each source loaded with
    ``load_source(source, shape)`` (the data registry's loader), its rows kept, the parts brought to
    one shape and joined. A transfer set has a train split only."""
    if split != "train":
        raise TransferSetError(f"transfer set {name!r} is an unlabeled set: it has no {split} split, so "
                               "use it as the unlabeled set of a run, not the labeled one")
    ts = load(name)
    sets = []
    for p in ts.parts:
        source = load_source(p.source, shape)
        changed = p.source_size is not None and len(source) != p.source_size
        if changed or (len(p.rows) and p.rows[-1] >= len(source)):
            raise DataError(f"transfer set {name} was saved from {p.source_size or 'more'} images of "
                            f"{p.source}, which now has {len(source):,} (is another data folder in use?); "
                            "save it again")
        sets.append(source.subset(torch.from_numpy(p.rows)))
    note = f"transfer set {name}: {ts.describe()}"
    if len(sets) == 1:
        s = sets[0]
        return ImageSet(spec_of(name), "train", s.images, s.labels, s.classes, f"{note}; source {s.source}",
                        s.demo_subset, [note, *s.notes])
    c, h, w = shape or sets[0].shape
    images = torch.cat([convert_images(_materialised(s.images, s.name), c, (h, w)) for s in sets])
    labelled = all(s.labels is not None for s in sets)
    labels, classes, offset = [], [], 0
    for s in sets if labelled else []:
        labels.append(s.labels + offset)
        classes += [f"{s.name}: {k}" for k in s.classes]
        offset += len(s.classes)
    return ImageSet(spec_of(name), "train", images, torch.cat(labels) if labelled else None, classes, note,
                    any(s.demo_subset for s in sets), [note, *(n for s in sets for n in s.notes)])
