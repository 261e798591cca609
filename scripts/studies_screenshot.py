"""A study's page as a user sees it, in Debian's Chromium, saved as a PNG (docs/screenshots).

    python scripts/studies_screenshot.py --runs RUNS_ROOT --study NAME [--figure "blind acc"] \
        [--out docs/screenshots/study-NAME.png]

Starts `streamlit run app.py` on a free port with RUNS_ROOT as the runs root, opens the Studies
page, picks the study and the figure, waits for its charts and saves the page."""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.acceptance_walkthrough import free_port, start_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True, help="runs root holding the study")
    parser.add_argument("--study", required=True)
    parser.add_argument("--figure", default="blind acc", help="the figure to draw, as the page names it")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--height", type=int, default=1800, help="page height in pixels")
    args = parser.parse_args()
    out = args.out or ROOT / "docs" / "screenshots" / f"study-{args.study}.png"
    from playwright.sync_api import expect, sync_playwright

    port = free_port()
    server = start_server(port, {**os.environ, "BD_RUNS_DIR": str(args.runs)})
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                        args=["--no-sandbox", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1400, "height": args.height})
            page.goto(f"http://localhost:{port}/Studies")
            picker = page.get_by_label("study", exact=True)
            expect(picker).to_be_visible(timeout=60_000)
            picker.click()
            page.get_by_role("option", name=args.study, exact=True).click()
            page.get_by_text(args.figure, exact=True).first.click()
            expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=60_000)
            page.wait_for_timeout(3000)  # the charts' transitions
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=True)
            browser.close()
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    print(f"saved {out}")


if __name__ == "__main__":
    main()
