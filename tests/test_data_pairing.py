"""Pairing a labeled set with an unlabeled one: the unlabeled images are brought to the labeled
set's channels and size, and everything is normalised with the labeled *train* statistics."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from bdcore.data import ImageSet, PairedData, load_dataset, pair_datasets
from bdcore.data.pairing import convert_images


def _set(images: torch.Tensor, labels=None, name="x", split="train", classes=None, demo=False) -> ImageSet:
    if classes is None:
        classes = [] if labels is None else [str(i) for i in range(int(labels.max()) + 1)]
    return ImageSet(name, split, images, labels, classes, "test", demo_subset=demo)


def _random(n, c, h, w, low=0, high=256, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(low, high, (n, c, h, w), generator=g, dtype=torch.uint8)


def _labeled(n=40, c=1, size=28, seed=0) -> tuple[ImageSet, ImageSet]:
    labels = torch.arange(n) % 10
    return (_set(_random(n, c, size, size, seed=seed), labels, "lab", "train"),
            _set(_random(n // 2, c, size, size, seed=seed + 1), labels[: n // 2], "lab", "test"))


# --------------------------------------------------------------------------------------------
# convert_images
# --------------------------------------------------------------------------------------------

def test_gray_to_rgb_copies_the_channel():
    gray = _random(3, 1, 5, 5)
    rgb = convert_images(gray, 3, (5, 5))
    assert rgb.dtype == torch.uint8 and rgb.shape == (3, 3, 5, 5)
    for ch in range(3):
        assert torch.equal(rgb[:, ch], gray[:, 0])


def test_rgb_to_gray_uses_luma_weights():
    """ITU-R 601 luma: pure red, green, blue and white map to 76, 150, 29 and 255."""
    colours = torch.zeros(4, 3, 2, 2, dtype=torch.uint8)
    colours[0, 0] = 255
    colours[1, 1] = 255
    colours[2, 2] = 255
    colours[3] = 255
    gray = convert_images(colours, 1, (2, 2))
    assert gray.shape == (4, 1, 2, 2) and gray.dtype == torch.uint8
    assert gray[:, 0, 0, 0].tolist() == [76, 150, 29, 255]


def test_resize_keeps_constant_images_and_range():
    """A 32x32 RGB image becomes 28x28 grayscale; flat images stay flat, values stay in 0..255."""
    flat = torch.full((2, 3, 32, 32), 200, dtype=torch.uint8)
    out = convert_images(flat, 1, (28, 28))
    assert out.shape == (2, 1, 28, 28) and (out == 200).all()
    noisy = convert_images(_random(2, 1, 32, 32), 1, (28, 28))
    assert noisy.dtype == torch.uint8 and noisy.shape == (2, 1, 28, 28)


def test_resize_is_a_real_downscale():
    """Left half black, right half white stays that way after resizing (no flip, no transpose)."""
    img = torch.zeros(1, 1, 32, 32, dtype=torch.uint8)
    img[..., 16:] = 255
    out = convert_images(img, 1, (28, 28))[0, 0]
    assert (out[:, :13] == 0).all() and (out[:, 15:] == 255).all()


def test_resize_to_non_square_size_is_height_width():
    out = convert_images(_random(1, 1, 10, 10), 1, (6, 8))
    assert out.shape == (1, 1, 6, 8)


def test_convert_noop_and_empty():
    images = _random(3, 1, 4, 4)
    assert torch.equal(convert_images(images, 1, (4, 4)), images)
    empty = convert_images(torch.zeros(0, 3, 8, 8, dtype=torch.uint8), 1, (4, 4))
    assert empty.shape == (0, 1, 4, 4)


def test_convert_unsupported_channels():
    with pytest.raises(ValueError, match="cannot convert 2 channels to 3"):
        convert_images(_random(1, 2, 4, 4), 3, (4, 4))


def test_convert_in_chunks(monkeypatch):
    """Big sets are converted a chunk at a time; the result is the same as one pass."""
    images = _random(7, 3, 6, 6)
    whole = convert_images(images, 1, (4, 4))
    monkeypatch.setattr("bdcore.data.pairing.CHUNK", 3)
    assert torch.equal(convert_images(images, 1, (4, 4)), whole)


# --------------------------------------------------------------------------------------------
# pair_datasets
# --------------------------------------------------------------------------------------------

def _manual_stats(images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    x = images.numpy().astype(np.float64) / 255
    return x.mean(axis=(0, 2, 3)), x.std(axis=(0, 2, 3), ddof=1)


def test_pair_gray_labeled_with_rgb_unlabeled():
    """32x32 RGB unlabeled -> 28x28 gray; everything normalised with the labeled train stats."""
    train, test = _labeled()
    unlabeled = _set(_random(12, 3, 32, 32, low=150, seed=5), name="bright")  # not like train
    paired = pair_datasets(train, test, unlabeled)
    assert paired.input_shape == (1, 28, 28) and paired.num_classes == 10
    assert paired.unlabeled_x.shape == (12, 1, 28, 28) and paired.unlabeled_x.dtype == torch.float32
    mean, std = _manual_stats(train.images)
    np.testing.assert_allclose(paired.mean, mean, rtol=1e-4)
    np.testing.assert_allclose(paired.std, std, rtol=1e-4)
    # the labeled train set is standardised ...
    assert abs(paired.train_x.mean().item()) < 1e-4 and abs(paired.train_x.std().item() - 1) < 1e-4
    # ... and the others use the *same* numbers, not their own
    m, s = torch.tensor(paired.mean).view(1, -1, 1, 1), torch.tensor(paired.std).view(1, -1, 1, 1)
    expected_unlabeled = (convert_images(unlabeled.images, 1, (28, 28)).float() / 255 - m) / s
    assert torch.allclose(paired.unlabeled_x, expected_unlabeled, atol=1e-5)
    assert paired.unlabeled_x.mean().item() > 1.0  # bright images stay bright relative to train
    assert torch.allclose(paired.test_x, (test.images.float() / 255 - m) / s, atol=1e-5)
    assert torch.equal(paired.train_y, train.labels) and torch.equal(paired.test_y, test.labels)
    assert paired.unlabeled_labels is None and paired.unlabeled_classes == []
    assert any("bright converted from (3, 32, 32) to (1, 28, 28)" in n for n in paired.notes)


def test_pair_rgb_labeled_per_channel_stats():
    """With an RGB labeled set, each channel gets its own mean/std; gray unlabeled is expanded."""
    labels = torch.arange(30) % 3
    images = _random(30, 3, 8, 8)
    images[:, 0] //= 4  # make the channels differ
    images[:, 2] = images[:, 2] // 2 + 128
    train = _set(images, labels, "rgb", "train")
    test = _set(_random(6, 3, 8, 8, seed=1), labels[:6], "rgb", "test")
    unlabeled = _set(_random(5, 1, 8, 8, seed=2), name="gray")
    paired = pair_datasets(train, test, unlabeled)
    assert len(paired.mean) == len(paired.std) == 3
    assert paired.mean[0] < paired.mean[1] < paired.mean[2]
    per_channel = paired.train_x.transpose(0, 1).reshape(3, -1)
    assert torch.allclose(per_channel.mean(1), torch.zeros(3), atol=1e-4)
    assert torch.allclose(per_channel.std(1), torch.ones(3), atol=1e-4)
    assert paired.unlabeled_x.shape == (5, 3, 8, 8)
    raw = paired.unlabeled_x * torch.tensor(paired.std).view(1, 3, 1, 1) \
        + torch.tensor(paired.mean).view(1, 3, 1, 1)
    assert torch.allclose(raw[:, 0], raw[:, 1], atol=1e-5)  # same gray in every channel
    assert torch.allclose(raw[:, 0] * 255, unlabeled.images[:, 0].float(), atol=1e-3)


def test_unlabeled_labels_are_carried_for_analysis():
    train, test = _labeled()
    labels = torch.tensor([3, 1, 4, 1, 5])
    unlabeled = _set(_random(5, 1, 28, 28, seed=3), labels, "other", classes=list("abcdef"))
    paired = pair_datasets(train, test, unlabeled)
    assert torch.equal(paired.unlabeled_labels, labels)
    assert paired.unlabeled_classes == list("abcdef") and paired.classes == train.classes
    assert not any("converted" in n for n in paired.notes)  # same shape: no conversion note


def test_labeled_set_needs_labels():
    train, test = _labeled()
    unlabeled = _set(_random(3, 1, 28, 28))
    with pytest.raises(ValueError, match="no labels"):
        pair_datasets(_set(train.images, None, "flat"), test, unlabeled)
    with pytest.raises(ValueError, match="no labels"):
        pair_datasets(train, _set(test.images, None, "flat", "test"), unlabeled)


def test_train_and_test_shapes_must_agree():
    train, _ = _labeled()
    test = _set(_random(4, 1, 14, 14), torch.arange(4), "lab", "test")
    with pytest.raises(ValueError, match="differ"):
        pair_datasets(train, test, _set(_random(3, 1, 28, 28)))


def test_constant_labeled_set_does_not_divide_by_zero():
    """A labeled train set with zero variance still gives finite normalised values."""
    flat = torch.full((4, 1, 4, 4), 7, dtype=torch.uint8)
    train = _set(flat, torch.arange(4), "flat", "train")
    paired = pair_datasets(train, _set(flat.clone(), torch.arange(4), "flat", "test"),
                           _set(_random(2, 1, 4, 4)))
    assert torch.isfinite(paired.train_x).all() and torch.isfinite(paired.unlabeled_x).all()


def test_notes_mention_the_demo_subset(tiny_data):
    """With the bundled demo mnist (nothing in the data dir for it), the notes say so for each
    split, and a same-shape unlabeled set (tiny fashion-mnist from the data dir) adds no note."""
    import shutil

    shutil.rmtree(tiny_data / "mnist")
    train, test = load_dataset("mnist", "train"), load_dataset("mnist", "test")
    unlabeled = load_dataset("fashion-mnist", "train")
    assert train.demo_subset and not unlabeled.demo_subset
    paired = pair_datasets(train, test, unlabeled)
    assert len(paired.notes) == 2
    assert "mnist (train): bundled demo subset of 10000 images" in paired.notes[0]
    assert "mnist (test): bundled demo subset of 2000 images" in paired.notes[1]
    assert paired.unlabeled_x.shape == (200, 1, 28, 28)


def test_no_notes_for_full_data(tiny_data):
    paired = pair_datasets(load_dataset("mnist", "train"), load_dataset("mnist", "test"),
                           load_dataset("fashion-mnist", "train"))
    assert paired.notes == []


def test_demo_unlabeled_set_is_noted():
    train, test = _labeled()
    unlabeled = _set(_random(3, 1, 28, 28), name="fashion-mnist", demo=True)
    notes = pair_datasets(train, test, unlabeled).notes
    assert len(notes) == 1 and "fashion-mnist (train): bundled demo subset of 3 images" in notes[0]


def test_pair_with_folder_of_colour_images(tiny_data, tmp_path):
    """End to end: tiny mnist (data dir) with an unlabeled folder of 20x30 colour PNGs."""
    for i in range(3):
        rgb = np.zeros((20, 30, 3), dtype=np.uint8)
        rgb[..., i] = 255
        Image.fromarray(rgb).save(tmp_path / f"{i}.png")
    unlabeled = load_dataset(f"folder:{tmp_path}", "train")
    paired = pair_datasets(load_dataset("mnist", "train"), load_dataset("mnist", "test"), unlabeled)
    assert paired.unlabeled_x.shape == (3, 1, 28, 28) and paired.unlabeled_labels is None
    raw = paired.unlabeled_x[:, 0, 14, 14] * paired.std[0] + paired.mean[0]
    assert torch.allclose(raw * 255, torch.tensor([76.0, 150.0, 29.0]), atol=1e-3)
    assert any("converted from (3, 20, 30) to (1, 28, 28)" in n for n in paired.notes)


def test_to_keeps_every_field():
    train, test = _labeled(n=20)
    unlabeled = _set(_random(4, 3, 32, 32), torch.tensor([0, 1, 0, 1]), "u", classes=["p", "q"])
    paired = pair_datasets(train, test, unlabeled)
    moved = paired.to(torch.device("cpu"))
    assert isinstance(moved, PairedData)
    for field in ("train_x", "train_y", "test_x", "test_y", "unlabeled_x", "unlabeled_labels"):
        assert torch.equal(getattr(moved, field), getattr(paired, field))
        assert getattr(moved, field).device.type == "cpu"
    for field in ("classes", "unlabeled_classes", "mean", "std", "notes"):
        assert getattr(moved, field) == getattr(paired, field)
    assert moved.input_shape == paired.input_shape and moved.num_classes == paired.num_classes
    no_labels = pair_datasets(train, test, _set(unlabeled.images)).to("cpu")
    assert no_labels.unlabeled_labels is None


def test_pairing_does_not_modify_inputs():
    """Normalising must work on copies: the ImageSets stay uint8 and unchanged."""
    train, test = _labeled(n=20)
    unlabeled = _set(_random(4, 1, 28, 28, seed=9))
    before = [s.images.clone() for s in (train, test, unlabeled)]
    pair_datasets(train, test, unlabeled)
    for s, b in zip((train, test, unlabeled), before, strict=True):
        assert s.images.dtype == torch.uint8 and torch.equal(s.images, b)
