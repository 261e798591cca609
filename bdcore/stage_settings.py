"""What one training stage is told: its schedule and input perturbations (``StageSettings``), and
with its name and seed, its plan (``StagePlan``, built by ``ExperimentConfig.stage_plan``)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class StageSettings:
    epochs: int
    lr: float
    batch_size: int = 256
    augment: bool = False  # perturb each batch with the augmentation ``augment_kind``
    schedule: str = "onecycle"  # "onecycle" (warm-up then cosine decay) or "linear" (steady decay)
    compile: bool = False  # torch.compile the training step's model (pays off on long GPU runs)
    input_noise: float = 0.0  # std of Gaussian noise added to every pixel (normalised units)
    augment_strength: float = 1.0  # scales the ranges of ``augment`` (augment.batch_augment)
    augment_kind: str = "affine"  # a key of augment.AUGMENT_KINDS: "affine" (digits) or "crop_flip" (photos)

    @property
    def perturbs_inputs(self) -> bool:
        """Whether a batch differs from the stored images (then a teacher must see it afresh)."""
        return self.augment or self.input_noise > 0


@dataclass(frozen=True)
class StagePlan:
    """One stage of a run: its name, its settings and the seed of its random draws."""
    name: str
    settings: StageSettings
    seed: int
