"""Shared fixtures: tiny datasets written as real IDX files in a temp data dir, and an
environment that never touches the network, the real data folder or ./runs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bdcore.data.idx import write_idx

IDX_NAMES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def make_images(n: int, seed: int, classes: int = 10, size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """Learnable synthetic digits: class c lights a bright bar at a class-dependent place."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    rng.shuffle(labels)
    images = rng.integers(0, 40, size=(n, size, size)).astype(np.uint8)
    for i, c in enumerate(labels):
        row = 2 + (c * (size - 6)) // classes
        images[i, row:row + 3, 4:size - 4] = 220
    return images, labels.astype(np.uint8)


def write_idx_dataset(folder: Path, n_train: int = 200, n_test: int = 100, seed: int = 0,
                      gz: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        images, labels = make_images(n, seed + (split == "test"))
        suffix = ".gz" if gz else ""
        write_idx(folder / f"{IDX_NAMES[split][0]}{suffix}", images)
        write_idx(folder / f"{IDX_NAMES[split][1]}{suffix}", labels)
    return folder


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Every test gets an empty data dir, runs dir and prepared cache, no downloads, and no system
    installs."""
    monkeypatch.setenv("BD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BD_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("BD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("BD_OFFLINE", "1")
    monkeypatch.setattr("bdcore.data.idx_sets.SYSTEM_DIRS", ())
    (tmp_path / "data").mkdir()
    return tmp_path


@pytest.fixture
def tiny_data(isolated_env) -> Path:
    """Tiny 'mnist' and 'fashion-mnist' in the data dir, in the shared/datasets layout."""
    data = isolated_env / "data"
    write_idx_dataset(data / "mnist", seed=0)
    write_idx_dataset(data / "fashion-mnist", seed=10)
    return data


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The Ray backend's tests run last: joining a Ray cluster leaves gRPC threads in this process,
    and tests that fork it (tests/test_store_concurrency.py forks 32 children) must not inherit them
    (a fork of a process with running threads can hang or stall its children)."""
    items.sort(key=lambda item: item.path.name == "test_ray_jobs.py")
