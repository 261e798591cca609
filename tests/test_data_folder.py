"""The folder dataset: class sub-folders, train/test sub-folders, unlabeled folders, holdout
splits that agree in shape and classes, and clear errors for unreadable images."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bdcore.data import CollectionError, load_dataset

# --------------------------------------------------------------------------------------------
# 5. Folder datasets
# --------------------------------------------------------------------------------------------

def _png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
    return path


def _gray(value: int, size=(6, 6)) -> np.ndarray:
    return np.full(size, value, dtype=np.uint8)


def _labeled_folder(root: Path, counts: dict[str, int]) -> dict[int, str]:
    """Each image is a constant grey whose value is a unique id, so splits can be traced back."""
    owner, value = {}, 1
    for cls, n in counts.items():
        for i in range(n):
            _png(root / cls / f"img{i:02d}.png", _gray(value))
            owner[value] = cls
            value += 1
    return owner


def _ids(images: torch.Tensor) -> list[int]:
    return images[:, 0, 0, 0].tolist()


def test_folder_by_subfolder_with_holdout(tmp_path):
    """root/<class>/*: classes sorted, labels follow the class folder, a stratified fifth is held
    out as test, train and test are disjoint and together cover every image, repeatably."""
    root = tmp_path / "pets"
    owner = _labeled_folder(root, {"dog": 10, "cat": 10, "ant": 5})
    train, test = load_dataset(f"folder:{root}", "train"), load_dataset(f"folder:{root}", "test")
    assert train.classes == test.classes == ["ant", "cat", "dog"]
    assert (len(train), len(test)) == (20, 5)
    assert train.labels.dtype == torch.int64 and train.images.shape == (20, 1, 6, 6)
    train_ids, test_ids = _ids(train.images), _ids(test.images)
    assert not set(train_ids) & set(test_ids)
    assert sorted(train_ids + test_ids) == sorted(owner)
    for s in (train, test):
        assert [s.classes[y] for y in s.labels.tolist()] == [owner[i] for i in _ids(s.images)]
    assert sorted(test.labels.tolist()) == [0, 1, 1, 2, 2]  # every class is represented
    assert _ids(load_dataset(f"folder:{root}", "test").images) == test_ids  # seeded
    assert train.name == f"folder:{root}" and train.source == f"folder: {root} (class folders)"


def test_folder_with_train_and_test_subfolders(tmp_path):
    """root/train/<class> and root/test/<class>: the given splits are used whole, no holdout."""
    _labeled_folder(tmp_path / "set" / "train", {"a": 4, "b": 3})
    _labeled_folder(tmp_path / "set" / "test", {"a": 2, "b": 2})
    train = load_dataset(f"folder:{tmp_path / 'set'}", "train")
    test = load_dataset(f"folder:{tmp_path / 'set'}", "test")
    assert (len(train), len(test)) == (7, 4)
    assert train.labels.tolist() == [0, 0, 0, 0, 1, 1, 1] and test.labels.tolist() == [0, 0, 1, 1]
    assert train.classes == test.classes == ["a", "b"]
    assert train.source == f"folder: {tmp_path / 'set'} (train/test class folders)"


def test_folder_unlabeled(tmp_path):
    """A flat folder of images is an unlabeled train set; asking for its test split is an error.
    Non-image files are ignored."""
    for i in range(4):
        _png(tmp_path / "u" / f"{i}.png", _gray(10 * i))
    (tmp_path / "u" / "notes.txt").write_text("not an image")
    unlabeled = load_dataset(f"folder:{tmp_path / 'u'}", "train")
    assert unlabeled.labels is None and unlabeled.classes == [] and len(unlabeled) == 4
    assert _ids(unlabeled.images) == [0, 10, 20, 30]
    with pytest.raises(CollectionError, match="unlabeled"):
        load_dataset(f"folder:{tmp_path / 'u'}", "test")


def test_folder_colour_images(tmp_path):
    """Colour images give 3 channels in RGB order; a grey image among them is replicated."""
    red = np.zeros((5, 7, 3), dtype=np.uint8)
    red[..., 0] = 255
    _png(tmp_path / "c" / "0.png", red)
    _png(tmp_path / "c" / "1.png", _gray(90, (5, 7)))
    s = load_dataset(f"folder:{tmp_path / 'c'}", "train")
    assert s.images.shape == (2, 3, 5, 7)
    assert (s.images[0, 0] == 255).all() and (s.images[0, 1:] == 0).all()
    assert (s.images[1] == 90).all()


def test_folder_rgba_and_jpeg(tmp_path):
    """Other common formats decode too: RGBA PNG becomes RGB, JPEG keeps its 3 channels."""
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 2], rgba[..., 3] = 200, 255
    _png(tmp_path / "f" / "a.png", rgba)
    Image.fromarray(np.full((4, 4, 3), 128, dtype=np.uint8)).save(tmp_path / "f" / "b.JPG")
    s = load_dataset(f"folder:{tmp_path / 'f'}", "train")
    assert s.images.shape == (2, 3, 4, 4)
    assert (s.images[0, 2] == 200).all()
    assert abs(int(s.images[1].float().mean()) - 128) <= 2


def test_folder_mixed_sizes_resized_to_first(tmp_path):
    """Images of other sizes are resized to the first one's (height, width), not transposed."""
    _png(tmp_path / "m" / "a.png", _gray(50, (10, 12)))  # 10 high, 12 wide
    _png(tmp_path / "m" / "b.png", _gray(150, (30, 20)))
    s = load_dataset(f"folder:{tmp_path / 'm'}", "train")
    assert s.images.shape == (2, 1, 10, 12)
    assert (s.images[1] == 150).all()


@pytest.mark.parametrize("content", [b"definitely not a png", "truncated"])
def test_folder_corrupt_image(tmp_path, content):
    """An unreadable image is skipped, counted and named, never fatal (issue 13)."""
    good = _png(tmp_path / "k" / "cat" / "a.png", np.random.default_rng(0).integers(
        0, 255, (16, 16), dtype=np.uint8))
    for i in range(4):
        _png(tmp_path / "k" / "cat" / f"g{i}.png", _gray(i))
        _png(tmp_path / "k" / "dog" / f"c{i}.png", _gray(100 + i))
    bad = tmp_path / "k" / "cat" / "b.png"
    bad.write_bytes(good.read_bytes()[:60] if content == "truncated" else content)
    splits = [load_dataset(f"folder:{tmp_path / 'k'}", split) for split in ("train", "test")]
    assert sum(len(s) for s in splits) == 9
    (note,) = [n for s in splits for n in s.notes]
    assert "1 of" in note and "b.png" in note


def test_folder_empty_or_missing(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "only-text").mkdir()
    (tmp_path / "only-text" / "readme.txt").write_text("x")
    (tmp_path / "a-file.png").write_bytes(b"")
    for path in ("empty", "only-text"):
        with pytest.raises(CollectionError, match="no images"):
            load_dataset(f"folder:{tmp_path / path}", "train")
    with pytest.raises(CollectionError, match="does not exist"):
        load_dataset(f"folder:{tmp_path / 'does-not-exist'}", "train")
    with pytest.raises(CollectionError, match="is not a source of images"):
        load_dataset(f"folder:{tmp_path / 'a-file.png'}", "train")


def test_folder_named_train_keeps_splits_disjoint(tmp_path):
    """folder.py decides 'has its own splits' by `root.name != split`, so for /x/train/<class>/*
    the train split is every image while the test split is a held-out fifth of the same images."""
    root = tmp_path / "train"
    _labeled_folder(root, {"a": 10, "b": 10})
    train, test = load_dataset(f"folder:{root}", "train"), load_dataset(f"folder:{root}", "test")
    assert not set(_ids(train.images)) & set(_ids(test.images))


def test_folder_split_subfolders_share_class_indices(tmp_path):
    """With train/{a,b,c} and test/{a,c}, test images of 'c' must be labelled 2 as in train."""
    _labeled_folder(tmp_path / "s" / "train", {"a": 2, "b": 2, "c": 2})
    _labeled_folder(tmp_path / "s" / "test", {"a": 1, "c": 1})
    train = load_dataset(f"folder:{tmp_path / 's'}", "train")
    test = load_dataset(f"folder:{tmp_path / 's'}", "test")
    assert test.classes == train.classes
    assert test.labels.tolist() == [0, 2]


@pytest.mark.parametrize("odd", ["size", "colour"])
def test_folder_holdout_splits_share_shape(tmp_path, odd):
    """Train and test of one folder must have the same (C, H, W) or pair_datasets refuses them.
    With a single odd image (another size first in sort order, or the only colour one), one split
    gets it and the other does not, and their shapes differ."""
    root = tmp_path / "mixed"
    _labeled_folder(root, {"a": 10, "b": 10})
    if odd == "size":
        _png(root / "a" / "img00.png", _gray(1, (9, 9)))
    else:
        _png(root / "a" / "img03.png", np.zeros((6, 6, 3), dtype=np.uint8))
    train, test = load_dataset(f"folder:{root}", "train"), load_dataset(f"folder:{root}", "test")
    assert train.shape == test.shape
