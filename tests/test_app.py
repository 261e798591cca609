"""Every page of the app through streamlit's AppTest (no browser): it renders without an
exception, shows what it should, and its buttons act on the run store."""
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from bdcore import jobs
from bdcore.config import ExperimentConfig, field_help
from bdcore.presets import preset_config
from bdcore.store import RunStore

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_workers(monkeypatch):
    """Queue runs without starting worker processes (their training is tested elsewhere)."""
    monkeypatch.setattr(jobs, "schedule", lambda store: [])


def page(name: str) -> AppTest:
    """A page run as the app runs it, through app.py's st.navigation (so page links resolve).
    AppTest finds a page of st.navigation only after a first run has registered them."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    return at if name == "app.py" else at.run().switch_page(name)


def by_label(widgets, label: str):
    return next(w for w in widgets if w.label == label)


def finished_run(store: RunStore, **overrides) -> str:
    run_id = store.add(ExperimentConfig(**overrides))
    for stage, epochs in (("teacher", 2), ("blind", 3), ("finetune-kall", 2)):
        for epoch in range(1, epochs + 1):
            store.add_epoch(run_id, {"stage": stage, "epoch": epoch, "epochs": epochs,
                                     "train_loss": 1 / epoch, "test_acc": 0.9 + epoch / 100,
                                     "lr": 1e-3, "seconds": 1.0}, 0.5)
    store.mark_succeeded(run_id, {"teacher_acc": 0.99, "blind_acc": 0.95, "finetune_acc": {"all": 0.995},
                                  "seconds": {"teacher": 10.0, "blind": 20.0}})
    return run_id


def test_app_routes_to_the_eight_pages_at_their_urls(isolated_env, monkeypatch):
    routed = []
    navigation = st.navigation
    monkeypatch.setattr(st, "navigation", lambda pages, **kw: routed.append(pages) or navigation(pages, **kw))
    at = page("app.py").run()
    assert not at.exception
    [pages] = routed
    assert [p.title for p in pages] == ["Home", "Launch", "Runs", "Embeddings", "Unlabeled explorer",
                                        "Model extraction", "Studies", "Datasets"]
    assert [p.url_path for p in pages] == ["", "Launch", "Runs", "Embeddings", "Unlabeled", "Extraction",
                                           "Studies", "Datasets"]
    assert "Set up your own run" in [link.value for link in at.get("page_link")]  # ui/launch.py resolved


def test_only_app_py_sets_the_page_config():
    assert (ROOT / "app.py").read_text().count("st.set_page_config(") == 1
    assert [p.name for p in (ROOT / "ui").glob("*.py") if "set_page_config" in p.read_text()] == []


def test_home_explains_and_launches_the_quick_run_first(tiny_data, no_workers):
    at = page("app.py").run()
    assert not at.exception
    assert at.title[0].value == "Blind Distillation Explorer"
    assert "soft labels" in at.markdown[0].value
    assert at.button[0].label.startswith("Quick demo")
    at.button[0].click().run()
    assert not at.exception
    [record] = RunStore().list()
    assert record.config == preset_config("quick") and record.status == "queued"
    assert "launched" in at.success[0].value


def test_home_paper_button_and_a_second_session_joins_the_same_run(tiny_data, no_workers):
    first = page("app.py").run()
    first.button[1].click().run()
    second = page("app.py").run()
    second.button[1].click().run()
    assert not second.exception
    [record] = RunStore().list()
    assert record.config == preset_config("paper")
    assert record.id in second.info[0].value and "instead of training it twice" in second.info[0].value


def test_home_says_when_the_demo_subset_is_used(isolated_env, no_workers):
    at = page("app.py").run()
    assert any("bundled demo subset" in i.value for i in at.info)


def test_launch_page_previews_both_datasets_and_launches(tiny_data, no_workers):
    at = page("ui/launch.py").run()
    assert not at.exception
    captions = " ".join(c.value for c in at.caption)
    assert str(tiny_data / "mnist") in captions and str(tiny_data / "fashion-mnist") in captions
    at.selectbox(key="labeled_choice")  # pickers exist
    at.number_input[0].set_value(5.0)  # temperature
    at.text_input[0].set_value("10, all")
    at.button[0].click().run()
    assert not at.exception
    [record] = RunStore().list()
    assert record.config.temperature == 5.0 and record.config.finetune_ks == ["10", "all"]


def test_launch_page_passes_the_distortion_settings_to_the_run(tiny_data, no_workers):
    at = page("ui/launch.py").run()
    by_label(at.number_input, "teacher input noise").set_value(0.3)
    by_label(at.checkbox, "augment unlabeled images").check()
    by_label(at.number_input, "unlabeled distortion strength").set_value(2.5)
    by_label(at.checkbox, "teacher scores each distorted fine-tune batch").uncheck()
    by_label(at.selectbox, "augmentation").set_value("crop_flip")
    at.button[0].click().run()
    assert not at.exception
    [record] = RunStore().list()
    config = record.config
    assert (config.teacher_input_noise, config.blind_augment, config.blind_augment_strength,
            config.finetune_fresh_teacher, config.augment_kind) == (0.3, True, 2.5, False, "crop_flip")


def test_launch_page_offers_processes_only_with_several_gpus(tiny_data, no_workers, monkeypatch):
    at = page("ui/launch.py").run()
    assert "processes (one GPU each)" not in [w.label for w in at.number_input]  # no GPU here
    monkeypatch.setattr("torch.cuda.device_count", lambda: 2)
    at = page("ui/launch.py").run()
    by_label(at.number_input, "processes (one GPU each)").set_value(2)
    at.button[0].click().run()
    assert not at.exception
    [record] = RunStore().list()
    assert record.procs == 2


def test_launch_page_help_is_the_config_fields_help(tiny_data, no_workers):
    at = page("ui/launch.py").run()
    assert by_label(at.number_input, "teacher input noise").help == field_help("teacher_input_noise")
    assert by_label(at.checkbox, "augment unlabeled images").help == field_help("blind_augment")
    assert by_label(at.selectbox, "teacher").help == field_help("teacher")
    assert by_label(at.selectbox, "augmentation").help == field_help("augment_kind")


def test_launch_page_refuses_bad_fields_with_a_message(tiny_data, no_workers):
    at = page("ui/launch.py").run()
    at.text_input[0].set_value("ten")
    at.button[0].click().run()
    assert not at.exception
    assert "Not launched" in at.error[0].value and "positive whole number" in at.error[0].value
    assert RunStore().list() == []


def test_launch_page_explains_a_missing_dataset(isolated_env, no_workers):
    at = page("ui/launch.py").run()
    at.selectbox(key="labeled_choice").set_value("kmnist").run()
    assert not at.exception
    assert any("dataset 'kmnist' was not found" in e.value for e in at.error)


def test_runs_page_shows_progress_curves_and_summary(tiny_data, no_workers):
    store = RunStore()
    finished_run(store)
    queued = store.add(ExperimentConfig(teacher="mlp", student="mlp"))
    at = page("ui/runs.py").run()
    assert not at.exception
    [table] = at.dataframe
    frame = table.value
    assert list(frame.columns) == ["run", "status", "progress", "stage", "teacher", "blind",
                                   "fine-tune k=all", "seconds", "note"]
    assert "None" not in frame.astype(str).to_numpy()  # a queued run's accuracies are blank
    assert frame.loc[frame["status"] == "queued", "teacher"].item() == ""
    [chart] = at.get("plotly_chart")  # one at a time: accuracy, or loss on request
    assert "test accuracy" in chart.proto.spec
    at.radio(key="curve").set_value("train_loss").run()
    [chart] = at.get("plotly_chart")
    assert "training loss" in chart.proto.spec
    assert at.get("download_button")
    at.selectbox[0].set_value(queued).run()
    at.button[0].click().run()  # Cancel
    assert store.get(queued).status == "cancelled"


def test_runs_page_keeps_a_cancel_click_while_the_store_changes(tiny_data, no_workers, monkeypatch):
    """Epochs landing while the page draws (here: a new change stamp at every look) do not make it
    redraw and drop the click that the run carries."""
    store = RunStore()
    queued = store.add(ExperimentConfig(teacher="mlp", student="mlp"))
    stamps = iter(range(10**6))
    monkeypatch.setattr(RunStore, "change_stamp", lambda self: next(stamps))
    at = page("ui/runs.py").run()
    at.selectbox[0].set_value(queued).run()
    at.button[0].click().run()  # Cancel
    assert not at.exception
    assert store.get(queued).status == "cancelled"


def test_runs_page_shows_the_launched_run_and_new_runs_without_a_click(tiny_data, no_workers):
    store = RunStore()
    older = [finished_run(store, seed=s) for s in range(4)]
    at = page("app.py").run()
    at.button[0].click().run()  # Home: quick demo
    [launched] = [r.id for r in store.list() if r.id not in older]
    at.switch_page("ui/runs.py").run()
    assert not at.exception
    compare = at.multiselect(key="compare").value
    assert set(compare) == {launched, *older[2:]}  # the launched run, and the newest three in all
    assert "Waiting for the first epoch" not in " ".join(i.value for i in at.info)  # others have curves
    newcomer = finished_run(store, seed=9)  # launched elsewhere while the page is open
    at.run()
    assert newcomer in at.multiselect(key="compare").value and launched in at.multiselect(key="compare").value
    at.multiselect(key="compare").unselect(launched).run()  # the user's choice stands
    at.run()
    chosen = at.multiselect(key="compare").value
    assert launched not in chosen
    at.switch_page("ui/launch.py").run()
    at.switch_page("ui/runs.py").run()  # and survives a visit to another page
    assert at.multiselect(key="compare").value == chosen


def test_runs_page_waits_for_the_first_epoch_of_a_launched_run(tiny_data, no_workers):
    at = page("app.py").run()
    at.button[0].click().run()
    at.switch_page("ui/runs.py").run()
    assert not at.exception
    assert any("Waiting for the first epoch" in i.value for i in at.info)
    assert "checked for changes every 2 s" in " ".join(c.value for c in at.caption)


def test_runs_page_refreshes_slowly_when_nothing_is_active(tiny_data, no_workers):
    finished_run(RunStore())
    at = page("ui/runs.py").run()
    assert "checked for changes every 15 s" in " ".join(c.value for c in at.caption)


def test_launch_page_offers_the_run_with_the_same_settings_and_can_force_a_new_one(tiny_data, no_workers):
    at = page("ui/launch.py").run()
    at.button[0].click().run()
    at.button[0].click().run()  # the same form again
    assert not at.exception
    [record] = RunStore().list()
    assert any(record.id in i.value for i in at.info)
    by_label(at.button, "Train a new run with these settings anyway").click().run()
    assert not at.exception
    assert len(RunStore().list()) == 2


def test_launch_page_starts_from_the_chosen_preset(tiny_data, no_workers):
    at = page("ui/launch.py").run()
    at.radio[0].set_value("quick").run()
    at.button[0].click().run()
    [record] = RunStore().list()
    quick = preset_config("quick")
    assert (record.config.teacher_epochs, record.config.batch_size, record.config.finetune_min_steps) == (
        quick.teacher_epochs, quick.batch_size, quick.finetune_min_steps)


def test_runs_page_with_no_runs(isolated_env, no_workers):
    at = page("ui/runs.py").run()
    assert not at.exception
    assert "No runs yet" in at.info[0].value
