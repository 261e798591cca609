"""Image collections: which images a source holds (``open_collection``) and one image of it decoded
safely at a target size (``decode``). Pure functions; the prepared-dataset cache calls them.

A source is a folder, a CSV manifest, a list file or an archive read in place. Folders and
archives are read by the same rules (a folder's files or an archive's member paths):

- hidden names (``.x``) and ``__MACOSX`` are ignored, and so is every file without an image suffix;
- a folder whose only content is one sub-folder is a wrapper (``zip -r pets.zip pets``) and is
  looked through;
- ``train/<class>/...`` beside ``test/<class>/...``, ``val/`` or ``validation/`` (ImageNet's
  layout): labelled, with its own test split (test/ preferred); its classes must all be in train/.
  If the test/val folders have no class sub-folders (ImageNet's raw val/ and test/), they are
  ignored and a fifth of train/ is held out;
- only sub-folders holding images: class folders (images inside may nest deeper), a seeded
  stratified fifth held out as the test split exactly as ``folder.py`` does;
- image files and sub-folders side by side, or only split-named sub-folders (OpenImages'
  train/, validation/, test/ of loose images): one unlabeled collection of every image below;
- image files only: a flat unlabeled folder.

Entries are sorted by their path's parts (as ``sorted`` sorts ``Path``s), class by class in class
order when labelled; a manifest or list keeps its own order.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import stat
import struct
import tarfile
import threading
import warnings
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from math import ceil
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from ..errors import DataError

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
ZIP_SUFFIXES = (".zip",)
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")
LIST_SUFFIXES = (".txt", ".lst")
HOLDOUT_EVERY = 5  # one image in five goes to the test split, as in folder.py
HELD_OUT_NAMES = ("test", "val", "validation")  # in order of preference
SPLIT_NAMES = frozenset({"train", *HELD_OUT_NAMES})
MAX_MEMBER_BYTES = 64 * 2**20  # an archive member is read whole into memory
MAX_DEPTH = 64  # deeper folders or member paths are ignored: no real collection nests that far
ACCEPTED = ("a folder of images, a .csv manifest (path,label), a .txt or .lst list of image paths, "
            "or a .zip, .tar, .tar.gz or .tgz archive")


class CollectionError(DataError):
    """A whole source that cannot be used; the message names the path and what to do."""


class SkippedImage(Exception):
    """One image that cannot be used; ``str(err)`` is the short reason shown next to its name."""


@dataclass(frozen=True)
class Entry:
    """One image in a collection: a file on disk, or a member of an archive."""

    path: str  # file path; for an archive member, the archive's path
    member: str | None  # the member name inside the archive, else None
    size: int  # bytes of the file or the member uncompressed; 0 for a listed file that is missing
    mtime: float  # the file's (or archive's) mtime; 0.0 for a listed file that is missing

    def name(self) -> str:
        """What a person sees in a "skipped: ..." list: ``folder/file.jpg`` or ``archive.zip:member``."""
        if self.member is not None:
            return f"{os.path.basename(self.path)}:{self.member}"
        parent, base = os.path.split(self.path)
        return os.path.join(os.path.basename(parent), base)


@dataclass
class Collection:
    root: str  # what the user gave
    layout: str  # how the source was read, e.g. "class folders", "zip archive: flat folder"
    classes: list[str]  # [] when unlabeled
    splits: dict[str, list[Entry]]  # "train" always; "test" when labelled
    labels: dict[str, np.ndarray | None]  # int64 per entry of each split; None when unlabeled

    def labeled(self) -> bool:
        return bool(self.classes)


# --------------------------------------------------------------------------------------------
# Finding the images of a source
# --------------------------------------------------------------------------------------------

@dataclass
class _Node:
    """A folder (or an archive's folder) reduced to what matters: its image files and the
    sub-folders that hold at least one image somewhere below."""

    files: dict[str, Entry] = field(default_factory=dict)
    dirs: dict[str, _Node] = field(default_factory=dict)

    def entries(self) -> list[Entry]:
        found: list[Entry] = []
        for name in sorted(self.files.keys() | self.dirs.keys()):
            if name in self.files:
                found.append(self.files[name])
            if name in self.dirs:
                found += self.dirs[name].entries()
        return found

    def is_class_folders(self) -> bool:
        return not self.files and bool(self.dirs)


def _is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def _inside(real: str, root_real: str) -> bool:
    return real.startswith(root_real.rstrip(os.sep) + os.sep)


def _scan_folder(folder: str, root_real: str, depth: int = 0) -> _Node:
    """One ``scandir`` per folder and one stat per image file. A symlinked file counts only if it
    resolves inside the root; symlinked sub-folders are not followed (they may loop)."""
    node = _Node()
    try:
        with os.scandir(folder) as listing:
            children = list(listing)
    except FileNotFoundError:  # removed while we looked
        return node
    except OSError as err:
        raise CollectionError(f"cannot read the folder {folder} ({err.strerror or err}); fix its "
                              "permissions or remove it") from err
    for child in children:
        if child.name.startswith("."):
            continue
        try:
            link = child.is_symlink()
            if child.is_dir(follow_symlinks=False):
                if depth < MAX_DEPTH:
                    sub = _scan_folder(child.path, root_real, depth + 1)
                    if sub.files or sub.dirs:
                        node.dirs[child.name] = sub
            elif _is_image_name(child.name) and child.is_file():
                if link and not _inside(os.path.realpath(child.path), root_real):
                    continue
                info = child.stat()
                node.files[child.name] = Entry(child.path, None, info.st_size, info.st_mtime)
        except FileNotFoundError:  # removed while we looked, or a dangling link
            continue
    return node


_DRIVE = re.compile(r"[A-Za-z]:")  # a Windows absolute name: C:/...


def _member_parts(name: str) -> list[str] | None:
    """The path parts of an archive member that may be an image, or None for one to ignore:
    absolute or ``..`` names (never read), hidden or ``__MACOSX`` parts, non-image suffixes."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if (name.startswith("/") or not parts or len(parts) > MAX_DEPTH or ".." in parts
            or any(p.startswith(".") or p == "__MACOSX" for p in parts) or _DRIVE.fullmatch(parts[0])
            or not _is_image_name(parts[-1])):
        return None
    return parts


def _tree(members: Iterable[tuple[str, int]], archive: str, mtime: float) -> _Node:
    root = _Node()
    for name, size in members:
        parts = _member_parts(name)
        if parts is None:
            continue
        node = root
        for part in parts[:-1]:
            node = node.dirs.setdefault(part, _Node())
        node.files[parts[-1]] = Entry(archive, name, size, mtime)  # a repeated name: the last wins
    return root


def _zip_members(path: str) -> list[tuple[str, int]]:
    with zipfile.ZipFile(path) as archive:
        return [(i.filename, i.file_size) for i in archive.infolist()
                if not i.is_dir() and not stat.S_ISLNK(i.external_attr >> 16)]


def _tar_members(path: str) -> list[tuple[str, int]]:
    with tarfile.open(path, "r:*") as archive:
        return [(m.name, m.size) for m in archive if m.isfile()]  # links are never followed


def _holdout(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices: folder.py's ``_holdout`` for both splits in one pass, same seed and
    same draws, so a folder keeps the test split it had."""
    rng = np.random.default_rng(0)
    train, test = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        test.append(members[::HOLDOUT_EVERY])
        train.append(np.setdiff1d(members, test[-1]))
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _held_out(layout: str, classes: list[str], entries: list[Entry], labels: np.ndarray) -> Collection:
    train, test = _holdout(labels)
    return Collection("", layout, classes,
                      {"train": [entries[i] for i in train], "test": [entries[i] for i in test]},
                      {"train": labels[train], "test": labels[test]})


def _by_class(node: _Node, classes: list[str]) -> tuple[list[Entry], np.ndarray]:
    entries: list[Entry] = []
    labels: list[int] = []
    for index, cls in enumerate(classes):
        if cls in node.dirs:
            members = node.dirs[cls].entries()
            entries += members
            labels += [index] * len(members)
    return entries, np.asarray(labels, dtype=np.int64)


def _unlabeled(layout: str, entries: list[Entry]) -> Collection:
    return Collection("", layout, [], {"train": entries}, {"train": None})


def _no_images(where: str) -> CollectionError:
    return CollectionError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {where}; add images "
                           "or choose another folder")


def _interpret(node: _Node, where: str) -> Collection:
    """The layout rules of the module docstring, on a folder or an archive alike."""
    while not node.files and len(node.dirs) == 1:
        node = next(iter(node.dirs.values()))
    if not node.files and not node.dirs:
        raise _no_images(where)
    split_named = bool(node.dirs) and node.dirs.keys() <= SPLIT_NAMES
    train = node.dirs.get("train")
    if train is not None and train.is_class_folders() and (
            split_named or any(n in node.dirs for n in HELD_OUT_NAMES)):
        return _train_test(node, train, where)
    if split_named or (node.files and node.dirs):
        return _unlabeled("nested folder", node.entries())
    if node.files:
        return _unlabeled("flat folder", node.entries())
    classes = sorted(node.dirs)
    return _held_out("class folders", classes, *_by_class(node, classes))


def _train_test(node: _Node, train: _Node, where: str) -> Collection:
    classes = sorted(train.dirs)
    held = next((n for n in HELD_OUT_NAMES if n in node.dirs and node.dirs[n].is_class_folders()), None)
    if held is None:  # test/ or val/ of loose images: no labels to test against
        return _held_out("class folders", classes, *_by_class(train, classes))
    extra = sorted(node.dirs[held].dirs.keys() - set(classes))
    if extra:
        raise CollectionError(f"{where}: {held}/ has classes missing from train/: {', '.join(extra)}; "
                              "add them to train/ or remove them")
    train_entries, train_labels = _by_class(train, classes)
    test_entries, test_labels = _by_class(node.dirs[held], classes)
    return Collection("", f"train/{held} class folders", classes,
                      {"train": train_entries, "test": test_entries},
                      {"train": train_labels, "test": test_labels})


def _listed(base: str, name: str) -> Entry:
    """A file named by a manifest or a list; one that is missing is kept (the decoder skips it)."""
    path = os.path.join(base, os.path.expanduser(name))
    try:
        info = os.stat(path)
    except OSError:
        return Entry(path, None, 0, 0.0)
    return Entry(path, None, info.st_size, info.st_mtime)


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:  # -sig: Excel's byte order mark
            return f.read()
    except UnicodeDecodeError as err:
        raise CollectionError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start}); save it "
                              "as UTF-8") from err
    except OSError as err:
        raise CollectionError(f"cannot read {path} ({err.strerror or err}); check the path") from err


def _read_manifest(path: str) -> Collection:
    """``path,label`` rows; a first row whose path has no image suffix is a header. Labels that are
    all integers are sorted as numbers, else as names."""
    reader = csv.reader(io.StringIO(_read_text(path)))
    rows: list[tuple[str, str]] = []
    first = True
    for row in reader:
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if len(cells) != 2 or not all(cells):
            raise CollectionError(f"{path}: line {reader.line_num} is not 'path,label' ({len(cells)} "
                                  "columns or an empty one); fix it or remove it")
        if not (first and not _is_image_name(cells[0])):
            rows.append((cells[0], cells[1]))
        first = False
    if not rows:
        raise CollectionError(f"{path}: no 'path,label' rows; add images to the manifest or choose "
                              "another source")
    names = [label for _, label in rows]
    try:
        numbers = {n: int(n) for n in names}
        ordered = sorted(set(numbers.values()))
        classes = [str(v) for v in ordered]
        index = {n: ordered.index(v) for n, v in numbers.items()}
    except ValueError:
        classes = sorted(set(names))
        index = {n: i for i, n in enumerate(classes)}
    base = os.path.dirname(path)
    entries = [_listed(base, p) for p, _ in rows]
    labels = np.asarray([index[n] for n in names], dtype=np.int64)
    return _held_out("csv manifest", classes, entries, labels)


def _read_list(path: str) -> Collection:
    """One image path a line; blank lines and ``#`` comments are skipped."""
    lines = (line.strip() for line in _read_text(path).splitlines())
    names = [line for line in lines if line and not line.startswith("#")]
    if not names:
        raise CollectionError(f"{path}: no image paths listed; add one path a line or choose another "
                              "source")
    base = os.path.dirname(path)
    return _unlabeled("list file", [_listed(base, n) for n in names])


def _read_archive(path: str, kind: str) -> Collection:
    try:
        members = _zip_members(path) if kind == "zip" else _tar_members(path)
    except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError, zlib.error) as err:
        raise CollectionError(f"{path} is not a readable {kind} archive ({err}); replace it or "
                              "extract it and give the folder") from err
    collection = _interpret(_tree(members, path, os.stat(path).st_mtime), path)
    collection.layout = f"{kind} archive: {collection.layout}"
    return collection


def _kind(path: str) -> str | None:
    name = path.lower()
    for kind, suffixes in (("zip", ZIP_SUFFIXES), ("tar", TAR_SUFFIXES), ("csv", (".csv",)),
                           ("list", LIST_SUFFIXES)):
        if name.endswith(suffixes):
            return kind
    return None


def open_collection(path: str | Path) -> Collection:
    """The images a source holds, split and labelled by its layout (module docstring). Nothing is
    decoded; a folder costs one ``scandir`` per sub-folder and one stat per image file."""
    given = str(path)
    where = os.path.abspath(os.path.expanduser(given))
    if os.path.isdir(where):
        collection = _interpret(_scan_folder(where, os.path.realpath(where)), where)
    elif not os.path.exists(where):
        raise CollectionError(f"{where} does not exist; check the path")
    else:
        kind = _kind(where)
        if kind is None:
            raise CollectionError(f"{where} is not a source of images; give {ACCEPTED}")
        if kind == "csv":
            collection = _read_manifest(where)
        elif kind == "list":
            collection = _read_list(where)
        else:
            collection = _read_archive(where, kind)
    collection.root = given
    return collection


def fingerprint(entries: list[Entry]) -> str:
    """Changes when an image is added, removed, renamed, resized or touched; reads no file."""
    digest = hashlib.sha256()
    for e in entries:
        digest.update(repr((e.path, e.member, e.size, e.mtime)).encode("utf-8", "surrogateescape"))
        digest.update(b"\n")
    return digest.hexdigest()[:20]


# --------------------------------------------------------------------------------------------
# Decoding one image safely
# --------------------------------------------------------------------------------------------

# What a damaged or hostile file makes Pillow (or zlib, struct) raise while parsing it. Bugs of this
# module (AttributeError, TypeError) are left out on purpose so that they stay visible.
_BAD_CONTENT = (OSError, ValueError, SyntaxError, struct.error, EOFError, IndexError, KeyError,
                ZeroDivisionError, NotImplementedError, zlib.error)
_SWAPPED = {5, 6, 7, 8}  # EXIF orientations that turn the image by 90 degrees
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


class _Archive:
    """An archive kept open for decoding: re-reading a zip's central directory or a tar's headers
    for every member would make decoding a big archive quadratic."""

    def __init__(self, path: str):
        if path.lower().endswith(ZIP_SUFFIXES):
            self.handle: zipfile.ZipFile | tarfile.TarFile = zipfile.ZipFile(path)
            self.members: dict[str, zipfile.ZipInfo | tarfile.TarInfo] = {
                i.filename: i for i in self.handle.infolist()}
        else:
            self.handle = tarfile.open(path, "r:*")
            self.members = {m.name: m for m in self.handle if m.isfile()}

    def read(self, info: zipfile.ZipInfo | tarfile.TarInfo) -> bytes:
        if isinstance(info, zipfile.ZipInfo):
            with self.handle.open(info) as f:  # type: ignore[union-attr]
                return f.read(MAX_MEMBER_BYTES + 1)
        f = self.handle.extractfile(info)  # type: ignore[union-attr]
        return f.read(MAX_MEMBER_BYTES + 1) if f is not None else b""


_archives: dict[tuple[str, int, int], _Archive] = {}
_archives_lock = threading.Lock()  # tarfile is not thread-safe; a member is read under the lock
_KEEP_OPEN = 4


def _forget_archives() -> None:
    """A forked child must not share its parent's open archives (one file offset for two
    processes) nor a lock another thread held at the fork."""
    global _archives_lock
    _archives.clear()
    _archives_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_archives)


def _member_bytes(entry: Entry) -> bytes:
    try:
        info = os.stat(entry.path)
    except OSError as err:
        raise SkippedImage("missing") from err
    key = (entry.path, info.st_size, info.st_mtime_ns)  # a rewritten archive is opened again
    try:
        with _archives_lock:
            if key not in _archives:
                if len(_archives) >= _KEEP_OPEN:  # the first opened goes first
                    _archives.pop(next(iter(_archives))).handle.close()
                _archives[key] = _Archive(entry.path)
            archive = _archives[key]
            member = archive.members.get(entry.member or "")
            if member is None:
                raise SkippedImage("missing")
            size = member.file_size if isinstance(member, zipfile.ZipInfo) else member.size
            if size > MAX_MEMBER_BYTES:
                raise SkippedImage(f"too large to read safely ({size} bytes)")
            data = archive.read(member)
    except (*_BAD_CONTENT, zipfile.BadZipFile, tarfile.TarError) as err:
        raise SkippedImage("unreadable or truncated") from err
    except RuntimeError as err:  # zipfile: "... is encrypted, password required"
        raise SkippedImage("encrypted") from err
    if len(data) > MAX_MEMBER_BYTES:
        raise SkippedImage(f"too large to read safely (over {MAX_MEMBER_BYTES} bytes)")
    return data


def _source(entry: Entry) -> BinaryIO:
    """The entry's bytes as a file; a missing, empty or special file is skipped before Pillow sees
    it (opening a FIFO would block)."""
    if entry.member is not None:
        data = _member_bytes(entry)
        if not data:
            raise SkippedImage("empty file")
        return io.BytesIO(data)
    try:
        info = os.stat(entry.path)
        if not stat.S_ISREG(info.st_mode):
            raise SkippedImage("not a file")
        if info.st_size == 0:
            raise SkippedImage("empty file")
        return open(entry.path, "rb")
    except (FileNotFoundError, NotADirectoryError) as err:
        raise SkippedImage("missing") from err
    except PermissionError as err:
        raise SkippedImage("permission denied") from err
    except OSError as err:
        raise SkippedImage("unreadable or truncated") from err


def _too_large(err: Exception) -> SkippedImage:
    pixels = _BOMB_PIXELS.search(str(err))
    return SkippedImage(f"too large to decode safely ({pixels.group(1)} pixels)" if pixels
                        else "too large to decode safely")


@contextmanager
def _opened(entry: Entry) -> Iterator[Image.Image]:
    """The entry opened with Pillow (header read, pixels not yet), with every failure the content
    can cause turned into SkippedImage and every Pillow warning silenced (warning filters are
    process-wide: concurrent threads may see each other's)."""
    source = _source(entry)
    with warnings.catch_warnings(), source:
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            try:
                img = Image.open(source)
            except UnidentifiedImageError as err:
                raise SkippedImage("not an image") from err
            with img:
                yield img
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise _too_large(err) from err
        except MemoryError as err:
            raise SkippedImage("too large to decode (out of memory)") from err
        except _BAD_CONTENT as err:
            raise SkippedImage("unreadable or truncated") from err


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation, read from the header only; damaged EXIF counts as upright."""
    if img.format == "PNG" and "exif" not in img.info:
        return 1  # PNG's getexif would decode the pixels to look for a late eXIf chunk
    try:
        return int(img.getexif().get(ExifTags.Base.Orientation, 1))
    except _BAD_CONTENT:
        return 1


def read_header(entry: Entry) -> tuple[str, tuple[int, int]]:
    """(Pillow mode, (width, height)) of the upright image (EXIF orientation applied), from the
    header only. Raises SkippedImage for a file that cannot be an image."""
    with _opened(entry) as img:
        width, height = img.size
        if _orientation(img) in _SWAPPED:
            width, height = height, width
        return img.mode, (width, height)


def _draft(img: Image.Image, size: tuple[int, int], mode: str) -> None:
    """Let libjpeg decode a JPEG at 1/2, 1/4 or 1/8 scale, still covering ``size``: most of the
    time of a phone photo brought down to a thumbnail."""
    if img.format not in ("JPEG", "MPO"):
        return
    width, height = img.size
    upright = (height, width) if _orientation(img) in _SWAPPED else (width, height)
    scale = max(size[0] / upright[0], size[1] / upright[1])
    img.draft(mode, (ceil(width * scale), ceil(height * scale)))


def _to_uint8(pixels: np.ndarray, mode: str) -> np.ndarray:
    """16-bit, 32-bit and float grey brought to 0..255 (Pillow's own convert clips them at 255).
    16-bit scales by 65535/255; 32-bit integers within 0..65535 are taken as 16-bit, floats within
    0..1 as fractions; other ranges are stretched from their minimum to their maximum."""
    if mode.startswith("I;16"):
        return ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)
    values = np.nan_to_num(pixels.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(values.min()), float(values.max())
    if mode == "I" and low >= 0 and high <= 65535:
        scaled = values / 257
    elif mode == "F" and low >= 0 and high <= 1:
        scaled = values * 255
    else:
        scaled = (values - low) * (255 / (high - low)) if high > low else np.zeros_like(values)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _normalise(img: Image.Image, mode: str) -> Image.Image:
    """The image in ``mode`` ("L" or "RGB"). Transparent images are composited over white, as a
    viewer shows them: the colour under a transparent pixel is arbitrary (often black)."""
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        img = Image.fromarray(_to_uint8(np.asarray(img), img.mode))
    elif "A" in img.getbands() or "a" in img.getbands() or "transparency" in img.info:
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img.convert("RGBA"))
    if img.mode == mode:
        return img
    try:
        return img.convert(mode)
    except ValueError as err:
        raise SkippedImage(f"unsupported colour mode {img.mode}") from err


def _fit(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scaled to cover ``size`` and centre-cropped to it, as ``ImageOps.fit`` does, in one resize
    (``box`` crops; ``reducing_gap`` first shrinks by whole factors, which is fast)."""
    width, height = img.size
    if (width, height) == size:
        return img
    if not width or not height:
        raise SkippedImage("unreadable or truncated")
    scale = max(size[0] / width, size[1] / height)
    crop_w, crop_h = size[0] / scale, size[1] / scale
    box = ((width - crop_w) / 2, (height - crop_h) / 2, (width + crop_w) / 2, (height + crop_h) / 2)
    return img.resize(size, Image.Resampling.BICUBIC, box=box, reducing_gap=3.0)


def decode(entry: Entry, size: tuple[int, int], channels: int) -> np.ndarray:
    """The entry's first frame, upright (EXIF), covering ``size`` = (width, height) and centre-
    cropped to it: a contiguous uint8 array (channels, height, width), 1 channel grey or 3 RGB.
    Raises SkippedImage(reason) for anything that cannot be decoded; never a Pillow warning."""
    if channels not in (1, 3) or len(size) != 2 or min(size) < 1:
        raise ValueError(f"decode: size must be (width, height) >= 1 and channels 1 or 3, not "
                         f"{size!r}, {channels!r}")
    size = (int(size[0]), int(size[1]))
    mode = "L" if channels == 1 else "RGB"
    with _opened(entry) as img:
        _draft(img, size, mode)
        img.load()
        try:
            ImageOps.exif_transpose(img, in_place=True)
        except _BAD_CONTENT:
            pass  # damaged EXIF: the pixels are fine, keep them as stored
        pixels = np.asarray(_fit(_normalise(img, mode), size))
        if channels == 1:
            return pixels[None].copy()
        return np.ascontiguousarray(pixels.transpose(2, 0, 1))
