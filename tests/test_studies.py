"""Studies: a spec's runs (every combination of its axes), launching them through the queue as one
group, cancelling and resuming the group, the views over seeds, the exports, the CLI and the page."""
import json

import pytest

from bdcore import studies
from bdcore.cli import main
from bdcore.store import RunStore, Status
from bdcore.studies import StudyError, StudySpec
from bdcore.study_views import best, matrix, over_seeds, runs_frame, to_latex

from test_app import no_workers, page  # noqa: F401 (no_workers: a fixture, used by name)

pytestmark = pytest.mark.usefixtures("no_workers")


def test_a_spec_runs_every_combination_of_its_axes_on_its_preset():
    spec = StudySpec("m", "quick", {"blind_epochs": 2}, {"teacher": ["mlp", "cnn"], "seed": [0, 1, 2]})
    assert spec.validate().size() == 6
    assert spec.points()[:2] == [{"teacher": "mlp", "seed": 0}, {"teacher": "mlp", "seed": 1}]
    configs = spec.configs()
    assert {(c.teacher, c.seed) for c in configs} == {(t, s) for t in ("mlp", "cnn") for s in range(3)}
    assert all(c.blind_epochs == 2 and c.batch_size == 64 for c in configs)  # base on top of the preset


@pytest.mark.parametrize("spec, message", [
    (StudySpec("a b"), "name 'a b'"),
    (StudySpec("x", "fast"), "preset 'fast'"),
    (StudySpec("x", axes={"temp": [1]}), "'temp' is not a config field"),
    (StudySpec("x", axes={"seed": []}), "non-empty list"),
    (StudySpec("x", axes={"seed": [1, 1]}), "repeats a value"),
    (StudySpec("x", base={"seed": 1}, axes={"seed": [2]}), "both in base and an axis"),
    (StudySpec("x", axes={"seed": list(range(30)), "temperature": list(range(1, 30))}),
     "would queue 870 runs"),
])
def test_a_bad_spec_is_refused_with_every_problem_named(spec, message):
    with pytest.raises(StudyError, match=message):
        spec.validate()


def test_a_bad_combination_refuses_the_whole_study_before_anything_is_queued(isolated_env):
    spec = StudySpec("t", "quick", axes={"temperature": [1.0, -1.0]})
    with pytest.raises(StudyError, match=r"run \{'temperature': -1.0\}.*temperature must be > 0"):
        studies.launch(spec, RunStore())
    assert RunStore().list() == [] and studies.list_studies() == []


def test_a_study_file_is_read_and_checked(tmp_path):
    path = tmp_path / "tsweep.toml"
    path.write_text('preset = "quick"\n[base]\nteacher = "cnn"\n'
                    '[axes]\ntemperature = [1, 5.0]\nseed = [0, 1]\n')
    spec = StudySpec.from_toml(path)
    assert (spec.name, spec.size(), spec.base) == ("tsweep", 4, {"teacher": "cnn"})
    path.write_text("[axes\n")
    with pytest.raises(StudyError, match="not a readable TOML study file"):
        StudySpec.from_toml(path)
    path.write_text('runs = 3\n')
    with pytest.raises(StudyError, match="unknown keys runs"):
        StudySpec.from_toml(path)


def test_a_launched_study_queues_shares_cancels_and_resumes_as_a_group(tiny_data):
    store = RunStore()
    spec = StudySpec("s", "quick", axes={"teacher": ["mlp", "cnn"], "seed": [0, 1]})
    study = studies.launch(spec, store)
    assert len(set(study.run_ids)) == 4 and all(store.get(i).status == Status.QUEUED for i in study.run_ids)
    with pytest.raises(StudyError, match="exists already"):
        studies.launch(spec, store)
    again = studies.launch(StudySpec("s2", "quick", axes={"teacher": ["mlp"], "seed": [0, 1]}), store)
    assert again.run_ids == study.run_ids[:2]  # identical runs are shared, not queued twice
    assert studies.load("s").run_ids == study.run_ids  # the study survives the process (a file)
    assert studies.cancel(study, store) == 4
    assert all(store.get(i).status == Status.CANCELLED for i in study.run_ids)
    assert studies.resume(study, store) == 4
    assert all(store.get(i).status == Status.QUEUED for i in study.run_ids)
    studies.delete("s")
    assert [s.spec.name for s in studies.list_studies()] == ["s2"] and len(store.list()) == 4


def finish(store: RunStore, run_id: str, blind: float, tuned: float) -> None:
    store.mark_succeeded(run_id, {"teacher_acc": 0.99, "blind_acc": blind, "finetune_acc": {"all": tuned},
                                  "seconds": {}})


def test_views_give_means_over_seeds_the_matrix_the_best_and_latex(tiny_data):
    store = RunStore()
    study = studies.launch(StudySpec("v", "quick", axes={"teacher": ["mlp", "cnn"], "student": ["mlp"],
                                                         "seed": [0, 1]}), store)
    for run_id, blind in zip(study.run_ids, [0.80, 0.90, 0.60, 0.70], strict=True):
        finish(store, run_id, blind, 0.95)
    frame = runs_frame(study, studies.records(study, store))
    means = over_seeds(frame, list(study.spec.axes))
    assert means["blind acc mean"].tolist() == pytest.approx([0.85, 0.65])
    assert means["blind acc std"].tolist() == pytest.approx([0.0707, 0.0707], abs=1e-4)
    assert means["runs done"].tolist() == [2, 2]
    assert matrix(frame, "teacher", "student", "blind acc").loc["cnn", "mlp"] == pytest.approx(0.65)
    assert best(frame, list(study.spec.axes), "blind acc") == {"teacher": "mlp", "student": "mlp",
                                                               "blind acc": pytest.approx(0.85)}
    latex = to_latex(means, "Study v")
    assert "\\toprule" in latex and "\\bottomrule" in latex and "85.00 $\\pm$ 7.07" in latex


def test_study_cli_launches_lists_shows_and_exports(tiny_data, capsys, tmp_path):
    assert main(["study", "launch", "--name", "c", "--preset", "quick", "--axis", "temperature=2,20",
                 "--axis", "seed=0,1", "--dry-run"]) == 0
    assert "4 runs (nothing queued" in capsys.readouterr().out and RunStore().list() == []
    assert main(["study", "launch", "--name", "c", "--preset", "quick", "--set", "teacher=mlp",
                 "--axis", "temperature=2,20", "--axis", "seed=0,1"]) == 0
    assert "4 runs queued" in capsys.readouterr().out
    study = studies.load("c")
    for run_id in study.run_ids:
        finish(RunStore(), run_id, 0.5, 0.9)
    assert main(["study", "list"]) == 0
    assert "4/4 runs succeeded" in capsys.readouterr().out
    assert main(["study", "wait", "c", "--every", "0.1"]) == 0  # nothing left: returns at once
    assert "study c: 4 succeeded" in capsys.readouterr().out
    assert main(["study", "wait", "c", "--every", "0"]) == 2
    assert "--every must be a positive number" in capsys.readouterr().err
    assert main(["study", "show", "c", "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [r["temperature"] for r in shown] == ["2.0", "20.0"] and shown[0]["blind acc mean"] == 0.5
    assert main(["study", "show", "c", "--format", "latex"]) == 0
    assert "\\begin{tabular}" in capsys.readouterr().out
    assert main(["study", "launch", "--name", "d", "--axis", "temperature=hot"]) == 2
    assert "temperature: 'hot' is not float" in capsys.readouterr().err


def test_studies_page_launches_a_matrix_and_shows_its_heatmap(tiny_data):
    at = page("ui/studies.py").run()
    assert not at.exception and "No studies yet" in at.info[0].value
    at.text_input[0].input("grid")
    at.multiselect[0].set_value(["mlp", "cnn"])
    at.multiselect[1].set_value(["mlp"])
    at.button[0].click().run()
    assert not at.exception and "2 runs queued" in at.success[0].value
    study = studies.load("grid")
    for run_id, blind in zip(study.run_ids, [0.8, 0.6], strict=True):
        finish(RunStore(), run_id, blind, 0.95)
    at.run()
    assert not at.exception
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert any(t.startswith("blind acc: teacher (rows) x student") for t in titles)
    assert any(s.value.startswith("Best: teacher mlp, student mlp, temperature 20.0: blind acc 80.00%")
               for s in at.success)

    def formats() -> set[str]:  # what each chart's camera icon saves
        return {json.loads(c.proto.config)["toImageButtonOptions"]["format"] for c in at.get("plotly_chart")}

    assert formats() == {"png"}
    next(r for r in at.radio if r.label == "charts download as").set_value("svg")
    at.run()
    assert not at.exception and formats() == {"svg"}


def test_baselines_run_beside_every_combination_on_their_own_data(tiny_data):
    spec = StudySpec("b", "quick", axes={"student": ["mlp", "cnn"]}, baselines=["in_distribution", "noise"])
    configs = spec.validate().configs()
    assert spec.size() == 6 and [p["baseline"] for p in spec.points()[:3]] == ["blind", "in_distribution",
                                                                                "noise"]
    assert [c.unlabeled for c in configs[:3]] == ["fashion-mnist", "mnist", "noise"]
    from bdcore.data import load_pair

    noise = load_pair(configs[2].pair_spec())
    assert noise.unlabeled_x.shape[1:] == noise.train_x.shape[1:] and noise.unlabeled_labels is None
    assert len(noise.unlabeled_x) == 10_000  # the quick preset's unlabeled_limit
    with pytest.raises(StudyError, match="baseline 'teacherless'"):
        StudySpec("x", baselines=["teacherless"]).validate()


def test_runs_differing_only_in_seed_are_grouped_with_mean_and_std(tiny_data):
    from bdcore.reports import seed_groups

    store = RunStore()
    study = studies.launch(StudySpec("g", "quick", axes={"temperature": [2.0, 20.0], "seed": [0, 1]}), store)
    for run_id, blind in zip(study.run_ids, [0.5, 0.7, 0.8, 0.8], strict=True):
        finish(store, run_id, blind, 0.9)
    groups = seed_groups(store.list()).sort_values("runs")
    assert len(groups) == 2 and set(groups["seeds"]) == {"1, 0"}
    assert sorted(groups["blind mean"]) == pytest.approx([0.6, 0.8])
    assert sorted(groups["blind std"]) == pytest.approx([0.0, 0.1414], abs=1e-4)
    at = page("ui/runs.py").run()
    assert not at.exception and any("differ only in seed" in e.label for e in at.expander)


def test_the_no_teacher_baseline_skips_the_blind_stage_and_fine_tunes_on_hard_labels(tiny_data):
    from dataclasses import replace

    from bdcore.experiment import run_experiment

    spec = StudySpec("n", "quick", base={"teacher": "mlp", "student": "mlp", "finetune_ks": ["5"]},
                     baselines=["no_teacher"])
    blind, alone = spec.validate().configs()
    assert (alone.blind_epochs, alone.hard_label_weight) == (0, 1.0) and blind.blind_epochs == 3
    result = run_experiment(replace(alone, teacher_epochs=1, finetune_epochs=1))
    assert 0 <= result.blind_acc <= 1 and set(result.finetune_acc) == {"5"}  # the untrained student's
    assert "blind" in result.seconds  # a stage of the ledger like any other, resumable


def test_every_run_records_a_reproducibility_manifest(tiny_data):
    from bdcore.config import ExperimentConfig
    from bdcore.experiment import run_experiment
    from bdcore.runs import RunDir

    config = ExperimentConfig(teacher="mlp", student="mlp", teacher_epochs=1, blind_epochs=1,
                              finetune_epochs=1, finetune_ks=["5"], seed=7)
    run = RunDir(run_experiment(config).run_dir)
    manifest = json.loads(run.manifest_path.read_text())
    assert manifest["seed"] == 7 and manifest["device"].startswith("cpu")
    assert manifest["libraries"]["torch"] and len(manifest["code"]) >= 7
    assert manifest["data"]["unlabeled"]["images"] == 200
    assert len(manifest["data"]["labeled test"]["fingerprint"]) == 16
    again = RunDir(run_experiment(config).run_dir)  # the same data, the same fingerprints
    assert json.loads(again.manifest_path.read_text())["data"] == manifest["data"]


def test_several_ks_per_run_give_accuracy_against_k(tiny_data):
    from bdcore.study_views import by_k

    store = RunStore()
    study = studies.launch(StudySpec("k", "quick", base={"finetune_ks": ["10", "all", "5"]},
                                     axes={"seed": [0, 1]}), store)
    for run_id, bump in zip(study.run_ids, [0.0, 0.02], strict=True):
        store.mark_succeeded(run_id, {"teacher_acc": 0.99, "blind_acc": 0.8, "seconds": {},
                                      "finetune_acc": {"5": 0.9 + bump, "10": 0.93 + bump, "all": 0.97}})
    long = by_k(runs_frame(study, studies.records(study, store)))
    means = over_seeds(long.assign(k=long["k"].astype(str)), ["seed", "k"])
    assert means["k"].tolist() == ["5", "10", "all"]
    assert means["fine-tune acc mean"].tolist() == pytest.approx([0.91, 0.94, 0.97])
    at = page("ui/studies.py").run()
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert not at.exception and any(t.startswith("fine-tune acc against k") for t in titles)
