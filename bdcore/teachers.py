"""Teacher reuse: a teacher trained with the same settings on the same data is loaded instead of
trained again (classroom demos launch many students from one teacher)."""
from __future__ import annotations

import hashlib
import json

import torch
from torch import nn

from .config import ExperimentConfig
from .data.imageset import Images
from .data.streamed import StreamedImages
from .errors import DataError
from .runs import RunsRoot, load_weights, save_weights, write_json_atomic
from .train import EpochReport

TEACHER_FIELDS = ("labeled", "teacher", "teacher_epochs", "teacher_lr", "batch_size",
                  "teacher_augment", "labeled_limit", "seed", "amp")  # + teacher_input_noise, augment_kind


def data_fingerprint(x: Images) -> str:
    """A short hash of a tensor's contents, so a changed dataset never reuses a stale teacher (a
    streamed set's cache key already hashes its files)."""
    if isinstance(x, StreamedImages):
        return hashlib.sha256(x.fingerprint().encode()).hexdigest()[:16]
    return hashlib.sha256(x.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


def teacher_key(config: ExperimentConfig, train_x: Images, device: torch.device) -> str:
    settings = {name: getattr(config, name) for name in TEACHER_FIELDS}
    settings["teacher_lr"] = float(config.teacher_lr)  # 0.01 and 1e-2 alike; 1 and 1.0 alike
    if config.teacher_input_noise:  # keys of teachers cached before the field existed still hold
        settings["teacher_input_noise"] = float(config.teacher_input_noise)
    if config.teacher_augment and config.augment_kind != "affine":  # likewise; unaugmented teachers share
        settings["augment_kind"] = config.augment_kind
    settings.update(data=data_fingerprint(train_x), device=device.type)
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:20]


def load_cached_teacher(model: nn.Module, root: RunsRoot, key: str) -> dict | None:
    """Fill ``model`` from the cache and return its record, or None if not cached."""
    record, weights = root.teacher_record(key), root.teacher_weights(key)
    if not (record.exists() and weights.exists()):
        return None
    try:
        load_weights(model, weights)
        cached = json.loads(record.read_text())
        float(cached["test_acc"]), EpochReport(**cached["epochs"][-1])  # what the run reads of it
    except (OSError, ValueError, TypeError, KeyError, IndexError) as err:  # DataError is a ValueError
        raise DataError(f"cached teacher {weights.parent} is damaged ({type(err).__name__}); delete "
                        "that folder to train the teacher again") from err
    return cached


def store_teacher(model: nn.Module, root: RunsRoot, key: str, record: dict) -> None:
    """Weights first, then the record: a teacher counts as cached only once its record exists."""
    weights = root.teacher_weights(key)
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_weights(model, weights)
    write_json_atomic(root.teacher_record(key), record)
