"""Precision and layout: bare CNN training steps in bf16 autocast + channels-last against fp32
contiguous (and the two mixed cases), the accuracy of one epoch in each precision with bdcore's
loop (same seed, same data), and on a CPU whether torch's default thread count beats one thread.

    python bench/precision.py [--device cpu|cuda] [--quick]"""
from __future__ import annotations

import torch
from common import DEFAULTS, BareSteps, Context, Figure, standalone

from bdcore.device import autocast_dtype
from bdcore.stage_settings import StageSettings
from bdcore.stages import train_teacher

ACC_TOLERANCE_PT = 0.3
ACC_IMAGES = 20_000  # the accuracy check trains on this many MNIST images


def steps(ctx: Context) -> int:
    return 4 if ctx.quick else (200 if ctx.cuda else 30)


def step_ms(ctx: Context, name: str, amp: bool, channels_last: bool) -> float:
    return BareSteps(ctx, name, ctx.batch_size, steps(ctx), amp=amp, channels_last=channels_last
                     ).seconds_per_step() * 1e3


def one_epoch_acc(ctx: Context, amp: bool) -> tuple[float, float]:
    d, n = ctx.data, min(len(ctx.data.train_x), ACC_IMAGES)
    torch.manual_seed(0)
    r = train_teacher(ctx.model("cnn"), d.train_x[:n], d.train_y[:n], d.test_x, d.test_y,
                      StageSettings(1, DEFAULTS.teacher_lr, ctx.batch_size), seed=0, amp=amp)[-1]
    return r.test_acc, r.seconds


def run(ctx: Context) -> list[Figure]:
    bf16 = autocast_dtype(ctx.device) is not None
    figures = []
    ms = {(amp, cl): step_ms(ctx, "cnn", amp, cl) for amp in (False, True) for cl in (False, True)}
    speedup = ms[(False, False)] / ms[(True, True)]
    figures.append(Figure(
        "bf16 + channels-last vs fp32 contiguous: CNN step speed-up", speedup, "x", "", None,
        f"ms per step at batch {ctx.batch_size}: fp32 contiguous {ms[(False, False)]:.2f}, "
        f"fp32 channels-last "
        f"{ms[(False, True)]:.2f}, bf16 contiguous {ms[(True, False)]:.2f}, bf16 channels-last "
        f"{ms[(True, True)]:.2f}" + ("" if bf16 else " (no native bf16 here: autocast stays off)")))
    mlp = step_ms(ctx, "mlp", False, False) / step_ms(ctx, "mlp", True, False)
    figures.append(Figure("bf16 vs fp32: MLP step speed-up", mlp, "x", "", None,
                          "bare steps; an MLP has no layout to change"))
    acc_amp, s_amp = one_epoch_acc(ctx, True)
    acc_fp32, s_fp32 = one_epoch_acc(ctx, False)
    diff = (acc_amp - acc_fp32) * 100
    n = min(len(ctx.data.train_x), ACC_IMAGES)
    figures.append(Figure(
        "bf16 autocast vs fp32: CNN accuracy after 1 epoch", diff, "pt", f">= -{ACC_TOLERANCE_PT} pt",
        diff >= -ACC_TOLERANCE_PT,
        f"bdcore's loop on {n} MNIST images, same seed: bf16 {acc_amp:.2%} in {s_amp:.1f} s, "
        f"fp32 {acc_fp32:.2%} in {s_fp32:.1f} s"))
    if ctx.device.type == "cpu":
        import os

        default = torch.get_num_threads()
        other = 1 if default > 1 else (os.cpu_count() or 1)
        many = step_ms(ctx, "cnn", bf16, True)
        torch.set_num_threads(other)
        try:
            few = step_ms(ctx, "cnn", bf16, True)
        finally:
            torch.set_num_threads(default)
        figures.append(Figure(
            f"CPU threads: {default} (this process) vs {other}, CNN step speed-up", few / many, "x", "", None,
            f"{many:.2f} ms with {default} threads, {few:.2f} ms with {other}; above 1, the process's "
            "thread count is the faster one on this machine at this load"))
    return figures


if __name__ == "__main__":
    standalone(run, __doc__.splitlines()[0])
