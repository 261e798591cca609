"""The classroom figures (docs/performance.md, "The classroom"), each measured in this run:

- the quick preset as a user launches it (a background worker, a fresh runs folder, so the
  teacher is trained, not reused): wall time from submit to succeeded, and its accuracies;
- the same run launched from Home in Debian's Chromium and watched on the Runs page until it
  finishes, and the ratio watched / unwatched;
- 20 sessions pressing the quick button at once: runs created, workers started;
- the worker's CPU thread policy: ms per training step alone and beside a busy core.

    python bench/classroom.py [--skip-browser]"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, Figure, format_table

from bdcore import jobs
from bdcore.presets import preset_config
from bdcore.runs import RunsRoot
from bdcore.store import ACTIVE, RunRecord, RunStore

CHROMIUM = "/usr/bin/chromium"
RUN_TIMEOUT_S = 600


def _fresh_env(runs_dir: Path) -> dict[str, str]:
    """The fresh machine's default: the bundled demo subset (no BD_DATA_DIR), a new runs folder."""
    env = {k: v for k, v in os.environ.items() if k not in ("BD_DATA_DIR", "BD_MAX_JOBS")}
    env["BD_RUNS_DIR"] = str(runs_dir)
    return env


def _wait_finished(store: RunStore, timeout: float = RUN_TIMEOUT_S) -> RunRecord:
    end = time.time() + timeout
    while time.time() < end:
        records = store.list()
        if records and all(r.status not in ACTIVE for r in records):
            return records[0]
        time.sleep(0.5)
    raise TimeoutError(f"no run finished within {timeout:.0f} s")


def _describe(record: RunRecord) -> str:
    final = record.final or {}
    tuned = (final.get("finetune_acc") or {}).get("all")
    return (f"{record.status}; teacher {final.get('teacher_acc', 0):.2%}, "
            f"blind {final.get('blind_acc', 0):.2%}, fine-tune {tuned or 0:.2%}")


def quick_unwatched(folder: Path) -> RunRecord:
    """The quick preset through the queue, as `jobs submit --preset quick` runs it."""
    store = RunStore(RunsRoot(folder).store_path)
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(_fresh_env(folder))  # the worker inherits this environment
    try:
        jobs.submit(store, preset_config("quick"))
        return _wait_finished(store)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _chromium_cpu_seconds() -> float:
    """CPU seconds of every Chromium process so far."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"chromium" in (entry / "cmdline").read_bytes()[:300]:
                    total += _cpu_seconds(int(entry.name))
            except OSError:  # it ended meanwhile
                continue
    return total


def quick_watched(folder: Path) -> tuple[RunRecord, str]:
    """Home -> "Quick demo" in Chromium, then the Runs page open until the run finishes. Returns
    the run and the CPU seconds the app server and Chromium took meanwhile."""
    from playwright.sync_api import expect, sync_playwright

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
         "--server.headless", "true"], cwd=ROOT, env=_fresh_env(folder),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            end = time.time() + 60
            while True:
                try:
                    page.goto(f"http://localhost:{port}/", wait_until="domcontentloaded")
                    break
                except Exception:
                    if time.time() > end:
                        raise
                    time.sleep(0.5)
            quick = page.get_by_role("button", name="Quick demo")
            expect(quick).to_be_visible(timeout=60_000)
            server_before, browser_before = _cpu_seconds(server.pid), _chromium_cpu_seconds()
            quick.click()
            page.get_by_text("Watch it on the Runs page").click()
            expect(page.get_by_text("runs to compare")).to_be_visible(timeout=60_000)
            record = _wait_finished(RunStore(RunsRoot(folder).store_path))
            cpu = (f"app server CPU {_cpu_seconds(server.pid) - server_before:.1f} s, Chromium CPU "
                   f"{_chromium_cpu_seconds() - browser_before:.1f} s meanwhile")
            expect(page.get_by_text("0 queued or running")).to_be_visible(timeout=30_000)
            browser.close()
        return record, cpu
    finally:
        server.terminate()
        server.wait(timeout=30)


def twenty_launches(folder: Path) -> tuple[int, int, float]:
    """20 threads (the app's sessions) press "quick" at once: (runs created, distinct ids, seconds)."""
    store = RunStore(RunsRoot(folder).store_path)
    start, ids = threading.Event(), []

    def press() -> None:
        start.wait()
        ids.append(jobs.submit(store, preset_config("quick"), start=False).run_id)

    threads = [threading.Thread(target=press) for _ in range(20)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    start.set()
    for t in threads:
        t.join()
    return len(store.list()), len(set(ids)), time.perf_counter() - t0


STEP_PROBE = """
import time, torch
from bdcore.models import build_model
model = build_model("cnn", (1, 28, 28), 10)
opt = torch.optim.AdamW(model.parameters(), 1e-3)
x = torch.randn(64, 1, 28, 28).contiguous(memory_format=torch.channels_last); y = torch.randint(0, 10, (64,))
def step():
    loss = torch.nn.functional.cross_entropy(model(x), y); opt.zero_grad(); loss.backward(); opt.step()
for _ in range(5): step()
t = time.perf_counter()
for _ in range(40): step()
print((time.perf_counter() - t) / 40 * 1000)
"""
BUSY = """
import time
while True:  # busy 150 ms, idle 150 ms
    end = time.perf_counter() + 0.15
    while time.perf_counter() < end:
        pass
    time.sleep(0.15)
"""


def step_ms(env_extra: dict[str, str], busy: bool) -> float:
    """ms per quick-preset CNN step in a fresh process; ``busy``: beside a process that keeps one
    core busy half of the time (as a browser redrawing charts and a server answering it do)."""
    competitor = subprocess.Popen([sys.executable, "-c", BUSY]) if busy else None
    try:
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
        out = subprocess.run([sys.executable, "-c", STEP_PROBE], cwd=ROOT, env={**env, **env_extra},
                             capture_output=True, text=True, check=True)
        return float(out.stdout.strip().splitlines()[-1])
    finally:
        if competitor is not None:
            competitor.kill()
            competitor.wait()


THREAD_POLICIES = {"2 threads, spinning waits (torch's default, the worker's)": {},
                   "2 threads, OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
                   "1 thread": {"OMP_NUM_THREADS": "1"}}


def thread_policy_figures() -> list[Figure]:
    figures = []
    for name, env in THREAD_POLICIES.items():
        alone, busy = step_ms(env, False), step_ms(env, True)
        figures.append(Figure(f"CNN step, {name}: beside a half-busy core / alone", busy / alone, "x", "",
                              None, f"{busy:.1f} ms against {alone:.1f} ms per step (batch 64, "
                                    f"{os.cpu_count()} cores)"))
    return figures


QUICK_TARGET = "<= 60 s, blind >= 95%, fine-tune >= 99%"


def _quick_figure(name: str, record: RunRecord, extra: str = "") -> Figure:
    wall = record.finished - record.created
    final = record.final or {}
    met = (record.status == "succeeded" and wall <= 60 and final["blind_acc"] >= 0.95
           and final["finetune_acc"]["all"] >= 0.99)
    return Figure(name, wall, "s", QUICK_TARGET, met, _describe(record) + extra)


def run(_ctx: object = None, browser: bool = True) -> list[Figure]:
    figures = thread_policy_figures()
    with tempfile.TemporaryDirectory() as tmp:
        made, distinct, seconds = twenty_launches(Path(tmp) / "twenty")
        figures.append(Figure("20 sessions press 'quick' at once: runs created", made, "count", "1",
                              made == 1, f"{distinct} distinct run id(s) handed out, all 20 calls in "
                                         f"{seconds:.2f} s"))
        alone = quick_unwatched(Path(tmp) / "unwatched")
        figures.append(_quick_figure("quick preset, unwatched: submit to succeeded", alone))
        if browser and Path(CHROMIUM).exists():
            watched, cpu = quick_watched(Path(tmp) / "watched")
            figures.append(_quick_figure("quick preset, watched in Chromium on the Runs page", watched,
                                         f"; {cpu}"))
            ratio = figures[-1].measured / figures[-2].measured
            figures.append(Figure("watching cost: watched / unwatched wall time", ratio, "x", "<= 1.10",
                                  ratio <= 1.10, f"{figures[-1].measured:.1f} s against "
                                                 f"{figures[-2].measured:.1f} s"))
    return figures


def main() -> None:
    figures = run(browser="--skip-browser" not in sys.argv)
    print(format_table(figures))


if __name__ == "__main__":
    main()
