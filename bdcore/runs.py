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
from .train import EpochReport, EpochState


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
    def create(cls, config: ExperimentConfig, root: Path | None = None,
               name: str | None = None) -> "RunDir":
        """A new run folder holding config.json; named after the time and pair unless ``name``."""
        root = runs_root() if root is None else Path(root)
        if name is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            name = f"{stamp}-{config.labeled}-{config.unlabeled}-{config.teacher}-{config.student}"
            name = f"{name.replace(':', '_').replace('/', '_')}-{secrets.token_hex(3)}"
        path = root / name
        path.mkdir(parents=True, exist_ok=True)
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
        """One record per (stage, epoch), the latest written: a torn last line from a crash is
        skipped, and an epoch logged again after a resume replaces the earlier line."""
        path = self.path / "metrics.jsonl"
        if not path.exists():
            return []
        records: dict[tuple, dict] = {}
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            records[(record["stage"], record["epoch"])] = record
        return list(records.values())

    def checkpoint(self, stage: str) -> Path:
        return self.path / f"{stage}.safetensors"

    def write_final(self, summary: dict) -> None:
        write_json_atomic(self.path / "final.json", summary)

    def final(self) -> dict | None:
        path = self.path / "final.json"
        return json.loads(path.read_text()) if path.exists() else None


class StageCheckpointer:
    """Per-epoch checkpoint of one stage: weights (safetensors), optimiser, schedule and RNG state
    (a weights-only torch file) and the epoch reports so far. Files carry the epoch number and a
    small JSON index is replaced atomically last, so a crash mid-save leaves the previous epoch."""

    def __init__(self, run: RunDir, stage: str):
        self.run, self.stage = run, stage
        self.index = run.path / f"{stage}.last.json"

    def _files(self, epoch: int) -> tuple[Path, Path]:
        base = f"{self.stage}.e{epoch}"
        return self.run.path / f"{base}.safetensors", self.run.path / f"{base}.state.pt"

    def restore(self, state: EpochState) -> list[EpochReport]:
        if not self.index.exists():
            return []
        saved = json.loads(self.index.read_text())
        weights, extra = self._files(saved["epoch"])
        load_weights(state.model, weights)
        state.load_state_dict(torch.load(extra, weights_only=True))
        return [EpochReport(**r) for r in saved["reports"]]

    def save(self, state: EpochState, report: EpochReport) -> None:
        previous = json.loads(self.index.read_text()) if self.index.exists() else {"reports": []}
        weights, extra = self._files(report.epoch)
        save_weights(state.model, weights)
        torch.save(state.state_dict(), extra)
        write_json_atomic(self.index, {"epoch": report.epoch,
                                       "reports": previous["reports"] + [report.to_dict()]})
        self._remove_older(report.epoch)

    def _remove_older(self, keep: int) -> None:
        for path in self.run.path.glob(f"{self.stage}.e*.*"):
            epoch = path.name.removeprefix(f"{self.stage}.e").split(".")[0]
            if epoch.isdigit() and int(epoch) != keep:
                path.unlink(missing_ok=True)

    def clear(self) -> None:
        """Drop the per-epoch files once the stage's final checkpoint is written."""
        self._remove_older(-1)
        self.index.unlink(missing_ok=True)
