"""An experiment is one typed config, saved as JSON beside its results."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .data import DATASETS
from .device import DEVICES
from .models import MODELS
from .train import AUGMENT


def parse_k(value: str | int) -> int | None:
    """A fine-tuning size: a positive number of samples per class, or "all" (None)."""
    text = str(value).strip().lower()
    if text == "all":
        return None
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"fine-tune k must be a positive whole number or 'all', got {value!r}")
    return int(text)


# Fields added after runs were first saved, with the value those earlier runs used (a field whose
# default is the earlier behaviour, such as blind_augment_strength, needs no entry)
EARLIER_RUN_VALUES = {"teacher_input_noise": 0.0}
# Zoom ranges grow with the strength (Augmentation.scaled); at 100% an image could shrink to a point
MAX_AUGMENT_STRENGTH = 1 / AUGMENT.max_scale


@dataclass
class ExperimentConfig:
    """Every setting of a teacher -> blind student -> fine-tuned student run.

    The defaults are the ones that reproduce the paper's Table 1 (see docs/results.md)."""
    labeled: str = "mnist"
    unlabeled: str = "fashion-mnist"
    teacher: str = "cnn"
    student: str = "cnn"
    temperature: float = 20.0  # blind distillation
    finetune_temperature: float = 4.0
    hard_label_weight: float = 0.5  # fine-tune: weight of the hard-label loss beside distillation
    teacher_epochs: int = 15
    blind_epochs: int = 15
    finetune_epochs: int = 20
    finetune_ks: list[str] = field(default_factory=lambda: ["all"])
    finetune_min_steps: int = 300  # small k: enough optimiser steps to matter
    teacher_lr: float = 3e-3
    blind_lr: float = 3e-3
    finetune_lr: float = 2e-3
    batch_size: int = 128
    teacher_augment: bool = True
    teacher_input_noise: float = 0.5  # std of Gaussian pixel noise on teacher training images
    blind_augment: bool = False  # True: fresh teacher logits on each augmented batch
    blind_augment_strength: float = 1.0  # scales blind_augment's distortions (Augmentation.scaled)
    finetune_augment: bool = True
    finetune_fresh_teacher: bool = True  # False: the teacher's logits of undistorted images, cached
    labeled_limit: int | None = None  # cap on labeled train images (quick demos, tests)
    unlabeled_limit: int | None = None
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # bf16 autocast where the device runs it natively
    compile: bool = False  # torch.compile each stage's model (see docs/performance.md)

    def validate(self) -> "ExperimentConfig":
        """Raise ValueError naming every bad field; return self when all are fine."""
        problems = []
        for name in ("labeled", "unlabeled"):
            value = getattr(self, name)
            if value not in DATASETS and not (value.startswith("folder:") and len(value) > 7):
                problems.append(f"{name}: unknown dataset {value!r} (choose {', '.join(DATASETS)} "
                                "or folder:PATH)")
        for name in ("teacher", "student"):
            if getattr(self, name) not in MODELS:
                problems.append(f"{name}: unknown model {getattr(self, name)!r} "
                                f"(choose {', '.join(MODELS)})")
        for name in ("temperature", "finetune_temperature", "teacher_lr", "blind_lr", "finetune_lr"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.teacher_input_noise < math.inf:
            problems.append(f"teacher_input_noise must be >= 0 and finite, got {self.teacher_input_noise}")
        if not 0 < self.blind_augment_strength < MAX_AUGMENT_STRENGTH:
            problems.append(f"blind_augment_strength must be > 0 and < {MAX_AUGMENT_STRENGTH:g} (where "
                            f"zooms would reach 100%), got {self.blind_augment_strength}")
        elif self.blind_augment_strength != 1.0 and not self.blind_augment:
            problems.append("blind_augment_strength has no effect without blind_augment: turn that on "
                            "or leave the strength at 1")
        if not self.finetune_fresh_teacher and not self.finetune_augment:
            problems.append("finetune_fresh_teacher=False has no effect without finetune_augment "
                            "(undistorted images get cached logits anyway): turn that on or leave it True")
        for name in ("teacher_epochs", "blind_epochs", "batch_size"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.finetune_epochs < 0 or self.finetune_min_steps < 0:
            problems.append("finetune_epochs and finetune_min_steps must be >= 0")
        if not 0 <= self.hard_label_weight <= 1:
            problems.append(f"hard_label_weight must be in [0, 1], got {self.hard_label_weight}")
        for name in ("labeled_limit", "unlabeled_limit"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1 when set")
        try:
            self.finetune_ks = [str(k).strip().lower() for k in self.finetune_ks]
            [parse_k(k) for k in self.finetune_ks]
        except ValueError as err:
            problems.append(str(err))
        if self.device not in DEVICES and not self.device.startswith("cuda:"):
            problems.append(f"device: unknown {self.device!r} (choose {', '.join(DEVICES)})")
        if problems:
            raise ValueError("invalid experiment config:\n  - " + "\n  - ".join(problems))
        return self

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> "ExperimentConfig":
        """A config from saved JSON; fields missing from an earlier run take EARLIER_RUN_VALUES."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown config fields: {', '.join(sorted(unknown))}")
        return cls(**{**EARLIER_RUN_VALUES, **data})

    @classmethod
    def load(cls, path: str | Path) -> "ExperimentConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))
