"""What a browser does with the explorer at full size: the Embeddings page of a finished run in
Debian's Chromium (headless, software WebGL: SwiftShader), driven by Playwright.

    python bench/explorer_browser.py --run RUN_DIR [--hovers 30]

1. the whole sets' t-SNE (the page's settings with both sample sizes at 0: all) is computed into
   the run's cache first, so the page times drawing, not reducing;
2. `streamlit run app.py` on a free localhost port, the Embeddings page opened (first view);
3. both sample sizes set to 0 and "Compute embedding" clicked: time until the chart holds every
   point and plotly has drawn it ("first paint": the server's frame and figure, the transfer, the
   browser's parse and WebGL draw);
4. hovers over random points: time from the mouse move until the hover image shows the point
   (its sheet loaded); the first hover of a sheet includes fetching it.
Prints seconds and milliseconds; the machine and load beside them."""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from embeddings_speed import load

from bdcore.embeddings import ExploreSession, ReduceParams, SampleSpec, embed

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
POINTS = """() => { const gd = [...document.querySelectorAll('.js-plotly-plot')].pop();
  return gd && gd._fullData ? gd._fullData.reduce((n, t) => n + (t.x ? t.x.length : 0), 0) : 0; }"""
# screen positions of a few random points of the last chart (plotly's own axis conversions)
TARGETS = """(n) => { const gd = [...document.querySelectorAll('.js-plotly-plot')].pop();
  const L = gd._fullLayout, box = gd.getBoundingClientRect(), out = [];
  let seed = 7; const rand = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  while (out.length < n) { const t = gd._fullData[Math.floor(rand() * gd._fullData.length)];
    const i = Math.floor(rand() * t.x.length);
    out.push([box.left + L._size.l + L.xaxis.l2p(t.x[i]), box.top + L._size.t + L.yaxis.l2p(t.y[i])]); }
  return out; }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(port: int, runs: Path) -> subprocess.Popen:
    env = {**os.environ, "BD_RUNS_DIR": str(runs)}
    command = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true"]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.3)
    server.kill()
    sys.exit("streamlit did not start within 60 s")


def measure(url: str, n_points: int, hovers: int) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--enable-unsafe-swiftshader", "--use-angle=swiftshader",
            "--disable-background-networking", "--disable-component-update", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        start = time.perf_counter()
        page.goto(f"{url}/Embeddings")
        page.wait_for_function(f"({POINTS})() > 0", timeout=180_000)
        print(f"first view (default samples) drawn {time.perf_counter() - start:.1f} s after opening "
              "the page", flush=True)
        page.get_by_label("labeled test samples", exact=False).fill("0")
        page.get_by_label("unlabeled samples", exact=False).fill("0")
        before = load()
        start = time.perf_counter()
        page.get_by_role("button", name="Compute embedding").click()
        page.wait_for_function(f"({POINTS})() == {n_points}", timeout=300_000, polling=100)
        print(f"{n_points:,} points: first paint {time.perf_counter() - start:.1f} s after the click "
              f"(embedding cached; load {before} -> {load()})", flush=True)
        page.wait_for_timeout(3000)  # hover handlers attach every 0.4 s; let the page settle
        first, later, sheets = [], [], set()
        for x, y in page.evaluate(TARGETS, hovers):
            seen = page.evaluate("() => (document.getElementById('bd-hover-thumb') "
                                 "|| {dataset: {}}).dataset.point")
            start = time.perf_counter()
            page.mouse.move(x, y)
            try:
                page.wait_for_function(
                    """(seen) => { const b = document.getElementById('bd-hover-thumb'); return b
                       && b.style.display === 'block' && b.dataset.point !== seen && b.dataset.ready; }""",
                    arg=seen, timeout=5000, polling="raf")
            except Exception:  # no point under the cursor (hidden behind the legend, say)
                continue
            elapsed = time.perf_counter() - start
            sheet = page.evaluate("() => document.getElementById('bd-hover-thumb').dataset.url")
            (later if sheet in sheets else first).append(elapsed)
            sheets.add(sheet)
        for name, times in (("first hover of a sheet (incl. its fetch)", first), ("later hovers", later)):
            if times:
                print(f"{name}: median {statistics.median(times) * 1000:.0f} ms, "
                      f"max {max(times) * 1000:.0f} ms over {len(times)}", flush=True)
        page.screenshot(path=str(ROOT / "test-artifacts" / "explorer-70k.png"))
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a finished run folder")
    parser.add_argument("--hovers", type=int, default=30)
    args = parser.parse_args()
    session = ExploreSession(args.run)
    spec = SampleSpec(len(session.data.test_y), len(session.data.unlabeled_x), SampleSpec().seed)
    start = time.perf_counter()
    emb = embed(session, "teacher", spec, ReduceParams())
    print(f"whole sets' t-SNE {'from the cache' if emb.cached else 'computed'} in "
          f"{time.perf_counter() - start:.1f} s", flush=True)
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    port = free_port()
    server = serve(port, args.run.parent)
    try:
        measure(f"http://127.0.0.1:{port}", len(emb.coords), args.hovers)
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
