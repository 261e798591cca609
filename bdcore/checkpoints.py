"""What lets a stopped run continue: the ledger of finished stages (``StageLedger``) and the
per-epoch checkpoint of the stage in progress (``StageCheckpointer``). Paths come from RunDir."""
from __future__ import annotations

import json

import torch

from .runs import RunDir, load_weights, save_weights, write_json_atomic
from .train import EpochReport, EpochState


class StageLedger:
    """Each finished stage's accuracy and seconds, so a resume skips it."""

    def __init__(self, run: RunDir):
        self.path = run.ledger_path
        self.done: dict[str, dict] = json.loads(self.path.read_text()) if self.path.exists() else {}

    def finish(self, stage: str, **record) -> None:
        self.done[stage] = record
        write_json_atomic(self.path, self.done)


class StageCheckpointer:
    """Per-epoch checkpoint of one stage: weights, optimiser, schedule and RNG state, and the epoch
    reports so far. Files carry the epoch number and the index is replaced atomically last, so a
    crash mid-save leaves the previous epoch."""

    def __init__(self, run: RunDir, stage: str):
        self.run, self.stage = run, stage
        self.index = run.epoch_index(stage)

    def restore(self, state: EpochState) -> list[EpochReport]:
        if not self.index.exists():
            return []
        saved = json.loads(self.index.read_text())
        weights, extra = self.run.epoch_files(self.stage, saved["epoch"])
        load_weights(state.model, weights)
        state.load_state_dict(torch.load(extra, weights_only=True))
        return [EpochReport(**r) for r in saved["reports"]]

    def save(self, state: EpochState, report: EpochReport) -> None:
        previous = json.loads(self.index.read_text()) if self.index.exists() else {"reports": []}
        weights, extra = self.run.epoch_files(self.stage, report.epoch)
        save_weights(state.model, weights)
        torch.save(state.state_dict(), extra)
        write_json_atomic(self.index, {"epoch": report.epoch,
                                       "reports": previous["reports"] + [report.to_dict()]})
        self._remove_all_but(report.epoch)

    def _remove_all_but(self, keep: int) -> None:
        for path in self.run.epoch_files_except(self.stage, keep):
            path.unlink(missing_ok=True)

    def clear(self) -> None:
        """Drop the per-epoch files once the stage's final checkpoint is written."""
        self._remove_all_but(-1)
        self.index.unlink(missing_ok=True)
