"""The Embeddings page through AppTest, on a tiny finished run with real
checkpoints: it renders without an exception, shows its charts, and says
plainly when there is nothing to explore."""
import json

import pytest

from bdcore.store import RunStore

from embeddings_helpers import make_finished_run
from test_app import ROOT, page


@pytest.fixture
def tiny_run(tiny_data):
    return make_finished_run(RunStore())


def test_embeddings_page_draws_and_caches_the_joint_embedding(tiny_run):
    at = page("ui/embeddings.py").run()
    assert not at.exception and not at.error
    [chart] = at.get("plotly_chart")
    assert any("computed: features" in c.value for c in at.caption)
    figure = json.loads(chart.proto.spec)
    names = {t["name"] for t in figure["data"]}
    assert "mnist: 3" in names and "fashion-mnist: Bag" in names  # both sets, both colour families
    assert sum(len(t["customdata"]) for t in figure["data"]) == 300  # 100 test + 200 unlabeled (capped)
    assert figure["data"][0]["customdata"][0][1].startswith("data:image/png;base64,")  # hover thumbnail
    assert len(at.get("download_button")) == 2
    at.run()
    assert any("loaded from the cache" in c.value for c in at.caption)


def test_embeddings_page_compares_teacher_and_student_and_recolours(tiny_run):
    at = page("ui/embeddings.py").run()
    at.multiselect[0].set_value(["teacher", "blind"])
    at.button[0].click().run()  # Compute embedding
    assert not at.exception
    assert len(at.get("plotly_chart")) == 2
    colour = next(s for s in at.selectbox if s.label == "colour by")
    colour.set_value("confidence").run()
    assert not at.exception and len(at.get("plotly_chart")) == 2


def test_embeddings_page_without_runs_says_so(isolated_env):
    at = page("ui/embeddings.py").run()
    assert not at.exception
    assert "No run with a trained teacher" in at.info[0].value


def test_embeddings_page_injects_the_hover_thumbnail_script(isolated_env):
    script = (ROOT / "assets" / "hover_thumbnails.js").read_text()
    assert "<script" not in script  # the file is the JavaScript alone; the page wraps it
    at = page("ui/embeddings.py").run()
    [frame] = at.get("iframe")
    assert frame.proto.srcdoc == f"<script>\n{script}</script>"


def test_embeddings_page_explains_a_run_whose_data_is_missing(tiny_run):
    _, path = tiny_run
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "unlabeled": "kmnist"}))
    at = page("ui/embeddings.py").run()
    assert not at.exception
    assert "data cannot be loaded" in at.error[0].value


def test_the_first_view_prepared_ahead_is_the_pages_first_view(tiny_run):
    """What the worker computes when a run finishes (``prepare_first_view``) is exactly what the
    page shows first, so a class opening the page loads it instead of waiting for a t-SNE."""
    from bdcore.embeddings import ExploreSession, prepare_first_view

    run_id, path = tiny_run
    assert not prepare_first_view(ExploreSession(path, run_id)).cached
    at = page("ui/embeddings.py").run()
    assert not at.exception and not at.error
    assert any("loaded from the cache" in c.value for c in at.caption)
