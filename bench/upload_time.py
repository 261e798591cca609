"""Upload time (issue point 4, "a 50 MB zip of images prepared and previewed"): a zip of about 50 MB
holding 600 real JPEGs (640x480, colour gradients with noise, about 85 KB each, in three class
folders under one top folder, as "compress folder" makes it) uploaded through the Launch page of a
real `streamlit run app.py` in headless Chromium, then saved and previewed.

Measured:
- transfer: `set_input_files` until the server has answered the upload's PUT (browser -> server);
- save -> preview: from the click on "Save the dataset" until the report and its 16 thumbnails are
  shown (the server checks, extracts and verifies every image, then reruns the page);
- Datasets page: from opening it until the dataset's 16 thumbnails are shown;
- library: `bdcore.uploads.save_zip` on the same bytes in this process (the server's share of the
  save, without Streamlit).
With --picker, also choosing the upload in the labeled picker until its preview is shown (the
Launch page's preview loads the whole folder: bdcore.preview).

    python bench/upload_time.py [--images 600] [--picker] [--keep]"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from classroom import CHROMIUM, _free_port
from common import ROOT
from PIL import Image

from bdcore.uploads import PREVIEW_COUNT, save_zip

CLASSES = ("gradient", "stripes", "rings")


def jpeg(rng: np.random.Generator, kind: int, index: int) -> bytes:
    """A 640x480 JPEG of about 85 KB: a class-shaped colour pattern under Gaussian noise (pure noise
    would be 200 KB and more, a flat picture a few KB)."""
    y, x = np.mgrid[0:480, 0:640].astype(np.float32)
    if kind == 0:
        base = x / 640 * 255 + index % 64
    elif kind == 1:
        base = np.sin(x / (8 + index % 16)) * 127 + 128
    else:
        base = np.hypot(x - 320, y - 240) % (40 + index % 40) * 6
    pixels = np.stack([base, y / 480 * 255, 255 - base], -1) + rng.normal(0, 16, (480, 640, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def make_zip(path: Path, images: int) -> Path:
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(images):
            kind = i % len(CLASSES)
            archive.writestr(f"photos/{CLASSES[kind]}/{i:04d}.jpg", jpeg(rng, kind, i))
    return path


def start_server(folder: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, "BD_DATA_DIR": str(folder / "data"), "BD_RUNS_DIR": str(folder / "runs"),
           "BD_OFFLINE": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return server, f"http://127.0.0.1:{port}"


def browser_times(url: str, archive: Path, picker: bool) -> dict[str, float]:
    from playwright.sync_api import expect, sync_playwright

    times = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/Launch", wait_until="domcontentloaded")
        expect(page.get_by_text("Launch a run")).to_be_visible(timeout=180_000)
        expect(page.get_by_role("img").first).to_be_visible(timeout=180_000)  # the pickers' previews
        page.get_by_text("Upload a dataset", exact=True).click()
        form = page.get_by_test_id("stForm").filter(has_text="dataset name")
        form.get_by_role("textbox", name="dataset name").fill("photos")
        start = time.perf_counter()
        with page.expect_response(lambda r: "/_stcore/upload_file" in r.url and r.request.method == "PUT",
                                  timeout=300_000):
            form.locator("input[type=file]").set_input_files(str(archive))
        times["transfer_s"] = time.perf_counter() - start
        expect(form.get_by_text(archive.name)).to_be_visible(timeout=60_000)

        start = time.perf_counter()
        form.get_by_role("button", name="Save the dataset").click()
        report = page.get_by_test_id("stExpander").filter(has_text="Saved ")
        expect(report.locator("img")).to_have_count(PREVIEW_COUNT, timeout=300_000)
        times["save_to_preview_s"] = time.perf_counter() - start
        assert page.locator(".stException").count() == 0 and not page.get_by_text("Not saved").count()

        if picker:
            start = time.perf_counter()
            page.get_by_role("combobox", name="labeled dataset", exact=True).click()
            page.keyboard.type("uploaded")  # the list shows its first options only
            page.get_by_role("option", name="uploaded: photos").click()
            expect(page.get_by_text("/uploads/photos").first).to_be_visible(timeout=600_000)
            times["picker_preview_s"] = time.perf_counter() - start

        start = time.perf_counter()
        page.goto(f"{url}/Datasets", wait_until="domcontentloaded")
        expect(page.get_by_test_id("stMain").locator("img")).to_have_count(PREVIEW_COUNT, timeout=300_000)
        times["datasets_page_s"] = time.perf_counter() - start
        browser.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--picker", action="store_true", help="also time the Launch picker's preview")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (printed)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bd-upload-"))
    start = time.perf_counter()
    archive = make_zip(folder / "photos.zip", args.images)
    print(f"zip: {args.images} JPEGs, {archive.stat().st_size / 1e6:.1f} MB, made in "
          f"{time.perf_counter() - start:.1f} s")

    os.environ["BD_DATA_DIR"] = str(folder / "library")
    start = time.perf_counter()
    report = save_zip("photos", archive.read_bytes())
    print(f"library: save_zip {time.perf_counter() - start:.2f} s ({report.images} images, {report.layout})")

    server, url = start_server(folder)
    try:
        for name, seconds in browser_times(url, archive, args.picker).items():
            print(f"browser: {name} {seconds:.2f}")
    finally:
        server.terminate()
        server.wait(timeout=30)
    if args.keep:
        print(f"kept: {folder}")
    else:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
