"""The bad-input corpus of tests/test_bad_input.py: every way a user can hand the project something
wrong, each case building its bad input in the test's temp folder. A CLI case is a function
``(Ctx) -> argv`` and the words its one-line error must contain ("{tmp}" stands for the temp
folder); library cases (run folders opened by the explorer, a resumed run) build and call
something that must raise a UserError."""
from __future__ import annotations

import gzip
import io
import sqlite3
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bdcore.cli import main
from bdcore.config import ExperimentConfig
from bdcore.data.idx import write_idx
from bdcore.store import RunStore

from conftest import IDX_NAMES, write_idx_dataset

TINY = ["--teacher", "mlp", "--student", "mlp", "--teacher-epochs", "1", "--blind-epochs", "1",
        "--finetune-epochs", "1", "--finetune-k", "all", "--finetune-min-steps", "1", "--batch-size", "64",
        "--device", "cpu", "--no-teacher-augment", "--teacher-input-noise", "0", "--no-finetune-augment"]
TRAIN_IMAGES, TRAIN_LABELS = (f"{name}.gz" for name in IDX_NAMES["train"])
TEST_LABELS = f"{IDX_NAMES['test'][1]}.gz"


@dataclass
class Ctx:
    """What a case may touch: its temp folder (BD_DATA_DIR is tmp/data, BD_RUNS_DIR tmp/runs) and
    pytest's monkeypatch (environment variables, a simulated full disk)."""
    tmp: Path
    monkeypatch: pytest.MonkeyPatch

    @property
    def data(self) -> Path:
        return self.tmp / "data"

    @property
    def store(self) -> Path:
        return self.tmp / "runs" / "runs.db"


Build = Callable[[Ctx], list[str]]


def case(build: Build | list[str], *names: str, id: str, marks=()):
    """One corpus entry: argv (or a function building it) and what the error must name."""
    argv = build if callable(build) else (lambda _ctx, fixed=tuple(build): list(fixed))
    return pytest.param(argv, names, id=id, marks=marks)


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------

def tiny_pair(ctx: Ctx) -> None:
    """Tiny valid 'mnist' and 'fashion-mnist' in the data folder."""
    write_idx_dataset(ctx.data / "mnist", n_train=60, n_test=30, seed=0)
    write_idx_dataset(ctx.data / "fashion-mnist", n_train=60, n_test=30, seed=10)


def run_mnist(ctx: Ctx) -> list[str]:
    return ["run", *TINY, "--labeled", "mnist", "--unlabeled", "fashion-mnist"]


def damaged_mnist(damage: Callable[[Path], None], file: str = TRAIN_IMAGES,
                  dataset: str = "mnist") -> Build:
    """`run` on the tiny pair with one file of ``dataset`` damaged by ``damage(path)``."""
    def build(ctx: Ctx) -> list[str]:
        tiny_pair(ctx)
        damage(ctx.data / dataset / file)
        return run_mnist(ctx)
    return build


def truncate(keep: int) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(path.read_bytes()[:keep])


def cut_last(n: int) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(path.read_bytes()[:-n])


def gz(raw: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(gzip.compress(raw))


def idx_header(code: int, *shape: int) -> bytes:
    return bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)


def plain_mnist_truncated(ctx: Ctx) -> list[str]:
    """Plain (not gzipped) files, one cut short."""
    write_idx_dataset(ctx.data / "mnist", n_train=60, n_test=30, gz=False)
    write_idx_dataset(ctx.data / "fashion-mnist", n_train=60, n_test=30, seed=10)
    cut_last(100)(ctx.data / "mnist" / IDX_NAMES["train"][0])
    return run_mnist(ctx)


def plain_mnist_empty(ctx: Ctx) -> list[str]:
    write_idx_dataset(ctx.data / "mnist", n_train=60, n_test=30, gz=False)
    write_idx_dataset(ctx.data / "fashion-mnist", n_train=60, n_test=30, seed=10)
    (ctx.data / "mnist" / IDX_NAMES["train"][0]).write_bytes(b"")
    return run_mnist(ctx)


def gzip_free_bytes() -> bytes:
    """Plain IDX bytes in a file named .gz."""
    return idx_header(8, 60, 28, 28) + bytes(60 * 784)


def png_bytes() -> bytes:
    """A noisy 32x32 PNG: its pixel data is too big to survive a cut by half."""
    out = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (32, 32), dtype=np.uint8)
    Image.fromarray(noise).save(out, format="PNG")
    return out.getvalue()


def empty_mnist(ctx: Ctx) -> list[str]:
    """An mnist whose train split holds no images (and no labels)."""
    tiny_pair(ctx)
    write_idx(ctx.data / "mnist" / TRAIN_IMAGES, np.zeros((0, 28, 28), np.uint8))
    write_idx(ctx.data / "mnist" / TRAIN_LABELS, np.zeros(0, np.uint8))
    return run_mnist(ctx)


def png(path: Path, size: int = 12, value: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size), value, dtype=np.uint8)).save(path)


def image_folder(ctx: Ctx, classes: dict[str, int], name: str = "images") -> Path:
    """A labeled folder: ``classes`` maps each class sub-folder to its number of images."""
    root = ctx.tmp / name
    root.mkdir(parents=True, exist_ok=True)
    for index, (cls, count) in enumerate(classes.items()):
        for i in range(count):
            png(root / cls / f"{i}.png", value=40 * index + i)
    return root


def run_folder(labeled: Callable[[Ctx], Path] | None = None,
               unlabeled: Callable[[Ctx], Path] | None = None) -> Build:
    """`run` with a folder dataset as the labeled and/or unlabeled set (the tiny pair otherwise)."""
    def build(ctx: Ctx) -> list[str]:
        tiny_pair(ctx)
        argv = run_mnist(ctx)
        if labeled is not None:
            argv += ["--labeled", f"folder:{labeled(ctx)}"]
        if unlabeled is not None:
            argv += ["--unlabeled", f"folder:{unlabeled(ctx)}"]
        return argv
    return build


def two_classes(ctx: Ctx) -> Path:
    return image_folder(ctx, {"a": 6, "b": 6})


def with_file(name: str, content: bytes,
              folder: Callable[[Ctx], Path] = two_classes) -> Callable[[Ctx], Path]:
    """``folder`` with one more file ``name`` (relative) holding ``content``."""
    def make(ctx: Ctx) -> Path:
        root = folder(ctx)
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
        return root
    return make


def flat_images(ctx: Ctx) -> Path:
    root = ctx.tmp / "flat"
    for i in range(6):
        png(root / f"{i}.png", value=i)
    return root


def a_file(name: str, content: bytes) -> Callable[[Ctx], Path]:
    def make(ctx: Ctx) -> Path:
        (ctx.tmp / name).write_bytes(content)
        return ctx.tmp / name
    return make


def bomb(pixels_limit: int) -> Callable[[Ctx], Path]:
    """A folder whose 64x64 image exceeds Pillow's pixel limit, lowered to ``pixels_limit``
    (above the limit: a warning; above twice the limit: an error)."""
    def make(ctx: Ctx) -> Path:
        root = image_folder(ctx, {"a": 3, "b": 3})
        png(root / "a" / "big.png", size=64)
        ctx.monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", pixels_limit)
        return root
    return make


def split_folder(test_classes: dict[str, int]) -> Callable[[Ctx], Path]:
    """A train/ and test/ layout with classes a, b in train/ and ``test_classes`` in test/."""
    def make(ctx: Ctx) -> Path:
        root = ctx.tmp / "split"
        image_folder(ctx, {"a": 4, "b": 4}, name="split/train")
        (root / "test").mkdir(parents=True, exist_ok=True)
        for index, (cls, count) in enumerate(test_classes.items()):
            (root / "test" / cls).mkdir(exist_ok=True)
            for i in range(count):
                png(root / "test" / cls / f"{i}.png", value=index)
        return root
    return make


def with_store(status: str | None = None) -> Callable[[Ctx, list[str]], list[str]]:
    """A run store holding one run, set to ``status``; ``{run}`` in argv becomes its id."""
    def make(ctx: Ctx, argv: list[str]) -> list[str]:
        store = RunStore(ctx.store)
        run_id = store.add(ExperimentConfig())
        if status == "succeeded":
            store.mark_succeeded(run_id, {"teacher_acc": 0.9, "blind_acc": 0.8, "finetune_acc": {"all": 0.9}})
        return [a.replace("{run}", run_id) for a in argv]
    return make


def jobs(*argv: str, status: str | None = "queued") -> Build:
    """`jobs ...` over a store holding one run of ``status`` (None: an empty store)."""
    def build(ctx: Ctx) -> list[str]:
        full = ["jobs", "--store", str(ctx.store), *argv]
        if status is None:
            RunStore(ctx.store)
            return full
        return with_store(status)(ctx, full)
    return build


def store_file(content: Callable[[Ctx, Path], None]) -> Build:
    """`jobs list` on a store file made by ``content(ctx, path)``."""
    def build(ctx: Ctx) -> list[str]:
        path = ctx.tmp / "store.db"
        content(ctx, path)
        return ["jobs", "--store", str(path), "list"]
    return build


def truncated_store(_ctx: Ctx, path: Path) -> None:
    RunStore(path).add(ExperimentConfig())
    path.write_bytes(path.read_bytes()[:1500])


def locked_store(ctx: Ctx, path: Path) -> None:
    """A valid store another process holds a write transaction on, for longer than the store
    waits (its wait shortened from 30 s so that the test stays fast)."""
    RunStore(path).add(ExperimentConfig())
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    ctx.monkeypatch.setattr(ctx, "holder", holder, raising=False)  # open until the test ends
    ctx.monkeypatch.setattr("bdcore.store.LOCK_TIMEOUT_S", 0.2)


def foreign_store(_ctx: Ctx, path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")


def runs_dir_is_file(ctx: Ctx) -> list[str]:
    tiny_pair(ctx)
    (ctx.tmp / "runs-file").write_text("not a folder")
    return [*run_mnist(ctx), "--runs-dir", str(ctx.tmp / "runs-file")]


def runs_dir_under_file(ctx: Ctx) -> list[str]:
    tiny_pair(ctx)
    (ctx.tmp / "runs-file").write_text("not a folder")
    return [*run_mnist(ctx), "--runs-dir", str(ctx.tmp / "runs-file" / "runs")]


def env_runs_dir_is_file(ctx: Ctx) -> list[str]:
    tiny_pair(ctx)
    (ctx.tmp / "runs-file").write_text("not a folder")
    ctx.monkeypatch.setenv("BD_RUNS_DIR", str(ctx.tmp / "runs-file"))
    return run_mnist(ctx)


def env_runs_dir_is_file_jobs(ctx: Ctx) -> list[str]:
    (ctx.tmp / "runs-file").write_text("not a folder")
    ctx.monkeypatch.setenv("BD_RUNS_DIR", str(ctx.tmp / "runs-file"))
    return ["jobs", "list"]


def runs_disk_full(ctx: Ctx) -> list[str]:
    """The disk fills up as the run folder is made (simulated: there is no full disk to hand)."""
    import errno

    import bdcore.experiment

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(ctx.tmp / "runs" / "new-run"))
    tiny_pair(ctx)
    ctx.monkeypatch.setattr(bdcore.experiment.RunDir, "create", full)
    return run_mnist(ctx)


def data_dir_is_file(ctx: Ctx) -> list[str]:
    (ctx.tmp / "data-file").write_text("not a folder")
    ctx.monkeypatch.setenv("BD_DATA_DIR", str(ctx.tmp / "data-file"))
    return run_mnist(ctx)


def data_dir_is_file_datasets(ctx: Ctx) -> list[str]:
    data_dir_is_file(ctx)
    return ["datasets"]


def data_dir_missing(ctx: Ctx) -> list[str]:
    ctx.monkeypatch.setenv("BD_DATA_DIR", str(ctx.tmp / "no-such-data"))
    return [*run_mnist(ctx), "--labeled", "kmnist"]


def data_dir_unwritable(ctx: Ctx) -> list[str]:
    ctx.monkeypatch.setenv("BD_DATA_DIR", "/sys/bd-data")  # not even root may create it
    return [*run_mnist(ctx), "--labeled", "kmnist"]


def cached_teacher(damage: Callable[[Path], None]) -> Build:
    """A run whose teacher comes from a cache entry damaged by ``damage(teacher folder)``."""
    def build(ctx: Ctx) -> list[str]:
        tiny_pair(ctx)
        assert main(run_mnist(ctx)) == 0  # fills the cache
        [folder] = (ctx.tmp / "runs" / "teachers").iterdir()
        damage(folder)
        return run_mnist(ctx)
    return build


def options(*argv: str, command: str = "run") -> list[str]:
    """``command`` with tiny settings and ``argv`` on top (later options win in argparse)."""
    base = ["jobs", "--store", "{store}", "submit"] if command == "submit" else [command]
    return [*base, *TINY, *argv]


def submit(*argv: str) -> Build:
    return lambda ctx: [a.replace("{store}", str(ctx.store)) for a in options(*argv, command="submit")]
