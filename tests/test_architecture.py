"""One owner per concept: stage names, run file names, run state, settings and user errors."""
import dataclasses
import json
import re
from pathlib import Path

import pytest

import bdcore.cli as cli
from bdcore import jobs
from bdcore.cli import main
from bdcore.config import SEED_OFFSETS, ExperimentConfig, field_help
from bdcore.errors import ConfigError, RunNotFoundError, RunStateError, UserError
from bdcore.runs import RunDir, RunsRoot
from bdcore.stage_names import finetune_stage, run_stages, sort_stages, stage_kind
from bdcore.store import RunStore, Status
from bdcore.train import EpochReport
from bdcore.worker import stage_progress

from test_cli import TINY_ARGS

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(teacher="mlp", student="mlp", teacher_epochs=1, blind_epochs=1, finetune_epochs=1,
            finetune_ks=["all"], finetune_min_steps=1, batch_size=64, device="cpu")


def test_stage_names_are_built_classified_and_sorted_in_one_place():
    assert finetune_stage(10) == "finetune-k10" and finetune_stage(None) == "finetune-kall"
    assert run_stages([10, None]) == ["teacher", "blind", "finetune-k10", "finetune-kall"]
    assert [stage_kind(n) for n in ("teacher", "blind", "finetune-k5", "finetune-kall")] == [
        "teacher", "blind", "finetune", "finetune"]
    assert stage_kind("blind.e3") is None and stage_kind("finetune-kx") is None
    shuffled = ["finetune-kall", "finetune-k100", "blind.e2", "finetune-k20", "blind", "teacher", "notes"]
    assert sort_stages(shuffled) == ["teacher", "blind", "finetune-k20", "finetune-k100", "finetune-kall"]


def test_k_is_normalised_when_the_config_is_built_and_validate_changes_nothing():
    config = ExperimentConfig(finetune_ks=["010", " ALL ", 5])
    assert config.finetune_ks == ["10", "all", "5"]
    assert config.stage_names() == ["teacher", "blind", "finetune-k10", "finetune-kall", "finetune-k5"]
    before = dataclasses.replace(config)
    assert config.validate() is config and config == before
    bad = ExperimentConfig(finetune_ks=["ten", "010", "10"])
    with pytest.raises(ConfigError) as err:
        bad.validate()
    assert "'ten'" in str(err.value) and "each k once" in str(err.value)
    assert bad.finetune_ks == ["ten", "10", "10"]  # reported, not rewritten


def test_k_010_trains_logs_and_checkpoints_one_stage_name(tiny_data, isolated_env, capsys):
    """The bug this fixes: `--finetune-k 010` wrote checkpoint finetune-k010 but logged epochs as
    finetune-k10, so the progress bar fell back to stage 0."""
    args = [a if a != "2" else "010" for a in TINY_ARGS]
    assert main(["run", *args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    run = RunDir(out["run_dir"])
    assert set(out["finetune_acc"]) == {"10", "all"}
    assert run.checkpoint_stages() == ["teacher", "blind", "finetune-k10", "finetune-kall"]
    assert {r["stage"] for r in run.metrics()} == set(run.checkpoint_stages())
    config = run.config()
    last = [r for r in run.metrics() if r["stage"] == "finetune-k10"][-1]
    assert stage_progress(config.stage_names(), EpochReport(**last)) == pytest.approx(3 / 4)


def test_stage_plans_carry_each_stages_settings_and_seed():
    config = ExperimentConfig(seed=7, teacher_epochs=3, blind_epochs=4, finetune_epochs=1,
                              finetune_min_steps=10, batch_size=10, blind_augment=True,
                              blind_augment_strength=2.0)
    teacher, blind = config.stage_plan("teacher"), config.stage_plan("blind")
    assert (teacher.settings.epochs, teacher.settings.input_noise, teacher.seed) == (3, 0.5, 7)
    assert (blind.settings.epochs, blind.settings.augment_strength, blind.seed) == (4, 2.0, 8)
    tune = config.stage_plan("finetune-k5", examples=50)  # 5 steps an epoch: 2 epochs reach 10 steps
    assert (tune.name, tune.settings.epochs, tune.settings.schedule, tune.seed) == (
        "finetune-k5", 2, "linear", 9)
    assert {plan.settings.augment_kind for plan in (teacher, blind, tune)} == {"affine"}
    cropped = dataclasses.replace(config, augment_kind="crop_flip")
    assert all(cropped.stage_plan(stage, examples=50).settings.augment_kind == "crop_flip"
               for stage in ("teacher", "blind", "finetune-k5"))
    spec = config.pair_spec()
    assert (spec.labeled_seed, spec.unlabeled_seed) == (7 + SEED_OFFSETS["labeled subset"],
                                                         7 + SEED_OFFSETS["unlabeled subset"])


def test_every_config_field_has_help_that_the_cli_shows(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for f in dataclasses.fields(ExperimentConfig):
        assert field_help(f.name) and " ".join(field_help(f.name).split())[:40] in text, f.name


# A file name of a run, spelled as a literal: only runs.py may hold one.
RUN_FILE_NAMES = re.compile(r"""["'][^"'\n]*(\.safetensors|\.state\.pt|\.last\.json|config\.json|"""
                            r"""metrics\.jsonl|stages\.json|final\.json|runs\.db|teacher\.json|"""
                            r"""explore-cache|\.log)["']""")


def test_only_runs_py_spells_a_file_name_of_a_run():
    offenders = []
    for path in sorted([*ROOT.glob("bdcore/**/*.py"), *ROOT.glob("ui/*.py"), ROOT / "app.py"]):
        if path.name == "runs.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if RUN_FILE_NAMES.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_runs_root_and_run_dir_give_every_path(tmp_path):
    root = RunsRoot(tmp_path)
    assert RunsRoot.holding(root.store_path).path == root.path
    assert RunStore(root.store_path).root.path == root.path
    assert root.teacher_weights("k").parent == root.teacher_record("k").parent
    run = RunDir.create(ExperimentConfig(), root, name="r1")
    assert run.config_path.exists() and [r.path for r in root.run_folders()] == [run.path]
    for stage in ("teacher", "finetune-k10"):
        run.checkpoint(stage).write_bytes(b"")
    for path in run.epoch_files("blind", 3):
        path.write_bytes(b"")
    assert run.checkpoint_stages() == ["teacher", "finetune-k10"]  # per-epoch files are not stages
    assert run.epoch_files_except("blind", 3) == []
    assert sorted(run.epoch_files_except("blind", 4)) == sorted(run.epoch_files("blind", 3))


def test_the_store_owns_status_transitions(isolated_env):
    store = RunStore()
    first, second = store.add(ExperimentConfig(**TINY)), store.add(ExperimentConfig(**TINY))
    assert store.get(first).status is Status.QUEUED
    assert store.claim_next(max_running=1) == (first, None) and store.claim_next(max_running=1) is None
    with pytest.raises(RunStateError, match="only failed or cancelled runs can be resumed"):
        store.requeue(first)
    with pytest.raises(RunStateError, match="cancel it before deleting"):
        store.delete(first)
    store.cancel(first)  # running: its worker is asked to stop
    assert store.get(first).status is Status.RUNNING
    assert store.beat(first) is True  # the worker's heartbeat learns of the cancel
    store.mark_cancelled(first, "stopped")
    store.cancel(second)  # queued: cancelled at once
    assert store.get(second).status is Status.CANCELLED
    with pytest.raises(RunStateError, match="only queued or running runs can be cancelled"):
        store.cancel(second)
    store.requeue(first)
    assert store.get(first).status is Status.QUEUED and store.get(first).error is None
    assert store.claim_next(max_running=1) == (first, None)
    store.set_teacher_reused(first)
    store.mark_succeeded(first, {"teacher_acc": 0.9})
    record = store.get(first)
    assert (record.status, record.progress, record.final, record.teacher_reused) == (
        Status.SUCCEEDED, 1.0, {"teacher_acc": 0.9}, True)
    with pytest.raises(RunNotFoundError) as err:
        store.get("nope")
    assert str(err.value).startswith("no run with id 'nope'")  # no KeyError quoting


def test_no_sql_outside_the_store():
    for path in ROOT.glob("bdcore/**/*.py"):
        if path.name != "store.py":
            assert not re.search(r"\b(SELECT|UPDATE|INSERT)\b", path.read_text()), path


def test_user_errors_print_one_line_with_exit_2_and_bugs_keep_their_traceback(tiny_data, monkeypatch, capsys):
    assert main(["jobs", "cancel", "no-such-run"]) == 2
    assert capsys.readouterr().err.startswith("error: no run with id 'no-such-run'")

    def bug(*_args, **_kwargs):
        return {}["missing"]  # an internal KeyError: a bug, not the user's fault

    monkeypatch.setattr(cli, "run_experiment", bug)
    with pytest.raises(KeyError):
        main(["run", *TINY_ARGS])


def test_user_error_kinds_are_user_errors():
    from bdcore.data import CollectionError, CorruptFileError, DatasetNotFoundError
    from bdcore.embeddings import ExploreError

    for kind in (ConfigError, RunNotFoundError, RunStateError, CorruptFileError, DatasetNotFoundError,
                 CollectionError, ExploreError):
        assert issubclass(kind, UserError), kind


def test_resume_after_cancel_keeps_the_run_in_the_queue(isolated_env, monkeypatch):
    monkeypatch.setattr(jobs.LocalBackend, "start", lambda self, store, record, gpu, command, cwd: 12345)
    store = RunStore()
    run_id = jobs.submit(store, ExperimentConfig(**TINY)).run_id
    assert store.get(run_id).status is Status.RUNNING and store.get(run_id).pid == 12345
    store.mark_failed(run_id, "killed")
    jobs.resume(store, run_id)
    assert store.get(run_id).attempts == 2
