"""Teacher-logit caching: a blind-distillation epoch (CNN teacher, CNN student) with the teacher's
logits computed once over the unlabeled set and looked up per batch (bdcore's blind stage),
against the teacher run afresh on every batch (what bdcore does when batches are augmented).
Also: what an augmented step (random affine + fresh logits, as the teacher and fine-tune stages
run) costs against a cached one, over a fixed number of steps.

    python bench/teacher_cache.py [--device cpu|cuda] [--quick]"""
from __future__ import annotations

import torch
from common import DEFAULTS, Context, Figure, fit_seconds_per_step, standalone, timed
from loop_efficiency import blind_epoch, frozen_teacher

from bdcore.losses import distillation_loss
from bdcore.stage_settings import StageSettings
from bdcore.train import fit, predict_logits


def fresh_loss(teacher, hook=None):
    """The blind loss with the teacher run on each batch, as bdcore.stages does for augmented ones."""
    def loss(logits, _index, x):
        if hook is not None:
            hook()
        with torch.no_grad():
            target = teacher(x).float()
        return distillation_loss(logits, target, DEFAULTS.temperature)
    return loss


def cached_loss(cached, hook=None):
    def loss(logits, index, _x):
        if hook is not None:
            hook()
        return distillation_loss(logits, cached[index], DEFAULTS.temperature)
    return loss


def fresh_epoch(ctx: Context, teacher) -> float:
    d = ctx.data
    reports = fit(ctx.model("cnn"), d.unlabeled_x, fresh_loss(teacher), d.test_x, d.test_y,
                  StageSettings(1, DEFAULTS.blind_lr, ctx.batch_size), stage="blind", seed=1)
    return reports[-1].seconds


def step_time(ctx: Context, loss_for_hook, augment: bool, steps: int) -> float:
    d = ctx.data
    settings = StageSettings(1, DEFAULTS.blind_lr, ctx.batch_size, augment=augment)
    return fit_seconds_per_step(ctx, lambda hook: fit(ctx.model("cnn"), d.unlabeled_x, loss_for_hook(hook),
                                                      d.test_x, d.test_y, settings, stage="blind", seed=1),
                                steps)


def run(ctx: Context) -> list[Figure]:
    teacher = frozen_teacher(ctx)
    n = len(ctx.data.unlabeled_x)
    cached_logits, cache_s = timed(ctx.device, predict_logits, teacher, ctx.data.unlabeled_x)
    if "blind_epoch_cnn" in ctx.shared:  # measured just before by loop_efficiency
        cached = ctx.shared["blind_epoch_cnn"]["epoch_s"]
    else:
        blind_epoch(ctx, "cnn", teacher, limit=min(n, 16 * ctx.batch_size), test_limit=512)  # warm-up
        cached = blind_epoch(ctx, "cnn", teacher)
    ctx.say(f"  cached epoch {cached:.2f} s; timing an epoch with fresh teacher logits ...")
    fresh = fresh_epoch(ctx, teacher)
    steps = 4 if ctx.quick else (100 if ctx.cuda else 20)
    steps = min(steps, -(-n // ctx.batch_size) - 4)  # fit_seconds_per_step warms up 3 steps
    cached_step = step_time(ctx, lambda hook: cached_loss(cached_logits, hook), False, steps)
    augmented_step = step_time(ctx, lambda hook: fresh_loss(teacher, hook), True, steps)
    saving = fresh - cached
    payoff = "pays off within the first epoch" if saving > cache_s else "does not pay off in one epoch"
    return [
        Figure("teacher-logit caching: blind epoch speed-up (fresh / cached)", fresh / cached, "x", "", None,
               f"cached {cached:.2f} s, fresh teacher forward per batch {fresh:.2f} s, for {n} images; "
               f"the one caching pass takes {cache_s:.2f} s "
               f"({payoff})"),
        Figure("augmented step (affine + fresh logits) / cached step", augmented_step / cached_step,
               "x", "", None,
               f"{augmented_step * 1e3:.2f} ms against {cached_step * 1e3:.2f} ms per step of batch "
               f"{ctx.batch_size}, {steps} steps each: what the fine-tune stage pays per step (the teacher "
               "stage pays the affine part)"),
    ]


if __name__ == "__main__":
    standalone(run, __doc__.splitlines()[0])
