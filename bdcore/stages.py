"""The three stages of blind distillation, each a plain function over in-memory tensors."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .data.imageset import Images, take_rows
from .losses import distillation_loss, finetune_loss
from .stage_names import BLIND, TEACHER
from .stage_settings import StageSettings
from .train import Checkpointer, EpochReport, ProgressFn, fit, predict_all


def train_teacher(teacher: nn.Module, train_x: Images, train_y: torch.Tensor,
                  test_x: torch.Tensor, test_y: torch.Tensor, settings: StageSettings, *,
                  seed: int, stage: str = TEACHER, amp: bool = True, on_epoch: ProgressFn | None = None,
                  checkpointer: Checkpointer | None = None) -> list[EpochReport]:
    """Supervised training of the teacher on the labeled train set."""
    def loss(logits, index, _x):
        return F.cross_entropy(logits.float(), train_y[index])

    return fit(teacher, train_x, loss, test_x, test_y, settings, stage=stage, seed=seed,
               amp=amp, on_epoch=on_epoch, checkpointer=checkpointer)


def _teacher_targets(teacher: nn.Module, inputs: Images, fresh: bool, amp: bool):
    """Teacher logits for a batch: looked up from one cached pass over ``inputs`` (with several
    processes, each predicts its share and the shares are gathered once), or computed afresh on the
    (augmented or noisy) batch when the stage perturbs its inputs."""
    teacher.eval()
    if fresh:
        def targets(_index, x):
            with torch.no_grad():
                return teacher(x).float()
        return targets
    cached = predict_all(teacher, inputs, amp)
    return lambda index, _x: cached[index]


def blind_distill(student: nn.Module, teacher: nn.Module, unlabeled_x: Images,
                  test_x: Images, test_y: torch.Tensor, settings: StageSettings, *,
                  temperature: float, seed: int, stage: str = BLIND, amp: bool = True,
                  on_epoch: ProgressFn | None = None,
                  checkpointer: Checkpointer | None = None) -> list[EpochReport]:
    """Train the student on the frozen teacher's soft labels over the unlabeled set only.

    The labeled test set is used for reporting accuracy, under inference mode, never for training."""
    targets = _teacher_targets(teacher, unlabeled_x, settings.perturbs_inputs, amp)

    def loss(logits, index, x):
        return distillation_loss(logits, targets(index, x), temperature)

    return fit(student, unlabeled_x, loss, test_x, test_y, settings, stage=stage, seed=seed,
               amp=amp, on_epoch=on_epoch, checkpointer=checkpointer)


def stratified_subset(labels: torch.Tensor, per_class: int | None, seed: int) -> torch.Tensor:
    """Sorted indices of ``per_class`` samples of each class, drawn with ``seed``; all for None.
    A class with fewer samples contributes all it has."""
    if per_class is None:
        return torch.arange(len(labels))
    generator = torch.Generator().manual_seed(seed)
    labels = labels.cpu()
    chosen = []
    for c in labels.unique():
        members = (labels == c).nonzero().flatten()
        chosen.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    return torch.cat(chosen).sort().values


def finetune(student: nn.Module, teacher: nn.Module, train_x: Images, train_y: torch.Tensor,
             test_x: Images, test_y: torch.Tensor, settings: StageSettings, *,
             per_class: int | None, temperature: float, hard_label_weight: float, seed: int, stage: str,
             fresh_teacher: bool = True, amp: bool = True, on_epoch: ProgressFn | None = None,
             checkpointer: Checkpointer | None = None) -> list[EpochReport]:
    """Fine-tune a blind-distilled student on k labeled samples per class (None: all), distilling
    from the teacher, optionally mixed with the hard-label loss.

    On distorted or noisy batches the teacher scores the very batch the student sees; without
    ``fresh_teacher`` the student is scored against the teacher's logits of the undistorted images,
    computed once, which saves a teacher forward pass per batch at a small cost in accuracy
    (docs/results.md)."""
    index = stratified_subset(train_y, per_class, seed).to(train_x.device)
    subset_x, subset_y = take_rows(train_x, index), train_y[index]
    targets = _teacher_targets(teacher, subset_x, fresh_teacher and settings.perturbs_inputs, amp)

    def loss(logits, batch_index, x):
        return finetune_loss(logits, targets(batch_index, x), subset_y[batch_index], temperature,
                             hard_label_weight)

    return fit(student, subset_x, loss, test_x, test_y, settings, stage=stage, seed=seed, amp=amp,
               on_epoch=on_epoch, checkpointer=checkpointer)
