"""What the benchmark scripts share: the device, synchronised timing, the data, bare training
steps, and the figure table. Imports only torch, numpy (through bdcore) and bdcore."""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch

from bdcore.config import ExperimentConfig
from bdcore.data import PairedData, load_pair
from bdcore.device import device_name, resolve_device
from bdcore.losses import distillation_loss
from bdcore.models import build_model
from bdcore.train import precision_context

DEFAULTS = ExperimentConfig()  # the documented defaults: batch size, learning rates
QUICK_LIMIT = 2048  # images per set in --quick mode
QUICK_TEST = 1000
QUICK_BATCH = 32  # so that tiny sets still have a few steps per epoch


@dataclass
class Figure:
    """One row of the table. ``met`` is None where the issue sets no target."""
    name: str
    measured: float
    unit: str  # "x" (a ratio), "s", "MB", "pt" (accuracy points), "count", "img/s"
    target: str = ""
    met: bool | None = None
    detail: str = ""

    def cell(self) -> str:
        if self.unit == "x":
            return f"{self.measured:.2f}x"
        if self.unit == "count":
            return f"{self.measured:.0f}"
        if self.unit == "pt":
            return f"{self.measured:+.2f} pt"
        if self.unit in ("s", "MB", "img/s"):
            return f"{self.measured:,.1f} {self.unit}"
        return f"{self.measured:.3f}"


@dataclass
class Context:
    """What every benchmark gets: the device, the data on it, and a place for shared results."""
    device: torch.device
    quick: bool
    data: PairedData
    batch_size: int = DEFAULTS.batch_size
    say: Callable[[str], None] = print
    shared: dict = field(default_factory=dict)  # e.g. the measured blind epoch, curves for plots

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def model(self, name: str) -> torch.nn.Module:
        return build_model(name, self.data.input_shape, self.data.num_classes).to(self.device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, fn: Callable, *args, **kwargs):
    """(fn's result, wall seconds), synchronised on a GPU before and after."""
    sync(device)
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    sync(device)
    return out, time.perf_counter() - start


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux reports KiB


def load_data(device: torch.device, quick: bool) -> PairedData:
    """MNIST (labeled) and Fashion-MNIST (unlabeled), normalised, on ``device``; limited in quick mode."""
    limit = QUICK_LIMIT if quick else None
    data = load_pair(ExperimentConfig(labeled_limit=limit, unlabeled_limit=limit).pair_spec())
    if quick:
        data.test_x, data.test_y = data.test_x[:QUICK_TEST], data.test_y[:QUICK_TEST]
    return data.to(device)


def make_context(args: argparse.Namespace, say: Callable[[str], None] = print) -> Context:
    device = resolve_device(args.device)
    start = time.perf_counter()
    data = load_data(device, args.quick)
    say(f"data: {len(data.train_x)} labeled, {len(data.unlabeled_x)} unlabeled, {len(data.test_x)} test "
        f"images on {device_name(device)}, loaded in {time.perf_counter() - start:.1f} s")
    batch_size = QUICK_BATCH if args.quick else DEFAULTS.batch_size
    return Context(device, args.quick, data, batch_size, say=say)


class BareSteps:
    """The reference: forward + backward + optimiser step of a fresh model over batch tensors made
    beforehand (already gathered, channels-last, with their teacher logits), nothing else."""

    def __init__(self, ctx: Context, model_name: str, batch_size: int, steps: int,
                 amp: bool = True, channels_last: bool = True, seed: int = 0):
        self.ctx, self.amp = ctx, amp
        torch.manual_seed(seed)
        self.model = ctx.model(model_name)
        if not channels_last:
            self.model = self.model.to(memory_format=torch.contiguous_format)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=DEFAULTS.blind_lr, weight_decay=0.0,
                                     fused=ctx.cuda)  # as bdcore.train.fit does
        pool = ctx.data.unlabeled_x
        g = torch.Generator().manual_seed(seed)
        self.batches = []
        for _ in range(steps):
            index = torch.randint(len(pool), (batch_size,), generator=g).to(ctx.device)
            x = pool[index]
            if channels_last and x.ndim == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            self.batches.append((x, torch.randn(batch_size, ctx.data.num_classes, device=ctx.device)))

    def step(self, x: torch.Tensor, target: torch.Tensor) -> None:
        with precision_context(self.ctx.device, self.amp):
            loss = distillation_loss(self.model(x), target, DEFAULTS.temperature)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def seconds_per_step(self, warmup: int = 3) -> float:
        for x, t in self.batches[:warmup]:
            self.step(x, t)
        _, seconds = timed(self.ctx.device, lambda: [self.step(x, t) for x, t in self.batches])
        return seconds / len(self.batches)


class StopTiming(Exception):
    pass


def fit_seconds_per_step(ctx: Context, run_fit: Callable[[Callable], None], steps: int,
                         warmup: int = 3) -> float:
    """Seconds per step of bdcore's own loop, timed over ``steps`` steps after ``warmup``.

    ``run_fit(hook)`` must start a ``fit`` whose batch loss calls ``hook()`` once per step; the
    hook stops the epoch (by an exception) once enough steps are timed, so a fixed number of
    steps of the real loop is measured whatever the epoch length."""
    calls, marks = [0], {}

    def hook() -> None:
        calls[0] += 1
        if calls[0] in (warmup + 1, warmup + steps + 1):
            sync(ctx.device)
            marks[calls[0]] = time.perf_counter()
        if calls[0] == warmup + steps + 1:
            raise StopTiming

    try:
        run_fit(hook)
    except StopTiming:
        pass
    if len(marks) < 2:
        raise ValueError(f"the epoch had fewer than {warmup + steps + 1} steps")
    return (marks[warmup + steps + 1] - marks[warmup + 1]) / steps


def environment() -> dict:
    info = {"date": dt.datetime.now().isoformat(timespec="seconds"), "torch": torch.__version__,
            "python": platform.python_version(), "cpu_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(), "loadavg_start": loadavg(), "host": platform.node()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def format_table(figures: list[Figure]) -> str:
    rows = [("figure", "measured", "target", "met?")]
    rows += [(f.name, f.cell(), f.target or "-",
              "-" if f.met is None else ("yes" if f.met else "NO")) for f in figures]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    line = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                               for i, (c, w) in enumerate(zip(r, widths, strict=True)))
    out = [line(rows[0]), "-" * (sum(widths) + 6)] + [line(r) for r in rows[1:]]
    return "\n".join(out)


def format_markdown(figures: list[Figure]) -> str:
    out = ["| figure | measured | target | met? | detail |", "| --- | --- | --- | --- | --- |"]
    for f in figures:
        met = "-" if f.met is None else ("yes" if f.met else "**no**")
        out.append(f"| {f.name} | {f.cell()} | {f.target or '-'} | {met} | {f.detail} |")
    return "\n".join(out)


def figures_json(figures: list[Figure]) -> list[dict]:
    return [asdict(f) for f in figures]


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--device", default="auto", help="auto, cuda or cpu (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test, not a measurement")
    return parser


def standalone(run: Callable[[Context], list[Figure]], description: str) -> None:
    """``python bench/<one>.py``: run one benchmark and print its rows."""
    args = base_parser(description).parse_args()
    ctx = make_context(args)
    print(f"loadavg before: {loadavg()}")
    figures = run(ctx)
    print(f"loadavg after: {loadavg()}\n")
    print(format_table(figures))
    for f in figures:
        if f.detail:
            print(f"  {f.name}: {f.detail}")
