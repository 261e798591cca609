"""A run directory: config.json, metrics.jsonl (one line per epoch), final.json, and
safetensors checkpoints. Writes are atomic or append-and-flush, so a crash loses at most the
line being written."""
from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .config import ExperimentConfig


def runs_root() -> Path:
    """Where runs live: ``$BD_RUNS_DIR``, default ``./runs``."""
    return Path(os.environ.get("BD_RUNS_DIR", "runs")).expanduser()


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def save_weights(model: nn.Module, path: Path) -> None:
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp))
    os.replace(tmp, path)


def load_weights(model: nn.Module, path: Path) -> nn.Module:
    """Load safetensors weights (no pickle, so safe on untrusted files)."""
    model.load_state_dict(load_file(str(path)))
    return model


class RunDir:
    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def create(cls, config: ExperimentConfig, root: Path | None = None) -> "RunDir":
        root = runs_root() if root is None else Path(root)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = f"{stamp}-{config.labeled}-{config.unlabeled}-{config.teacher}-{config.student}"
        path = root / f"{name.replace(':', '_').replace('/', '_')}-{secrets.token_hex(3)}"
        path.mkdir(parents=True)
        run = cls(path)
        (path / "config.json").write_text(config.to_json())
        return run

    def config(self) -> ExperimentConfig:
        return ExperimentConfig.load(self.path / "config.json")

    def log(self, record: dict) -> None:
        with open(self.path / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def metrics(self) -> list[dict]:
        """Every complete line of metrics.jsonl (a torn last line from a crash is skipped)."""
        path = self.path / "metrics.jsonl"
        if not path.exists():
            return []
        records = []
        for line in path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records

    def checkpoint(self, stage: str) -> Path:
        return self.path / f"{stage}.safetensors"

    def write_final(self, summary: dict) -> None:
        write_json_atomic(self.path / "final.json", summary)

    def final(self) -> dict | None:
        path = self.path / "final.json"
        return json.loads(path.read_text()) if path.exists() else None


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
