"""Loop efficiency: images/s of one full blind-distillation epoch of bdcore's loop (cached teacher
logits, the per-epoch test evaluation included, as ``fit`` reports it) divided by images/s of bare
forward + backward + step of the same model, batch size and precision over pre-made tensors.

    python bench/loop_efficiency.py [--device cpu|cuda] [--quick]

Timing does not depend on the weights, so the teacher is an untrained CNN."""
from __future__ import annotations

from common import DEFAULTS, BareSteps, Context, Figure, standalone, timed

from bdcore.stage_settings import StageSettings
from bdcore.stages import blind_distill
from bdcore.train import accuracy

TARGET = 0.90


def bare_steps(ctx: Context) -> int:
    return 4 if ctx.quick else (200 if ctx.cuda else 40)


def frozen_teacher(ctx: Context, name: str = "cnn"):
    return ctx.model(name).eval().requires_grad_(False)


def blind_epoch(ctx: Context, student_name: str, teacher, limit: int | None = None,
                test_limit: int | None = None) -> float:
    """Seconds of one blind epoch as ``fit`` measures it (the teacher's cached pass excluded)."""
    d = ctx.data
    x = d.unlabeled_x if limit is None else d.unlabeled_x[:limit]
    tx, ty = (d.test_x, d.test_y) if test_limit is None else (d.test_x[:test_limit], d.test_y[:test_limit])
    student = ctx.model(student_name)
    reports = blind_distill(student, teacher, x, tx, ty, StageSettings(1, DEFAULTS.blind_lr, ctx.batch_size),
                            temperature=DEFAULTS.temperature, seed=1)
    ctx.shared.setdefault("_last_student", {})[student_name] = student
    return reports[-1].seconds


def efficiency(ctx: Context, student_name: str) -> tuple[float, dict]:
    teacher = frozen_teacher(ctx)
    bs, n = ctx.batch_size, len(ctx.data.unlabeled_x)
    blind_epoch(ctx, student_name, teacher, limit=min(n, 16 * bs), test_limit=512)  # warm-up
    bare = BareSteps(ctx, student_name, bs, bare_steps(ctx))
    before = bare.seconds_per_step()
    ctx.say(f"  {student_name}: bare step {before * 1e3:.2f} ms; timing one blind epoch over {n} images ...")
    epoch = blind_epoch(ctx, student_name, teacher)
    after = bare.seconds_per_step()
    student = ctx.shared["_last_student"][student_name]
    _, eval_s = timed(ctx.device, accuracy, student, ctx.data.test_x, ctx.data.test_y)
    step = (before + after) / 2
    ours, ref = n / epoch, bs / step
    info = {"epoch_s": epoch, "images": n, "eval_s": eval_s, "bare_step_s": step,
            "bare_step_before_s": before, "bare_step_after_s": after,
            "ours_img_s": ours, "bare_img_s": ref}
    return ours / ref, info


def run(ctx: Context) -> list[Figure]:
    figures = []
    for name, target in (("cnn", TARGET), ("mlp", None)):
        ratio, info = efficiency(ctx, name)
        ctx.shared[f"blind_epoch_{name}"] = info
        train_only = info["images"] / (info["epoch_s"] - info["eval_s"]) / info["bare_img_s"]
        detail = (f"our epoch {info['epoch_s']:.2f} s for {info['images']} images "
                  f"({info['ours_img_s']:,.0f} img/s, of which test evaluation {info['eval_s']:.2f} s); "
                  f"bare step {info['bare_step_s'] * 1e3:.2f} ms at batch {ctx.batch_size} "
                  f"({info['bare_img_s']:,.0f} img/s; before/after {info['bare_step_before_s'] * 1e3:.2f}/"
                  f"{info['bare_step_after_s'] * 1e3:.2f} ms); without the evaluation {train_only:.2f}")
        figures.append(Figure(f"loop efficiency, {name.upper()} student", ratio, "x",
                              f">= {target:.2f}" if target else "",
                              None if target is None else ratio >= target, detail))
    return figures


if __name__ == "__main__":
    standalone(run, __doc__.splitlines()[0])
