"""Profile bdcore's training loop with torch.profiler: a few hundred blind-distillation steps (CNN
student, cached teacher logits, the default batch size) and the top operators by self time, plus
the share of each kind of work.

    python bench/profile_train.py [--steps 300] [--device cpu|cuda] [--out docs/profile-cpu.txt]"""
from __future__ import annotations

import argparse
import datetime as dt
import time
from collections import defaultdict
from pathlib import Path

import torch
from common import DEFAULTS, StopTiming, loadavg, make_context, sync
from teacher_cache import cached_loss
from torch.profiler import ProfilerActivity, profile

from bdcore.device import device_name
from bdcore.stage_settings import StageSettings
from bdcore.train import fit

# operator name fragments -> the kind of work, first match wins
KINDS = [("convolution", ("conv", "mkldnn_convolution")),
         ("linear (matmul)", ("addmm", "mm", "linear", "matmul")),
         ("batch norm", ("batch_norm",)), ("pooling", ("pool",)), ("relu", ("relu", "threshold")),
         ("optimizer (AdamW)", ("adam", "_foreach", "lerp", "addcdiv", "sqrt")),
         ("loss (softmax, KL)", ("softmax", "kl_div", "xlogy", "exp", "log")),
         ("batch gather (index)", ("index",)),
         ("dtype / layout copies", ("copy_", "to", "contiguous", "clone")),
         ("zero_grad / fill", ("zero", "fill", "empty"))]


def kind(name: str) -> str:
    low = name.lower()
    return next((k for k, frags in KINDS if any(f in low for f in frags)), "other")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    ctx = make_context(args)
    d, bs = ctx.data, ctx.batch_size
    logits = torch.randn(len(d.unlabeled_x), d.num_classes, device=ctx.device)
    settings = StageSettings(1, DEFAULTS.blind_lr, bs)
    count = [0]

    def hook() -> None:
        count[0] += 1
        if count[0] > args.steps:
            raise StopTiming

    def run() -> None:
        try:
            fit(ctx.model("cnn"), d.unlabeled_x, cached_loss(logits, hook), d.test_x, d.test_y, settings,
                stage="blind", seed=1)
        except StopTiming:
            pass

    count[0] = args.steps - 5  # warm-up: 5 steps
    run()
    count[0] = 0
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if ctx.cuda else [])
    load = loadavg()
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        run()
        sync(ctx.device)
        wall = time.perf_counter() - start
    events = prof.key_averages()
    sort = "self_cuda_time_total" if ctx.cuda else "self_cpu_time_total"
    totals: dict[str, float] = defaultdict(float)
    for e in events:
        totals[kind(e.key)] += (e.self_device_time_total if ctx.cuda else e.self_cpu_time_total)
    all_us = sum(totals.values())
    lines = [f"torch.profiler: {args.steps} blind-distillation steps of bdcore.train.fit, "
             f"CNN student, batch {bs}, "
             f"cached teacher logits, bf16 autocast where native, channels-last",
             f"device {device_name(ctx.device)}, torch {torch.__version__}, "
             f"{dt.datetime.now():%Y-%m-%d %H:%M}, "
             f"loadavg {load} -> {loadavg()}",
             f"wall {wall:.2f} s under the profiler, {wall / args.steps * 1e3:.2f} ms per step",
             f"profiled op self time {all_us / 1e6:.2f} s "
             f"({'GPU' if ctx.cuda else 'CPU, summed over threads'})",
             "", "Share of self time by kind of work:"]
    for k, us in sorted(totals.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {k:<24} {us / 1e6:7.2f} s  {us / all_us:6.1%}")
    lines += ["", f"Top operators by {sort}:",
              events.table(sort_by=sort, row_limit=25, max_name_column_width=48)]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
