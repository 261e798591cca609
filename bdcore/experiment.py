"""Run one experiment end to end: data, teacher (trained or reused), blind student, and one
fine-tuned student per k. Everything lands in a run directory."""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from .config import ExperimentConfig, parse_k
from .data import PairedData, load_dataset, pair_datasets
from .data.imageset import ImageSet
from .device import device_name, resolve_device
from .models import build_model
from .runs import RunDir, save_weights
from .stages import blind_distill, finetune, train_teacher
from .teachers import load_cached_teacher, store_teacher, teacher_key
from .train import EpochReport, StageSettings

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
                         augment=config.finetune_augment, schedule="linear")


def run_experiment(config: ExperimentConfig, runs_root: Path | None = None,
                   on_epoch: Callable[[EpochReport], None] | None = None,
                   on_message: MessageFn | None = None) -> ExperimentResult:
    config.validate()
    say = on_message or (lambda _msg: None)
    run = RunDir.create(config, runs_root)
    root = run.path.parent

    def report(r: EpochReport) -> None:
        run.log(r.to_dict())
        if on_epoch is not None:
            on_epoch(r)

    device = resolve_device(config.device)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    data = load_pair(config).to(device)
    seconds["data"] = time.perf_counter() - start
    for note in data.notes:
        say(note)

    torch.manual_seed(config.seed)
    teacher = build_model(config.teacher, data.input_shape, data.num_classes).to(device)
    key = teacher_key(config, data.train_x, device)
    start = time.perf_counter()
    cached = load_cached_teacher(teacher, root, key)
    if cached is not None:
        teacher_acc = cached["test_acc"]
        say(f"teacher reused from cache {key} (test accuracy {teacher_acc:.4f})")
    else:
        settings = StageSettings(config.teacher_epochs, config.teacher_lr, config.batch_size,
                                 augment=config.teacher_augment)
        reports = train_teacher(teacher, data.train_x, data.train_y, data.test_x, data.test_y,
                                settings, seed=config.seed, amp=config.amp, on_epoch=report)
        teacher_acc = reports[-1].test_acc
        store_teacher(teacher, root, key, {"test_acc": teacher_acc, "key": key,
                                           "epochs": [r.to_dict() for r in reports]})
    teacher.eval().requires_grad_(False)
    save_weights(teacher, run.checkpoint("teacher"))
    seconds["teacher"] = time.perf_counter() - start

    start = time.perf_counter()
    torch.manual_seed(config.seed + 1)
    student = build_model(config.student, data.input_shape, data.num_classes).to(device)
    blind_settings = StageSettings(config.blind_epochs, config.blind_lr, config.batch_size,
                                   augment=config.blind_augment)
    reports = blind_distill(student, teacher, data.unlabeled_x, data.test_x, data.test_y,
                            blind_settings, temperature=config.temperature, seed=config.seed + 1,
                            amp=config.amp, on_epoch=report)
    blind_acc = reports[-1].test_acc
    save_weights(student, run.checkpoint("blind"))
    seconds["blind"] = time.perf_counter() - start

    finetune_acc = {}
    for k in config.finetune_ks:
        start = time.perf_counter()
        per_class = parse_k(k)
        tuned = copy.deepcopy(student)
        subset = len(data.train_y) if per_class is None else per_class * data.num_classes
        reports = finetune(tuned, teacher, data.train_x, data.train_y, data.test_x, data.test_y,
                           finetune_settings(config, subset), per_class=per_class,
                           temperature=config.finetune_temperature,
                           hard_label_weight=config.hard_label_weight, seed=config.seed + 2,
                           amp=config.amp, on_epoch=report)
        finetune_acc[k] = reports[-1].test_acc
        save_weights(tuned, run.checkpoint(f"finetune-k{k}"))
        seconds[f"finetune-k{k}"] = time.perf_counter() - start

    result = ExperimentResult(teacher_acc, blind_acc, finetune_acc, seconds, cached is not None,
                              device_name(device), config.seed, str(run.path), data.notes)
    run.write_final(result.to_dict())
    return result
