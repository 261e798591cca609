"""Image collections: every layout open_collection reads (folders, manifests, lists, archives), the
folder rules (hidden files, symlinks, wrappers), fingerprints, and decode's handling of damaged,
hostile and odd images, with the exact reasons it gives."""
from __future__ import annotations

import io
import os
import tarfile
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from bdcore.data import collection as coll
from bdcore.data import load_dataset
from bdcore.data.collection import (
    CollectionError,
    Entry,
    SkippedImage,
    decode,
    fingerprint,
    open_collection,
    read_header,
)
from bdcore.errors import DataError


def _save(path: Path, array, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path, **kwargs)
    return path


def _grey(value: int, size=(6, 6)) -> np.ndarray:
    return np.full(size, value, dtype=np.uint8)


def _labeled(root: Path, counts: dict[str, int], suffix: str = ".png", start: int = 1) -> None:
    """Each image is a constant grey whose value is a unique id."""
    value = start
    for cls, n in counts.items():
        for i in range(n):
            _save(root / cls / f"img{i:02d}{suffix}", _grey(value))
            value += 1


def _file(path: Path) -> Entry:
    return Entry(str(path), None, path.stat().st_size if path.exists() else 0, 0.0)


def _ids(entries: list[Entry]) -> list[int]:
    return [int(decode(e, (6, 6), 1)[0, 0, 0]) for e in entries]


def _names(entries: list[Entry]) -> list[str]:
    return [e.name() for e in entries]


def _skip_reason(entry: Entry, size=(8, 8), channels=3) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no Pillow warning may escape
        with pytest.raises(SkippedImage) as info:
            decode(entry, size, channels)
    return str(info.value)


# --------------------------------------------------------------------------------------------
# Layouts
# --------------------------------------------------------------------------------------------

def _old_holdout(labels: np.ndarray, split: str) -> np.ndarray:
    """The held-out fifth of the loader before collections (folder.py's ``_holdout``), kept here
    so that a folder's test split stays the images it always was."""
    rng = np.random.default_rng(0)
    keep = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        test = members[::5]
        keep.append(test if split == "test" else np.setdiff1d(members, test))
    return np.sort(np.concatenate(keep))


def test_class_folders_hold_out_the_same_fifth_as_folder_py(tmp_path):
    root = tmp_path / "pets"
    _labeled(root, {"dog": 10, "cat": 12, "ant": 5})
    c = open_collection(root)
    assert (c.root, c.layout, c.classes, c.labeled()) == (str(root), "class folders",
                                                          ["ant", "cat", "dog"], True)
    assert (len(c.splits["train"]), len(c.splits["test"])) == (21, 6)
    assert c.labels["test"].dtype == np.int64 and c.labels["test"].tolist() == [0, 1, 1, 1, 2, 2]
    for split in ("train", "test"):
        old = load_dataset(f"folder:{root}", split)
        assert _ids(c.splits[split]) == old.images[:, 0, 0, 0].tolist()
        assert c.labels[split].tolist() == old.labels.tolist()
    in_class_order = sorted(c.splits["train"] + c.splits["test"], key=lambda e: e.path)
    labels = np.asarray([0] * 5 + [1] * 12 + [2] * 10)
    for split in ("train", "test"):
        assert c.splits[split] == [in_class_order[i] for i in _old_holdout(labels, split)]
    assert open_collection(root).splits == c.splits  # seeded


def test_class_folders_count_nested_images_in_path_order(tmp_path):
    root = tmp_path / "set"
    _save(root / "b" / "z.png", _grey(1))
    _save(root / "b" / "deep" / "er" / "y.png", _grey(2))
    _save(root / "b" / "a.png", _grey(3))
    _save(root / "a b" / "x.png", _grey(4))  # ' ' sorts before '/': order by parts, not strings
    for i in range(4):
        _save(root / "a" / f"{i}.png", _grey(10 + i))
    c = open_collection(root)
    assert c.classes == ["a", "a b", "b"]
    for split in ("train", "test"):
        parts = [Path(e.path).relative_to(root).parts for e in c.splits[split]]
        assert [c.classes[y] for y in c.labels[split]] == [p[0] for p in parts]
        assert parts == sorted(parts, key=lambda p: (c.classes.index(p[0]), p))
    b = [e for e in c.splits["train"] + c.splits["test"] if Path(e.path).relative_to(root).parts[0] == "b"]
    assert sorted(Path(e.path).relative_to(root).as_posix() for e in b) == [
        "b/a.png", "b/deep/er/y.png", "b/z.png"]


def test_train_and_test_folders(tmp_path):
    _labeled(tmp_path / "s" / "train", {"a": 3, "b": 2, "c": 2})
    _labeled(tmp_path / "s" / "test", {"a": 1, "c": 2}, start=50)
    c = open_collection(tmp_path / "s")
    assert (c.layout, c.classes) == ("train/test class folders", ["a", "b", "c"])
    assert c.labels["train"].tolist() == [0, 0, 0, 1, 1, 2, 2] and c.labels["test"].tolist() == [0, 2, 2]
    assert _ids(c.splits["test"]) == [50, 51, 52]
    assert _names(c.splits["test"]) == ["a/img00.png", "c/img00.png", "c/img01.png"]


def test_imagenet_train_val_with_unlabeled_test(tmp_path):
    """ImageNet: train/<wnid>/*.JPEG, val/<wnid>/*.JPEG (after valprep), test/ of loose images."""
    root = tmp_path / "imagenet"
    _labeled(root / "train", {"n01440764": 3, "n01443537": 3}, suffix=".JPEG")
    _labeled(root / "val", {"n01443537": 2}, suffix=".JPEG", start=90)
    _save(root / "test" / "ILSVRC2012_test_00000001.JPEG", _grey(7))
    (root / "LOC_synset_mapping.txt").write_text("n01440764 tench\n")
    c = open_collection(root)
    assert (c.layout, c.classes) == ("train/val class folders", ["n01440764", "n01443537"])
    assert c.labels["train"].tolist() == [0, 0, 0, 1, 1, 1] and c.labels["test"].tolist() == [1, 1]
    assert _names(c.splits["test"]) == ["n01443537/img00.JPEG", "n01443537/img01.JPEG"]


def test_train_with_loose_val_holds_out_a_fifth_of_train(tmp_path):
    """ImageNet as downloaded: val/ and test/ are loose images with no class folders."""
    root = tmp_path / "raw"
    _labeled(root / "train", {"a": 5, "b": 5})
    _save(root / "val" / "v1.png", _grey(1))
    _save(root / "test" / "t1.png", _grey(2))
    c = open_collection(root)
    assert (c.layout, c.classes) == ("class folders", ["a", "b"])
    assert (len(c.splits["train"]), len(c.splits["test"])) == (8, 2)
    assert all("/train/" in e.path for e in c.splits["train"] + c.splits["test"])


@pytest.mark.parametrize("held", ["test", "val"])
def test_held_out_classes_must_be_in_train(tmp_path, held):
    _labeled(tmp_path / "s" / "train", {"a": 2})
    _labeled(tmp_path / "s" / held, {"a": 1, "zebra": 1, "yak": 1})
    with pytest.raises(CollectionError, match=f"{held}/ has classes missing from train/: yak, zebra") as info:
        open_collection(tmp_path / "s")
    assert isinstance(info.value, DataError) and str(tmp_path / "s") in str(info.value)


def test_csv_manifest_with_names_header_and_missing_file(tmp_path):
    _save(tmp_path / "imgs" / "a.png", _grey(1))
    _save(tmp_path / "imgs" / "b.png", _grey(2))
    elsewhere = _save(tmp_path / "other" / "c.png", _grey(3))
    manifest = tmp_path / "imgs" / "labels.csv"
    manifest.write_text("path,label\n"
                        "a.png,dog\n"
                        f"{elsewhere},cat\n"
                        "\n"
                        "b.png , dog\n"
                        "gone.png,bird\n")
    c = open_collection(manifest)
    assert (c.layout, c.classes) == ("csv manifest", ["bird", "cat", "dog"])
    entries = c.splits["train"] + c.splits["test"]
    assert sorted(e.path for e in entries) == sorted(
        [str(tmp_path / "imgs" / n) for n in ("a.png", "b.png", "gone.png")] + [str(elsewhere)])
    label_of = dict(zip([e.path for e in entries], c.labels["train"].tolist() + c.labels["test"].tolist(),
                        strict=True))
    assert label_of[str(elsewhere)] == 1 and label_of[str(tmp_path / "imgs" / "gone.png")] == 0
    gone = next(e for e in entries if e.path.endswith("gone.png"))
    assert (gone.size, gone.mtime) == (0, 0.0) and _skip_reason(gone) == "missing"


def test_csv_manifest_with_integer_labels_sorted_as_numbers(tmp_path):
    for i in range(6):
        _save(tmp_path / f"{i}.jpg", _grey(i))
    (tmp_path / "m.csv").write_text("".join(f"{i}.jpg,{label}\n" for i, label in
                                            enumerate([10, 2, 2, 10, 0, 2])))
    c = open_collection(tmp_path / "m.csv")
    assert c.classes == ["0", "2", "10"]
    labels = dict(zip(_names(c.splits["train"] + c.splits["test"]),
                      c.labels["train"].tolist() + c.labels["test"].tolist(), strict=True))
    assert [labels[f"{tmp_path.name}/{i}.jpg"] for i in range(6)] == [2, 1, 1, 2, 0, 1]


@pytest.mark.parametrize("text, line", [("path,label\na.png,x\nb.png\n", 3),
                                        ("a.png,x,extra\n", 1), ("a.png,x\n\nb.png,\n", 3)])
def test_csv_manifest_bad_row_names_its_line(tmp_path, text, line):
    (tmp_path / "m.csv").write_text(text)
    with pytest.raises(CollectionError, match=f"m.csv: line {line} is not 'path,label'"):
        open_collection(tmp_path / "m.csv")


def test_list_file(tmp_path):
    _save(tmp_path / "p" / "b.png", _grey(2))
    _save(tmp_path / "p" / "a.png", _grey(1))
    outside = _save(tmp_path / "q" / "c.png", _grey(3))
    (tmp_path / "p" / "images.lst").write_text(f"# my images\nb.png\n\n  a.png  \n{outside}\n")
    c = open_collection(tmp_path / "p" / "images.lst")
    assert (c.layout, c.classes, c.labels) == ("list file", [], {"train": None})
    assert list(c.splits) == ["train"] and _ids(c.splits["train"]) == [2, 1, 3]  # the list's order


def test_flat_and_nested_unlabeled(tmp_path):
    flat = tmp_path / "flat"
    for i in range(3):
        _save(flat / f"{i}.png", _grey(i))
    (flat / "notes.txt").write_text("not an image")
    c = open_collection(flat)
    assert (c.layout, c.labeled(), list(c.splits)) == ("flat folder", False, ["train"])
    assert c.labels == {"train": None}
    assert _names(c.splits["train"]) == ["flat/0.png", "flat/1.png", "flat/2.png"]

    nested = tmp_path / "nested"
    _save(nested / "top.png", _grey(1))
    _save(nested / "2019" / "a.png", _grey(2))
    _save(nested / "2020" / "deep" / "b.png", _grey(3))
    c = open_collection(nested)
    assert (c.layout, c.classes) == ("nested folder", [])
    assert _ids(c.splits["train"]) == [2, 3, 1]


def test_split_folders_of_loose_images_are_one_unlabeled_collection(tmp_path):
    """OpenImages: train/, validation/, test/ of loose images are not classes."""
    for split in ("train", "validation", "test"):
        _save(tmp_path / "oi" / split / f"{split}1.jpg", _grey(1))
    c = open_collection(tmp_path / "oi")
    assert (c.layout, c.classes, len(c.splits["train"])) == ("nested folder", [], 3)


def test_a_single_wrapper_folder_is_looked_through(tmp_path):
    _labeled(tmp_path / "outer" / "inner" / "data", {"a": 2, "b": 2})
    c = open_collection(tmp_path / "outer")
    assert (c.layout, c.classes) == ("class folders", ["a", "b"])


def test_hidden_files_symlinks_and_non_images_are_ignored(tmp_path):
    root = tmp_path / "root"
    _labeled(root, {"a": 2, "b": 2})
    _save(root / "a" / ".hidden.png", _grey(9))
    _save(root / ".thumbnails" / "x.png", _grey(9))
    (root / ".DS_Store").write_bytes(b"\0\0")
    (root / "b" / "readme.md").write_text("x")
    secret = _save(tmp_path / "outside" / "secret.png", _grey(9))
    (root / "a" / "link-out.png").symlink_to(secret)
    (root / "a" / "link-in.png").symlink_to(root / "b" / "img00.png")
    (root / "a" / "dangling.png").symlink_to(tmp_path / "nowhere.png")
    (root / "c").symlink_to(tmp_path / "outside", target_is_directory=True)
    c = open_collection(root)
    assert c.classes == ["a", "b"]
    assert sorted(_names(c.splits["train"] + c.splits["test"])) == [
        "a/img00.png", "a/img01.png", "a/link-in.png", "b/img00.png", "b/img01.png"]


def _zip(path: Path, members: dict[str, bytes], symlinks: tuple[str, ...] = ()) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
        for name in symlinks:
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)
            z.writestr(info, "../../etc/passwd")
    return path


def _png_bytes(value: int, size=(6, 6)) -> bytes:
    out = io.BytesIO()
    Image.fromarray(_grey(value, size)).save(out, "PNG")
    return out.getvalue()


def test_zip_of_class_folders_read_in_place(tmp_path):
    members = {f"pets/{cls}/{i}.png": _png_bytes(10 * k + i)
               for k, cls in enumerate(["cat", "dog"]) for i in range(5)}
    members.update({"pets/": b"", "pets/cat/": b"", "__MACOSX/pets/cat/._0.png": b"junk",
                    "pets/.DS_Store": b"\0", "pets/dog/notes.txt": b"x", "../evil.png": _png_bytes(99),
                    "/abs/evil.png": _png_bytes(99), "pets/dog/.hidden.png": _png_bytes(99)})
    archive = _zip(tmp_path / "pets.zip", members, symlinks=("pets/cat/link.png",))
    c = open_collection(archive)
    assert (c.layout, c.classes) == ("zip archive: class folders", ["cat", "dog"])
    entries = c.splits["train"] + c.splits["test"]
    assert sorted(e.member for e in entries) == sorted(m for m in members if m.startswith("pets/")
                                                       and m.endswith("png") and "/." not in m)
    assert {e.path for e in entries} == {str(archive)}
    by_member = {e.member: e for e in entries}
    assert by_member["pets/cat/0.png"].name() == "pets.zip:pets/cat/0.png"
    assert decode(by_member["pets/dog/3.png"], (6, 6), 1)[0, 0, 0] == 13
    assert read_header(by_member["pets/cat/1.png"]) == ("L", (6, 6))


def test_tar_gz_of_flat_images_skips_links(tmp_path):
    archive = tmp_path / "flat.tar.gz"
    with tarfile.open(archive, "w:gz") as t:
        for i in range(3):
            data = _png_bytes(i + 1)
            info = tarfile.TarInfo(f"./img{i}.png")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        for kind, name in ((tarfile.SYMTYPE, "sym.png"), (tarfile.LNKTYPE, "hard.png")):
            link = tarfile.TarInfo(name)
            link.type, link.linkname = kind, "/etc/passwd" if kind == tarfile.SYMTYPE else "./img0.png"
            t.addfile(link)
        empty = tarfile.TarInfo("empty.png")
        t.addfile(empty, io.BytesIO(b""))
    c = open_collection(archive)
    assert (c.layout, c.labeled()) == ("tar archive: flat folder", False)
    assert [e.member for e in c.splits["train"]] == ["empty.png", "./img0.png", "./img1.png", "./img2.png"]
    assert [decode(e, (6, 6), 1)[0, 0, 0] for e in c.splits["train"][1:]] == [1, 2, 3]
    assert _skip_reason(c.splits["train"][0]) == "empty file"
    assert c.splits["train"][1].name() == "flat.tar.gz:./img0.png"
    assert _skip_reason(Entry(str(archive), "gone.png", 1, 0.0)) == "missing"


def test_tar_of_class_folders(tmp_path):
    _labeled(tmp_path / "src" / "a", {"x": 3, "y": 2})
    archive = tmp_path / "set.tgz"
    with tarfile.open(archive, "w:gz") as t:
        t.add(tmp_path / "src" / "a", arcname="a")
    c = open_collection(archive)
    assert (c.layout, c.classes) == ("tar archive: class folders", ["x", "y"])
    assert len(c.splits["train"]) + len(c.splits["test"]) == 5


def test_archive_members_too_large_encrypted_or_damaged_are_skipped(tmp_path, monkeypatch):
    archive = _zip(tmp_path / "a.zip", {"big.png": _png_bytes(1, (64, 64)), "text.png": b"hello",
                                        "locked.png": _png_bytes(1), "crc.png": _png_bytes(2)})
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as z:
        local = z.getinfo("locked.png").header_offset
    data[local + 6] |= 1  # the "encrypted" flag, in the local and the central header
    data[data.rindex(b"locked.png") - 46 + 8] |= 1
    at = data.rindex(b"IDAT") + 6  # a byte inside crc.png's stored PNG: the zip's CRC no longer matches
    data[at] ^= 0xFF
    archive.write_bytes(bytes(data))
    monkeypatch.setattr(coll, "MAX_MEMBER_BYTES", 100)
    reasons = {e.member: _skip_reason(e) for e in open_collection(archive).splits["train"]}
    assert reasons == {"big.png": f"too large to read safely ({len(_png_bytes(1, (64, 64)))} bytes)",
                       "text.png": "not an image", "locked.png": "encrypted",
                       "crc.png": "unreadable or truncated"}


def test_sources_that_cannot_be_used(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "text-only").mkdir()
    (tmp_path / "text-only" / "a.txt").write_text("x")
    _zip(tmp_path / "junk.zip", {"__MACOSX/._a.png": b"x", "notes.txt": b"x"})
    for name in ("empty", "text-only", "junk.zip"):
        with pytest.raises(CollectionError, match=r"no images \(.bmp, .gif, .jpeg.*\) in .*; add images"):
            open_collection(tmp_path / name)
    (tmp_path / "photo.png").write_bytes(_png_bytes(1))
    with pytest.raises(CollectionError, match="is not a source of images; give a folder of images, a .csv"):
        open_collection(tmp_path / "photo.png")
    with pytest.raises(CollectionError, match="does not exist"):
        open_collection(tmp_path / "nowhere")
    (tmp_path / "broken.zip").write_bytes(b"PK not really")
    with pytest.raises(CollectionError, match="broken.zip is not a readable zip archive"):
        open_collection(tmp_path / "broken.zip")
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    with pytest.raises(CollectionError, match="no image paths listed"):
        open_collection(tmp_path / "empty.txt")


def test_fingerprint_follows_size_and_mtime_only(tmp_path):
    _labeled(tmp_path / "f", {"a": 3})
    entries = open_collection(tmp_path / "f").splits["train"]
    first = fingerprint(entries)
    assert len(first) == 20 and fingerprint(open_collection(tmp_path / "f").splits["train"]) == first
    (tmp_path / "f" / "a" / "notes.txt").write_text("ignored")
    assert fingerprint(open_collection(tmp_path / "f").splits["train"]) == first
    target = tmp_path / "f" / "a" / "img00.png"
    os.utime(target, (1_000_000, 1_000_000))
    touched = fingerprint(open_collection(tmp_path / "f").splits["train"])
    assert touched != first
    stamp = target.stat().st_mtime
    _save(target, _grey(1, (7, 7)))
    os.utime(target, (stamp, stamp))
    assert fingerprint(open_collection(tmp_path / "f").splits["train"]) != touched  # size changed
    assert fingerprint(entries[::-1]) != first


# --------------------------------------------------------------------------------------------
# Decoding damaged, hostile and odd images
# --------------------------------------------------------------------------------------------

def _jpeg(path: Path, size=(64, 48), smooth: bool = False, **kwargs) -> Path:
    """Noise (a large file to cut short), or smooth gradients (scaled alike by any filter)."""
    if smooth:
        y, x = np.mgrid[:size[1], :size[0]]
        pixels = np.stack([x * 255 // size[0], y * 255 // size[1], (x + y) * 127 // sum(size)], axis=-1)
    else:
        pixels = np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3))
    return _save(path, pixels, **kwargs)


def test_damaged_files_are_skipped_with_their_reason(tmp_path):
    (tmp_path / "zero.png").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("this is not a jpeg at all")
    whole = _jpeg(tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "half.jpg").write_bytes(whole[:len(whole) // 2])
    (tmp_path / "dir.png").mkdir()
    cases = {"zero.png": "empty file", "text.jpg": "not an image", "half.jpg": "unreadable or truncated",
             "gone.png": "missing", "dir.png": "not a file"}
    for name, reason in cases.items():
        for channels in (1, 3):
            assert _skip_reason(_file(tmp_path / name), channels=channels) == reason, name
    assert read_header(_file(tmp_path / "half.jpg")) == ("RGB", (64, 48))  # the header is intact
    for name in ("zero.png", "text.jpg", "gone.png"):
        with pytest.raises(SkippedImage, match=cases[name]):
            read_header(_file(tmp_path / name))


@pytest.mark.parametrize("limit", [1000, 700])  # Pillow warns past its limit, raises past twice it
def test_decompression_bomb_is_skipped(tmp_path, monkeypatch, limit):
    bomb = _save(tmp_path / "bomb.png", _grey(1, (32, 48)))  # 1536 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    assert _skip_reason(_file(bomb)) == "too large to decode safely (1536 pixels)"
    with pytest.raises(SkippedImage, match=r"too large to decode safely \(1536 pixels\)"):
        read_header(_file(bomb))


def test_png_header_claiming_huge_dimensions(tmp_path):
    """A crafted 100000 x 100000 PNG header (10^10 pixels, past twice Pillow's limit)."""
    real = bytearray(_png_bytes(1))
    real[16:24] = (100_000).to_bytes(4, "big") * 2
    real[29:33] = zlib.crc32(bytes(real[12:29])).to_bytes(4, "big")  # the IHDR chunk's CRC
    (tmp_path / "huge.png").write_bytes(bytes(real))
    assert _skip_reason(_file(tmp_path / "huge.png")) == "too large to decode safely (10000000000 pixels)"


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    rgb = np.zeros((8, 8, 3), dtype=np.uint8)
    rgb[..., 0] = 200
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(rgb).convert("CMYK").save(path)
    assert read_header(_file(path))[0] == "CMYK"
    out = decode(_file(path), (8, 8), 3)
    assert np.allclose(out.reshape(3, -1).mean(axis=1), [200, 0, 0], atol=6)


def test_16_bit_grey_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 64, 32896, 65535]] * 4, dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    assert read_header(_file(path)) == ("I;16", (4, 4))
    assert decode(_file(path), (4, 4), 1)[0, 0].tolist() == [0, 64, 128, 255]
    assert decode(_file(path), (4, 4), 3)[:, 0, 3].tolist() == [255, 255, 255]


def test_float_and_32_bit_grey(tmp_path):
    fractions = np.array([[0.0, 0.5, 1.0]] * 3, dtype=np.float32)
    Image.fromarray(fractions).save(tmp_path / "f.tif")
    assert decode(_file(tmp_path / "f.tif"), (3, 3), 1)[0, 0].tolist() == [0, 128, 255]
    wide = np.array([[-1000, 0, 1000]] * 3, dtype=np.int32)
    Image.fromarray(wide).save(tmp_path / "i.tif")
    assert decode(_file(tmp_path / "i.tif"), (3, 3), 1)[0, 0].tolist() == [0, 128, 255]


def test_transparency_is_composited_over_white(tmp_path):
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.putpixel((0, 0), 0)
    palette.save(tmp_path / "p.png", transparency=1)  # the red index is transparent
    out = decode(_file(tmp_path / "p.png"), (4, 4), 3)
    assert out[:, 0, 0].tolist() == [0, 0, 0] and out[:, 3, 3].tolist() == [255, 255, 255]
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 2], rgba[:2, ..., 3], rgba[2:, ..., 3] = 200, 255, 0
    _save(tmp_path / "rgba.png", rgba)
    out = decode(_file(tmp_path / "rgba.png"), (4, 4), 3)
    assert out[:, 0, 0].tolist() == [0, 0, 200] and out[:, 3, 0].tolist() == [255, 255, 255]
    alpha = Image.fromarray(np.where(np.eye(4) > 0, 255, 0).astype(np.uint8))
    Image.merge("LA", [Image.fromarray(_grey(10, (4, 4))), alpha]).save(tmp_path / "la.png")
    out = decode(_file(tmp_path / "la.png"), (4, 4), 1)
    assert out[0, 1, 1] == 10 and out[0, 0, 1] == 255


def test_bilevel_image(tmp_path):
    Image.fromarray(np.eye(4, dtype=bool)).save(tmp_path / "one.png")
    assert read_header(_file(tmp_path / "one.png"))[0] == "1"
    assert decode(_file(tmp_path / "one.png"), (4, 4), 1)[0].tolist() == (np.eye(4) * 255).tolist()


@pytest.mark.parametrize("suffix", [".gif", ".webp", ".tif"])
def test_animated_images_give_their_first_frame(tmp_path, suffix):
    frames = [Image.new("RGB", (6, 6), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / f"anim{suffix}", save_all=True, append_images=frames[1:], lossless=True)
    out = decode(_file(tmp_path / f"anim{suffix}"), (6, 6), 3)
    assert np.abs(out[:, 3, 3].astype(int) - [255, 0, 0]).max() <= 2


def test_exif_rotated_photo_ends_up_upright(tmp_path):
    """Stored 40 wide x 20 high with its left half white; orientation 6 (turn 90 degrees clockwise
    to view) makes it 20 wide x 40 high with the white half on top."""
    stored = np.zeros((20, 40), dtype=np.uint8)
    stored[:, :20] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    path = _save(tmp_path / "phone.jpg", stored, exif=exif)
    assert read_header(_file(path)) == ("L", (20, 40))
    out = decode(_file(path), (10, 20), 1)
    assert out.shape == (1, 20, 10)
    assert out[0, :8].min() > 230 and out[0, 12:].max() < 25


def test_shapes_channels_and_centre_crop(tmp_path):
    """A wide image (left third red, middle green, right third blue) fit to a square keeps the
    middle; every output is contiguous uint8 (channels, height, width)."""
    wide = np.zeros((30, 90, 3), dtype=np.uint8)
    wide[:, :30, 0], wide[:, 30:60, 1], wide[:, 60:, 2] = 255, 255, 255
    path = _save(tmp_path / "wide.png", wide)
    square = decode(_file(path), (10, 10), 3)
    assert square.shape == (3, 10, 10) and (square[1, :, 1:-1] == 255).all()
    assert (square[[0, 2], :, 1:-1] == 0).all() and square[1].min() > 200  # the filter reaches past the edge
    for size, channels in (((8, 5), 3), ((8, 5), 1), ((5, 9), 1), ((200, 20), 3)):
        out = decode(_file(path), size, channels)
        assert out.shape == (channels, size[1], size[0]) and out.dtype == np.uint8
        assert out.flags.c_contiguous and out.flags.writeable
    grey = decode(_file(_save(tmp_path / "g.png", _grey(77, (5, 5)))), (3, 2), 3)
    assert grey.shape == (3, 2, 3) and (grey == 77).all()
    with pytest.raises(ValueError, match="channels 1 or 3"):
        decode(_file(path), (8, 8), 4)


def test_jpeg_draft_asks_for_a_cover_of_the_upright_target(tmp_path, monkeypatch):
    """A big JPEG is decoded at a reduced scale that still covers the target after EXIF rotation."""
    asked = []
    original = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        asked.append((mode, size))
        return original(self, mode, size)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    exif = Image.Exif()
    exif[0x0112] = 8
    path = _jpeg(tmp_path / "big.jpg", size=(800, 400), smooth=True, exif=exif)  # upright: 400 wide, 800 high
    out = decode(_file(path), (50, 50), 1)
    assert asked == [("L", (100, 50))] and out.shape == (1, 50, 50)
    reference = np.asarray(Image.open(path).convert("L").transpose(Image.Transpose.ROTATE_90)
                           .resize((50, 100), Image.Resampling.BICUBIC))[25:75]
    assert np.abs(out[0].astype(int) - reference).mean() < 3


def test_damaged_exif_keeps_the_pixels_and_no_warning_escapes(tmp_path):
    """An EXIF tag pointing past the end of the data makes Pillow warn; the image is still good."""
    ifd = (b"II*\x00\x08\x00\x00\x00\x01\x00" + b"\x0e\x01\x02\x00" + (1000).to_bytes(4, "little")
           + (5000).to_bytes(4, "little") + b"\x00\x00\x00\x00")
    path = tmp_path / "bad-exif.jpg"
    Image.new("RGB", (8, 8), (255, 0, 0)).save(path, exif=b"Exif\x00\x00" + ifd)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_header(_file(path)) == ("RGB", (8, 8))
        out = decode(_file(path), (4, 4), 3)
    assert np.abs(out[:, 2, 2].astype(int) - [255, 0, 0]).max() <= 3
