"""The benchmark suites, each one table (figure, measured, target, met?):

- ``classroom`` (`make bench`, under 5 minutes on a 2-core CPU): the quick preset unwatched and
  watched in Chromium, 20 simultaneous launches, the worker's thread policy (bench/classroom.py);
- ``speed`` (`make bench-speed`): the per-step figures of the loop, the teacher cache, the usual
  DataLoader loop, precision, scaling and memory. Table 1 is `make reproduce`;
- ``users`` (`make bench-users`): 20 sessions at once against one app server while a run trains,
  in Streamlit's protocol and in Chromium, and the server's RSS over 500 sessions (bench/many_users.py).

    python bench/run_all.py --suite classroom|speed|users [--out 'docs/bench-{device}.json'] [--quick]
                            [--device cpu|cuda]

Each figure is a ratio of two things measured side by side in this run (absolute times are only
meaningful on a quiet machine or a GPU). ``--out`` writes the figures, the environment, each
benchmark's time and load average, and the scaling curves as JSON, and the table as markdown next
to it (same name, ``.md``). ``--quick`` runs tiny sizes as a smoke test."""
from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

import classroom
import loop_efficiency
import many_users
import precision
import scaling
import teacher_cache
import torch
import versus_usual
from common import (
    Context,
    Figure,
    base_parser,
    environment,
    figures_json,
    format_markdown,
    format_table,
    loadavg,
    make_context,
    peak_rss_mb,
)

from bdcore.device import device_name, resolve_device


def memory_figures(ctx: Context) -> list[Figure]:
    n = len(ctx.data.unlabeled_x)
    figures = [Figure("peak memory: RSS of this benchmark process", peak_rss_mb(), "MB", "", None,
                      f"all benchmarks above; data resident: {len(ctx.data.train_x)} + {n} + "
                      f"{len(ctx.data.test_x)} images, plus the {2 * n}-image scaling set")]
    if ctx.cuda:
        figures.append(Figure("peak memory: GPU, this benchmark process",
                              torch.cuda.max_memory_allocated() / 2**20, "MB", "", None,
                              "torch.cuda.max_memory_allocated over all benchmarks above"))
    return figures


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--out", help="write JSON here and the table as markdown beside it; {device} in the "
                                      "name becomes cpu or gpu")
    parser.add_argument("--suite", choices=["classroom", "speed", "users"], default="classroom",
                        help="which figures (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=None,
                        help="DataLoader workers for the usual way (default: 0 on CPU, 4 on GPU)")
    parser.add_argument("--only", help="comma-separated benchmark names to run, e.g. 'scaling,precision'")
    args = parser.parse_args()
    say = lambda msg: print(msg, flush=True)  # noqa: E731
    env = environment()
    # the classroom and users suites train in worker processes on the demo subset: no data in this process
    ctx = make_context(args, say) if args.suite == "speed" else None
    device = ctx.device if ctx else resolve_device(args.device)
    env["device"] = device_name(device)
    say(f"device {env['device']}, torch {env['torch']}, loadavg {env['loadavg_start']}")
    benchmarks = {
        "classroom": [("classroom", lambda c: classroom.run(c, browser=not args.quick))],
        "users": [("many_users", lambda c: many_users.run(c, **many_users.QUICK) if args.quick
                   else many_users.run(c))],
        "speed": [("loop_efficiency", loop_efficiency.run), ("teacher_cache", teacher_cache.run),
                  ("versus_usual", lambda c: versus_usual.run(c, args.workers)),
                  ("precision", precision.run), ("scaling", scaling.run), ("memory", memory_figures)],
    }[args.suite]
    if args.only:
        wanted = args.only.split(",")
        benchmarks = [b for b in benchmarks if b[0] in wanted]
    figures, timings, failed = [], [], []
    start = time.perf_counter()
    for name, run in benchmarks:
        say(f"[{name}] loadavg {loadavg()}")
        t0 = time.perf_counter()
        try:
            new = run(ctx)
            figures += new
            say(format_table(new))
        except Exception:
            traceback.print_exc()
            failed.append(name)
            figures.append(Figure(f"{name}: FAILED", float("nan"), "", "", False, "see the traceback"))
        timings.append({"benchmark": name, "seconds": time.perf_counter() - t0, "loadavg_after": loadavg()})
        say(f"[{name}] {timings[-1]['seconds']:.1f} s")
    env["loadavg_end"] = loadavg()
    env["total_s"] = time.perf_counter() - start
    say("")
    say(format_table(figures))
    say(f"\n{env['device']}, {env['date']}, total {env['total_s']:.0f} s, "
        f"loadavg {env['loadavg_start']} -> {env['loadavg_end']}")
    if args.out:
        args.out = Path(args.out.replace("{device}", "gpu" if device.type == "cuda" else "cpu"))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        report = {"command": " ".join(["python"] + sys.argv), "environment": env,
                  "figures": figures_json(figures),
                  "benchmarks": timings, "scaling": ctx.shared.get("scaling") if ctx else None,
                  "quick": args.quick}
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        args.out.with_suffix(".md").write_text(
            f"Measured {env['date']} on {env['device']} (torch {env['torch']}), load average "
            f"{env['loadavg_start']} -> {env['loadavg_end']}, total {env['total_s']:.0f} s.\n\n"
            + format_markdown(figures) + "\n")
        say(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
