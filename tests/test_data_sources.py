"""The data layer's sources: the IDX reader and every place a named dataset can come from, in
order (errors are in test_data_errors.py, folders in test_data_folder.py). Everything is tiny
and offline; downloads are faked by replacing torchvision classes."""
from __future__ import annotations

import gzip
import socket
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from bdcore.data import CorruptFileError, DatasetNotFoundError, load_dataset, locate_dataset
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
