"""The Embeddings page's hover images in a real browser: `streamlit run` serves the run's atlas from
./static/, and hovering a point of the WebGL chart shows that point's tile, fetched on demand."""
import shutil

import pytest
from test_browser import ARTIFACTS, CHROMIUM, ROOT, app_url  # noqa: F401 (app_url: a fixture)

from bdcore.store import RunStore

from embeddings_helpers import make_finished_run

pytestmark = pytest.mark.slow

POINT = """() => { const gd = [...document.querySelectorAll('.js-plotly-plot')].pop();
  if (!gd || !gd._fullData) return null;
  const L = gd._fullLayout, box = gd.getBoundingClientRect(), t = gd._fullData[0];
  return [box.left + L._size.l + L.xaxis.l2p(t.x[0]), box.top + L._size.t + L.yaxis.l2p(t.y[0]),
          t.customdata[0][1] + '#' + t.customdata[0][4]]; }"""


def test_hovering_a_point_shows_its_image_from_the_served_atlas(app_url):  # noqa: F811
    from playwright.sync_api import sync_playwright

    make_finished_run(RunStore())
    with sync_playwright() as p:
        # WebGL (the chart is a Scattergl) without a GPU: Chromium's software renderer, SwiftShader
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--enable-unsafe-swiftshader", "--use-angle=swiftshader", "--no-first-run",
            "--disable-background-networking", "--disable-component-update"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        sheets = []

        def fetched(response) -> None:
            if "/app/static/atlas/" in response.url:
                sheets.append((response.url, response.status))

        page.on("response", fetched)
        page.goto(f"{app_url}/Embeddings")
        page.wait_for_function(f"({POINT})() !== null", timeout=120_000)
        page.wait_for_timeout(1500)  # the hover script attaches to charts every 0.4 s
        page.evaluate("() => [...document.querySelectorAll('.js-plotly-plot')].pop()"
                      ".scrollIntoView({block: 'center'})")
        page.wait_for_timeout(500)
        x, y, point = page.evaluate(POINT)  # its place in the viewport, now that the chart is in view
        page.mouse.move(x - 40, y - 40)
        page.mouse.move(x, y, steps=8)  # over this point or a neighbour drawn on top of it
        shown = page.wait_for_function("""() => { const b = document.getElementById('bd-hover-thumb');
            return b && b.style.display === 'block' && b.dataset.ready
                   && [b.dataset.point, b.dataset.url]; }""",
                                       timeout=20_000).json_value()
        which, index = shown[0].split("#")
        assert which in ("labeled", "unlabeled") and point.split("#")[0] in ("labeled", "unlabeled")
        assert shown[1].endswith(f"/{which}-{int(index) // 10_000}.png")  # the point's own sheet
        page.screenshot(path=str(ARTIFACTS / "explorer-hover.png"))
    assert sheets and all(status == 200 for _, status in sheets)
    folder = ROOT / "static" / "atlas" / sheets[0][0].split("/")[-2]
    assert folder.is_dir()
    shutil.rmtree(folder)  # the test run's atlas, written into the served folder of the working tree
