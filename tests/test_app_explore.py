"""The Embeddings page through AppTest, on a tiny finished run with real
checkpoints: it renders without an exception, shows its charts with hover images
from the run's atlas, links a selection between charts, locates an image, saves
a selection as a transfer set, replays the blind stage, and says plainly when
there is nothing to explore."""
import json

import pytest
import torch

from bdcore.embeddings import SampleSpec
from bdcore.models import build_model
from bdcore.runs import RunDir, save_weights
from bdcore.store import RunStore

from embeddings_helpers import make_finished_run
from test_app import ROOT, page


@pytest.fixture
def static(tmp_path, monkeypatch):
    """The served folder, moved out of the working tree for the test."""
    monkeypatch.setattr("ui.resources.STATIC", tmp_path / "static")
    return tmp_path / "static"


@pytest.fixture
def tiny_run(tiny_data, static):
    return make_finished_run(RunStore())


def figures(at) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def test_embeddings_page_draws_and_caches_the_joint_embedding(tiny_run, static):
    at = page("ui/embeddings.py").run()
    assert not at.exception and not at.error
    [figure] = figures(at)
    assert any("computed: features" in c.value for c in at.caption)
    names = {t["name"] for t in figure["data"]}
    assert "mnist: 3" in names and "fashion-mnist: Bag" in names  # both sets, both colour families
    assert {t["type"] for t in figure["data"]} == {"scattergl"}  # WebGL
    assert sum(len(t["customdata"]) for t in figure["data"]) == 300  # 100 test + 200 unlabeled (capped)
    atlas = figure["layout"]["meta"]["atlas"]  # hover images come from the run's atlas, not the chart
    assert atlas["url"].startswith("/app/static/atlas/")
    assert atlas["counts"] == {"labeled": 100, "unlabeled": 200}
    sheets = static / "atlas" / atlas["url"].split("/")[-2]
    assert sorted(p.name for p in sheets.glob("*.png")) == ["labeled-0.png", "unlabeled-0.png"]
    values = [v for t in figure["data"] for cd in t["customdata"] for v in cd]
    assert not any(isinstance(v, str) and v.startswith("data:") for v in values)  # no image in the chart
    assert len(at.get("download_button")) == 2
    at.run()
    assert any("loaded from the cache" in c.value for c in at.caption)


def test_sample_sizes_of_zero_embed_the_whole_sets(tiny_run):
    at = page("ui/embeddings.py").run()
    at.number_input[0].set_value(0)
    at.number_input[1].set_value(0)
    at.button[0].click().run()  # Compute embedding
    assert not at.exception and not at.error
    [figure] = figures(at)
    assert "300 points" in figure["layout"]["title"]["text"]


def selection_of(tiny_run: tuple, role: str, rows: list[int]) -> dict:
    """The page's kept selection: ``rows`` of the first view's samples (all 300 tiny ones)."""
    return {"role": role, "rows": rows, "samples": f"{tiny_run[0]} {SampleSpec(100, 200, 0)}"}


def _selected(figure: dict) -> set[int]:
    return {int(t["customdata"][i][0]) for t in figure["data"] for i in t.get("selectedpoints") or []}


def test_a_selection_in_one_chart_is_highlighted_in_the_other_and_shown(tiny_run):
    at = page("ui/embeddings.py").run()
    at.multiselect[0].set_value(["teacher", "blind"])
    at.button[0].click().run()
    at.session_state["embed_selection"] = selection_of(tiny_run, "teacher", [0, 5, 150])
    at.run()
    assert not at.exception and not at.error
    teacher, student = figures(at)
    assert _selected(teacher) == _selected(student) == {0, 5, 150}
    assert any("Selected in teacher: 3 samples" in h.value for h in at.subheader)
    assert len(at.image) == 1 and len(at.image[0].captions) == 3  # the gallery
    at.selectbox(key="embed_locate").set_value("unlabeled #" + str(_index_of(teacher, 150))).run()
    assert not at.exception
    for figure in figures(at):
        [arrow] = figure["layout"]["annotations"]
        assert arrow["text"].startswith("unlabeled #")


def _index_of(figure: dict, row: int) -> int:
    return next(int(cd[4]) for t in figure["data"] for cd in t["customdata"] if int(cd[0]) == row)


def test_clicking_one_point_shows_its_image_and_each_models_soft_label(tiny_run):
    at = page("ui/embeddings.py").run()
    at.multiselect[0].set_value(["teacher", "blind"])
    at.button[0].click().run()
    at.session_state["embed_selection"] = selection_of(tiny_run, "blind", [7])
    at.run()
    assert not at.exception and not at.error
    captions = [c for element in at.image for c in element.captions]
    assert any(c.startswith("teacher: ") for c in captions) and any(c.startswith("blind: ") for c in captions)


def test_a_selection_is_saved_as_a_named_transfer_set(tiny_run, monkeypatch):
    saved = {}

    class Saved:
        name, size, spec = "picked", 2, "subset:picked"

    def fake_save(session, rows, name, provenance):
        saved.update(rows=sorted(map(int, rows)), name=name, provenance=provenance)
        return Saved()

    monkeypatch.setattr("ui.embedding_panels.save_from_run", fake_save)
    at = page("ui/embeddings.py").run()
    # rows 0-99 are the labeled test images, 100-299 the unlabeled ones: 1 labeled, 2 unlabeled
    at.session_state["embed_selection"] = selection_of(tiny_run, "teacher", [0, 150, 160])
    at.run()
    at.text_input(key="transfer_set_name").input("picked")
    next(b for b in at.button if b.label == "Save transfer set").click().run()
    assert not at.exception and not at.error
    assert saved["name"] == "picked" and len(saved["rows"]) == 2
    assert saved["provenance"]["model"] == "teacher" and saved["provenance"]["how"] == "embedding selection"
    assert "subset:picked" in at.success[0].value


def test_a_bad_transfer_set_name_is_refused_in_plain_words(tiny_run):
    at = page("ui/embeddings.py").run()
    at.session_state["embed_selection"] = selection_of(tiny_run, "teacher", [150])
    at.run()
    next(b for b in at.button if b.label == "Save transfer set").click().run()  # no name
    assert not at.exception
    assert at.error and "Traceback" not in at.error[0].value


def test_the_blind_stage_replays_on_one_layout(tiny_run):
    _, path = tiny_run
    run = RunDir(path)
    run.snapshot("blind", 1).parent.mkdir()
    for epoch in (1, 2):
        torch.manual_seed(epoch)
        save_weights(build_model("mlp", (1, 28, 28), 10), run.snapshot("blind", epoch))
    at = page("ui/embeddings.py").run()
    next(t for t in at.toggle if t.label.startswith("Replay the blind stage")).set_value(True).run()
    assert not at.exception and not at.error
    assert len(figures(at)) == 2  # the teacher and the replayed student
    assert "blind epoch 2" in figures(at)[1]["layout"]["title"]["text"]
    at.select_slider[0].set_value(1).run()
    assert not at.exception and "blind epoch 1" in figures(at)[1]["layout"]["title"]["text"]


def test_a_run_without_snapshots_says_there_is_nothing_to_replay(tiny_run):
    at = page("ui/embeddings.py").run()
    assert any("kept no blind-stage snapshots" in c.value for c in at.caption)


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
