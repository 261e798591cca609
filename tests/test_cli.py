"""The CLI: run --json, datasets, reproduce's table, --help, and clean errors."""
import json
import re

import pytest

import bdcore.cli as cli
from bdcore.cli import main
from bdcore.config import ExperimentConfig
from bdcore.experiment import ExperimentResult, run_experiment
from bdcore.reproduce import TABLE1, RowResult

TINY_ARGS = ["--teacher", "mlp", "--student", "mlp", "--teacher-epochs", "1", "--blind-epochs", "1",
             "--finetune-epochs", "1", "--finetune-k", "2", "all", "--finetune-min-steps", "1",
             "--batch-size", "64", "--device", "cpu"]


def test_run_json_prints_one_object(tiny_data, capsys):
    assert main(["run", *TINY_ARGS, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["finetune_acc"]) == {"2", "all"}
    for key in ("teacher_acc", "blind_acc", "seconds", "device", "seed", "run_dir"):
        assert key in out
    assert 0 <= out["blind_acc"] <= 1 and out["seed"] == 0


def test_run_prints_a_summary(tiny_data, capsys):
    assert main(["run", *TINY_ARGS, "--no-finetune-augment"]) == 0
    out = capsys.readouterr().out
    assert "teacher accuracy" in out and "fine-tuned, k=all" in out and "run directory" in out


def test_bad_options_give_one_clear_error(tiny_data, capsys):
    assert main(["run", *TINY_ARGS, "--temperature", "-1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid experiment config") and "Traceback" not in err


def test_missing_dataset_gives_one_clear_error(isolated_env, capsys):
    assert main(["run", *TINY_ARGS, "--labeled", "kmnist"]) == 2
    err = capsys.readouterr().err
    assert "dataset 'kmnist' was not found" in err and "Folders searched" in err


def test_datasets_lists_sources(tiny_data, capsys):
    assert main(["datasets", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["prepared"] == []  # nothing prepared yet
    rows = {r["name"]: r for r in listed["datasets"]}
    assert rows["mnist"]["source"] == f"data dir: {tiny_data / 'mnist'}"
    assert not rows["kmnist"]["found"] and rows["kmnist"]["searched"]
    assert main(["datasets"]) == 0
    assert "not found locally" in capsys.readouterr().out


def test_help_documents_every_config_option(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = capsys.readouterr().out
    for name in ExperimentConfig.__dataclass_fields__:
        flag = "--" + name.replace("_", "-").removesuffix("s" if name == "finetune_ks" else "")
        assert flag in text, flag


def test_reproduce_json_lists_rows_with_paper_figures(tiny_data, monkeypatch, capsys):
    """The table machinery, on tiny data: one row per teacher/student pair, beside the paper."""
    def fake_table(name, **kwargs):
        config = ExperimentConfig(teacher="mlp", student="mlp", teacher_epochs=1, blind_epochs=1,
                                  finetune_epochs=1, batch_size=64, device="cpu")
        result = run_experiment(config)
        return [RowResult(r.teacher, r.student, r.paper, result) for r in TABLE1.rows]

    monkeypatch.setattr(cli, "run_table", fake_table)
    assert main(["reproduce", "table1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["teacher"], r["student"]) for r in rows] == [
        ("cnn", "cnn"), ("mlp", "mlp"), ("cnn", "mlp"), ("mlp", "cnn")]
    assert rows[0]["paper"] == {"teacher": 0.995, "blind": 0.962, "all": 0.996}
    assert all(isinstance(r["meets_paper"], bool) for r in rows)
    assert main(["reproduce", "table1"]) == 0
    out = capsys.readouterr().out
    assert "Table 1" in out and re.search(r"wall time \d+ s for the whole table", out)


def test_reproduce_with_seeds_prints_mean_and_std_beside_the_paper(tiny_data, monkeypatch, capsys):
    """--seeds 3 runs the table once per seed and prints each figure's mean +- sample std."""
    seeds = []

    def fake_table(name, seed, **kwargs):
        seeds.append(seed)
        rows = []
        for r in TABLE1.rows:
            blind = r.paper["blind"] + (seed - 11) / 100  # seeds 10, 11, 12: paper -1, 0, +1 points
            result = ExperimentResult(r.paper["teacher"], blind, {"all": r.paper["all"]}, {}, False, "cpu",
                                      seed, "")
            rows.append(RowResult(r.teacher, r.student, r.paper, result))
        return rows

    monkeypatch.setattr(cli, "run_table", fake_table)
    assert main(["reproduce", "table1", "--seed", "10", "--seeds", "3"]) == 0
    out = capsys.readouterr().out
    assert seeds == [10, 11, 12] and "mean +- std over 3 seeds" in out
    assert "96.20% +- 1.00% (96.20%)" in out and out.count(" yes") == 4
    assert main(["reproduce", "table1", "--seeds", "0"]) == 2
    assert "--seeds must be at least 1" in capsys.readouterr().err
