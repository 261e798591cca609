"""The Unlabeled explorer and Model extraction pages through AppTest, on a tiny finished run with
real checkpoints: scores, filters, galleries, strategies, saving transfer sets, extraction."""
import pytest

from bdcore.curation.extraction import ALL
from bdcore.curation.scores import SCORES
from bdcore.curation.transfer_sets import list_transfer_sets
from bdcore.embeddings import ExploreSession
from bdcore.store import RunStore

from embeddings_helpers import make_finished_run
from test_app import by_label, no_workers, page  # noqa: F401 (no_workers: a fixture, used by name)


@pytest.fixture
def tiny_run(tiny_data):
    return make_finished_run(RunStore())


def scores_table(at):
    return at.dataframe[0].value  # the Scores tab comes first


def save(at, key: str, name: str):
    at.text_input(key=f"{key}_name").input(name)
    next(b for b in at.button if b.label == "Save as transfer set" and b.form_id == key).click().run()
    return at


def test_unlabeled_page_shows_scores_galleries_coverage_affinity_and_neighbours(tiny_run):
    _run_id, path = tiny_run
    n = len(ExploreSession(path).data.unlabeled_x)
    at = page("ui/unlabeled.py").run()
    assert not at.exception and not at.error
    assert [t.label for t in at.tabs] == ["Scores", "Class gallery", "Strategies", "Coverage and affinity",
                                          "Ambiguous and neighbours"]
    scores = scores_table(at)
    assert len(scores) == n and list(scores["index"]) == list(range(n))  # every unlabeled image
    assert {"teaches", "true class", *SCORES} <= set(scores.columns)
    assert len(at.get("plotly_chart")) == 3  # per-class histograms, coverage, affinity heatmap
    table = at.dataframe[-1].value  # affinity
    assert len(table) == 10 and set(table["maps to"]) <= {str(d) for d in range(10)}
    assert "Trouser" in set(table["unlabeled class"])
    # the class gallery, one per class at a glance, ambiguous tiles, a query and its neighbours
    assert len(at.image) == 1 + 10 + 1 + 2
    assert len(at.image[-1].value) == 8  # k nearest labeled neighbours
    by_label(at.number_input, "unlabeled image #").set_value(5).run()  # another image's neighbours
    assert not at.exception


@pytest.mark.usefixtures("no_workers")
def test_score_filters_narrow_the_table_and_save_it_as_a_transfer_set(tiny_run):
    at = page("ui/unlabeled.py").run()
    everything = scores_table(at)
    klass = everything["teaches"].value_counts().index[0]  # the class taught most
    by_label(at.multiselect, "teaches (the model's top-1 class)").set_value([klass]).run()
    by_label(at.slider, "confidence").set_value((0.2, 1.0)).run()
    kept = scores_table(at)
    assert 0 < len(kept) < len(everything)
    assert set(kept["teaches"]) == {klass} and kept["confidence"].min() >= 0.2
    assert any(f"(teaches {klass}; 0.2 <= confidence <= 1)" in m.value for m in at.markdown)
    save(at, "save_filter", "filtered")
    assert not at.exception and not at.error
    assert "subset:filtered" in at.success[0].value
    [ts] = list_transfer_sets()
    assert (ts.name, ts.size) == ("filtered", len(kept))
    assert ts.provenance["how"] == "score filter" and ts.provenance["model"] == "teacher"
    assert "0.2 <= confidence <= 1" in ts.provenance["details"]
    by_label(at.button, "Relaunch its run on subset:filtered").click().run()  # one click: the child run
    assert not at.exception and any("launched in the background" in s.value for s in at.success)
    [child] = [r for r in RunStore().list() if r.config.unlabeled == "subset:filtered"]
    assert child.config.teacher == RunStore().get(tiny_run[0]).config.teacher

    save(at, "save_filter", "filtered")  # the same name again: a plain error, no traceback
    assert not at.exception and "exists already" in at.error[0].value
    save(at, "save_filter", "bad name!")
    assert not at.exception and at.error and len(list_transfer_sets()) == 1


def test_a_class_gallery_and_a_strategy_save_their_images(tiny_run):
    at = page("ui/unlabeled.py").run()
    scores = scores_table(at)
    klass = scores["teaches"].value_counts().index[0]
    by_label(at.selectbox, "class taught").set_value(klass).run()
    by_label(at.slider, "images to keep").set_value(5).run()
    save(at, "save_gallery", "gallery-5")
    assert not at.exception and "subset:gallery-5" in at.success[0].value
    by_label(at.selectbox, "strategy").set_value("balanced").run()
    by_label(at.number_input, "budget (images)").set_value(40).run()
    save(at, "save_strategy", "balanced-40")
    assert not at.exception and not at.error
    sets = {ts.name: ts for ts in list_transfer_sets()}
    assert sets["gallery-5"].size == 5 and sets["gallery-5"].provenance["how"] == "class gallery"
    assert f"teaches {klass}, most confident first" in sets["gallery-5"].provenance["details"]
    assert sets["balanced-40"].size == 40 and sets["balanced-40"].provenance["how"] == "strategy"
    assert "budget 40" in sets["balanced-40"].provenance["details"]


def test_unlabeled_page_without_runs_says_so(isolated_env):
    at = page("ui/unlabeled.py").run()
    assert not at.exception
    assert "No run with a trained teacher" in at.info[0].value


def test_extraction_page_compares_each_student_with_the_teacher(tiny_run):
    at = page("ui/extraction.py").run()
    assert not at.exception and not at.error
    assert at.title[0].value == "Model extraction"
    assert [m.label for m in at.metric] == ["blind: agreement", "blind: mean KL",
                                            "finetune-kall: agreement", "finetune-kall: mean KL"]
    assert len(at.get("plotly_chart")) == 2  # agreement and KL per class
    table = at.dataframe[0].value
    assert len(table) == 2 * 11 and set(table["model"]) == {"blind", "finetune-kall"}
    assert (table["class"] == ALL).sum() == 2


def test_extraction_page_waits_for_a_student(tiny_run):
    _run_id, path = tiny_run
    for stage in ("blind", "finetune-kall"):
        ExploreSession(path).run.checkpoint(stage).unlink()
    at = page("ui/extraction.py").run()
    assert not at.exception and "only its teacher" in at.info[0].value
