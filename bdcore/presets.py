"""Named starting points for a run: "paper" (the paper's settings, which reproduce Table 1) and
"quick" (a classroom demo of the whole phenomenon in under a minute on a 2-core CPU, measured in
docs/results.md, "The quick preset"). A preset is a set of ExperimentConfig overrides; explicit
settings override the preset."""
from __future__ import annotations

from dataclasses import dataclass, field

from .config import ExperimentConfig
from .errors import ConfigError


@dataclass(frozen=True)
class Preset:
    summary: str
    overrides: dict[str, object] = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    "quick": Preset(
        "the whole run in about a minute on a 2-core CPU with the demo subset: 2 / 3 / 4 epochs of "
        "batch 64, a plain teacher, a hard-label fine-tune (docs/results.md, 'The quick preset')",
        {"teacher_epochs": 2, "blind_epochs": 3, "finetune_epochs": 4, "finetune_min_steps": 0,
         "batch_size": 64, "teacher_augment": False, "teacher_input_noise": 0.0,
         "finetune_augment": False, "hard_label_weight": 1.0, "finetune_lr": 3e-3,
         "labeled_limit": 10_000, "unlabeled_limit": 10_000}),
    "paper": Preset("the paper's settings (Table 1's first row): 15 / 15 / 20 epochs, several "
                    "minutes on a CPU"),
}
DEFAULT_PRESET = "paper"


def preset_config(name: str = DEFAULT_PRESET, **settings: object) -> ExperimentConfig:
    """The preset's config with ``settings`` (ExperimentConfig fields) on top."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return ExperimentConfig(**{**PRESETS[name].overrides, **settings})
