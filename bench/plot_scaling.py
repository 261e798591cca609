"""Draw the scaling curves of a ``bench/run_all.py --out`` JSON file as one SVG (two panels):
epoch time against unlabeled-set size, and images/s against batch size. Plain SVG, no plotting
library, so it runs wherever the benchmarks do.

    python bench/plot_scaling.py docs/bench-cpu.json [--out docs/scaling.svg] [--also docs/bench-gpu.json]"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

W, H, PAD_L, PAD_R, PAD_T, PAD_B = 420, 300, 62, 16, 36, 46
COLOURS = ["#1f77b4", "#d62728", "#2ca02c"]


def nice_max(value: float) -> float:
    exp = 10 ** math.floor(math.log10(value)) if value > 0 else 1
    for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if m * exp >= value:
            return m * exp
    return 10 * exp


def panel(x0: float, title: str, xlabel: str, ylabel: str, series: list[tuple[str, list, list]],
          log2_x: bool = False, reference: list | None = None) -> list[str]:
    """One chart at horizontal offset ``x0``: series are (label, xs, ys)."""
    xs_all = [x for _, xs, _ in series for x in xs]
    ys_all = [y for _, _, ys in series for y in ys] + [y for _, y in (reference or [])]
    fx = (lambda v: math.log2(v)) if log2_x else (lambda v: v)
    x_lo, x_hi = (fx(min(xs_all)), fx(max(xs_all))) if log2_x else (0, nice_max(max(xs_all)))
    y_hi = nice_max(max(ys_all) * 1.05)
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    sx = lambda v: x0 + PAD_L + (fx(v) - x_lo) / ((x_hi - x_lo) or 1) * pw  # noqa: E731
    sy = lambda v: PAD_T + ph - v / y_hi * ph  # noqa: E731
    out = [f'<text x="{x0 + W / 2}" y="20" text-anchor="middle" font-weight="bold">{title}</text>',
           f'<rect x="{x0 + PAD_L}" y="{PAD_T}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>']
    for i in range(6):
        v = y_hi * i / 5
        out.append(f'<line x1="{x0 + PAD_L}" x2="{x0 + PAD_L + pw}" y1="{sy(v):.1f}" y2="{sy(v):.1f}" '
                   f'stroke="#eee"/>')
        out.append(f'<text x="{x0 + PAD_L - 6}" y="{sy(v) + 4:.1f}" text-anchor="end">{v:,.4g}</text>')
    ticks = sorted(set(xs_all)) if log2_x else [x_hi * i / 4 for i in range(5)]
    for v in ticks:
        label = f"{v:,.0f}" if log2_x else f"{v / 1000:,.3g}k"
        out.append(f'<text x="{sx(v):.1f}" y="{PAD_T + ph + 16}" text-anchor="middle">{label}</text>')
    out.append(f'<text x="{x0 + PAD_L + pw / 2}" y="{H - 8}" text-anchor="middle">{xlabel}</text>')
    out.append(f'<text x="{x0 + 14}" y="{PAD_T + ph / 2}" text-anchor="middle" '
               f'transform="rotate(-90 {x0 + 14} {PAD_T + ph / 2})">{ylabel}</text>')
    if reference:
        pts = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in reference)
        out.append(f'<polyline points="{pts}" fill="none" stroke="#999" stroke-dasharray="4 3"/>')
    for k, (label, xs, ys) in enumerate(series):
        c = COLOURS[k % len(COLOURS)]
        pts = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, ys, strict=True))
        out.append(f'<polyline points="{pts}" fill="none" stroke="{c}" stroke-width="2"/>')
        out += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3.5" fill="{c}"/>'
                for x, y in zip(xs, ys, strict=True)]
        out.append(f'<text x="{x0 + PAD_L + 8}" y="{PAD_T + 16 + 15 * k}" fill="{c}">{label}</text>')
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", type=Path, nargs="+", help="run_all.py --out files (one series each)")
    parser.add_argument("--out", type=Path, default=Path("docs/scaling.svg"))
    args = parser.parse_args()
    size_series, batch_series, reference = [], [], None
    for path in args.json:
        report = json.loads(path.read_text())
        s, env = report["scaling"], report["environment"]
        label = env["device"]
        if not s:
            print(f"{path}: no scaling figures in it (run without the scaling benchmark); left out")
            continue
        sizes = [p["images"] for p in s["by_size"]]
        secs = [p["epoch_s"] for p in s["by_size"]]
        size_series.append((label, sizes, secs))
        batch_series.append((label, [p["batch_size"] for p in s["by_batch"]],
                             [p["images_per_s"] for p in s["by_batch"]]))
        n = s.get("images", sizes[2])
        if reference is None:  # linear in the set size, through the smallest point
            reference = [(0, 0), (sizes[-1], secs[0] / sizes[0] * sizes[-1])]
    if not size_series:
        raise SystemExit("none of the files has scaling figures: nothing to plot")
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * W}" height="{H}" '
           f'font-family="sans-serif" font-size="11">', f'<rect width="{2 * W}" height="{H}" fill="white"/>']
    svg += panel(0, "Blind epoch time vs unlabeled-set size", "unlabeled images (by repetition above 60k)",
                 "seconds per epoch (dashed: linear)", size_series, reference=reference)
    svg += panel(W, f"Throughput vs batch size ({n:,} images)", "batch size (log scale)", "images per second",
                 batch_series, log2_x=True)
    svg.append("</svg>")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(svg) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
