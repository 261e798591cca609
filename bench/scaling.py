"""Scaling: blind-distillation epoch time (CNN student, cached logits) against the unlabeled-set
size (1/6, 1/2, 1 and 2 times Fashion-MNIST's 60k: 10k, 30k, 60k, 120k, the last by repetition)
and against the batch size (64 to 1024, 60k images).

    python bench/scaling.py [--device cpu|cuda] [--quick]

On a GPU each point is a full epoch. On a CPU each point times a fixed number of steps of the
same loop (``fit``, stopped early) and extrapolates: epoch = steps per epoch x seconds per step
+ the test evaluation, measured once. The teacher logits are random: timing does not depend on
their values."""
from __future__ import annotations

import math

import torch
from common import DEFAULTS, Context, Figure, fit_seconds_per_step, standalone, timed
from teacher_cache import cached_loss

from bdcore.stage_settings import StageSettings
from bdcore.train import accuracy, fit

BATCH_SIZES = (64, 128, 256, 512, 1024)


def unlabeled_sets(ctx: Context) -> list[torch.Tensor]:
    x, n = ctx.data.unlabeled_x, len(ctx.data.unlabeled_x)
    return [x[:n // 6], x[:n // 2], x, torch.cat([x, x])]


def epoch_seconds(ctx: Context, inputs: torch.Tensor, batch_size: int, eval_s: float) -> tuple[float, bool]:
    """(epoch seconds, whether measured in full rather than extrapolated)."""
    d = ctx.data
    logits = torch.randn(len(inputs), d.num_classes, device=ctx.device)
    settings = StageSettings(1, DEFAULTS.blind_lr, batch_size)
    steps_per_epoch = math.ceil(len(inputs) / batch_size)
    steps, warmup = (3 if ctx.quick else max(12, 6144 // batch_size)), 3
    if ctx.cuda or steps_per_epoch < warmup + steps + 1:  # a full epoch: cheap here, or too short
        fit(ctx.model("cnn"), inputs[:8 * batch_size], cached_loss(logits), d.test_x[:512], d.test_y[:512],
            settings, stage="blind", seed=1)  # warm-up at this batch size
        report = fit(ctx.model("cnn"), inputs, cached_loss(logits), d.test_x, d.test_y, settings,
                     stage="blind", seed=1)[-1]
        return report.seconds, True
    per_step = fit_seconds_per_step(ctx, lambda hook: fit(ctx.model("cnn"), inputs, cached_loss(logits, hook),
                                                          d.test_x, d.test_y, settings, stage="blind",
                                                          seed=1),
                                    steps, warmup)
    return per_step * steps_per_epoch + eval_s, False


def run(ctx: Context) -> list[Figure]:
    d = ctx.data
    timed(ctx.device, accuracy, ctx.model("cnn"), d.test_x, d.test_y)  # warm-up
    _, eval_s = timed(ctx.device, accuracy, ctx.model("cnn"), d.test_x, d.test_y)
    by_size = []
    for inputs in unlabeled_sets(ctx):
        seconds, full = epoch_seconds(ctx, inputs, ctx.batch_size, eval_s)
        by_size.append({"images": len(inputs), "epoch_s": seconds, "full_epoch": full})
        ctx.say(f"  {len(inputs)} images: epoch {seconds:.2f} s ({'measured' if full else 'extrapolated'})")
    by_batch = []
    for bs in BATCH_SIZES:
        seconds, full = epoch_seconds(ctx, d.unlabeled_x, bs, eval_s)
        by_batch.append({"batch_size": bs, "epoch_s": seconds, "full_epoch": full,
                         "images_per_s": len(d.unlabeled_x) / seconds})
        ctx.say(f"  batch {bs}: epoch {seconds:.2f} s")
    ctx.shared["scaling"] = {"by_size": by_size, "by_batch": by_batch, "eval_s": eval_s,
                             "device": str(ctx.device), "batch_size": ctx.batch_size,
                             "images": len(d.unlabeled_x)}
    per_image = [p["epoch_s"] / p["images"] for p in by_size]
    how = ("full epochs" if all(p["full_epoch"] for p in by_size + by_batch) else
           "fixed steps, extrapolated (short epochs in full)")
    check = ""
    if "blind_epoch_cnn" in ctx.shared:
        check = (f"; the measured full epoch at {by_size[2]['images']} images was "
                 f"{ctx.shared['blind_epoch_cnn']['epoch_s']:.2f} s")
    best = max(by_batch, key=lambda p: p["images_per_s"])
    default = (next(p for p in by_batch if p["batch_size"] == ctx.batch_size)
               if ctx.batch_size in BATCH_SIZES else None)
    return [
        Figure("scaling with unlabeled-set size: s/image at largest / smallest", per_image[-1] / per_image[0],
               "x", "", None,
               "epoch s at " + ", ".join(f"{p['images']:,} images: {p['epoch_s']:.2f}" for p in by_size)
               + f" ({how}, evaluation {eval_s:.2f} s){check}"),
        Figure("scaling with batch size: best img/s / img/s at the default batch",
               best["images_per_s"] / (default or by_batch[0])["images_per_s"], "x", "", None,
               "epoch s at batch " + ", ".join(f"{p['batch_size']}: {p['epoch_s']:.2f}" for p in by_batch)
               + f" ({how}); fastest batch {best['batch_size']}"),
    ]


if __name__ == "__main__":
    standalone(run, __doc__.splitlines()[0])
