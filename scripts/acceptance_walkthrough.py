"""The launch-and-watch acceptance, done as a new user would, in Debian's Chromium.

    python scripts/acceptance_walkthrough.py [--out docs/screenshots]

1. start the app (`streamlit run app.py`, a fresh run store), open Home, click the classic
   MNIST -> Fashion-MNIST button;
2. refresh the browser, then stop and restart the Streamlit server while the run trains;
3. wait on the Runs page until it finishes and its curves and accuracies show;
4. launch the classic run again, SIGKILL its worker mid-epoch, time how long until the Runs page
   shows it failed, press Resume, and wait until it finishes again.
Prints each timing and saves screenshots. Uses whatever data the data dir offers."""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, env: dict) -> subprocess.Popen:
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py",
                               "--server.port", str(port)],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("streamlit did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "test-artifacts")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import expect, sync_playwright

    from bdcore.store import RunStore

    runs = tempfile.mkdtemp(prefix="bd-walkthrough-")
    env = {**os.environ, "BD_RUNS_DIR": runs}
    os.environ["BD_RUNS_DIR"] = runs
    port = free_port()
    url = f"http://localhost:{port}"
    server = start_server(port, env)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(url)
        expect(page.get_by_text("Blind Distillation Explorer").first).to_be_visible(timeout=120_000)
        page.screenshot(path=str(args.out / "home.png"), full_page=True)
        page.get_by_role("button", name="Launch MNIST → Fashion-MNIST").click()
        expect(page.get_by_text("launched in the background")).to_be_visible(timeout=60_000)
        launched = time.time()
        store = RunStore()
        [record] = store.list()
        page.reload()
        expect(page.get_by_text("Blind Distillation Explorer").first).to_be_visible(timeout=60_000)
        server.send_signal(signal.SIGINT)  # stop the server as Ctrl-C would
        server.wait(timeout=30)
        print(f"server stopped {time.time() - launched:.1f} s after launch; "
              f"run is {store.get(record.id).status}")
        server = start_server(port, env)
        page.goto(f"{url}/Runs")
        expect(page.get_by_text("1 succeeded")).to_be_visible(timeout=1_800_000)
        finished = store.get(record.id)
        print(f"classic run {finished.id}: {finished.status} in "
              f"{finished.finished - finished.started:.0f} s; "
              f"final {finished.final['teacher_acc']:.4f} / {finished.final['blind_acc']:.4f} / "
              f"{finished.final['finetune_acc']}")
        page.reload()
        expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=60_000)
        page.wait_for_timeout(2000)
        page.screenshot(path=str(args.out / "runs.png"), full_page=True)

        page.goto(url)
        page.get_by_role("button", name="Launch MNIST → Fashion-MNIST").click()
        expect(page.get_by_text("launched in the background")).to_be_visible(timeout=60_000)
        second = next(r for r in store.list() if r.id != record.id)
        while not store.epochs([second.id]):  # its teacher is reused, so it starts with the blind stage
            time.sleep(0.5)
        time.sleep(3)  # mid-epoch
        os.kill(store.get(second.id).pid, signal.SIGKILL)
        killed = time.time()
        page.goto(f"{url}/Runs")
        expect(page.get_by_text("1 failed")).to_be_visible(timeout=60_000)
        print(f"SIGKILLed worker shown as failed on the Runs page after {time.time() - killed:.1f} s")
        page.screenshot(path=str(args.out / "runs-failed.png"), full_page=True)
        page.get_by_role("combobox", name="run", exact=True).click()
        page.get_by_role("option", name="[failed]").first.click()
        page.get_by_role("button", name="Resume").click()
        expect(page.get_by_text("2 succeeded")).to_be_visible(timeout=1_800_000)
        resumed = store.get(second.id)
        print(f"second run reused the teacher: {store.get(second.id).teacher_reused}")
        print(f"resumed run {resumed.id}: {resumed.status}, attempts {resumed.attempts}, final keys "
              f"{sorted(resumed.final)}; same as the first run's: "
              f"{sorted(resumed.final) == sorted(finished.final)}")
        browser.close()
    server.send_signal(signal.SIGINT)
    server.wait(timeout=30)


if __name__ == "__main__":
    main()
