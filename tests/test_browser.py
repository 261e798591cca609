"""End to end in a real browser: `streamlit run` on a free localhost port, driven by Playwright in
Debian's Chromium. Launch a tiny run from the Launch page, wait for it on the Runs page, and
check that its curves and summary appear; then open the finished run on the Embeddings and
Unlabeled explorer pages. And an upload: a hostile zip refused, a real zip of JPEGs saved, seen on
the Datasets page and deleted. Screenshots go to test-artifacts/."""
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists() or shutil.which("chromium") is None,
                                reason="Debian's chromium is not installed (apt-get install chromium)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app_url(tiny_data, isolated_env):
    port = free_port()
    env = {**os.environ, "BD_MAX_JOBS": "1", "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.3)
    else:
        server.kill()
        pytest.fail("streamlit did not start within 60 s")
    yield url
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()


def new_page(playwright):
    """A page of Debian's headless Chromium (never a downloaded browser), desktop-sized."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"])
    return browser.new_page(viewport={"width": 1400, "height": 1000})


def test_launch_a_tiny_run_and_watch_it_finish(app_url):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        page = new_page(p)
        page.goto(f"{app_url}/Launch", wait_until="domcontentloaded")
        expect(page.get_by_text("Launch a run")).to_be_visible(timeout=120_000)
        expect(page.get_by_role("img").first).to_be_visible(timeout=120_000)  # dataset previews
        nav = page.get_by_test_id("stSidebarNav")  # app.py's st.navigation, in the sidebar
        for title in ("Home", "Launch", "Runs", "Embeddings", "Unlabeled explorer"):
            expect(nav.get_by_text(title, exact=True)).to_be_visible()
        for label, value in (("teacher epochs", "1"), ("blind epochs", "2"), ("fine-tune epochs", "1")):
            box = page.get_by_role("spinbutton", name=label)  # not its help button, labeled alike
            box.fill(value)
            box.press("Tab")  # commits the value; Enter would submit the form and launch a run
        page.get_by_role("combobox", name="teacher").click()
        page.get_by_role("option", name="mlp", exact=True).click()
        page.get_by_role("combobox", name="student").click()
        page.get_by_role("option", name="mlp", exact=True).click()
        page.screenshot(path=str(ARTIFACTS / "launch.png"), full_page=True)
        page.get_by_role("button", name="Launch").click()
        expect(page.get_by_text("launched")).to_be_visible(timeout=30_000)

        page.goto(f"{app_url}/Runs", wait_until="domcontentloaded")
        # the run launched from this session is on the curves without a click, live
        expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=180_000)
        expect(page.get_by_text(re.compile(r"runs?, 0 queued or running"))).to_be_visible(timeout=240_000)
        expect(page.get_by_text("Download all as CSV")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "runs.png"), full_page=True)

        page.goto(f"{app_url}/Embeddings", wait_until="domcontentloaded")
        # the run's worker prepares this first view once the run succeeds; the page loads it (or,
        # if it got there first, computes and caches it)
        expect(page.get_by_text(re.compile("loaded from the cache|cached for next time"))).to_be_visible(
            timeout=120_000)
        plot = page.locator(".js-plotly-plot").first
        expect(plot).to_be_visible(timeout=60_000)
        expect(page.get_by_text("fashion-mnist: Bag")).to_be_visible()  # legend: the unlabeled family
        # hover images need WebGL (the chart is Scattergl): tests/test_browser_explorer.py hovers them
        page.screenshot(path=str(ARTIFACTS / "embeddings.png"), full_page=True)

        page.goto(f"{app_url}/Unlabeled", wait_until="domcontentloaded")
        expect(page.get_by_role("tab", name="Scores")).to_be_visible(timeout=120_000)
        expect(page.get_by_text("Save as transfer set").first).to_be_visible(timeout=60_000)
        page.get_by_role("tab", name="Ambiguous and neighbours").click()
        expect(page.get_by_text("Most ambiguous unlabeled images")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Nearest labeled neighbours")).to_be_visible()
        page.wait_for_timeout(1000)
        page.screenshot(path=str(ARTIFACTS / "unlabeled.png"), full_page=True)
        page.context.browser.close()


def _jpeg_zip(path: Path, classes: tuple[str, ...] = ("cat", "dog"), per_class: int = 6) -> Path:
    """A real zip as "compress folder" makes it: one top folder holding a folder of JPEGs per class."""
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for c, cls in enumerate(classes):
            for i in range(per_class):
                pixels = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) // (c + 2)
                buf = io.BytesIO()
                Image.fromarray(pixels).save(buf, "JPEG")
                archive.writestr(f"pets/{cls}/{i}.jpg", buf.getvalue())
    return path


def _upload(page, name: str, archive: Path) -> None:
    """Fill the Launch page's upload form and press Save."""
    from playwright.sync_api import expect

    form = page.get_by_test_id("stForm").filter(has_text="dataset name")
    form.get_by_role("textbox", name="dataset name").fill(name)
    form.locator("input[type=file]").set_input_files(str(archive))
    expect(form.get_by_text(archive.name)).to_be_visible(timeout=30_000)  # listed: uploaded
    form.get_by_role("button", name="Save the dataset").click()


def test_upload_a_zip_see_it_on_the_datasets_page_and_delete_it(app_url, tiny_data, tmp_path):
    """A hostile zip is refused in an error box (no traceback, nothing written); a real zip of JPEGs
    is saved, reported with its thumbnails, offered in the pickers, listed on the Datasets page with
    its preview, and deleted there."""
    from playwright.sync_api import expect, sync_playwright

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("pets/../../evil.jpg", b"\xff\xd8\xff")
    good = _jpeg_zip(tmp_path / "pets.zip")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        page = new_page(p)
        page.goto(f"{app_url}/Launch", wait_until="domcontentloaded")
        expect(page.get_by_text("Launch a run")).to_be_visible(timeout=120_000)
        page.get_by_text("Upload a dataset", exact=True).click()

        _upload(page, "evil", evil)
        expect(page.get_by_text("Not saved: upload refused")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("goes up a folder")).to_be_visible()
        expect(page.locator(".stException")).to_have_count(0)
        assert "Traceback" not in page.content()
        assert not (tiny_data / "uploads").exists()

        _upload(page, "pets", good)
        expect(page.get_by_text("Saved 12 images as 'pets'")).to_be_visible(timeout=60_000)
        report = page.get_by_test_id("stExpander").filter(has_text="Saved 12 images")
        expect(report.locator("img")).to_have_count(12, timeout=30_000)  # the thumbnails
        expect(report.get_by_text("dog", exact=True).first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "upload.png"), full_page=True)
        page.get_by_role("combobox", name="labeled dataset", exact=True).click()
        page.keyboard.type("uploaded")  # the list shows its first options only
        expect(page.get_by_role("option", name="uploaded: pets")).to_be_visible()
        page.keyboard.press("Escape")

        page.goto(f"{app_url}/Datasets", wait_until="domcontentloaded")
        expect(page.get_by_role("heading", name="pets")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("12 images")).to_be_visible()
        expect(page.get_by_test_id("stMain").locator("img")).to_have_count(12, timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "datasets.png"), full_page=True)
        page.get_by_role("button", name="Delete").click()
        page.get_by_role("button", name="Yes, delete it").click()
        expect(page.get_by_text("Deleted 'pets'.")).to_be_visible(timeout=30_000)
        expect(page.get_by_text("No uploaded datasets yet.")).to_be_visible()
        expect(page.locator(".stException")).to_have_count(0)
        assert not (tiny_data / "uploads" / "pets").exists()
        page.context.browser.close()
