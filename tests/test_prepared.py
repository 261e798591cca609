"""The prepared-dataset cache and streaming from it: prepared once and reused, keyed by the files,
damaged files skipped and named, nothing half-written, batches that match the in-memory set, and
a whole run trained from disk."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bdcore.cli import main
from bdcore.config import ExperimentConfig
from bdcore.data import load_dataset
from bdcore.data import prepared as prepared_module
from bdcore.data.prepared import list_prepared
from bdcore.data.streamed import StreamedImages
from bdcore.errors import DataError
from bdcore.experiment import run_experiment
from bdcore.preview import preview_dataset
from bdcore.runs import RunsRoot
from bdcore.train import epoch_batches

from test_app import page

CLASSES = 3


def _image(value: int, size=(12, 10)) -> Image.Image:
    """An RGB image whose red channel holds ``value`` (its identity) and whose other channels hold
    its class pattern."""
    a = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    a[..., 0] = value % 256
    a[..., 1] = 40 + 60 * (value % CLASSES)
    return Image.fromarray(a)


def labeled_folder(root: Path, per_class: int = 10) -> Path:
    for i in range(per_class * CLASSES):
        folder = root / f"class{i % CLASSES}"
        folder.mkdir(parents=True, exist_ok=True)
        _image(i).save(folder / f"{i:03d}.png")
    return root


def unlabeled_folder(root: Path, n: int = 24, damaged: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        _image(100 + i).save(root / f"u{i:03d}.png")
    if damaged:
        (root / "empty.jpg").write_bytes(b"")
        (root / "text.png").write_text("not an image")
        good = (root / "u000.png").read_bytes()
        (root / "cut.png").write_bytes(good[: len(good) // 2])
    return root


def ids(images: torch.Tensor) -> list[int]:
    return images[:, 0, 0, 0].tolist()


def test_prepared_once_then_reused(tmp_path, monkeypatch):
    spec = f"folder:{labeled_folder(tmp_path / 'set')}"
    first = load_dataset(spec, "train")
    assert len(list_prepared()) == 1 and first.images.shape == (24, 3, 10, 12)
    # a second load decodes nothing: the cache answers
    monkeypatch.setattr(prepared_module, "_decoded", lambda *a, **k: pytest.fail("decoded again"))
    again = load_dataset(spec, "train")
    assert torch.equal(first.images, again.images) and torch.equal(first.labels, again.labels)


def test_changed_file_is_prepared_again(tmp_path):
    root = labeled_folder(tmp_path / "set")
    load_dataset(f"folder:{root}", "train")
    target = root / "class0" / "000.png"
    _image(0, size=(12, 10)).save(target)
    os.utime(target, (1, 1))  # another mtime: another key
    load_dataset(f"folder:{root}", "train")
    assert len(list_prepared()) == 2


def test_in_memory_order_and_labels_match_the_folder(tmp_path):
    """The cache stores a shuffled order; a set loaded into memory is back in sorted order."""
    train = load_dataset(f"folder:{labeled_folder(tmp_path / 'set')}", "train")
    for value, label in zip(ids(train.images), train.labels.tolist(), strict=True):
        assert value % CLASSES == label
    assert ids(train.images) == sorted(ids(train.images), key=lambda v: (v % CLASSES, v))


def test_streamed_rows_match_memory(tmp_path, monkeypatch):
    spec = f"folder:{labeled_folder(tmp_path / 'set')}"
    memory = load_dataset(spec, "train")
    monkeypatch.setenv("BD_IN_MEMORY_MB", "0")
    streamed = load_dataset(spec, "train")
    assert isinstance(streamed.images, StreamedImages) and streamed.streamed
    assert streamed.images.shape == memory.images.shape
    rows = torch.tensor([5, 0, 17, 5])
    # the same images and labels, though in the cache's own order
    by_id = {v: (img, lab)
             for v, img, lab in zip(ids(memory.images), memory.images, memory.labels, strict=True)}
    got = streamed.images[rows]
    for image, label in zip(got, streamed.labels[rows], strict=True):
        want_image, want_label = by_id[int(image[0, 0, 0])]
        assert torch.equal(image, want_image) and int(label) == int(want_label)
    assert torch.cat(list(streamed.images.split(7))).shape == memory.images.shape


def test_streamed_epochs_cover_every_row_once(tmp_path, monkeypatch):
    monkeypatch.setenv("BD_IN_MEMORY_MB", "0")
    images = load_dataset(f"folder:{unlabeled_folder(tmp_path / 'u', n=50)}", "train").images
    seen = []
    generator = torch.Generator().manual_seed(0)
    for index, x in epoch_batches(images, 8, 7, generator):
        assert len(index) == len(x) <= 8
        assert torch.equal(x, images[index])  # a batch's rows are the rows it says
        seen += index.tolist()
    assert sorted(seen) == list(range(50))
    second = [i for index, _ in epoch_batches(images, 8, 7, generator) for i in index.tolist()]
    assert second != seen and sorted(second) == sorted(seen)  # a new order each epoch
    view = images.view(torch.tensor([3, 9, 11]))
    assert sorted(i for index, _ in epoch_batches(view, 2, 2, generator) for i in index.tolist()) == [0, 1, 2]
    assert torch.equal(view[torch.tensor([1])], images[torch.tensor([9])])


def test_damaged_files_are_skipped_and_named(tmp_path):
    unlabeled = load_dataset(f"folder:{unlabeled_folder(tmp_path / 'u', damaged=True)}", "train")
    assert len(unlabeled) == 24
    (note,) = unlabeled.notes
    assert "3 of 27 images skipped" in note
    for name in ("empty.jpg", "text.png", "cut.png"):
        assert name in note


def test_no_usable_image_is_refused(tmp_path):
    root = tmp_path / "bad"
    root.mkdir()
    (root / "a.jpg").write_bytes(b"")
    (root / "b.png").write_text("nope")
    with pytest.raises(DataError, match="none of (its )?2 (sampled )?images (can|could) be read"):
        load_dataset(f"folder:{root}", "train")
    assert list_prepared() == []


def test_a_killed_preparation_leaves_nothing_half_made(tmp_path, monkeypatch):
    spec = f"folder:{unlabeled_folder(tmp_path / 'u')}"
    real = prepared_module._decoded

    def dies_midway(entries, shape, workers):
        for n, item in enumerate(real(entries, shape, 1)):
            if n == 10:
                raise KeyboardInterrupt  # as a kill would, mid-way
            yield item

    monkeypatch.setattr(prepared_module, "_decoded", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        load_dataset(spec, "train")
    assert list_prepared() == []
    monkeypatch.setattr(prepared_module, "_decoded", real)
    assert len(load_dataset(spec, "train")) == 24
    leftovers = [p.name for p in prepared_module.cache_root().iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_run_trains_from_streamed_sets(tmp_path, monkeypatch):
    """Both sets streamed from disk through all three stages; the run's notes say so."""
    monkeypatch.setenv("BD_IN_MEMORY_MB", "0")
    labeled = labeled_folder(tmp_path / "set", per_class=15)
    unlabeled = unlabeled_folder(tmp_path / "u", n=40, damaged=True)
    config = ExperimentConfig(labeled=f"folder:{labeled}", unlabeled=f"folder:{unlabeled}", teacher="cnn",
                              student="cnn", teacher_epochs=2, blind_epochs=2, finetune_epochs=1,
                              finetune_min_steps=0, finetune_ks=["2", "all"], batch_size=8, image_size=16,
                              device="cpu")
    events = []
    result = run_experiment(config, RunsRoot(tmp_path / "runs"), on_event=events.append)
    assert 0 <= result.blind_acc <= 1 and set(result.finetune_acc) == {"2", "all"}
    assert any("streamed from the prepared cache" in n for n in result.notes)
    assert any("3 of 43 images skipped" in n for n in result.notes)
    assert any(e.kind.value == "preparing" and e.done == e.total for e in events)
    shapes = {tuple(p.shape) for p in list_prepared()}
    assert shapes == {(3, 16, 16)}  # the unlabeled set was prepared at the labeled set's shape


def test_preview_decodes_a_handful_and_prepares_nothing(tmp_path, monkeypatch):
    from bdcore.data import collection

    calls = []
    real = collection.decode
    monkeypatch.setattr("bdcore.preview.decode", lambda *a: calls.append(1) or real(*a))
    preview = preview_dataset(f"folder:{unlabeled_folder(tmp_path / 'u', n=200)}", count=8)
    assert preview.ok and preview.size == 200 and len(calls) == 8
    assert list_prepared() == []


def test_cli_prepare_list_delete(tmp_path, capsys):
    root = labeled_folder(tmp_path / "set")
    assert main(["datasets", "prepare", f"folder:{root}", "--size", "16", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["split"] for r in rows} == {"train", "test"} and all(r["shape"] == [3, 16, 16] for r in rows)
    assert main(["datasets", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["prepared"]
    assert {r["key"] for r in listed} == {r["key"] for r in rows}
    assert main(["datasets", "delete", rows[0]["key"]]) == 0
    assert main(["datasets", "delete", "no-such-key"]) == 2
    assert "no prepared set 'no-such-key'" in capsys.readouterr().err
    assert main(["datasets", "delete", "--all"]) == 0
    assert list_prepared() == []
    assert main(["datasets", "prepare", f"folder:{root}", "--size", "4"]) == 2


def test_datasets_page_lists_and_deletes_prepared_sets(tmp_path):
    unlabeled = unlabeled_folder(tmp_path / "u", damaged=True)
    load_dataset(f"folder:{unlabeled}", "train")
    (item,) = list_prepared()
    at = page("ui/datasets.py").run()
    assert not at.exception
    line = next(m.value for m in at.markdown if str(unlabeled) in m.value)
    assert "24 images" in line and "3 skipped" in line
    assert any("3 of 27 images skipped" in c.value for c in at.caption)
    at.button(key=f"delete_prepared_{item.key}").click().run()
    assert not at.exception and list_prepared() == []
