"""The curation loop in the app and the CLI: a transfer set is listed on the Datasets page and
relaunched there in one click, offered as an unlabeled set on the Launch page, and a child run is
compared with its parent on the Runs page; `python -m bdcore subsets` makes, lists, shows, joins
and deletes them, and relaunches."""
import json

import numpy as np
import pytest

from bdcore.cli import main
from bdcore.curation import transfer_sets
from bdcore.curation.transfer_sets import Part
from bdcore.store import RunStore

from embeddings_helpers import make_finished_run
from test_app import by_label, finished_run, no_workers, page  # noqa: F401 (no_workers: a fixture, used by name)

pytestmark = pytest.mark.usefixtures("no_workers")


def saved_from(run_id: str, name: str = "picked") -> transfer_sets.TransferSet:
    return transfer_sets.save(name, [Part("fashion-mnist", np.arange(0, 100, 2), 200)],
                              {"run": run_id, "model": "teacher", "how": "strategy", "details": "balanced"})


def test_datasets_page_lists_a_transfer_set_and_relaunches_its_run_on_it(tiny_data):
    store = RunStore()
    parent = finished_run(store, teacher="mlp", student="mlp", unlabeled_limit=150, seed=3)
    ts = saved_from(parent)
    at = page("ui/datasets.py").run()
    assert not at.exception
    assert any("subset:picked" in m.value and "50 images (50 of fashion-mnist)" in m.value
               for m in at.markdown)
    by_label(at.button, "Relaunch its run on subset:picked").click().run()
    assert not at.exception and not at.error
    [child] = [r for r in store.list() if r.id != parent]
    assert child.config.unlabeled == ts.spec and child.config.unlabeled_limit is None
    assert (child.config.teacher, child.config.seed) == ("mlp", 3)  # the parent's settings: its teacher
    assert any("launched in the background" in s.value for s in at.success)


def test_deleting_a_transfer_set_asks_first_and_names_the_runs_trained_on_it(tiny_data):
    store = RunStore()
    ts = saved_from(finished_run(store))
    child = finished_run(store, unlabeled=ts.spec)
    at = page("ui/datasets.py").run()
    by_label(at.button, "Delete").click().run()  # the transfer set's (no upload, nothing prepared)
    assert child in at.warning[0].value and transfer_sets.list_transfer_sets()
    by_label(at.button, "Yes, delete it").click().run()
    assert not at.exception and not transfer_sets.list_transfer_sets()


def test_launch_page_offers_transfer_sets_as_unlabeled_sets_only(tiny_data):
    saved_from("some-run")
    at = page("ui/launch.py").run()
    labeled, unlabeled = at.selectbox(key="labeled_choice"), at.selectbox(key="unlabeled_choice")
    assert "transfer set: picked (50)" in unlabeled.options
    assert not any(o.startswith("transfer set") for o in labeled.options)
    unlabeled.set_value("transfer set: picked (50)").run()
    assert not at.exception and not at.error
    assert any("50 images (50 of fashion-mnist)" in c.value for c in at.caption)  # its preview's source


def test_runs_page_compares_a_child_with_its_parent(tiny_data):
    store = RunStore()
    parent = finished_run(store)
    child = finished_run(store, unlabeled=saved_from(parent).spec)
    at = page("ui/runs.py").run()
    at.selectbox(key="action_run").set_value(child).run()
    assert any(f"from run {parent}" in m.value for m in at.markdown)
    frame = at.dataframe[1].value
    assert list(frame["stage"]) == ["teacher", "blind", "fine-tune k=all"]
    assert frame["change"].tolist() == pytest.approx([0.0, 0.0, 0.0])
    by_label(at.button, "Compare their curves").click().run()
    assert at.multiselect(key="compare").value == [parent, child]


def test_subsets_cli_makes_relaunches_lists_shows_joins_and_deletes(tiny_data, capsys):
    store = RunStore()
    run_id, _ = make_finished_run(store)
    assert main(["subsets", "make", run_id, "--strategy", "top_confident", "--budget", "60", "--name",
                 "best", "--relaunch", "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["size"] == 60 and made["provenance"]["run"] == run_id
    assert store.get(made["relaunched"]).config.unlabeled == "subset:best"
    assert main(["subsets", "make", run_id, "--strategy", "random", "--budget", "10", "--name", "few"]) == 0
    assert "saved subset:few: 10 images (10 of fashion-mnist)" in capsys.readouterr().out
    assert main(["subsets", "union", "both", "subset:best", "subset:few"]) == 0
    assert main(["subsets"]) == 0
    listed = capsys.readouterr().out
    assert "subset:both" in listed and "union" in listed
    assert main(["subsets", "show", "best"]) == 0
    assert "strategy: top_confident" in capsys.readouterr().out
    assert main(["subsets", "delete", "few", "both"]) == 0
    assert [ts.name for ts in transfer_sets.list_transfer_sets()] == ["best"]


@pytest.mark.parametrize("args, message", [
    (["make", "nope", "--budget", "5", "--name", "x"], "no run 'nope'"),
    (["make", "RUN", "--budget", "5", "--name", "a b"], "not usable"),
    (["make", "RUN", "--budget", "0", "--name", "x"], "budget must be at least 1"),
    (["make", "RUN", "--budget", "5", "--name", "x", "--model", "finetune-k3"],
     "no 'finetune-k3' checkpoint"),
    (["show", "missing"], "no transfer set named 'missing'"),
    (["union", "u", "subset:missing"], "at least two sets"),
])
def test_subsets_cli_errors_are_one_line(tiny_data, capsys, args, message):
    run_id, _ = make_finished_run(RunStore())
    assert main(["subsets", *[run_id if a == "RUN" else a for a in args]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_datasets_page_joins_transfer_sets_and_whole_datasets(tiny_data):
    saved_from("run-a", "evens")
    at = page("ui/datasets.py").run()
    at.multiselect[0].set_value(["subset:evens", "mnist"])
    at.text_input[0].input("evens-and-digits")
    by_label(at.button, "Join").click().run()
    assert not at.exception and not at.error
    joined = transfer_sets.load("evens-and-digits")
    assert joined.size == 250 and joined.sources == ["fashion-mnist", "mnist"]
    assert any("Saved subset:evens-and-digits" in s.value for s in at.success)
