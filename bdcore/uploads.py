"""Datasets uploaded through the app: a zip (class sub-folders = labels) or loose images, saved as an
image folder ``data_dir()/uploads/NAME`` and then used as ``folder:PATH`` like any other folder.

An upload is untrusted. Everything the zip's central directory says is checked before anything is
written: member names that would lead outside the folder (``..``, absolute, drive letters), links
and special files, encryption, duplicates, the entry count, the declared sizes and compression
ratios. Members are then decompressed through a byte counter that does not trust the declared
sizes, and each file is kept only if Pillow reads it as an image (by content, never by suffix);
others are skipped and reported. Everything is written into a hidden temporary folder inside the
uploads folder (the same file system) and renamed to its name only when complete, so a refusal, a
failure or a kill never leaves a half-written dataset under a name, and nothing is written
outside that folder. A temporary folder left by a killed writer is removed later (``_recover``)."""
from __future__ import annotations

import io
import os
import re
import secrets
import shutil
import stat
import struct
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import BinaryIO

from PIL import Image

from .data.collection import IMAGE_SUFFIXES, CollectionError, open_collection
from .data.sources import data_dir
from .errors import UserError, first_line
from .runs import process_running

UPLOADS_FOLDER = "uploads"
NAME_RULE = "letters, digits, - and _, up to 64 characters"
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
UPLOADED = "uploaded: "  # how the Launch page's pickers label an uploaded dataset

# Caps. The server refuses a request over its maxUploadSize (.streamlit/config.toml, the same 200 MB)
# before the app sees it; these are the real guard, whoever calls.
MAX_ZIP_BYTES = 200 * 2**20
MAX_TOTAL_BYTES = 2 * 2**30  # uncompressed, counted as decompressed, whatever the zip declares
MAX_FILES = 50_000
# zipfile builds an object per central directory entry; this bounds their number even when the
# zip's end record understates it (a real entry takes 46 bytes plus its name, about 110 in all)
MAX_DIRECTORY_BYTES = MAX_FILES * 512
# Images barely compress (JPEG, PNG: about 1:1; BMP: under 10:1), a zip bomb's zeros do 1000:1.
# Checked above 1 MiB only: a small one-colour image may compress past 100:1 and is no bomb.
MAX_RATIO = 100
RATIO_FLOOR = 2**20

CHUNK = 2**20
SKIP_EXAMPLES = 10  # skipped files named in a report
PREVIEW_COUNT = 16
ACCEPTED_SUFFIXES = [".zip", *sorted(IMAGE_SUFFIXES)]  # what the browser offers; the server checks content
# The image formats kept (Pillow's readers, the only ones tried), with the suffix given to an image
# whose name has none of IMAGE_SUFFIXES (the folder loader reads only those)
FORMATS = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif", "BMP": ".bmp", "WEBP": ".webp", "TIFF": ".tif"}
DEFLATE_OR_STORED = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}
SYSTEM_FILES = {"__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini"}  # archivers' extras, not data
# How Pillow says a file is not an image it can read (verify raises several kinds)
UNREADABLE = (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombError)
END_RECORD = struct.Struct("<4s4H2LH")  # a zip's end of central directory record
TEMP_NAME = re.compile(r"\.(tmp|old|del)-([A-Za-z0-9_-]{1,64})-(\d+)-[0-9a-f]+")


class UploadError(UserError):
    """An upload refused (a bad name, a hostile or damaged zip, no images); nothing was saved."""


@dataclass(frozen=True)
class UploadReport:
    """What an upload saved."""
    name: str
    path: Path
    images: int
    skipped: int  # files not kept: not images, archivers' extras
    skipped_examples: list[tuple[str, str]]  # (file, why) for the first SKIP_EXAMPLES skipped
    layout: str  # how the folder loader will read it: labeled with N classes, or unlabeled

    @property
    def spec(self) -> str:
        return f"folder:{self.path}"


@dataclass(frozen=True)
class UploadInfo:
    """An uploaded dataset, as the Datasets page lists it."""
    name: str
    path: Path
    images: int
    bytes: int
    created: datetime
    layout: str

    @property
    def spec(self) -> str:
        return f"folder:{self.path}"


# ---- names and paths ------------------------------------------------------------------------------

def uploads_root() -> Path:
    """``data_dir()/uploads``, absolute: a ``folder:`` spec made from it is read by workers that start
    in another folder."""
    return data_dir().resolve() / UPLOADS_FOLDER


def _valid_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise UploadError(f"give the dataset a name ({NAME_RULE})")
    if len(name) > 64:
        raise UploadError(f"the dataset name is {len(name)} characters long; use at most 64")
    if not NAME_PATTERN.fullmatch(name):
        raise UploadError(f"the dataset name {name!r} may hold only {NAME_RULE}; rename it, e.g. my-cats")
    return name


def upload_path(name: str) -> Path:
    """The folder of the uploaded dataset ``name``. The name is checked, so it never leads outside
    the uploads folder."""
    return uploads_root() / _valid_name(name)


def upload_spec(name: str) -> str:
    """The dataset spec of an upload, as configs and ``load_dataset`` take it."""
    return f"folder:{upload_path(name)}"


def _temp_path(kind: str, name: str) -> Path:
    """A hidden folder beside the uploads for work in progress: ``kind`` is tmp (being written), old
    (being replaced) or del (being deleted). The pid tells a leftover from work still going on."""
    return uploads_root() / f".{kind}-{name}-{os.getpid()}-{secrets.token_hex(4)}"


def check_upload_name(name: str, replace: bool = False) -> str:
    """``name`` stripped, if it is a safe name for a new upload (or for an existing one that
    ``replace`` is to overwrite)."""
    name = _valid_name(name)
    if not replace and upload_path(name).exists():
        raise UploadError(f"an uploaded dataset named {name!r} exists already; choose another name, "
                          "tick 'replace', or delete it on the Datasets page")
    return name


# ---- checks made before anything is written -------------------------------------------------------

def _refuse(member: str, why: str) -> UploadError:
    return UploadError(f"upload refused: {member!r} {why}; zip the dataset's folder itself (relative paths, "
                       "no links) and upload that. Nothing was saved")


def _member_parts(name: str) -> list[str]:
    """The path parts of a zip member's or an uploaded file's name, refused if it could lead
    outside the folder it is saved in."""
    if any(ord(c) < 32 for c in name):
        raise _refuse(name, "has control characters in its name")
    if name.startswith(("/", "\\")):
        raise _refuse(name, "is an absolute path")
    if re.match(r"[A-Za-z]:", name):
        raise _refuse(name, "starts with a drive letter")
    parts = [p for p in re.split(r"[/\\]", name) if p not in ("", ".")]
    if ".." in parts:
        raise _refuse(name, "goes up a folder (..)")
    return parts


def _repeated(names: list[str]) -> str | None:
    """The first name that appears twice in ``names``, if one does."""
    return next((name for name, n in Counter(names).items() if n > 1), None)


def _check_directory_size(source: BinaryIO, size: int) -> None:
    """Refuse a central directory too large to parse safely, from the sizes the zip's end record
    (and its zip64 record) declares: zipfile would build an object per entry, and 200 MB hold
    millions. A zip whose record understates them is refused by count once parsed."""
    source.seek(max(0, size - END_RECORD.size - 0xFFFF))  # the record, then a comment of up to 64 KB
    tail = source.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + END_RECORD.size > len(tail):
        return  # not a zip: zipfile says so next
    entries, directory = END_RECORD.unpack_from(tail, at)[4:6]
    zip64 = at >= 20 and tail[at - 20:at - 16] == b"PK\x06\x07"  # its locator, just before
    if zip64 and (entries == 0xFFFF or directory == 0xFFFFFFFF):
        source.seek(struct.unpack_from("<Q", tail, at - 12)[0])
        record = source.read(56)
        if record[:4] == b"PK\x06\x06":
            entries, directory = struct.unpack_from("<2Q", record, 32)
    if entries > MAX_FILES or directory > MAX_DIRECTORY_BYTES:
        raise UploadError(f"zip refused: it lists {entries:,} files ({directory:,} bytes of names); the "
                          f"limit is {MAX_FILES:,} files. Split the dataset. Nothing was saved")


def _open_zip(data: bytes | BinaryIO) -> tuple[zipfile.ZipFile, int]:
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    size = source.seek(0, io.SEEK_END)
    if size > MAX_ZIP_BYTES:
        raise UploadError(f"zip refused: it is {size / 2**20:,.0f} MB; the limit is "
                          f"{MAX_ZIP_BYTES // 2**20} MB. Split the dataset. Nothing was saved")
    _check_directory_size(source, size)
    source.seek(0)
    try:
        return zipfile.ZipFile(source), size
    except (zipfile.BadZipFile, EOFError, ValueError) as err:
        raise UploadError(f"not a readable zip ({first_line(err)}); zip the dataset's folder again. "
                          "Nothing was saved") from err


def _plan(archive: zipfile.ZipFile, size: int) -> tuple[list[tuple[zipfile.ZipInfo, str]], list[str]]:
    """The members to extract, each with its checked relative path, and the archivers' extras to
    skip; or the reason the whole zip is refused. Reads the central directory only."""
    infos = archive.infolist()
    if len(infos) > MAX_FILES:
        raise UploadError(f"zip refused: it holds {len(infos):,} files; the limit is {MAX_FILES:,}. "
                          "Split the dataset. Nothing was saved")
    members, extras, total = [], [], 0
    for info in infos:
        parts = _member_parts(info.filename)
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind == stat.S_IFLNK:
            raise _refuse(info.filename, "is a symbolic link")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise _refuse(info.filename, "is a device, pipe or other special file")
        if info.flag_bits & 0x1:
            raise _refuse(info.filename, "is encrypted (zip it without a password)")
        if info.is_dir() or kind == stat.S_IFDIR or not parts:
            continue
        if SYSTEM_FILES & {parts[0], parts[-1]}:
            extras.append(info.filename)
            continue
        if info.compress_type not in DEFLATE_OR_STORED:
            raise _refuse(info.filename, f"uses compression method {info.compress_type}, not the usual "
                                         "deflate (zip it with the system's 'compress')")
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise _refuse(info.filename, f"expands {info.file_size // max(info.compress_size, 1):,} times "
                                         f"(a zip bomb?); the limit is {MAX_RATIO} times")
        total += info.file_size
        members.append((info, "/".join(parts)))
    paths = [rel for _, rel in members]
    if twice := _repeated(paths):
        raise _refuse(twice, "appears twice")
    folders = {rel.rsplit("/", i)[0] for rel in paths for i in range(1, rel.count("/") + 1)}
    if clash := folders & set(paths):
        raise _refuse(min(clash), "is both a file and a folder")
    if total > MAX_TOTAL_BYTES:
        raise UploadError(f"zip refused: it expands to {total / 2**30:,.1f} GB; the limit is "
                          f"{MAX_TOTAL_BYTES / 2**30:.0f} GB. Split the dataset. Nothing was saved")
    if total > RATIO_FLOOR and total > MAX_RATIO * size:
        raise UploadError(f"zip refused: it expands {total // size:,} times (a zip bomb?); the limit is "
                          f"{MAX_RATIO} times. Nothing was saved")
    return members, extras


# ---- writing ---------------------------------------------------------------------------------------

def _image_format(path: Path) -> tuple[str | None, str]:
    """Pillow's name for the image format of ``path`` (read by content: header and, where the format
    has them, checksums), or None and why it is not kept."""
    try:
        with Image.open(path, formats=list(FORMATS)) as img:
            if img.width * img.height > Image.MAX_IMAGE_PIXELS:
                return None, f"{img.width}x{img.height} pixels: too large to decode safely"
            img.verify()
            return img.format, ""
    except Image.DecompressionBombError:
        return None, "too many pixels to decode safely"
    except UNREADABLE:
        return None, "not an image"


class _Staged:
    """Files written into a temporary folder: images only, every decompressed byte counted."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.total = 0
        self.images = 0
        self.skipped: list[tuple[str, str]] = []

    def add(self, rel: str, chunks: Iterable[bytes], declared: int | None = None) -> None:
        """Write ``chunks`` as ``rel`` and keep it if it is an image. ``declared``: the size its zip
        entry claims, which it may not exceed."""
        target = self.folder / rel
        written = 0
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "xb") as out:
                for chunk in chunks:
                    written += len(chunk)
                    self.total += len(chunk)
                    if self.total > MAX_TOTAL_BYTES:
                        raise UploadError(f"zip refused: it expands past {MAX_TOTAL_BYTES / 2**30:.0f} GB "
                                          "(more than it declares). Nothing was saved")
                    if declared is not None and written > declared:
                        raise _refuse(rel, f"holds more than the {declared:,} bytes it declares")
                    out.write(chunk)
        except FileExistsError:  # an earlier image took this name when it was given its suffix
            self.skipped.append((rel, "another image has this name"))
            return
        except OSError as err:
            raise UploadError(f"could not save {rel} ({err.strerror}); free some disk space in "
                              f"{uploads_root()} if it is full, or rename the file. Nothing was "
                              "saved") from err
        self._keep_if_image(target, rel)

    def _keep_if_image(self, path: Path, rel: str) -> None:
        kind, why = _image_format(path)
        if kind is None:
            path.unlink()
            self.skipped.append((rel, why))
            return
        if path.suffix.lower() not in IMAGE_SUFFIXES:  # named by its content: the loader reads suffixes
            named = path.with_name(path.name + FORMATS.get(kind, ".jpg"))  # MPO: a camera's JPEG
            if named.exists():
                path.unlink()
                self.skipped.append((rel, "another image has this name"))
                return
            path.rename(named)
        self.images += 1


def _recover(root: Path) -> None:
    """Finish what killed writers left: a temporary folder is removed, and a dataset being replaced
    is put back if its replacement never got its name."""
    if not root.is_dir():
        return
    for path in root.iterdir():
        match = TEMP_NAME.fullmatch(path.name)
        if not match or process_running(int(match[3])):
            continue
        if match[1] == "old" and not (root / match[2]).exists():
            path.rename(root / match[2])
        else:
            shutil.rmtree(path, ignore_errors=True)


@contextmanager
def _staging(name: str) -> Iterator[Path]:
    """A new temporary folder in the uploads folder, removed on the way out whatever happens (its
    content has been renamed away by then if the upload was saved)."""
    root = uploads_root()
    created = not root.exists()
    _recover(root)
    folder = _temp_path("tmp", name)
    folder.mkdir(parents=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if created:  # a refused first upload leaves no uploads folder either (a saved one: not empty)
            with suppress(OSError):
                root.rmdir()


def _prune_empty(folder: Path) -> None:
    """Remove the folders left empty by skipped files (a zip's docs/ with a README)."""
    for here, _dirs, _files in os.walk(folder, topdown=False):  # children first
        if here != str(folder) and not os.listdir(here):
            os.rmdir(here)


def _content_root(folder: Path) -> Path:
    """The dataset's own folder: a zip made by "compress folder" wraps everything in one folder,
    which is dropped; class folders (two or more) are kept."""
    children = list(folder.iterdir())
    return children[0] if len(children) == 1 and children[0].is_dir() else folder


def _publish(content: Path, name: str, replace: bool) -> Path:
    """Rename ``content`` to the dataset's name (atomic); an existing dataset of that name is
    replaced only if asked, and put back if the rename fails."""
    final = upload_path(name)
    old = None
    if replace and final.exists():
        old = _temp_path("old", name)
        final.rename(old)
    try:
        content.rename(final)
    except OSError as err:  # another session saved this name meanwhile
        if old is not None:
            old.rename(final)
        raise UploadError(f"an uploaded dataset named {name!r} was saved meanwhile; choose another "
                          "name. Nothing was saved") from err
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _finish(staged: _Staged, name: str, replace: bool) -> UploadReport:
    if not staged.images:
        skipped = f" ({staged.skipped[0][0]}: {staged.skipped[0][1]}, ...)" if staged.skipped else ""
        raise UploadError(f"no images in this upload{skipped}: only PNG, JPEG, GIF, BMP, WebP and TIFF "
                          "files are kept, by content; add images. Nothing was saved")
    _prune_empty(staged.folder)
    final = _publish(_content_root(staged.folder), name, replace)
    return UploadReport(name, final, staged.images, len(staged.skipped), staged.skipped[:SKIP_EXAMPLES],
                        _layout(final))


# ---- saving, listing, deleting ---------------------------------------------------------------------

def save_zip(name: str, data: bytes | BinaryIO, replace: bool = False) -> UploadReport:
    """Save the images of the zip ``data`` as the dataset ``name`` (its folder structure kept: class
    sub-folders are labels), or refuse it whole with an UploadError, nothing written."""
    name = check_upload_name(name, replace)
    archive, size = _open_zip(data)
    with archive:
        members, extras = _plan(archive, size)
        with _staging(name) as folder:
            staged = _Staged(folder)
            staged.skipped += [(extra, "archiver's extra file") for extra in extras]
            try:
                for info, rel in members:
                    with archive.open(info) as source:
                        staged.add(rel, iter(partial(source.read, CHUNK), b""), declared=info.file_size)
            except (zipfile.BadZipFile, zlib.error, EOFError) as err:
                raise UploadError(f"zip refused: it is damaged ({first_line(err)}); zip the dataset's "
                                  "folder again. Nothing was saved") from err
            return _finish(staged, name, replace)


def save_images(name: str, files: list[tuple[str, bytes]], replace: bool = False) -> UploadReport:
    """Save the images among ``files`` ((file name, content) pairs) as the unlabeled dataset
    ``name``; files that are not images are skipped, and if none is one, nothing is saved."""
    name = check_upload_name(name, replace)
    if not files:
        raise UploadError("choose a zip or some images to upload")
    if len(files) > MAX_FILES:
        raise UploadError(f"{len(files):,} files uploaded; the limit is {MAX_FILES:,}. Zip them, or split "
                          "the dataset. Nothing was saved")
    if sum(len(data) for _, data in files) > MAX_TOTAL_BYTES:
        raise UploadError(f"the files take over {MAX_TOTAL_BYTES / 2**30:.0f} GB; split the dataset. "
                          "Nothing was saved")
    names = []
    for file_name, _ in files:
        parts = _member_parts(file_name)
        if len(parts) != 1:
            raise UploadError(f"{file_name!r} is not a plain file name; upload files, or a zip for "
                              "folders. Nothing was saved")
        names.append(parts[0])
    if twice := _repeated(names):
        raise UploadError(f"two files are named {twice!r}; rename one. Nothing was saved")
    with _staging(name) as folder:
        staged = _Staged(folder)
        for rel, (_, data) in zip(names, files, strict=True):
            staged.add(rel, [data])
        return _finish(staged, name, replace)


def _is_zip(data: BinaryIO) -> bool:
    """Whether ``data`` starts as a zip does (read by content; its position is kept)."""
    at = data.tell()
    head = data.read(4)
    data.seek(at)
    return head in (b"PK\x03\x04", b"PK\x05\x06")


def save_upload(name: str, files: Sequence[tuple[str, BinaryIO]], replace: bool = False) -> UploadReport:
    """What the app's uploader hands over: one zip, or images (the kind told by content)."""
    name = check_upload_name(name, replace)
    zips = [data for _, data in files if _is_zip(data)]
    if zips and len(files) > 1:
        raise UploadError("upload a zip on its own, or images without a zip")
    if zips:
        return save_zip(name, zips[0], replace)
    return save_images(name, [(file_name, data.read()) for file_name, data in files], replace)


def _image_files(folder: Path) -> Iterator[os.DirEntry]:
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_file(follow_symlinks=False) and Path(entry.name).suffix.lower() in IMAGE_SUFFIXES:
                yield entry


def _layout(path: Path) -> str:
    """How a run will read ``path`` (``collection.open_collection``), in a few words."""
    try:
        collection = open_collection(path)
    except CollectionError as err:
        return f"not usable as is: {err}"
    classes, layout = collection.classes, collection.layout
    if len(classes) >= 2:
        named = ", ".join(classes[:5]) + (", ..." if len(classes) > 5 else "")
        return f"labeled: {len(classes)} classes ({named}); {layout}"
    if classes:
        return (f"one class sub-folder ({classes[0]}): usable as the unlabeled set only (a labeled set "
                "needs 2 or more)")
    return f"unlabeled: {layout}"


def upload_names() -> list[str]:
    """The names of the uploaded datasets, sorted (nothing is read inside them)."""
    root = uploads_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if NAME_PATTERN.fullmatch(p.name) and p.is_dir()
                  and not p.is_symlink())


def list_uploads() -> list[UploadInfo]:
    """Every uploaded dataset with its image count, size and layout (file sizes are read, no image),
    after putting right what killed writers left (``_recover``)."""
    _recover(uploads_root())
    infos = []
    for name in upload_names():
        path = upload_path(name)
        images = size = 0
        for here, _dirs, files in os.walk(path):
            for file in files:
                if Path(file).suffix.lower() in IMAGE_SUFFIXES:
                    images += 1
                    size += os.stat(os.path.join(here, file), follow_symlinks=False).st_size
        infos.append(UploadInfo(name, path, images, size, datetime.fromtimestamp(path.stat().st_mtime),
                                _layout(path)))
    return infos


def delete_upload(name: str) -> None:
    """Delete the uploaded dataset ``name`` (a checked name: never anything outside the uploads
    folder). It loses its name at once (a rename), so a kill mid-way leaves no half of it."""
    path = upload_path(name)
    if not path.is_dir() or path.is_symlink():
        raise UploadError(f"there is no uploaded dataset named {name.strip()!r}; see the Datasets page")
    trash = _temp_path("del", path.name)
    path.rename(trash)
    shutil.rmtree(trash)


def preview_images(path: Path, count: int = PREVIEW_COUNT, size: int = 96) -> list[tuple[str, Image.Image]]:
    """Thumbnails of up to ``count`` images of the dataset folder ``path``, taken in turn from each
    folder (class) holding images, each with its folder's name (or its file name at the top). Opens
    at most ``count`` files and lists only the folders it needs."""
    groups: list[list[Path]] = []
    for here, dirs, _files in os.walk(path):
        dirs.sort()
        names = sorted(e.name for e in _image_files(Path(here)))
        if names:
            groups.append([Path(here, n) for n in names[:count]])
        if len(groups) >= count:
            break
    picks = [group[i] for i in range(count) for group in groups if i < len(group)][:count]
    thumbs = []
    for file in picks:
        caption = file.parent.name if file.parent != path else file.name
        try:
            with Image.open(file, formats=list(FORMATS)) as img:
                if img.width * img.height > Image.MAX_IMAGE_PIXELS:
                    continue
                img.thumbnail((size, size))  # a JPEG is decoded at a reduced scale (draft mode)
                thumbs.append((caption, img.convert("RGB") if img.mode not in ("L", "RGB") else img.copy()))
        except UNREADABLE:  # changed on disk since it was checked: one thumbnail fewer
            continue
    return thumbs
