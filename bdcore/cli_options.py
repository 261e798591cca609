"""Command-line options generated from ExperimentConfig, so `run` (and later `jobs submit`) take
exactly the config's fields, each documented."""
from __future__ import annotations

import argparse
from dataclasses import fields

from .config import ExperimentConfig
from .data import DATASETS
from .device import DEVICES
from .models import MODELS

HELP = {
    "labeled": f"labeled dataset: {', '.join(DATASETS)} or folder:PATH",
    "unlabeled": "unlabeled dataset (its labels are never used in training); same choices",
    "teacher": f"teacher architecture: {', '.join(MODELS)}",
    "student": "student architecture; same choices",
    "temperature": "distillation temperature T of the blind stage (loss scaled by T^2)",
    "finetune_temperature": "distillation temperature of the fine-tune stage",
    "hard_label_weight": "fine-tune: weight of the hard-label cross-entropy (0 = pure distillation)",
    "teacher_epochs": "epochs of supervised teacher training",
    "blind_epochs": "epochs of blind distillation over the unlabeled set",
    "finetune_epochs": "epochs of each fine-tune (raised for small k, see --finetune-min-steps)",
    "finetune_ks": "labeled samples per class for fine-tuning, one run each: numbers and/or 'all'",
    "finetune_min_steps": "least optimiser steps a fine-tune takes, however small k is",
    "teacher_lr": "peak learning rate of teacher training (AdamW, one-cycle)",
    "blind_lr": "peak learning rate of blind distillation (AdamW, one-cycle)",
    "finetune_lr": "starting learning rate of fine-tuning (linear decay to 0)",
    "batch_size": "batch size of every stage",
    "teacher_augment": "random small rotations, zooms and shifts while training the teacher",
    "teacher_input_noise": "std of Gaussian noise added to each teacher training image, in units of the "
                           "labeled set's pixel std (0 = none); a smoother teacher, easier to copy",
    "blind_augment": "random small distortions of unlabeled images, with fresh teacher logits per batch",
    "blind_augment_strength": "scales --blind-augment's ranges: rotation and zoom by it, shifts by its "
                              "square root (1: 10 degrees, 10%% zoom, 2 px; 4: 40 degrees, 40%%, 4 px)",
    "finetune_augment": "random small distortions of the labeled images while fine-tuning",
    "finetune_fresh_teacher": "with --finetune-augment: distil from the teacher's logits of each distorted "
                              "batch (--no-finetune-fresh-teacher: from its logits of the undistorted "
                              "images, computed once; with a CNN teacher, a CNN epoch about 1.25x "
                              "faster on CPU)",
    "labeled_limit": "use at most this many labeled training images (seeded random subset)",
    "unlabeled_limit": "use at most this many unlabeled images (seeded random subset)",
    "seed": "random seed; the same seed on the same device repeats a run",
    "device": f"training device: {', '.join(DEVICES)} (auto: CUDA, then MPS, then CPU)",
    "amp": "bf16 mixed precision where the device runs it natively",
    "compile": "torch.compile the model of each stage (worth it on a GPU for long runs only)",
}


def _optional_int(text: str) -> int | None:
    return None if text.lower() in {"none", "all", ""} else int(text)


def add_config_options(parser: argparse.ArgumentParser) -> None:
    defaults = ExperimentConfig()
    for f in fields(ExperimentConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        kwargs = {"dest": f.name, "default": default, "help": f"{HELP[f.name]} (default: %(default)s)"}
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        elif isinstance(default, list):
            parser.add_argument(flag.removesuffix("s"), nargs="+", metavar="K", **kwargs)
        elif default is None:
            parser.add_argument(flag, type=_optional_int, metavar="N", **kwargs)
        else:
            parser.add_argument(flag, type=type(default), **kwargs)


def config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    return ExperimentConfig(**{f.name: getattr(args, f.name) for f in fields(ExperimentConfig)})
