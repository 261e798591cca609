"""What a user sees when a dataset is nowhere or damaged (named IDX sets), and torchvision's
colour sets (cifar10) found, missing, failing to download, or failing their checksum."""
from __future__ import annotations

import pickle
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from bdcore.data import DATASETS, CorruptFileError, DatasetNotFoundError, load_dataset, locate_dataset
from bdcore.data.idx import write_idx

from conftest import IDX_NAMES, write_idx_dataset
from test_data_sources import MNIST_FILES, _kind

# --------------------------------------------------------------------------------------------
# 3. Error paths of named IDX datasets
# --------------------------------------------------------------------------------------------

def test_absent_dataset_message(isolated_env, monkeypatch):
    """Offline and nowhere: the message names the dataset, the four files, every folder searched,
    and that the download was skipped, so a user can fix it without reading code."""
    system = isolated_env / "system"
    monkeypatch.setattr("bdcore.data.idx_sets.SYSTEM_DIRS", (system,))
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("kmnist", "train")
    message = str(info.value)
    assert "'kmnist'" in message
    for name in MNIST_FILES:
        assert name in message
    for folder in (isolated_env / "data" / "kmnist", isolated_env / "data" / "KMNIST" / "raw",
                   system / "kmnist"):
        assert str(folder) in message
    assert "skipped (BD_OFFLINE is set)" in message
    assert isinstance(info.value, FileNotFoundError)


def test_absent_emnist_message_names_its_files(isolated_env):
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("emnist-letters", "test")
    for name in ("emnist-letters-train-images-idx3-ubyte", "emnist-letters-train-labels-idx1-ubyte",
                 "emnist-letters-test-images-idx3-ubyte", "emnist-letters-test-labels-idx1-ubyte"):
        assert name in str(info.value)
    assert str(isolated_env / "data" / "EMNIST" / "raw") in str(info.value)


def test_corrupt_file_in_data_dir(isolated_env):
    """A damaged file is reported with its path; the loader does not fall back to the demo."""
    folder = write_idx_dataset(isolated_env / "data" / "mnist", n_train=20, n_test=10)
    damaged = folder / "train-images-idx3-ubyte.gz"
    damaged.write_bytes(damaged.read_bytes()[:-40])
    with pytest.raises(CorruptFileError) as info:
        load_dataset("mnist", "train")
    assert str(damaged) in str(info.value)
    assert len(load_dataset("mnist", "test")) == 10  # the other split is intact


def _write_split(folder: Path, images, labels, names=IDX_NAMES["train"]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / names[0], np.asarray(images, dtype=np.uint8))
    write_idx(folder / names[1], np.asarray(labels, dtype=np.uint8))


def test_count_mismatch(isolated_env):
    folder = write_idx_dataset(isolated_env / "data" / "mnist", n_train=10, n_test=5)
    _write_split(folder, np.zeros((5, 28, 28)), np.zeros(4))
    with pytest.raises(CorruptFileError, match="do not match"):
        load_dataset("mnist", "train")


def test_images_with_wrong_rank(isolated_env):
    """A labels file where the images file should be (1-D) is caught by the shape check."""
    folder = write_idx_dataset(isolated_env / "data" / "mnist", n_train=10, n_test=5)
    _write_split(folder, np.zeros(5), np.zeros(5))
    with pytest.raises(CorruptFileError, match="do not match"):
        load_dataset("mnist", "train")


@pytest.mark.parametrize("bad_label", [10, 255])
def test_labels_out_of_range(isolated_env, bad_label):
    folder = write_idx_dataset(isolated_env / "data" / "mnist", n_train=10, n_test=5)
    _write_split(folder, np.zeros((3, 28, 28)), [0, bad_label, 9])
    with pytest.raises(CorruptFileError, match=r"labels outside 0\.\.9") as info:
        load_dataset("mnist", "train")
    assert "train-labels-idx1-ubyte" in str(info.value)


def test_empty_split_is_not_a_numpy_error(isolated_env):
    """A valid IDX pair holding 0 images should load empty or be reported as CorruptFileError,
    not surface numpy's 'zero-size array to reduction operation minimum' error."""
    folder = isolated_env / "data" / "kmnist"
    for names in IDX_NAMES.values():
        _write_split(folder, np.zeros((0, 28, 28)), np.zeros(0), names=names)
    try:
        assert len(load_dataset("kmnist", "train")) == 0
    except CorruptFileError:
        pass


def test_unknown_dataset_name_lists_choices():
    with pytest.raises(ValueError) as info:
        load_dataset("mnist2", "train")
    message = str(info.value)
    assert "'mnist2'" in message and "folder:PATH" in message
    for name in DATASETS:
        assert name in message
    assert set(DATASETS) >= {"mnist", "fashion-mnist", "kmnist", "emnist-letters", "cifar10",
                             "cifar100", "svhn"}


@pytest.mark.parametrize("split", ["valid", "Train", ""])
def test_unknown_split(tiny_data, split):
    with pytest.raises(ValueError, match="unknown split"):
        load_dataset("mnist", split)
    with pytest.raises(ValueError, match="unknown split"):
        load_dataset(f"folder:{tiny_data}", split)


def test_emnist_letters_transposed_and_shifted(isolated_env):
    """EMNIST stores images transposed and letters as 1..26: the loader undoes both."""
    folder = isolated_env / "data" / "emnist-letters"
    stored = np.zeros((26, 28, 28), dtype=np.uint8)
    stored[:, 0, :] = 200  # first stored *row* is bright ...
    stored[:, 5, 3] = 77  # ... and one asymmetric pixel
    for _split, stem in (("train", "train"), ("test", "test")):
        _write_split(folder, stored, np.arange(1, 27),
                     names=(f"emnist-letters-{stem}-images-idx3-ubyte",
                            f"emnist-letters-{stem}-labels-idx1-ubyte"))
    assert _kind("emnist-letters") == "data dir"
    for split in ("train", "test"):
        letters = load_dataset("emnist-letters", split)
        assert letters.labels.tolist() == list(range(26))
        assert letters.classes[0] == "a" and letters.classes[25] == "z" and len(letters.classes) == 26
        img = letters.images[0, 0]
        assert (img[:, 0] == 200).all() and (img[1:, 1:] != 200).all()  # ... becomes the first column
        assert img[3, 5] == 77 and img[5, 3] == 0
        assert img.is_contiguous()


def test_emnist_letters_label_zero_is_out_of_range(isolated_env):
    """Label 0 in the raw letters file (which is 1-based) is an error, not class -1."""
    folder = isolated_env / "data" / "emnist-letters"
    for stem in ("train", "test"):
        _write_split(folder, np.zeros((2, 28, 28)), [0, 1],
                     names=(f"emnist-letters-{stem}-images-idx3-ubyte",
                            f"emnist-letters-{stem}-labels-idx1-ubyte"))
    with pytest.raises(CorruptFileError, match="labels outside"):
        load_dataset("emnist-letters", "train")


# --------------------------------------------------------------------------------------------
# 4. Colour sets through torchvision (cifar10)
# --------------------------------------------------------------------------------------------

def test_cifar10_absent_offline(isolated_env, monkeypatch):
    """Offline and absent: a helpful DatasetNotFoundError, and no download is even attempted."""
    import torchvision.datasets as tvd

    def no_download(self):
        raise AssertionError("must not download while BD_OFFLINE is set")

    monkeypatch.setattr(tvd.CIFAR10, "download", no_download)
    assert locate_dataset("cifar10")[0] is None
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("cifar10", "train")
    message = str(info.value)
    assert "'cifar10'" in message and "cifar-10-batches-py" in message
    assert str(isolated_env / "data" / "cifar10") in message
    assert "skipped (BD_OFFLINE is set)" in message


def test_cifar10_download_failure(isolated_env, monkeypatch):
    monkeypatch.delenv("BD_OFFLINE")

    class FakeCIFAR10:
        def __init__(self, root, train=True, download=False):
            if download:
                raise urllib.error.URLError("timed out")
            raise RuntimeError("Dataset not found or corrupted.")

    monkeypatch.setattr("torchvision.datasets.CIFAR10", FakeCIFAR10)
    with pytest.raises(DatasetNotFoundError, match=r"Download: failed \(URLError"):
        load_dataset("cifar10", "test")


def _write_fake_cifar10(folder: Path, per_batch: int = 4) -> None:
    """torchvision's pickle layout: rows of 3072 bytes (R plane, G plane, B plane)."""
    folder.mkdir(parents=True)
    names = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
             "test_batch"]
    for b, name in enumerate(names):
        data = np.zeros((per_batch, 3072), dtype=np.uint8)
        data[:, :1024] = 10 * b + np.arange(per_batch)[:, None]  # red plane tags batch and row
        data[:, 1024 + 1] = 255  # green pixel at (row 0, column 1)
        entry = {"data": data, "labels": [(b + i) % 10 for i in range(per_batch)]}
        (folder / name).write_bytes(pickle.dumps(entry))
    meta = {"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                            "horse", "ship", "truck"]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))


def test_cifar10_fake_copy_is_read(isolated_env, monkeypatch):
    """A (tiny, fake) extracted cifar-10-batches-py in $BD_DATA_DIR/cifar10 loads as (N, 3, 32, 32)
    uint8 with channels in the right place. torchvision's md5 check is bypassed for the fake."""
    _write_fake_cifar10(isolated_env / "data" / "cifar10" / "cifar-10-batches-py")
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *a, **k: True)
    location, _ = locate_dataset("cifar10")
    assert location.kind == "data dir" and location.path == isolated_env / "data" / "cifar10"
    train, test = load_dataset("cifar10", "train"), load_dataset("cifar10", "test")
    assert train.images.shape == (20, 3, 32, 32) and train.images.dtype == torch.uint8
    assert test.images.shape == (4, 3, 32, 32)
    assert test.images[:, 0, 7, 9].tolist() == [50, 51, 52, 53]  # red plane of test_batch
    assert (test.images[:, 1, 0, 1] == 255).all() and (test.images[:, 1, 1, 0] == 0).all()
    assert (test.images[:, 2] == 0).all()
    assert test.labels.tolist() == [5, 6, 7, 8] and test.labels.dtype == torch.int64
    assert test.classes[0] == "airplane" and len(test.classes) == 10
    assert train.source.startswith("data dir:") and not train.demo_subset


def test_cifar10_failing_checksum_is_not_found(isolated_env):
    """Files that fail torchvision's md5 check are treated as absent (it raises RuntimeError)."""
    _write_fake_cifar10(isolated_env / "data" / "cifar-10-batches-py")
    with pytest.raises(DatasetNotFoundError):
        load_dataset("cifar10", "test")
