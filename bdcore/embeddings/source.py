"""Opening a run for exploration: which runs have a trained teacher (from the run store and from
run folders under the runs root), their checkpoints by role (a role is a finished stage), and the
paired data rebuilt exactly as the run built it (same datasets, limits, seed and normalisation)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data import PairedData, load_pair
from ..errors import DataError, UserError, first_line
from ..models import build_model
from ..reports import run_label
from ..runs import RunDir, RunsRoot, load_weights
from ..stage_names import TEACHER
from ..store import RunStore
from .cache import ArrayCache


class ExploreError(UserError):
    """A run that cannot be explored; the message says why in plain words."""


@dataclass
class RunChoice:
    run_id: str
    label: str
    path: Path
    status: str
    roles: list[str] = field(default_factory=list)


def explorable_runs(store: RunStore | None = None, root: RunsRoot | None = None) -> list[RunChoice]:
    """Every run whose teacher checkpoint exists: the store's runs (newest first), then run
    folders under the runs root that the store does not list (e.g. made by `python -m bdcore run`)."""
    root = root or (store.root if store is not None else RunsRoot.default())
    choices, seen = [], set()
    for record in (store.list() if store is not None else []):
        run = RunDir(record.run_dir) if record.run_dir else None
        if run is not None and run.checkpoint(TEACHER).exists():
            choices.append(RunChoice(record.id, f"{run_label(record.id, record.config)} [{record.status}]",
                                     run.path, record.status, run.checkpoint_stages()))
            seen.add(run.path.resolve())
    for run in root.run_folders():
        if run.path.resolve() in seen or not run.checkpoint(TEACHER).exists():
            continue
        try:
            config = run.config()
        except (ValueError, TypeError, json.JSONDecodeError):
            continue
        status = "finished" if run.final_path.exists() else "unfinished"
        choices.append(RunChoice(run.path.name, f"{run_label(run.path.name, config)} [{status}, folder]",
                                 run.path, status, run.checkpoint_stages()))
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
        except (OSError, ValueError, TypeError) as err:  # ConfigError is a ValueError
            raise ExploreError(f"run {self.run_id}: cannot read {self.run.config_path} "
                               f"({first_line(err)}); restore that file or delete the run") from err
        self.roles = self.run.checkpoint_stages()
        if TEACHER not in self.roles:
            raise ExploreError(f"run {self.run_id} has no trained teacher yet: wait until its "
                               "teacher stage finishes")
        try:
            # prepared by the run's worker: the app server never decodes a whole collection itself
            self.data: PairedData = load_pair(self.config.pair_spec(), prepare_missing=False)
        except UserError as err:
            raise ExploreError(f"run {self.run_id}: its data cannot be loaded: {err}") from err
        self._models: dict[str, nn.Module] = {}
        folder = self.run.explore_cache
        writable = os.access(self.path, os.W_OK) and (not folder.exists() or os.access(folder, os.W_OK))
        self.cache = ArrayCache(folder if writable else RunsRoot.default().explore_cache(self.path.name))

    def model(self, role: str) -> nn.Module:
        if role not in self.roles:
            raise ExploreError(f"run {self.run_id} has no {role!r} checkpoint "
                               f"(it has {', '.join(self.roles)})")
        if role not in self._models:
            arch = self.config.teacher if role == TEACHER else self.config.student
            model = build_model(arch, self.data.input_shape, self.data.num_classes)
            path = self.run.checkpoint(role)
            try:
                load_weights(model, path)
            except DataError as err:  # damaged, or another model's
                cause = first_line(err.__cause__ or err)
                raise ExploreError(f"run {self.run_id}: cannot load {path} ({cause}); the checkpoint is "
                                   "damaged or from other settings: train the run again") from err
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


def checkpoint_stamps(path: Path) -> tuple:
    """The final checkpoints' modification times (not the per-epoch ones a running stage rotates),
    so that a cache keyed on them opens a run afresh once a stage finishes or a resume retrains one;
    a file removed between listing and reading is skipped."""
    run, stamps = RunDir(path), []
    for role in run.checkpoint_stages():
        try:
            stamps.append((role, run.checkpoint(role).stat().st_mtime_ns))
        except FileNotFoundError:
            continue
    return tuple(stamps)
