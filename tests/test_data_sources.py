"""The data layer's sources: the IDX reader, every place a named dataset can come from (in order),
the errors a user sees when it is nowhere or damaged, torchvision's colour sets, and folders of
images. Everything is tiny and offline; downloads are faked by replacing torchvision classes."""
from __future__ import annotations

import gzip
import pickle
import socket
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bdcore.data import (DATASETS, CorruptFileError, DatasetNotFoundError, FolderDatasetError,
                         load_dataset, locate_dataset)
from bdcore.data.idx import read_idx, write_idx
from bdcore.data.sources import DEMO_DIR, DOWNLOAD_TIMEOUT_S
from conftest import IDX_NAMES, make_images, write_idx_dataset

MNIST_FILES = [*IDX_NAMES["train"], *IDX_NAMES["test"]]


def _kind(name: str) -> str | None:
    location, _ = locate_dataset(name)
    return None if location is None else location.kind


# --------------------------------------------------------------------------------------------
# 1. IDX reader
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, suffix):
    """write_idx/read_idx keep shape, dtype and every value, gzipped or not."""
    images = np.random.default_rng(0).integers(0, 256, size=(3, 5, 7), dtype=np.uint8)
    labels = np.array([0, 9, 4], dtype=np.uint8)
    write_idx(tmp_path / f"img{suffix}", images)
    write_idx(tmp_path / f"lab{suffix}", labels)
    back_images, back_labels = read_idx(tmp_path / f"img{suffix}"), read_idx(tmp_path / f"lab{suffix}")
    assert back_images.dtype == np.uint8 and back_images.shape == (3, 5, 7)
    np.testing.assert_array_equal(back_images, images)
    np.testing.assert_array_equal(back_labels, labels)
    raw = (tmp_path / f"img{suffix}").read_bytes()
    if suffix:
        assert raw[:2] == b"\x1f\x8b"  # really gzipped
    else:
        assert raw[:4] == bytes([0, 0, 0x08, 3]) and len(raw) == 4 + 12 + 3 * 5 * 7


def _idx_bytes(array: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape) \
        + array.astype(np.uint8).tobytes()


GOOD = _idx_bytes(np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4))


@pytest.mark.parametrize("name,data", [
    ("bad-magic", b"\x01\x02\x08\x03" + GOOD[4:]),
    ("unknown-type-code", b"\x00\x00\x07\x03" + GOOD[4:]),
    ("empty", b""),
    ("shorter-than-magic", b"\x00\x00"),
    ("truncated-data", GOOD[:-5]),
    ("trailing-bytes", GOOD + b"\x00\x00"),
    ("header-shorter-than-ndim", bytes([0, 0, 0x08, 3]) + (2).to_bytes(4, "big")),
    ("garbage.gz", b"this is not a gzip stream at all"),
    ("truncated.gz", gzip.compress(GOOD)[:20]),
    ("plain-idx-named.gz", GOOD),
    ("gz-without-gz-name", gzip.compress(GOOD)),
])
def test_idx_damage_raises_corrupt_file_error(tmp_path, name, data):
    """Every kind of damage becomes CorruptFileError naming the file, never a numpy/gzip/zlib error."""
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(CorruptFileError) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_idx_corrupt_deflate_body_raises_corrupt_file_error(tmp_path):
    """Flipped bytes inside the compressed body (bad CRC or bad deflate data) are caught too."""
    packed = bytearray(gzip.compress(_idx_bytes(np.random.default_rng(1).integers(
        0, 256, (4, 16, 16), dtype=np.uint8))))
    for i in range(12, len(packed) - 8):
        packed[i] ^= 0xFF
    path = tmp_path / "flipped.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(CorruptFileError, match="flipped.gz"):
        read_idx(path)


def test_idx_truncated_gz_of_real_dataset_file(tmp_path):
    """A download cut short (a .gz missing its tail) is reported, not decoded into garbage."""
    images, _ = make_images(20, seed=3)
    write_idx(tmp_path / "x.gz", images)
    raw = (tmp_path / "x.gz").read_bytes()
    (tmp_path / "x.gz").write_bytes(raw[: len(raw) - 30])
    with pytest.raises(CorruptFileError, match="cannot decompress"):
        read_idx(tmp_path / "x.gz")


# --------------------------------------------------------------------------------------------
# 2. Sources, in order: data dir, torchvision layout, system install, download, demo subset
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [True, False])
def test_data_dir_layout(isolated_env, gz):
    """$BD_DATA_DIR/<name>/ with .gz or plain files is read first, with exact values."""
    folder = write_idx_dataset(isolated_env / "data" / "mnist", n_train=30, n_test=20, seed=4, gz=gz)
    assert _kind("mnist") == "data dir"
    train, test = load_dataset("mnist", "train"), load_dataset("mnist", "test")
    expected_images, expected_labels = make_images(30, 4)
    assert train.images.dtype == torch.uint8 and train.images.shape == (30, 1, 28, 28)
    assert train.labels.dtype == torch.int64
    np.testing.assert_array_equal(train.images[:, 0].numpy(), expected_images)
    np.testing.assert_array_equal(train.labels.numpy(), expected_labels)
    assert len(test) == 20 and test.split == "test"
    assert train.source == f"data dir: {folder}" and not train.demo_subset
    assert train.classes == [str(d) for d in range(10)]


def test_tiny_data_fixture_both_datasets(tiny_data):
    """The shared fixture yields data-dir copies of mnist and fashion-mnist with their own classes."""
    for name in ("mnist", "fashion-mnist"):
        train = load_dataset(name, "train")
        assert len(train) == 200 and train.source.startswith("data dir:")
    assert load_dataset("fashion-mnist", "test").classes[0] == "T-shirt/top"


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_torchvision_layout(isolated_env, name, folder):
    """A copy torchvision downloaded earlier ($BD_DATA_DIR/<Class>/raw) is found."""
    raw = write_idx_dataset(isolated_env / "data" / folder / "raw", n_train=12, n_test=8, gz=False)
    location, searched = locate_dataset(name)
    assert location.kind == "torchvision layout" and location.path == raw
    assert raw in [loc.path for loc in searched]
    train = load_dataset(name, "train")
    assert len(train) == 12 and train.source == f"torchvision layout: {raw}"


def test_system_install(isolated_env, monkeypatch):
    """A shared system install (SYSTEM_DIRS/<name>) is used when the data dir has nothing."""
    system = isolated_env / "system"
    write_idx_dataset(system / "fashion-mnist", n_train=14, n_test=6)
    monkeypatch.setattr("bdcore.data.idx_sets.SYSTEM_DIRS", (isolated_env / "nowhere", system))
    assert _kind("fashion-mnist") == "system install"
    test = load_dataset("fashion-mnist", "test")
    assert len(test) == 6 and test.source == f"system install: {system / 'fashion-mnist'}"
    assert not test.demo_subset


class _FakeDownload:
    """Stands in for a torchvision MNIST-family class: 'downloads' by writing IDX files into
    <root>/<folder>/raw, and records the socket timeout in force while it ran."""
    folder = "KMNIST"
    calls: list = []

    def __init__(self, root, train=True, download=False, **kwargs):
        assert download is True
        type(self).calls.append((root, train, kwargs, socket.getdefaulttimeout()))
        write_idx_dataset(Path(root) / self.folder / "raw", n_train=16, n_test=9, seed=7, gz=False)


def test_download_when_online(isolated_env, monkeypatch):
    """Online and absent locally: torchvision fetches into the data dir and the set says 'download';
    each network wait is bounded, and the default timeout is restored afterwards."""
    monkeypatch.delenv("BD_OFFLINE")
    monkeypatch.setattr(_FakeDownload, "calls", [])
    monkeypatch.setattr("torchvision.datasets.KMNIST", _FakeDownload)
    assert _kind("kmnist") is None  # locate never downloads
    before = socket.getdefaulttimeout()
    train = load_dataset("kmnist", "train")
    assert socket.getdefaulttimeout() == before
    assert len(train) == 16 and train.classes[0] == "o"
    assert train.source == f"download: {isolated_env / 'data' / 'KMNIST' / 'raw'}"
    assert [(c[0], c[1], c[3]) for c in _FakeDownload.calls] == [
        (str(isolated_env / "data"), True, DOWNLOAD_TIMEOUT_S),
        (str(isolated_env / "data"), False, DOWNLOAD_TIMEOUT_S)]
    # the next load finds the downloaded copy on disk without downloading again
    assert _kind("kmnist") == "torchvision layout"
    assert len(load_dataset("kmnist", "test")) == 9 and len(_FakeDownload.calls) == 2


def test_download_passes_emnist_split(isolated_env, monkeypatch):
    """EMNIST is fetched with split='letters' (the class holds several splits)."""
    monkeypatch.delenv("BD_OFFLINE")
    calls = []

    class FakeEMNIST:
        def __init__(self, root, train=True, download=False, **kwargs):
            calls.append(kwargs)
            raise urllib.error.URLError("no route")

    monkeypatch.setattr("torchvision.datasets.EMNIST", FakeEMNIST)
    with pytest.raises(DatasetNotFoundError):
        load_dataset("emnist-letters", "train")
    assert calls == [{"split": "letters"}]


@pytest.mark.parametrize("error", [urllib.error.URLError("Name or service not known"),
                                   OSError("Network is unreachable"), RuntimeError("md5 mismatch")])
def test_download_failure_is_reported(isolated_env, monkeypatch, error):
    """A failed download becomes DatasetNotFoundError saying it failed and why."""
    monkeypatch.delenv("BD_OFFLINE")

    class Failing:
        def __init__(self, *args, **kwargs):
            raise error

    monkeypatch.setattr("torchvision.datasets.KMNIST", Failing)
    before = socket.getdefaulttimeout()
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("kmnist", "train")
    message = str(info.value)
    assert f"Download: failed ({type(error).__name__}" in message and str(error) in message
    assert socket.getdefaulttimeout() == before


def test_download_that_leaves_no_files(isolated_env, monkeypatch):
    """A download that 'succeeds' but writes nothing is reported as such, not as a crash."""
    monkeypatch.delenv("BD_OFFLINE")
    monkeypatch.setattr("torchvision.datasets.KMNIST", lambda *a, **k: None)
    with pytest.raises(DatasetNotFoundError, match="finished but files are missing"):
        load_dataset("kmnist", "test")


def test_bundled_demo_subset_mnist(isolated_env):
    """With nothing anywhere, mnist comes from the shipped demo subset: 1,000 train and 200 test
    images per class, flagged as a demo subset so the app can say so."""
    location, searched = locate_dataset("mnist")
    assert location.kind == "bundled demo subset" and location.demo_subset
    assert location.path == DEMO_DIR / "mnist" and searched[-1] == location
    train, test = load_dataset("mnist", "train"), load_dataset("mnist", "test")
    assert len(train) == 10_000 and train.demo_subset and "bundled demo subset" in train.source
    assert train.images.shape == (10_000, 1, 28, 28)
    assert torch.bincount(train.labels, minlength=10).tolist() == [1000] * 10
    assert len(test) == 2_000 and test.demo_subset
    assert torch.bincount(test.labels, minlength=10).tolist() == [200] * 10


def test_bundled_demo_subset_fashion(isolated_env):
    assert _kind("fashion-mnist") == "bundled demo subset"
    test = load_dataset("fashion-mnist", "test")
    assert len(test) == 2_000 and test.demo_subset and test.classes[-1] == "Ankle boot"


def test_no_demo_for_kmnist_and_emnist(isolated_env):
    for name in ("kmnist", "emnist-letters"):
        location, searched = locate_dataset(name)
        assert location is None
        assert all(loc.kind != "bundled demo subset" for loc in searched)


def test_source_priority(isolated_env, monkeypatch):
    """data dir > torchvision layout > system install > demo subset; each copy has its own size so
    the one read is unambiguous. Removing the winner hands over to the next."""
    import shutil

    data, system = isolated_env / "data", isolated_env / "system"
    monkeypatch.setattr("bdcore.data.idx_sets.SYSTEM_DIRS", (system,))
    layers = [("data dir", data / "mnist", 11), ("torchvision layout", data / "MNIST" / "raw", 12),
              ("system install", system / "mnist", 13)]
    for _, folder, n in layers:
        write_idx_dataset(folder, n_train=n, n_test=5)
    for kind, folder, n in layers:
        assert _kind("mnist") == kind
        train = load_dataset("mnist", "train")
        assert len(train) == n and train.source == f"{kind}: {folder}" and not train.demo_subset
        shutil.rmtree(folder)
    assert _kind("mnist") == "bundled demo subset"


def test_incomplete_folder_is_skipped(isolated_env):
    """A data-dir folder missing one of the four files is passed over (here, for the demo)."""
    folder = write_idx_dataset(isolated_env / "data" / "mnist", n_train=10, n_test=5)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    assert _kind("mnist") == "bundled demo subset"


def test_plain_file_preferred_over_gz(isolated_env):
    """When both NAME and NAME.gz exist, the plain (already extracted) file is read."""
    folder = write_idx_dataset(isolated_env / "data" / "mnist", n_train=10, n_test=5, gz=True)
    write_idx_dataset(folder, n_train=7, n_test=5, gz=False)
    assert len(load_dataset("mnist", "train")) == 7


def test_download_wins_over_demo_subset(isolated_env, monkeypatch):
    """Documented order: '... torchvision's download when online, and last the bundled demo subset'
    (sources.py) and 'a full copy in $BD_DATA_DIR, a system install or a download wins'
    (assets/demo/README.md). Online, mnist should therefore be downloaded, not the demo used."""
    monkeypatch.delenv("BD_OFFLINE")
    monkeypatch.setattr(_FakeDownload, "folder", "MNIST")
    monkeypatch.setattr(_FakeDownload, "calls", [])
    monkeypatch.setattr("torchvision.datasets.MNIST", _FakeDownload)
    train = load_dataset("mnist", "train")
    assert train.source.startswith("download:") and not train.demo_subset


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
    for split, stem in (("train", "train"), ("test", "test")):
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
    assert train.name == f"folder:{root}" and train.source == f"folder: {root}"


def test_folder_with_train_and_test_subfolders(tmp_path):
    """root/train/<class> and root/test/<class>: the given splits are used whole, no holdout."""
    _labeled_folder(tmp_path / "set" / "train", {"a": 4, "b": 3})
    _labeled_folder(tmp_path / "set" / "test", {"a": 2, "b": 2})
    train = load_dataset(f"folder:{tmp_path / 'set'}", "train")
    test = load_dataset(f"folder:{tmp_path / 'set'}", "test")
    assert (len(train), len(test)) == (7, 4)
    assert train.labels.tolist() == [0, 0, 0, 0, 1, 1, 1] and test.labels.tolist() == [0, 0, 1, 1]
    assert train.classes == test.classes == ["a", "b"]
    assert train.source == f"folder: {tmp_path / 'set' / 'train'}"


def test_folder_unlabeled(tmp_path):
    """A flat folder of images is an unlabeled train set; asking for its test split is an error.
    Non-image files are ignored."""
    for i in range(4):
        _png(tmp_path / "u" / f"{i}.png", _gray(10 * i))
    (tmp_path / "u" / "notes.txt").write_text("not an image")
    unlabeled = load_dataset(f"folder:{tmp_path / 'u'}", "train")
    assert unlabeled.labels is None and unlabeled.classes == [] and len(unlabeled) == 4
    assert _ids(unlabeled.images) == [0, 10, 20, 30]
    with pytest.raises(FolderDatasetError, match="unlabeled"):
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
    good = _png(tmp_path / "k" / "cat" / "a.png", np.random.default_rng(0).integers(
        0, 255, (16, 16), dtype=np.uint8))
    bad = tmp_path / "k" / "cat" / "b.png"
    bad.write_bytes(good.read_bytes()[:60] if content == "truncated" else content)
    _png(tmp_path / "k" / "dog" / "c.png", _gray(1))
    with pytest.raises(FolderDatasetError) as info:
        for split in ("train", "test"):
            load_dataset(f"folder:{tmp_path / 'k'}", split)
    assert str(bad) in str(info.value)


def test_folder_empty_or_missing(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "only-text").mkdir()
    (tmp_path / "only-text" / "readme.txt").write_text("x")
    (tmp_path / "a-file.png").write_bytes(b"")
    for path in ("empty", "only-text"):
        with pytest.raises(FolderDatasetError, match="no images"):
            load_dataset(f"folder:{tmp_path / path}", "train")
    for path in ("does-not-exist", "a-file.png"):
        with pytest.raises(FolderDatasetError, match="is not a folder"):
            load_dataset(f"folder:{tmp_path / path}", "train")


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
