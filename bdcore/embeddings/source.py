"""Opening a run for exploration: which runs have a trained teacher (from the run store and from
run folders under the runs root), their checkpoints by role, and the paired data rebuilt exactly
as the run built it (same datasets, limits, seed and normalisation)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import ExperimentConfig
from ..data import CorruptFileError, DatasetNotFoundError, FolderDatasetError, PairedData
from ..models import build_model
from ..runs import RunDir, load_weights, runs_root
from ..store import RunStore
from .cache import CACHE_FOLDER, ArrayCache


class ExploreError(RuntimeError):
    """A run that cannot be explored; the message says why in plain words."""


@dataclass
class RunChoice:
    run_id: str
    label: str
    path: Path
    status: str
    roles: list[str] = field(default_factory=list)


def model_roles(path: Path) -> list[str]:
    """Checkpoints present in a run folder: teacher, blind, then finetune-k* (by k)."""
    names = {p.name.removesuffix(".safetensors") for p in Path(path).glob("*.safetensors")
             if ".e" not in p.name.removesuffix(".safetensors")}  # not per-epoch checkpoints
    tuned = sorted((n for n in names if n.startswith("finetune-k")),
                   key=lambda n: (n == "finetune-kall", int(n[10:]) if n[10:].isdigit() else 0))
    return [n for n in ("teacher", "blind") if n in names] + tuned


def _label(run_id: str, config: ExperimentConfig) -> str:
    return (f"{run_id[-6:]} {config.labeled}<-{config.unlabeled} "
            f"{config.teacher}->{config.student} T={config.temperature:g}")


def explorable_runs(store: RunStore | None = None, root: Path | None = None) -> list[RunChoice]:
    """Every run whose teacher checkpoint exists: the store's runs (newest first), then run
    folders under the runs root that the store does not list (e.g. made by `python -m bdcore run`)."""
    root = runs_root() if root is None else Path(root)
    choices, seen = [], set()
    for record in (store.list() if store is not None else []):
        if record.run_dir and RunDir(Path(record.run_dir)).checkpoint("teacher").exists():
            path = Path(record.run_dir)
            choices.append(RunChoice(record.id, f"{_label(record.id, record.config)} [{record.status}]",
                                     path, record.status, model_roles(path)))
            seen.add(path.resolve())
    trained = (p for p in root.glob("*/config.json") if RunDir(p.parent).checkpoint("teacher").exists())
    folders = sorted(trained, key=lambda p: p.parent.name, reverse=True) if root.is_dir() else []
    for config_path in folders:
        path = config_path.parent
        if path.resolve() in seen:
            continue
        try:
            config = ExperimentConfig.load(config_path)
        except (ValueError, TypeError, json.JSONDecodeError):
            continue
        status = "finished" if (path / "final.json").exists() else "unfinished"
        choices.append(RunChoice(path.name, f"{_label(path.name, config)} [{status}, folder]",
                                 path, status, model_roles(path)))
    return choices


def to_uint8(x: torch.Tensor, mean: list[float], std: list[float]) -> np.ndarray:
    """Undo the pairing's normalisation: (N, C, H, W) uint8 images for thumbnails."""
    m, s = torch.tensor(mean).view(1, -1, 1, 1), torch.tensor(std).view(1, -1, 1, 1)
    return (x * s + m).mul(255).round().clamp(0, 255).to(torch.uint8).numpy()


class ExploreSession:
    """One run opened for exploration. Data loads once; models load on first use."""

    def __init__(self, path: Path, run_id: str | None = None):
        self.path = Path(path)
        self.run_id = run_id or self.path.name
        self.run = RunDir(self.path)
        try:
            self.config = self.run.config()
        except (OSError, ValueError, TypeError, json.JSONDecodeError) as err:
            raise ExploreError(f"run {self.run_id}: cannot read its config.json ({err})") from err
        self.roles = model_roles(self.path)
        if "teacher" not in self.roles:
            raise ExploreError(f"run {self.run_id} has no trained teacher yet: wait until its "
                               "teacher stage finishes")
        from ..experiment import load_pair

        try:
            self.data: PairedData = load_pair(self.config)
        except (DatasetNotFoundError, CorruptFileError, FolderDatasetError, ValueError) as err:
            raise ExploreError(f"run {self.run_id}: its data cannot be loaded: {err}") from err
        self._models: dict[str, nn.Module] = {}
        folder = self.path / CACHE_FOLDER
        writable = os.access(self.path, os.W_OK) and (not folder.exists() or os.access(folder, os.W_OK))
        self.cache = ArrayCache(folder if writable else runs_root() / CACHE_FOLDER / self.path.name)

    def model(self, role: str) -> nn.Module:
        if role not in self.roles:
            raise ExploreError(f"run {self.run_id} has no {role!r} checkpoint "
                               f"(it has {', '.join(self.roles)})")
        if role not in self._models:
            arch = self.config.teacher if role == "teacher" else self.config.student
            model = build_model(arch, self.data.input_shape, self.data.num_classes)
            try:
                load_weights(model, self.run.checkpoint(role))
            except (OSError, RuntimeError) as err:
                raise ExploreError(f"run {self.run_id}: cannot load {role}.safetensors ({err})") from err
            self._models[role] = model.eval().requires_grad_(False)
        return self._models[role]

    def identity(self, role: str) -> dict:
        """What a cached result depends on: the run, and this checkpoint's size and time."""
        stat = self.run.checkpoint(role).stat()
        return {"run": self.run_id, "role": role, "size": stat.st_size, "mtime": stat.st_mtime_ns}

    def images(self, which: str, index: np.ndarray) -> np.ndarray:
        """uint8 images of the labeled test set (``labeled``) or the unlabeled set."""
        x = self.data.test_x if which == "labeled" else self.data.unlabeled_x
        return to_uint8(x[torch.from_numpy(np.array(index, dtype=np.int64))], self.data.mean, self.data.std)


_SESSIONS: dict[tuple, ExploreSession] = {}
_SESSIONS_KEPT = 2  # each holds a paired dataset in memory (about 0.5 GB for MNIST + Fashion-MNIST)


def _checkpoint_stamps(path: Path) -> tuple:
    """The final checkpoints' modification times (not the per-epoch ones a running stage rotates);
    a file removed between listing and reading is skipped."""
    stamps = []
    for role in model_roles(path):
        try:
            stamps.append((role, RunDir(path).checkpoint(role).stat().st_mtime_ns))
        except FileNotFoundError:
            continue
    return tuple(stamps)


def open_session(path: Path, run_id: str | None = None) -> ExploreSession:
    """An ExploreSession shared by every page and browser tab of this process; a run whose
    checkpoints changed since (a stage finished, a resume) is opened afresh."""
    path = Path(path)
    key = (str(path.resolve()), run_id, _checkpoint_stamps(path))
    if key not in _SESSIONS:
        session = ExploreSession(path, run_id)
        while len(_SESSIONS) >= _SESSIONS_KEPT:
            _SESSIONS.pop(next(iter(_SESSIONS)))
        _SESSIONS[key] = session
    return _SESSIONS[key]
