"""What lets a stopped run continue: the ledger of finished stages (``StageLedger``) and the
per-epoch checkpoint of the stage in progress (``StageCheckpointer``), which also keeps a few of the
blind stage's epochs as snapshots for the explorer's replay. Paths come from RunDir. In a run of
several processes every rank reads them and only rank 0 writes (docs/distributed.md)."""
from __future__ import annotations

import json

import torch

from .distributed import is_main
from .errors import DataError
from .faults import fault_point
from .runs import RunDir, load_weights, read_json, save_state_atomic, save_weights, write_json_atomic
from .stage_names import BLIND
from .train import EpochReport, EpochState

SNAPSHOTS = 6  # blind-stage epochs kept for replay: ~0.5 MB (MLP) to 1.4 MB (CNN) each on MNIST


def snapshot_epochs(epochs: int, keep: int = SNAPSHOTS) -> list[int]:
    """Which of a stage's ``epochs`` (1-based) to keep: ``keep`` spread evenly, first and last
    included, so a replay shows the start, the end and the steps between."""
    if epochs <= keep:
        return list(range(1, epochs + 1))
    return sorted({1 + round(i * (epochs - 1) / (keep - 1)) for i in range(keep)})


class StageLedger:
    """Each finished stage's accuracy and seconds, so a resume skips it."""

    def __init__(self, run: RunDir):
        self.path = run.ledger_path
        self.done: dict[str, dict] = read_json(
            self.path, "the run's finished stages",
            "delete it and resume: the finished stages are trained again") if self.path.exists() else {}

    def finish(self, stage: str, **record) -> None:
        self.done[stage] = record
        if is_main():
            write_json_atomic(self.path, self.done)


def _model_device(state: EpochState) -> torch.device:
    return next(state.model.parameters()).device


def _global_rng(state: EpochState) -> torch.Tensor:
    """The global generator of the model's device: dropout draws from it, not from the stage's
    own generator, so a resumed stage needs it back to drop the same units."""
    device = _model_device(state)
    return torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()


def _set_global_rng(state: EpochState, saved: torch.Tensor) -> None:
    device = _model_device(state)
    if device.type == "cuda":
        torch.cuda.set_rng_state(saved, device)
    else:
        torch.set_rng_state(saved)


class StageCheckpointer:
    """Per-epoch checkpoint of one stage: weights, optimiser, schedule and RNG state, and the epoch
    reports so far. Each file is written atomically and carries the epoch number, and the index is
    replaced last, so a kill anywhere in a save leaves the previous epoch's checkpoint whole."""

    def __init__(self, run: RunDir, stage: str):
        self.run, self.stage = run, stage
        self.index = run.epoch_index(stage)

    def saved(self) -> bool:
        """Whether an epoch of this stage was saved (the stage is under way in this run)."""
        return self.index.exists()

    def restore(self, state: EpochState) -> list[EpochReport]:
        """Load the last saved epoch into ``state``; its reports (none if no epoch was saved). The
        files of other epochs, left by a kill mid-save (the next epoch's before the index named
        it, the previous one's before their removal), are deleted: they are never read."""
        if not self.index.exists():
            self._remove_all_but(-1)
            return []
        fix = f"delete it and resume: stage {self.stage} starts again from its first epoch"
        saved = read_json(self.index, f"the last saved epoch of stage {self.stage}", fix)
        if not (isinstance(saved.get("epoch"), int) and isinstance(saved.get("reports"), list)):
            raise DataError(f"{self.index} (the last saved epoch of stage {self.stage}) lacks its epoch "
                            f"or reports; {fix}")
        weights, extra = self.run.epoch_files(self.stage, saved["epoch"])
        load_weights(state.model, weights)
        extra_state = torch.load(extra, weights_only=True)
        state.load_state_dict(extra_state)
        if "torch_rng" in extra_state:  # absent from checkpoints saved before it was kept
            _set_global_rng(state, extra_state["torch_rng"])
        self._remove_all_but(saved["epoch"])
        return [EpochReport(**r) for r in saved["reports"]]

    def save(self, state: EpochState, report: EpochReport) -> None:
        if not is_main():
            return
        previous = json.loads(self.index.read_text()) if self.index.exists() else {"reports": []}
        weights, extra = self.run.epoch_files(self.stage, report.epoch)
        save_weights(state.model, weights)
        if self.stage == BLIND and report.epoch in snapshot_epochs(report.epochs):
            snapshot = self.run.snapshot(self.stage, report.epoch)
            snapshot.parent.mkdir(exist_ok=True)
            save_weights(state.model, snapshot)  # atomic; a resume that retrains the epoch overwrites it
        fault_point("checkpoint.between_files")
        save_state_atomic({**state.state_dict(), "torch_rng": _global_rng(state)}, extra)
        fault_point("checkpoint.before_index")
        write_json_atomic(self.index, {"epoch": report.epoch,
                                       "reports": previous["reports"] + [report.to_dict()]})
        fault_point("checkpoint.before_cleanup")
        self._remove_all_but(report.epoch)

    def _remove_all_but(self, keep: int) -> None:
        if not is_main():
            return
        for path in self.run.epoch_files_except(self.stage, keep):
            path.unlink(missing_ok=True)

    def clear(self) -> None:
        """Drop the per-epoch files once the stage's final checkpoint is written."""
        if not is_main():
            return
        self._remove_all_but(-1)
        self.index.unlink(missing_ok=True)
