"""The Unlabeled explorer page through AppTest, on a tiny finished run with real checkpoints."""
import pytest

from bdcore.store import RunStore

from embeddings_helpers import make_finished_run
from test_app import page


@pytest.fixture
def tiny_run(tiny_data):
    return make_finished_run(RunStore())


def test_unlabeled_page_shows_coverage_affinity_galleries_and_neighbours(tiny_run):
    at = page("ui/unlabeled.py").run()
    assert not at.exception and not at.error
    assert len(at.get("plotly_chart")) == 2  # coverage and affinity heatmap
    table = at.dataframe[0].value if len(at.dataframe) == 1 else at.dataframe[1].value
    assert len(table) == 10 and set(table["maps to"]) <= {str(d) for d in range(10)}
    assert "Trouser" in set(table["unlabeled class"])
    assert len(at.image) == 10 + 1 + 2  # a gallery per class, ambiguous tiles, a query and its neighbours
    assert len(at.image[-1].value) == 8  # k nearest labeled neighbours
    at.number_input[0].set_value(5).run()  # another unlabeled image's neighbours
    assert not at.exception


def test_unlabeled_page_without_runs_says_so(isolated_env):
    at = page("ui/unlabeled.py").run()
    assert not at.exception
    assert "No run with a trained teacher" in at.info[0].value
