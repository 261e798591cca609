"""Named starting points for a run: "paper" (the paper's settings, which reproduce Table 1),
"quick" (a classroom demo of the whole phenomenon in under a minute on a 2-core CPU, measured in
docs/results.md, "The quick preset"), and "table2" to "table4" (the first row of each of those
tables at its recipe, reproduce.py). A preset is a set of ExperimentConfig overrides; explicit
settings override the preset."""
from __future__ import annotations

from dataclasses import dataclass, field

from .config import ExperimentConfig
from .errors import ConfigError
from .reproduce import TABLE1, TABLE2, TABLE3, TABLE4


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
    "paper": Preset("the paper's settings (Table 1's first row): 15 / 15 / 20 epochs, the unlabeled "
                    "images distorted, several minutes on a CPU", TABLE1.first_row_settings()),
    "table2": Preset("Table 2: CIFAR-10 <- CIFAR-100, cnn6; needs CIFAR-10 and CIFAR-100 in the data "
                     "directory (or online, torchvision downloads them); about 6 h on a 2-core CPU",
                     TABLE2.first_row_settings()),
    "table3": Preset("Table 3: Caltech-256 <- OpenImages, MobileNetV2 at 224 px; needs Caltech-256 and "
                     "OpenImages in the data directory, and a GPU (weeks on a CPU)",
                     TABLE3.first_row_settings()),
    "table4": Preset("Table 4: ImageNet <- OpenImages, MobileNetV2 at 224 px; needs ImageNet and "
                     "OpenImages in the data directory, about 200 GB of cache and a GPU (a day or more)",
                     TABLE4.first_row_settings()),
}
DEFAULT_PRESET = "paper"


def preset_config(name: str = DEFAULT_PRESET, **settings: object) -> ExperimentConfig:
    """The preset's config with ``settings`` (ExperimentConfig fields) on top."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return ExperimentConfig(**{**PRESETS[name].overrides, **settings})
