"""Distillation losses."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      temperature: float) -> torch.Tensor:
    """KL(teacher || student) on temperature-softened distributions, scaled by T^2 so gradient
    magnitudes stay comparable across temperatures (Hinton et al.). Zero when the logits match."""
    t = float(temperature)
    log_p_student = F.log_softmax(student_logits.float() / t, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits.float() / t, dim=1)
    kl = F.kl_div(log_p_student, log_p_teacher, log_target=True, reduction="batchmean")
    return kl * (t * t)


def finetune_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                  temperature: float, hard_label_weight: float) -> torch.Tensor:
    """Distillation from the teacher, optionally mixed with the hard-label cross-entropy."""
    soft = distillation_loss(student_logits, teacher_logits, temperature)
    if hard_label_weight == 0:
        return soft
    hard = F.cross_entropy(student_logits.float(), labels)
    return (1 - hard_label_weight) * soft + hard_label_weight * hard
