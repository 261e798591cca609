"""Run one experiment end to end: data, teacher (trained or reused), blind student, and one
fine-tuned student per k. Everything lands in a run directory, and a run that was stopped
resumes from its last finished stage and epoch."""
from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .config import ExperimentConfig, parse_k
from .data import PairedData, load_dataset, pair_datasets
from .data.imageset import ImageSet
from .device import device_name, resolve_device
from .models import build_model
from .runs import RunDir, StageCheckpointer, load_weights, save_weights, write_json_atomic
from .stages import blind_distill, finetune, train_teacher
from .teachers import load_cached_teacher, store_teacher, teacher_key
from .train import EpochReport, ProgressFn, StageSettings

MessageFn = Callable[[str], None]


@dataclass
class ExperimentResult:
    teacher_acc: float
    blind_acc: float
    finetune_acc: dict[str, float]  # k ("10", "all", ...) -> accuracy
    seconds: dict[str, float]  # stage -> wall seconds (data loading included as "data")
    teacher_reused: bool
    device: str
    seed: int
    run_dir: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _limit(images: ImageSet, limit: int | None, seed: int) -> ImageSet:
    if limit is None or limit >= len(images):
        return images
    return images.subset(torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:limit])


def load_pair(config: ExperimentConfig) -> PairedData:
    """Load and pair the config's datasets, applying its limits (on the CPU)."""
    train = _limit(load_dataset(config.labeled, "train"), config.labeled_limit, config.seed)
    test = load_dataset(config.labeled, "test")
    unlabeled = _limit(load_dataset(config.unlabeled, "train"), config.unlabeled_limit, config.seed + 1)
    return pair_datasets(train, test, unlabeled)


def finetune_settings(config: ExperimentConfig, subset_size: int) -> StageSettings:
    """The fine-tune schedule: ``finetune_epochs``, raised for tiny subsets so they still get
    ``finetune_min_steps`` optimiser steps."""
    steps_per_epoch = -(-subset_size // config.batch_size)
    epochs = max(config.finetune_epochs, -(-config.finetune_min_steps // steps_per_epoch))
    return StageSettings(epochs, config.finetune_lr, config.batch_size,
                         augment=config.finetune_augment, schedule="linear", compile=config.compile)


class StageLedger:
    """stages.json: each finished stage's accuracy and seconds, so a resume skips it."""

    def __init__(self, run: RunDir):
        self.path = run.path / "stages.json"
        self.done: dict[str, dict] = json.loads(self.path.read_text()) if self.path.exists() else {}

    def finish(self, stage: str, **record) -> None:
        self.done[stage] = record
        write_json_atomic(self.path, self.done)


def run_experiment(config: ExperimentConfig, runs_root: Path | None = None,
                   on_epoch: ProgressFn | None = None, on_message: MessageFn | None = None,
                   run: RunDir | None = None) -> ExperimentResult:
    """Run (or, given an existing ``run``, resume) all three stages."""
    config.validate()
    say = on_message or (lambda _msg: None)
    run = run or RunDir.create(config, runs_root)
    ledger = StageLedger(run)

    def report(r: EpochReport) -> None:
        run.log(r.to_dict())
        if on_epoch is not None:
            on_epoch(r)

    def stage(name: str, model: nn.Module, train: Callable[[StageCheckpointer], list[EpochReport]],
              extra: dict | None = None) -> float:
        """Run one stage unless the ledger says it is done; ``extra`` (filled in by ``train``)
        is recorded beside its accuracy."""
        if name in ledger.done:
            load_weights(model, run.checkpoint(name))
            say(f"{name}: already finished, loaded from {run.checkpoint(name).name}")
            return ledger.done[name]["test_acc"]
        start = time.perf_counter()
        checkpointer = StageCheckpointer(run, name)
        acc = train(checkpointer)[-1].test_acc
        save_weights(model, run.checkpoint(name))
        ledger.finish(name, test_acc=acc, seconds=time.perf_counter() - start, **(extra or {}))
        checkpointer.clear()
        return acc

    device = resolve_device(config.device)
    start = time.perf_counter()
    data = load_pair(config).to(device)
    data_seconds = time.perf_counter() - start
    for note in data.notes:
        say(note)

    torch.manual_seed(config.seed)
    teacher = build_model(config.teacher, data.input_shape, data.num_classes).to(device)
    key = teacher_key(config, data.train_x, device)

    teacher_info = {"reused": False}

    def train_or_reuse_teacher(checkpointer: StageCheckpointer) -> list[EpochReport]:
        cached = load_cached_teacher(teacher, run.path.parent, key)
        teacher_info["reused"] = cached is not None
        if cached is not None:
            say(f"teacher reused from cache {key} (test accuracy {cached['test_acc']:.4f})")
            return [EpochReport(**cached["epochs"][-1])]
        settings = StageSettings(config.teacher_epochs, config.teacher_lr, config.batch_size,
                                 augment=config.teacher_augment, compile=config.compile,
                                 input_noise=config.teacher_input_noise)
        reports = train_teacher(teacher, data.train_x, data.train_y, data.test_x, data.test_y,
                                settings, seed=config.seed, amp=config.amp, on_epoch=report,
                                checkpointer=checkpointer)
        store_teacher(teacher, run.path.parent, key, {"test_acc": reports[-1].test_acc, "key": key,
                                                      "epochs": [r.to_dict() for r in reports]})
        return reports

    teacher_acc = stage("teacher", teacher, train_or_reuse_teacher, teacher_info)
    teacher.eval().requires_grad_(False)

    torch.manual_seed(config.seed + 1)
    student = build_model(config.student, data.input_shape, data.num_classes).to(device)
    blind_settings = StageSettings(config.blind_epochs, config.blind_lr, config.batch_size,
                                   augment=config.blind_augment, compile=config.compile,
                                   augment_strength=config.blind_augment_strength)
    blind_acc = stage("blind", student, lambda ckpt: blind_distill(
        student, teacher, data.unlabeled_x, data.test_x, data.test_y, blind_settings,
        temperature=config.temperature, seed=config.seed + 1, amp=config.amp, on_epoch=report,
        checkpointer=ckpt))

    finetune_acc = {}
    for k in config.finetune_ks:
        per_class = parse_k(k)
        tuned = copy.deepcopy(student)
        subset = len(data.train_y) if per_class is None else per_class * data.num_classes
        finetune_acc[k] = stage(f"finetune-k{k}", tuned, lambda ckpt: finetune(
            tuned, teacher, data.train_x, data.train_y, data.test_x, data.test_y,
            finetune_settings(config, subset), per_class=per_class,
            temperature=config.finetune_temperature, hard_label_weight=config.hard_label_weight,
            seed=config.seed + 2, fresh_teacher=config.finetune_fresh_teacher, amp=config.amp,
            on_epoch=report, checkpointer=ckpt))

    seconds = {"data": data_seconds, **{name: rec["seconds"] for name, rec in ledger.done.items()}}
    result = ExperimentResult(teacher_acc, blind_acc, finetune_acc, seconds,
                              bool(ledger.done["teacher"].get("reused")), device_name(device),
                              config.seed, str(run.path), data.notes)
    run.write_final(result.to_dict())
    return result
