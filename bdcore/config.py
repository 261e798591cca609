"""An experiment is one typed config, saved as JSON beside its results. Each field carries its
help text (shown by the CLI and the Launch page); ``stage_plan`` turns the prefixed fields into
one stage's settings and seed, and ``pair_spec`` says which data the run trains on."""
from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .augment import AUGMENT_KINDS, MAX_AUGMENT_STRENGTH
from .data import DATASETS, TRANSFER_SET, PairSpec
from .device import DEVICES
from .errors import ConfigError
from .models import MODELS
from .stage_names import BLIND, FINETUNE, TEACHER, run_stages, stage_kind
from .stage_settings import StagePlan, StageSettings


def parse_k(value: str | int) -> int | None:
    """A fine-tuning size: a positive number of samples per class, or "all" (None)."""
    text = str(value).strip().lower()
    if text == "all":
        return None
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"fine-tune k must be a positive whole number or 'all', got {value!r}")
    return int(text)


def _normal_k(value: str | int) -> str:
    """The canonical spelling of a k ("010" -> "10", " ALL" -> "all"); a bad k is left for
    ``validate`` to name."""
    text = str(value).strip().lower()
    return str(int(text)) if text.isdigit() else text


# Fields added after runs were first saved, with the value those earlier runs used (a field whose
# default is the earlier behaviour, such as blind_augment_strength, needs no entry)
EARLIER_RUN_VALUES = {"teacher_input_noise": 0.0}
MAX_SEED = 2**32 - 1
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 8, 512  # cnn pools twice and cnn6 three times; 512 px: 3 MB an image
# Each random draw of a run has its own stream: seed + offset
SEED_OFFSETS = {TEACHER: 0, BLIND: 1, FINETUNE: 2, "labeled subset": 0, "unlabeled subset": 1}


def _field(default, help: str, **kwargs):
    """A config field with its help text (one place for the CLI's --help and the Launch form)."""
    return field(default=default, metadata={"help": help}, **kwargs)


@dataclass
class ExperimentConfig:
    """Every setting of a teacher -> blind student -> fine-tuned student run.

    The defaults are the ones that reproduce the paper's Table 1 (see docs/results.md)."""
    labeled: str = _field("mnist", f"labeled dataset: {', '.join(DATASETS)} or folder:PATH")
    unlabeled: str = _field("fashion-mnist", "unlabeled dataset (its labels are never used in "
                            "training); same choices, or a saved transfer set subset:NAME")
    teacher: str = _field("cnn", f"teacher architecture: {', '.join(MODELS)}")
    student: str = _field("cnn", "student architecture; same choices")
    temperature: float = _field(20.0, "distillation temperature T of the blind stage (loss scaled by T^2)")
    finetune_temperature: float = _field(4.0, "distillation temperature of the fine-tune stage")
    hard_label_weight: float = _field(0.5, "fine-tune: weight of the hard-label cross-entropy "
                                      "(0 = pure distillation)")
    teacher_epochs: int = _field(15, "epochs of supervised teacher training")
    blind_epochs: int = _field(15, "epochs of blind distillation over the unlabeled set")
    finetune_epochs: int = _field(20, "epochs of each fine-tune (raised for small k, see finetune_min_steps)")
    finetune_ks: list[str] = field(default_factory=lambda: ["all"], metadata={
        "help": "labeled samples per class for fine-tuning, one fine-tune each: numbers and/or 'all'"})
    finetune_min_steps: int = _field(300, "least optimiser steps a fine-tune takes, however small k is")
    teacher_lr: float = _field(3e-3, "peak learning rate of teacher training (AdamW, one-cycle)")
    blind_lr: float = _field(3e-3, "peak learning rate of blind distillation (AdamW, one-cycle)")
    finetune_lr: float = _field(2e-3, "starting learning rate of fine-tuning (linear decay to 0)")
    batch_size: int = _field(128, "batch size of every stage")
    augment_kind: str = _field("affine", "the augmentation of every stage with augment on: "
                               + "; ".join(f"{kind}: {what}" for kind, what in AUGMENT_KINDS.items()))
    teacher_augment: bool = _field(True, "augment the labeled images while training the teacher (small "
                                   "rotations, zooms and shifts, or crops and flips: augment_kind)")
    teacher_input_noise: float = _field(0.5, "std of Gaussian noise added to each teacher training image, "
                                        "in units of the labeled set's pixel std (0 = none); a smoother "
                                        "teacher, easier to copy")
    blind_augment: bool = _field(False, "augment the unlabeled images (augment_kind), with fresh teacher "
                                 "logits per batch")
    blind_augment_strength: float = _field(1.0, "scales the unlabeled images' augmentation. affine: rotation "
                                           "and zoom by it, shifts by its square root (1: 10 degrees, 10% "
                                           "zoom, 2 px; 4: 40 degrees, 40%, 4 px); crop_flip: crops down "
                                           "to 0.35^strength of the area, aspect ratios up to "
                                           "(4/3)^strength (1: 35%, 4:3; 2: 12%, 16:9)")
    finetune_augment: bool = _field(True, "augment the labeled images while fine-tuning (augment_kind)")
    finetune_fresh_teacher: bool = _field(True, "with finetune_augment: distil from the teacher's logits of "
                                          "each distorted batch (off: from its logits of the undistorted "
                                          "images, computed once; faster, see docs/results.md)")
    labeled_limit: int | None = _field(None, "use at most this many labeled training images (seeded "
                                       "random subset)")
    unlabeled_limit: int | None = _field(None, "use at most this many unlabeled images (seeded random "
                                         "subset)")
    image_size: int | None = _field(None, "side in pixels of the square images a labeled image collection "
                                    "(folder:PATH, caltech256, imagenet) is prepared at; none: its first "
                                    "image's size, at most 64 px. The unlabeled set always takes the "
                                    "labeled set's size")
    seed: int = _field(0, "random seed; the same seed on the same device repeats a run")
    device: str = _field("auto", f"training device: {', '.join(DEVICES)} (auto: CUDA, then MPS, then CPU)")
    amp: bool = _field(True, "bf16 mixed precision where the device runs it natively")
    compile: bool = _field(False, "torch.compile the model of each stage; on CUDA as CUDA graphs (mode "
                           "reduce-overhead, every batch the same size: each epoch drops its last "
                           "partial batch). Worth it on a GPU only")

    def __post_init__(self) -> None:
        self.finetune_ks = [_normal_k(k) for k in self.finetune_ks]

    def validate(self) -> ExperimentConfig:
        """Raise ConfigError naming every bad field; return self when all are fine."""
        problems = []
        for name in ("labeled", "unlabeled"):
            value = getattr(self, name)
            if value.startswith(TRANSFER_SET) and name == "labeled":
                problems.append(f"labeled: {value} is a transfer set, which is unlabeled: use it as the "
                                "unlabeled set")
            elif value not in DATASETS and not (value.startswith(("folder:", TRANSFER_SET))
                                                and len(value) > len(TRANSFER_SET)):
                problems.append(f"{name}: unknown dataset {value!r} (choose {', '.join(DATASETS)}, "
                                "folder:PATH or, unlabeled, a saved transfer set subset:NAME)")
        for name in ("teacher", "student"):
            if getattr(self, name) not in MODELS:
                problems.append(f"{name}: unknown model {getattr(self, name)!r} "
                                f"(choose {', '.join(MODELS)})")
        for name in ("temperature", "finetune_temperature", "teacher_lr", "blind_lr", "finetune_lr"):
            # inf passes "> 0" but turns every loss into NaN; NaN fails every comparison
            if not 0 < getattr(self, name) < math.inf:
                problems.append(f"{name} must be > 0 and finite, got {getattr(self, name)}")
        if not 0 <= self.teacher_input_noise < math.inf:
            problems.append(f"teacher_input_noise must be >= 0 and finite, got {self.teacher_input_noise}")
        if self.augment_kind not in AUGMENT_KINDS:
            problems.append(f"augment_kind: unknown {self.augment_kind!r} (choose "
                            f"{', '.join(AUGMENT_KINDS)})")
        elif self.augment_kind != "affine" and not (self.teacher_augment or self.blind_augment
                                                    or self.finetune_augment):
            problems.append(f"augment_kind={self.augment_kind} has no effect without teacher_augment, "
                            "blind_augment or finetune_augment: turn one on or leave it affine")
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
        if self.image_size is not None and not MIN_IMAGE_SIZE <= self.image_size <= MAX_IMAGE_SIZE:
            problems.append(f"image_size must be from {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE} pixels, "
                            f"got {self.image_size}")
        if not self.finetune_ks:
            problems.append("finetune_ks: give at least one k (a number or 'all')")
        for k in self.finetune_ks:
            try:
                parse_k(k)
            except ConfigError as err:
                problems.append(str(err))
        if len(set(self.finetune_ks)) != len(self.finetune_ks):
            problems.append(f"finetune_ks: give each k once, got {', '.join(self.finetune_ks)}")
        if not 0 <= self.seed <= MAX_SEED:  # torch's generators take at most 64 bits
            problems.append(f"seed must be a whole number from 0 to {MAX_SEED}, got {self.seed}")
        if self.device not in DEVICES and not re.fullmatch(r"cuda:\d+", self.device):
            problems.append(f"device: unknown {self.device!r} (choose {', '.join(DEVICES)} or cuda:N)")
        if problems:  # one line: the CLI prints errors as one line, the app in one box
            raise ConfigError("invalid experiment config: " + "; ".join(problems))
        return self

    def finetune_sizes(self) -> list[int | None]:
        """Each fine-tune's labeled samples per class (None: all)."""
        return [parse_k(k) for k in self.finetune_ks]

    def stage_names(self) -> list[str]:
        return run_stages(self.finetune_sizes())

    def seed_for(self, purpose: str) -> int:
        """The seed of one of the run's random streams (a key of SEED_OFFSETS)."""
        return self.seed + SEED_OFFSETS[purpose]

    def pair_spec(self) -> PairSpec:
        """Which data this run trains on, and the seeds of its subsets."""
        return PairSpec(self.labeled, self.unlabeled, self.labeled_limit, self.unlabeled_limit,
                        self.seed_for("labeled subset"), self.seed_for("unlabeled subset"),
                        self.image_size)

    def stage_plan(self, stage: str, examples: int = 0) -> StagePlan:
        """The settings and seed of ``stage``. A fine-tune over ``examples`` labeled images gets
        at least ``finetune_min_steps`` optimiser steps, however small its subset."""
        kind = stage_kind(stage)
        if kind == TEACHER:
            settings = StageSettings(self.teacher_epochs, self.teacher_lr, self.batch_size,
                                     augment=self.teacher_augment, compile=self.compile,
                                     input_noise=self.teacher_input_noise, augment_kind=self.augment_kind)
        elif kind == BLIND:
            settings = StageSettings(self.blind_epochs, self.blind_lr, self.batch_size,
                                     augment=self.blind_augment, compile=self.compile,
                                     augment_strength=self.blind_augment_strength,
                                     augment_kind=self.augment_kind)
        elif kind == FINETUNE:
            steps_per_epoch = -(-examples // self.batch_size)
            epochs = max(self.finetune_epochs, -(-self.finetune_min_steps // max(steps_per_epoch, 1)))
            settings = StageSettings(epochs, self.finetune_lr, self.batch_size, augment=self.finetune_augment,
                                     schedule="linear", compile=self.compile, augment_kind=self.augment_kind)
        else:
            raise ValueError(f"not a stage name: {stage!r}")
        return StagePlan(stage, settings, self.seed_for(kind))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> ExperimentConfig:
        """A config from saved JSON; fields missing from an earlier run take EARLIER_RUN_VALUES.
        A field of the wrong type is a ConfigError, so a hand-edited file cannot reach training."""
        if not isinstance(data, dict):
            raise ConfigError(f"a config must be a JSON object of settings, got {type(data).__name__}")
        known = {f.name: f.type for f in fields(cls)}
        unknown = set(data) - set(known)
        if unknown:
            raise ConfigError(f"unknown config fields: {', '.join(sorted(unknown))} (remove them; "
                              f"known fields: {', '.join(known)})")
        wrong = [f"{name} should be {FIELD_TYPES[known[name]][1]}, got {value!r}"
                 for name, value in data.items() if not FIELD_TYPES[known[name]][0](value)]
        if wrong:
            raise ConfigError("config fields of the wrong type: " + "; ".join(wrong))
        return cls(**{**EARLIER_RUN_VALUES, **data})

    @classmethod
    def load(cls, path: str | Path) -> ExperimentConfig:
        """A saved config.json; a file that is not one is a ConfigError naming it."""
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ConfigError(f"{path}: not a JSON config ({err})") from err
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from err


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is not a count


def _is_number(value: object) -> bool:
    return _is_int(value) or isinstance(value, float)


# Each field type (as annotated) -> (does a JSON value fit it, how to say what fits)
FIELD_TYPES = {
    "str": (lambda v: isinstance(v, str), "text"),
    "float": (_is_number, "a number"),
    "int": (_is_int, "a whole number"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "int | None": (lambda v: v is None or _is_int(v), "a whole number or null"),
    "list[str]": (lambda v: isinstance(v, list) and all(isinstance(k, str) or _is_int(k) for k in v),
                  "a list of numbers and/or 'all'"),
}


def field_help(name: str) -> str:
    """The help text of an ExperimentConfig field."""
    return next(f.metadata["help"] for f in fields(ExperimentConfig) if f.name == name)

