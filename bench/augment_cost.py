"""On-device augmentation for larger inputs: ms per training step of bdcore's loop (``fit``, a
supervised step: forward, cross-entropy, backward, AdamW) for MobileNetV2 and the paper's cnn and
cnn6 on colour images, with random-resized crops and flips (``augment_kind="crop_flip"``) against
no augmentation, and the augmentation call alone over the same batches: what it adds to a step.

    python bench/augment_cost.py [--device cpu|cuda] [--quick] [--size 96] [--batch 64] [--amp]

Random images stand in for photos (a step's time does not depend on what the pixels show), so no
dataset is needed. fp32 unless ``--amp``. Each setting is timed ``REPEATS`` times, alternating, and
the fastest kept: on a shared machine the other load only ever adds time."""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from common import DEFAULTS, Context, Figure, base_parser, fit_seconds_per_step, format_table, loadavg, timed

from bdcore.augment import batch_augment
from bdcore.data import PairedData
from bdcore.device import device_name, resolve_device
from bdcore.stage_settings import StageSettings
from bdcore.train import fit, generator_device

MODELS = ("mobilenet_v2", "cnn", "cnn6")
CLASSES = 10
REPEATS = 3
WARMUP = 3  # fit_seconds_per_step's


def timed_steps(quick: bool, cuda: bool) -> int:
    return 2 if quick else (50 if cuda else 10)


def synthetic_context(device: torch.device, quick: bool, size: int, batch: int) -> Context:
    """Enough random 3 x size x size images for the timed steps, on ``device``."""
    g = torch.Generator().manual_seed(0)
    n = (WARMUP + timed_steps(quick, device.type == "cuda") + 1) * batch
    x = torch.randn(n, 3, size, size, generator=g)
    y = torch.randint(CLASSES, (n,), generator=g)
    classes = [str(c) for c in range(CLASSES)]
    data = PairedData(x, y, x[:4], y[:4], x, None, classes, [], [0.0] * 3, [1.0] * 3, [])
    return Context(device, quick, data.to(device), batch)


def step_ms(ctx: Context, name: str, augment: bool, amp: bool) -> float:
    """ms per step of ``fit`` training a fresh ``name`` on the images, crop_flip on or off."""
    d = ctx.data
    settings = StageSettings(1, DEFAULTS.teacher_lr, ctx.batch_size, augment=augment,
                             augment_kind="crop_flip")

    def run_fit(hook) -> None:
        def loss(logits, index, _x):
            hook()
            return torch.nn.functional.cross_entropy(logits.float(), d.train_y[index])

        torch.manual_seed(0)
        fit(ctx.model(name), d.train_x, loss, d.test_x, d.test_y, settings, stage="teacher", seed=0, amp=amp)

    return fit_seconds_per_step(ctx, run_fit, timed_steps(ctx.quick, ctx.cuda), WARMUP) * 1e3


def call_ms(ctx: Context, fn: Callable[[], object], calls: int) -> float:
    """ms per call of ``fn``: the fastest of REPEATS rounds of ``calls`` calls."""
    for _ in range(3):
        fn()
    rounds = [timed(ctx.device, lambda: [fn() for _ in range(calls)])[1] for _ in range(REPEATS)]
    return min(rounds) / calls * 1e3


def augment_ms(ctx: Context, kind: str, calls: int) -> float:
    """ms per call of augmentation ``kind`` on one batch, the generator where ``fit`` keeps it."""
    x = ctx.data.train_x[:ctx.batch_size]
    g = torch.Generator(generator_device(ctx.device)).manual_seed(0)
    augment = batch_augment(kind)
    return call_ms(ctx, lambda: augment(x, g), calls)


def affine_grid_ms(ctx: Context, calls: int) -> float:
    """ms per ``affine_grid`` call for one batch: what random_resized_crop_flip replaces by outer sums."""
    x = ctx.data.train_x[:ctx.batch_size]
    theta = torch.tensor([[0.8, 0.0, 0.1], [0.0, 0.7, -0.1]], device=ctx.device).expand(len(x), 2, 3)
    return call_ms(ctx, lambda: F.affine_grid(theta, list(x.shape), align_corners=False), calls)


def run(ctx: Context, amp: bool = False) -> list[Figure]:
    size, bs = ctx.data.input_shape[1], ctx.batch_size
    calls = 5 if ctx.quick else 50
    crop, affine = augment_ms(ctx, "crop_flip", calls), augment_ms(ctx, "affine", calls)
    grid = affine_grid_ms(ctx, calls)
    ctx.say(f"  crop_flip alone {crop:.2f} ms, affine alone {affine:.2f} ms, affine_grid alone {grid:.2f} ms "
            f"per batch of {bs}")
    precision = "bf16 autocast" if amp else "fp32"
    figures = [Figure(f"crop_flip alone, ms per batch of {bs} at {size} px", crop, "ms", "", None,
                      f"fastest of {REPEATS} x {calls} calls; on the same batch random_affine takes "
                      f"{affine:.2f} ms, of which affine_grid {grid:.2f} ms")]
    n_steps = timed_steps(ctx.quick, ctx.cuda)
    for name in MODELS:
        ms = {False: [], True: []}
        for _ in range(REPEATS):
            for augment in (False, True):
                ms[augment].append(step_ms(ctx, name, augment, amp))
        plain, cropped = min(ms[False]), min(ms[True])
        spread = "; ".join(f"{label} {', '.join(f'{t:.0f}' for t in ms[augment])}"
                           for label, augment in (("plain", False), ("crop_flip", True)))
        ctx.say(f"  {name}: ms per step {spread}")
        figures.append(Figure(
            f"{name} step with crop_flip / plain, {size} px", cropped / plain, "x", "", None,
            f"{cropped:.1f} against {plain:.1f} ms per step of batch {bs} ({precision}, fastest of "
            f"{REPEATS} x {n_steps} steps; each: {spread}); crop_flip alone is {crop / plain:.1%} of "
            "the plain step"))
    return figures


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=96, help="image side in pixels (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=64, help="batch size (default: %(default)s)")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast where native (default: fp32)")
    args = parser.parse_args()
    size, batch = (32, 4) if args.quick else (args.size, args.batch)
    device = resolve_device(args.device)
    ctx = synthetic_context(device, args.quick, size, batch)
    print(f"{device_name(device)}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{len(ctx.data.train_x)} random {size} px images, batch {batch}; loadavg before: {loadavg()}")
    figures = run(ctx, args.amp)
    print(f"loadavg after: {loadavg()}\n")
    print(format_table(figures))
    for f in figures:
        if f.detail:
            print(f"  {f.name}: {f.detail}")


if __name__ == "__main__":
    main()
