"""Many users (issue 14, point 4): 20 sessions at once against one app server while one run trains.

The app server (`streamlit run app.py` on a free port) gets a fresh runs folder holding one
finished small run (the quick preset on 2,000 images a set, one epoch a stage), and one run
training throughout (the quick preset with a long teacher stage, so no new explorable run appears
mid-measurement). Then:

- protocol sessions: a light client that speaks Streamlit's websocket protocol (BackMsg /
  ForwardMsg protobufs on /_stcore/stream), no browser, so the times are the server's alone. Each
  of 20 sessions at once opens Home, Runs (then switches the curve: a rerun), Embeddings of the
  finished run, Home again and presses "Quick demo" (a rerun; all 20 join one run);
- browser sessions: the same in 20 Chromium pages (one context each) of one headless browser;
- churn: 500 protocol sessions opened and closed (10 at a time, Home / Runs / Embeddings in turn),
  with the server's RSS before and after.

One session opens Home first (the server's one-off imports, reported on their own line). First
render: from the navigation (the websocket's opening for a protocol session's first page)
until the page's last script run finished; in the browser, until its main content is shown and
Streamlit reports the script not running. Rerun: a widget change until its run finished. Errors:
exception elements and error boxes (protocol), `.stException`, "Traceback" in the page, console
and page errors (browser), and any failed step.

    python bench/many_users.py [--sessions 20] [--pages 20] [--churn 500] [--skip-browser]
    python bench/run_all.py --suite users --out 'docs/bench-users-{device}.json'"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from classroom import CHROMIUM, _chromium_cpu_seconds, _cpu_seconds, _free_port, _fresh_env, _wait_finished
from common import ROOT, Figure, format_table, loadavg

from bdcore import jobs
from bdcore.embeddings import ExploreSession, prepare_first_view
from bdcore.presets import preset_config
from bdcore.runs import RunsRoot
from bdcore.store import RunStore, Status

FIRST_RENDER_TARGET_S = 3.0
RERUN_TARGET_S = 1.0
RSS_TARGET = 1.10  # server RSS after the churn / before it
PAGE_TIMEOUT_S = 300.0  # the first Embeddings visit computes the t-SNE once
FINISHED_RUN = {"labeled_limit": 2000, "unlabeled_limit": 2000, "teacher_epochs": 1, "blind_epochs": 1,
                "finetune_epochs": 1}
RUN_ID = re.compile(r"\b\d{8}-\d{6}-[0-9a-f]{6}\b")  # bdcore.store's run ids
QUICK = {"sessions": 3, "pages": 0, "churned": 12}  # `run_all.py --quick`: a smoke test, not a measurement
TRAINING_RUN = {"teacher_epochs": 200}  # the quick preset, its teacher stage long enough to outlast the bench


def percentile(values: list[float], q: float) -> float:
    """The q-quantile by the nearest-rank method (p95 of 20 values: the 19th)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, -(-int(q * 100) * len(ordered) // 100) - 1))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


@dataclass
class Tally:
    """One client kind's measurements."""
    first_render: dict[str, list[float]] = field(default_factory=dict)  # page -> seconds
    rerun: dict[str, list[float]] = field(default_factory=dict)  # interaction -> seconds
    errors: list[str] = field(default_factory=list)
    sessions: int = 0
    run_ids: set[str] = field(default_factory=set)  # what "Quick demo" joined

    def add(self, table: dict[str, list[float]], name: str, seconds: float) -> None:
        table.setdefault(name, []).append(seconds)

    def all(self, table: dict[str, list[float]]) -> list[float]:
        return [s for values in table.values() for s in values]

    def detail(self, table: dict[str, list[float]]) -> str:
        return "; ".join(f"{name}: median {statistics.median(v):.2f} s, p95 {percentile(v, 0.95):.2f} s, "
                         f"max {max(v):.2f} s (n={len(v)})" for name, v in table.items())


# ---- the protocol client ------------------------------------------------------------------------

@dataclass
class ScriptRun:
    seconds: float
    elements: list  # streamlit.proto Element messages, in arrival order
    errors: list[str]

    def widget(self, kind: str, label_start: str):
        """The first ``kind`` element (radio, button, ...) whose label starts with ``label_start``."""
        for element in self.elements:
            if element.WhichOneof("type") == kind and getattr(element, kind).label.startswith(label_start):
                return getattr(element, kind)
        raise LookupError(f"no {kind} labelled {label_start!r} on the page")

    def text(self) -> str:
        return " ".join(str(e) for e in self.elements)


class ProtocolSession:
    """One browser tab's conversation with the server, without a browser: the websocket on
    /_stcore/stream, a BackMsg ``rerun_script`` per page run, ForwardMsgs until ``script_finished``.
    Widget states travel as the browser sends them: all of them with every rerun."""

    def __init__(self, port: int):
        self.url = f"ws://127.0.0.1:{port}/_stcore/stream"
        self.ws = None
        self.widgets: dict[str, object] = {}  # widget id -> WidgetState, as the frontend keeps them

    async def open(self) -> None:
        from websockets.asyncio.client import connect

        # the subprotocol header carries "streamlit", then an XSRF token and a session to resume
        self.ws = await connect(self.url, subprotocols=["streamlit"], max_size=None, proxy=None,
                                open_timeout=PAGE_TIMEOUT_S)

    async def close(self) -> None:
        await self.ws.close()

    async def run(self, page: str, **changes: object) -> ScriptRun:
        """Run ``page`` ("" is Home) with the widget ``changes`` (widget id -> WidgetState) applied;
        returns once the run finished."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        start = time.perf_counter()
        self.widgets.update(changes)
        back = BackMsg()
        back.rerun_script.page_name = page
        back.rerun_script.widget_states.widgets.extend(self.widgets.values())
        await self.ws.send(back.SerializeToString())
        elements, errors = [], []
        while True:
            msg = ForwardMsg()
            msg.ParseFromString(await asyncio.wait_for(self.ws.recv(), PAGE_TIMEOUT_S))
            kind = msg.WhichOneof("type")
            if kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                element = msg.delta.new_element
                elements.append(element)
                errors += _element_errors(element)
            elif kind == "script_finished":
                status = ForwardMsg.ScriptFinishedStatus.Name(msg.script_finished)
                if status == "FINISHED_SUCCESSFULLY":
                    break
                if status == "FINISHED_WITH_COMPILE_ERROR":
                    errors.append(f"{page or 'Home'}: the script did not compile")
                    break
                # FINISHED_EARLY_FOR_RERUN (another run follows) or a fragment's run: keep waiting
        # a trigger (a button press) lasts one run, as in the browser
        for key in [k for k, state in self.widgets.items() if state.WhichOneof("value") == "trigger_value"]:
            del self.widgets[key]
        return ScriptRun(time.perf_counter() - start, elements, [f"{page or 'Home'}: {e}" for e in errors])


def _element_errors(element) -> list[str]:
    from streamlit.proto.Alert_pb2 import Alert

    kind = element.WhichOneof("type")
    if kind == "exception":
        return [f"exception {element.exception.type}: {element.exception.message[:200]}"]
    if kind == "alert" and element.alert.format == Alert.ERROR:
        return [f"error box: {element.alert.body[:200]}"]
    return []


def _state(widget_id: str, **value: object):
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    return {widget_id: WidgetState(id=widget_id, **value)}


async def protocol_user(port: int, tally: Tally) -> None:
    """One user, as the issue describes: Home, Runs (and a curve switch), Embeddings, "Quick demo"."""
    session = ProtocolSession(port)
    start = time.perf_counter()
    try:
        await session.open()
        home = await session.run("")
        tally.add(tally.first_render, "Home", time.perf_counter() - start)  # the connection included
        runs = await session.run("Runs")
        tally.add(tally.first_render, "Runs", runs.seconds)
        curve = runs.widget("radio", "curve")
        switched = await session.run("Runs", **_state(curve.id, string_value="training loss"))
        tally.add(tally.rerun, "Runs: switch the curve", switched.seconds)
        embeddings = await session.run("Embeddings")
        tally.add(tally.first_render, "Embeddings", embeddings.seconds)
        if not any(said in embeddings.text() for said in ("cached for next time", "loaded from the cache")):
            tally.errors.append("Embeddings: no embedding shown")
        home = await session.run("")
        quick = home.widget("button", "Quick demo")
        pressed = await session.run("", **_state(quick.id, trigger_value=True))
        tally.add(tally.rerun, "Home: press Quick demo", pressed.seconds)
        joined = [RUN_ID.findall(e.alert.body)[:1] for e in pressed.elements
                  if e.WhichOneof("type") == "alert"]
        tally.run_ids.update(*joined)
        if not any(joined):
            tally.errors.append("Home: pressing Quick demo said nothing")
        tally.errors += runs.errors + switched.errors + embeddings.errors + home.errors + pressed.errors
    except Exception as err:  # a failed step is an error of this session, the others go on
        tally.errors.append(f"protocol session: {type(err).__name__}: {err}")
    finally:
        tally.sessions += 1
        if session.ws is not None:
            await session.close()


async def churn(port: int, total: int, at_once: int, pages: tuple[str, ...]) -> list[str]:
    """``total`` sessions, ``at_once`` at a time, each opening one page (in turn) and closing."""
    errors: list[str] = []
    queue = iter(range(total))

    async def worker() -> None:
        for i in queue:
            session = ProtocolSession(port)
            try:
                await session.open()
                errors.extend((await session.run(pages[i % len(pages)])).errors)
            except Exception as err:
                errors.append(f"churn session {i}: {type(err).__name__}: {err}")
            finally:
                if session.ws is not None:
                    await session.close()

    await asyncio.gather(*(worker() for _ in range(at_once)))
    return errors


# ---- the browser client -------------------------------------------------------------------------

IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


async def browser_user(browser, url: str, tally: Tally) -> None:
    """One user in its own Chromium context: the same steps as ``protocol_user``."""
    from playwright.async_api import expect

    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    page.on("console", lambda m: m.type == "error" and tally.errors.append(f"console: {m.text[:200]}"))
    page.on("pageerror", lambda e: tally.errors.append(f"page error: {str(e)[:200]}"))
    timeout = PAGE_TIMEOUT_S * 1000
    page.set_default_timeout(timeout)  # 20 pages on 2 cores: clicks wait far beyond the default 30 s

    async def settled(marker) -> None:
        await expect(marker).to_be_visible(timeout=timeout)
        await page.locator(IDLE).wait_for(timeout=timeout)

    async def check(where: str) -> None:
        if await page.locator(".stException").count():
            tally.errors.append(f"{where}: exception box")
        if "Traceback" in await page.inner_text("body"):
            tally.errors.append(f"{where}: 'Traceback' on the page")

    async def timed(table: dict, name: str, action: Callable, marker) -> None:
        start = time.perf_counter()
        await action()
        await settled(marker)
        tally.add(table, name, time.perf_counter() - start)
        await check(name)

    nav = page.get_by_test_id("stSidebarNav")
    try:
        await timed(tally.first_render, "Home", lambda: page.goto(url, wait_until="commit"),
                    page.get_by_role("button", name="Quick demo"))
        await timed(tally.first_render, "Runs", nav.get_by_text("Runs", exact=True).click,
                    page.get_by_text("Dashed grey"))
        switch = page.get_by_text("training loss", exact=True).click
        # done when the new chart is drawn: its y axis is titled after the curve
        await timed(tally.rerun, "Runs: switch the curve", switch,
                    page.locator(".ytitle", has_text="training loss").first)
        await timed(tally.first_render, "Embeddings", nav.get_by_text("Embeddings", exact=True).click,
                    page.get_by_text("PNG: the camera icon").first)
        await nav.get_by_text("Home", exact=True).click()
        quick = page.get_by_role("button", name="Quick demo")
        await settled(quick)
        await timed(tally.rerun, "Home: press Quick demo", quick.click,
                    page.get_by_text("Watch it on the Runs page"))
        said = await page.get_by_test_id("stAlert").filter(has_text=RUN_ID).first.inner_text()
        tally.run_ids.update(RUN_ID.findall(said)[:1])
    except Exception as err:
        tally.errors.append(f"browser session: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
    finally:
        tally.sessions += 1
        await context.close()


async def browser_users(url: str, pages: int, tally: Tally) -> float:
    """``pages`` Chromium pages at once; returns the CPU seconds Chromium took."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        before = _chromium_cpu_seconds()
        await asyncio.gather(*(browser_user(browser, url, tally) for _ in range(pages)))
        used = _chromium_cpu_seconds() - before
        await browser.close()
    return used


# ---- the bench ----------------------------------------------------------------------------------

class Server:
    """`streamlit run app.py` on a free port, serving ``runs_dir``."""

    def __init__(self, runs_dir: Path):
        self.port = _free_port()
        self.log = runs_dir.parent / "server.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port",
                 str(self.port), "--server.address", "127.0.0.1", "--server.headless", "true"],
                cwd=ROOT, env=_fresh_env(runs_dir), stdout=log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}/"

    def wait_ready(self, timeout: float = 60) -> None:
        import urllib.request

        end = time.time() + timeout
        while True:
            try:
                urllib.request.urlopen(self.url + "_stcore/health", timeout=2).close()
                return
            except OSError:
                if time.time() > end or self.process.poll() is not None:
                    raise RuntimeError(f"the app server did not start; see {self.log}") from None
                time.sleep(0.3)

    def cpu(self) -> float:
        return _cpu_seconds(self.process.pid)

    def rss(self) -> float:
        return rss_mb(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def prepare(runs_dir: Path, say: Callable[[str], None]) -> tuple[RunStore, str]:
    """The finished small run, then the training one started; returns the store and its id."""
    store = RunStore(RunsRoot(runs_dir).store_path)
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(_fresh_env(runs_dir))  # the workers inherit this environment
    try:
        start = time.perf_counter()
        jobs.submit(store, preset_config("quick", **FINISHED_RUN))
        finished = _wait_finished(store)
        say(f"finished run {finished.id}: {finished.status} in {time.perf_counter() - start:.0f} s")
        # its worker prepares the Embeddings page's first view next; this waits for it (the
        # cache's lock) so that no part of the measurement competes with it
        prepare_first_view(ExploreSession(Path(finished.run_dir), finished.id))
        say(f"its Embeddings first view ready after {time.perf_counter() - start:.0f} s")
        training = jobs.submit(store, preset_config("quick", **TRAINING_RUN)).run_id
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return store, training


def phase_figures(kind: str, tally: Tally, sessions: int, detail: str) -> list[Figure]:
    renders, reruns = tally.all(tally.first_render), tally.all(tally.rerun)
    p95_render, p95_rerun = percentile(renders, 0.95), percentile(reruns, 0.95)
    joined = f"; 'Quick demo' joined {len(tally.run_ids)} run(s) {sorted(tally.run_ids)}"
    errors = "; ".join(sorted(set(tally.errors)))[:600] or "none"
    return [
        Figure(f"{kind}: {sessions} sessions at once, errors", len(tally.errors), "count", "0",
               not tally.errors and tally.sessions == sessions, f"{errors}{joined}; {detail}"),
        Figure(f"{kind}: first render p95", p95_render, "s", f"< {FIRST_RENDER_TARGET_S:g} s",
               p95_render < FIRST_RENDER_TARGET_S, tally.detail(tally.first_render)),
        Figure(f"{kind}: first render median", statistics.median(renders) if renders else float("nan"),
               "s", "", None, f"{len(renders)} page loads"),
        Figure(f"{kind}: rerun p95", p95_rerun, "s", f"< {RERUN_TARGET_S:g} s", p95_rerun < RERUN_TARGET_S,
               tally.detail(tally.rerun)),
        Figure(f"{kind}: rerun median", statistics.median(reruns) if reruns else float("nan"), "s", "",
               None, f"{len(reruns)} reruns"),
    ]


def run(_ctx: object = None, sessions: int = 20, pages: int = 20, churned: int = 500,
        browser: bool = True, say: Callable[[str], None] = print) -> list[Figure]:
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        runs_dir = Path(tmp) / "runs"
        store, training = prepare(runs_dir, say)
        server = Server(runs_dir)
        try:
            server.wait_ready()
            figures.append(cold_start(server))
            phases = [("protocol", lambda t: asyncio.run(_gather(
                [protocol_user(server.port, t) for _ in range(sessions)])), sessions)]
            if browser and pages and Path(CHROMIUM).exists():
                phases.append(("Chromium", lambda t: asyncio.run(browser_users(server.url, pages, t)), pages))
            for kind, measure, count in phases:
                tally, cpu, wall = Tally(), server.cpu(), time.perf_counter()
                say(f"[{kind}] {count} sessions at once, loadavg {loadavg()}")
                chromium_cpu = measure(tally)
                wall = time.perf_counter() - wall
                status = store.get(training).status
                extra = f", Chromium CPU {chromium_cpu:.1f} s" if chromium_cpu is not None else ""
                figures += phase_figures(kind, tally, count, (
                    f"phase {wall:.1f} s wall, app server CPU {server.cpu() - cpu:.1f} s{extra}; "
                    f"the training run was {status} at the end; loadavg {loadavg()}"))
                say(format_table(figures[-5:]) + details(figures[-5:]))
            if churned:
                figures += churn_figures(server, churned, say)
        finally:
            server.stop()
            for record in store.list((Status.QUEUED, Status.RUNNING)):
                jobs.cancel(store, record.id)
            _wait_finished(store, timeout=60)  # its worker stops before the folder goes
    return figures


def cold_start(server: Server) -> Figure:
    """The server's first session ever opens Home: the process's one-off imports (torch, pandas,
    plotly) happen here, as when whoever starts the app opens it first; the 20 come after."""
    tally = Tally()

    async def first() -> None:
        session = ProtocolSession(server.port)
        start = time.perf_counter()
        await session.open()
        tally.errors += (await session.run("")).errors
        tally.add(tally.first_render, "Home", time.perf_counter() - start)
        await session.close()

    asyncio.run(first())
    return Figure("cold server: the first session's Home", tally.first_render["Home"][0], "s", "", None,
                  f"errors: {'; '.join(tally.errors) or 'none'}")


async def _gather(tasks: list) -> None:
    await asyncio.gather(*tasks)


def churn_figures(server: Server, total: int, say: Callable[[str], None]) -> list[Figure]:
    """RSS before and after ``total`` protocol sessions opened and closed."""
    pages = ("", "Runs", "Embeddings")
    asyncio.run(churn(server.port, 6, 3, pages))  # every page once more: imports and caches warm
    time.sleep(2)
    start_rss, start, cpu = server.rss(), time.perf_counter(), server.cpu()
    say(f"[churn] {total} sessions, RSS {start_rss:.0f} MB")
    errors = asyncio.run(churn(server.port, total, 10, pages))
    wall = time.perf_counter() - start
    time.sleep(2)
    after = server.rss()
    ratio = after / start_rss
    return [
        Figure(f"churn: {total} sessions opened and closed, errors", len(errors), "count", "0", not errors,
               ("; ".join(sorted(set(errors)))[:400] or "none")
               + f"; {wall:.0f} s, app server CPU {server.cpu() - cpu:.1f} s"),
        Figure("churn: server RSS before", start_rss, "MB", "", None, "after the phases above and "
                                                                          "6 warm-up sessions"),
        Figure(f"churn: server RSS after {total} sessions", after, "MB", "", None,
               "2 s after the last session closed"),
        Figure("churn: RSS after / before", ratio, "x", f"<= {RSS_TARGET:.2f}", ratio <= RSS_TARGET,
               f"{after:.0f} MB against {start_rss:.0f} MB"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20, help="protocol sessions at once")
    parser.add_argument("--pages", type=int, default=20, help="Chromium pages at once")
    parser.add_argument("--churn", type=int, default=500, help="sessions opened and closed for the RSS")
    parser.add_argument("--skip-browser", action="store_true")
    args = parser.parse_args()
    figures = run(sessions=args.sessions, pages=args.pages, churned=args.churn, browser=not args.skip_browser)
    print(format_table(figures) + details(figures))


def details(figures: list[Figure]) -> str:
    return "".join(f"\n  {f.name}: {f.detail}" for f in figures if f.detail)


if __name__ == "__main__":
    main()
