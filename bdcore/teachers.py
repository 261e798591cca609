"""Teacher reuse: a teacher trained with the same settings on the same data is loaded instead of
trained again (classroom demos launch many students from one teacher)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from torch import nn

from .config import ExperimentConfig
from .runs import load_weights, save_weights, write_json_atomic

TEACHER_FIELDS = ("labeled", "teacher", "teacher_epochs", "teacher_lr", "batch_size",
                  "teacher_augment", "labeled_limit", "seed", "amp")  # + teacher_input_noise if set


def data_fingerprint(x: torch.Tensor) -> str:
    """A short hash of a tensor's contents, so a changed dataset never reuses a stale teacher."""
    return hashlib.sha256(x.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


def teacher_key(config: ExperimentConfig, train_x: torch.Tensor, device: torch.device) -> str:
    settings = {name: getattr(config, name) for name in TEACHER_FIELDS}
    settings["teacher_lr"] = float(config.teacher_lr)  # 0.01 and 1e-2 alike; 1 and 1.0 alike
    if config.teacher_input_noise:  # keys of teachers cached before the field existed still hold
        settings["teacher_input_noise"] = float(config.teacher_input_noise)
    settings.update(data=data_fingerprint(train_x), device=device.type)
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:20]


def cache_dir(runs_root: Path, key: str) -> Path:
    return Path(runs_root) / "teachers" / key


def load_cached_teacher(model: nn.Module, runs_root: Path, key: str) -> dict | None:
    """Fill ``model`` from the cache and return its record, or None if not cached."""
    folder = cache_dir(runs_root, key)
    record_path, weights = folder / "teacher.json", folder / "teacher.safetensors"
    if not (record_path.exists() and weights.exists()):
        return None
    load_weights(model, weights)
    return json.loads(record_path.read_text())


def store_teacher(model: nn.Module, runs_root: Path, key: str, record: dict) -> None:
    folder = cache_dir(runs_root, key)
    folder.mkdir(parents=True, exist_ok=True)
    save_weights(model, folder / "teacher.safetensors")
    write_json_atomic(folder / "teacher.json", record)
