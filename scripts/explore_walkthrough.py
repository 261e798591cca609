"""The explorer acceptance on a finished run, as a user would see it, in Debian's Chromium.

    BD_DATA_DIR=../shared/datasets python scripts/explore_walkthrough.py --runs RUNS_ROOT \
        [--out docs/screenshots]

Starts `streamlit run app.py` on a free port with RUNS_ROOT as the runs root, opens the
Embeddings page (default settings: the teacher's features, 1,000 + 1,000 samples, t-SNE) and the
Unlabeled explorer on the newest run there, saves a screenshot of each, and prints, as a Markdown
table, the labeled class each unlabeled class is mapped to (mean soft label, T=1), computed by the
same bdcore functions the page calls."""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.acceptance_walkthrough import free_port, start_server


def affinity_markdown(runs: Path) -> str:
    import numpy as np

    from bdcore.embeddings import ExploreSession, explorable_runs, set_outputs, softmax
    from bdcore.embeddings.analysis import affinity, affinity_table
    from bdcore.runs import RunsRoot

    choice = explorable_runs(None, RunsRoot(runs))[0]
    session = ExploreSession(choice.path, choice.run_id)
    probs = softmax(set_outputs(session, "teacher", "unlabeled")["logits"])
    labels = session.data.unlabeled_labels.numpy()
    groups = session.data.unlabeled_classes
    table = affinity_table(affinity(probs, labels, len(groups)), np.bincount(labels, minlength=len(groups)),
                           groups, session.data.classes)
    lines = [f"run {choice.run_id}, teacher {session.config.teacher}, {len(probs):,} unlabeled images", "",
             "| unlabeled class | samples | maps to | mean probability | runner-up | runner-up probability |",
             "| --- | ---: | :---: | ---: | :---: | ---: |"]
    for row in table.itertuples(index=False):
        lines.append(f"| {row[0]} | {row[1]:,} | {row[2]} | {row[3]:.3f} | {row[4]} | {row[5]:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True, help="runs root holding the finished run")
    parser.add_argument("--out", type=Path, default=ROOT / "test-artifacts")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import expect, sync_playwright

    os.environ["BD_RUNS_DIR"] = str(args.runs)
    env = {**os.environ}
    port = free_port()
    url = f"http://localhost:{port}"
    server = start_server(port, env)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=[
                "--no-sandbox", "--disable-background-networking", "--disable-sync"])
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            start = time.time()
            page.goto(f"{url}/Embeddings")
            done = page.get_by_text("cached for next time").or_(page.get_by_text("loaded from the cache"))
            expect(done.first).to_be_visible(timeout=600_000)
            print(f"Embeddings page drawn {time.time() - start:.1f} s after opening it")
            page.set_viewport_size({"width": 1400, "height": 1750})  # the app scrolls inside its own pane
            page.wait_for_timeout(3000)
            page.screenshot(path=str(args.out / "embeddings.png"), full_page=True)
            start = time.time()
            page.goto(f"{url}/Unlabeled")
            expect(page.get_by_text("Nearest labeled neighbours")).to_be_visible(timeout=600_000)
            expect(page.locator(".js-plotly-plot")).to_have_count(2, timeout=120_000)
            print(f"Unlabeled explorer drawn {time.time() - start:.1f} s after opening it")
            page.set_viewport_size({"width": 1400, "height": 4400})
            page.wait_for_timeout(3000)
            page.screenshot(path=str(args.out / "unlabeled.png"), full_page=True)
            browser.close()
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    print(affinity_markdown(args.runs))


if __name__ == "__main__":
    main()
