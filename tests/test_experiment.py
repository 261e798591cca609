"""A whole experiment on tiny IDX data: the run directory, teacher reuse, repeatability, and the
guarantee that the blind stage sees only the unlabeled set."""
import json
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

import bdcore.experiment as experiment
from bdcore.config import ExperimentConfig
from bdcore.data import load_pair
from bdcore.experiment import run_experiment
from bdcore.reproduce import TABLE1
from bdcore.runs import RunDir, RunsRoot
from bdcore.teachers import teacher_key

TINY = dict(teacher="mlp", student="mlp", teacher_epochs=2, blind_epochs=2, finetune_epochs=1,
            finetune_ks=["5", "all"], finetune_min_steps=3, batch_size=64, device="cpu")


def test_run_directory_holds_config_metrics_final_and_checkpoints(tiny_data, isolated_env):
    result = run_experiment(ExperimentConfig(**TINY))
    run = RunDir(result.run_dir)
    assert run.path.parent == isolated_env / "runs"
    assert run.config() == ExperimentConfig(**TINY)
    stages = [m["stage"] for m in run.metrics()]
    assert stages == ["teacher"] * 2 + ["blind"] * 2 + ["finetune-k5"] * 3 + ["finetune-kall"]
    assert all(0 <= m["test_acc"] <= 1 for m in run.metrics())
    final = json.loads((run.path / "final.json").read_text())
    assert set(final["finetune_acc"]) == {"5", "all"}
    assert final["teacher_acc"] == result.teacher_acc and final["seed"] == 0
    for stage in ("teacher", "blind", "finetune-k5", "finetune-kall"):
        weights = load_file(str(run.checkpoint(stage)))
        assert weights["1.weight"].shape == (100, 784)


def test_teacher_is_reused_for_a_second_student(tiny_data):
    first = run_experiment(ExperimentConfig(**TINY))
    second = run_experiment(ExperimentConfig(**{**TINY, "student": "cnn"}))
    assert not first.teacher_reused and second.teacher_reused
    assert second.teacher_acc == first.teacher_acc
    teacher_epochs = [m for m in RunDir(second.run_dir).metrics() if m["stage"] == "teacher"]
    assert teacher_epochs == []
    changed = run_experiment(ExperimentConfig(**{**TINY, "teacher_lr": 0.01}))
    assert not changed.teacher_reused
    noisy = run_experiment(ExperimentConfig(**{**TINY, "teacher_input_noise": 0.25}))
    assert not noisy.teacher_reused


def test_same_seed_same_results(tiny_data, tmp_path):
    a = run_experiment(ExperimentConfig(**TINY), RunsRoot(tmp_path / "a"))
    b = run_experiment(ExperimentConfig(**TINY), RunsRoot(tmp_path / "b"))
    assert (a.teacher_acc, a.blind_acc, a.finetune_acc) == (b.teacher_acc, b.blind_acc, b.finetune_acc)


def test_blind_stage_gets_only_unlabeled_images(tiny_data, monkeypatch):
    seen = []
    real = experiment.blind_distill

    def spy(student, teacher, unlabeled_x, *args, **kwargs):
        hook = student.register_forward_pre_hook(
            lambda module, inputs: seen.append(inputs[0].detach().clone()) if module.training else None)
        try:
            return real(student, teacher, unlabeled_x, *args, **kwargs)
        finally:
            hook.remove()

    monkeypatch.setattr(experiment, "blind_distill", spy)
    run_experiment(ExperimentConfig(**TINY))
    data = load_pair(ExperimentConfig(**TINY).pair_spec())
    batches = torch.cat(seen).flatten(1)
    exact = lambda pool: (torch.cdist(batches, pool.flatten(1),  # noqa: E731
                                      compute_mode="donot_use_mm_for_euclid_dist") < 1e-5).any(1)
    assert exact(data.unlabeled_x).all()
    assert not exact(data.train_x).any()


def test_limits_take_seeded_subsets(tiny_data):
    data = load_pair(ExperimentConfig(labeled_limit=50, unlabeled_limit=30).pair_spec())
    assert len(data.train_x) == 50 and len(data.unlabeled_x) == 30 and len(data.test_x) == 100


def test_demo_subset_is_announced(isolated_env):
    config = ExperimentConfig(**{**TINY, "labeled_limit": 200, "unlabeled_limit": 200})
    result = run_experiment(config)
    assert any("bundled demo subset" in note for note in result.notes)


@pytest.mark.parametrize("field,value,message", [
    ("labeled", "imagenet21k", "unknown dataset"), ("student", "vit", "unknown model"),
    ("temperature", 0.0, "temperature must be > 0"), ("finetune_ks", ["ten"], "positive whole"),
    ("hard_label_weight", 2.0, "hard_label_weight"), ("device", "tpu", "unknown 'tpu'"),
    ("blind_epochs", -1, "blind_epochs must be at least 0"),
    ("teacher_input_noise", -0.1, "teacher_input_noise must be >= 0"),
    ("blind_augment_strength", 0.0, "blind_augment_strength must be > 0"),
    ("blind_augment_strength", 10.0, "zooms would reach 100%"),
    ("blind_augment_strength", 2.0, "no effect without blind_augment"),
    ("teacher_input_noise", float("inf"), "teacher_input_noise must be >= 0 and finite"),
    ("augment_kind", "rotate", "unknown 'rotate' \\(choose affine, crop_flip\\)"),
])
def test_invalid_config_is_refused_before_any_work(field, value, message, isolated_env):
    with pytest.raises(ValueError, match=message):
        run_experiment(ExperimentConfig(**{**TINY, field: value}))
    assert not (isolated_env / "runs").exists()


def test_cached_finetune_logits_without_distortions_are_refused():
    config = ExperimentConfig(**{**TINY, "finetune_augment": False,
                                 "finetune_fresh_teacher": False})
    with pytest.raises(ValueError, match="no effect without finetune_augment"):
        config.validate()


def test_crop_flip_without_any_augmented_stage_is_refused():
    config = ExperimentConfig(augment_kind="crop_flip", teacher_augment=False, finetune_augment=False,
                              finetune_fresh_teacher=True)
    with pytest.raises(ValueError, match="augment_kind=crop_flip has no effect"):
        config.validate()
    replace(config, blind_augment=True).validate()


def test_an_interrupted_run_resumes_mid_stage_to_identical_results(tiny_data, tmp_path):
    """Stopped during the blind stage and resumed from its per-epoch checkpoint, a run ends
    exactly where an uninterrupted one does (same seed, same device)."""
    config = ExperimentConfig(**{**TINY, "blind_epochs": 4})
    whole = run_experiment(config, RunsRoot(tmp_path / "whole"))

    class Stop(Exception):
        pass

    def stop_in_blind_epoch_3(report):
        if report.stage == "blind" and report.epoch == 3:
            raise Stop

    run = RunDir.create(config, RunsRoot(tmp_path / "split"))
    with pytest.raises(Stop):
        run_experiment(config, on_epoch=stop_in_blind_epoch_3, run=run)
    assert (run.path / "blind.last.json").exists() and not run.checkpoint("blind").exists()
    resumed = run_experiment(config, run=run)
    assert (resumed.teacher_acc, resumed.blind_acc, resumed.finetune_acc) == \
        (whole.teacher_acc, whole.blind_acc, whole.finetune_acc)
    blind = [m["epoch"] for m in run.metrics() if m["stage"] == "blind"]
    assert blind == [1, 2, 3, 4]
    assert not list(run.path.glob("blind.e*"))  # per-epoch files cleared once the stage is done


def test_a_run_saved_before_later_fields_existed_loads_with_what_it_ran():
    saved = json.loads(ExperimentConfig().to_json())
    del saved["teacher_input_noise"], saved["finetune_fresh_teacher"], saved["augment_kind"]
    loaded = ExperimentConfig.from_dict(saved)
    assert loaded.teacher_input_noise == 0.0 and loaded.finetune_fresh_teacher is True
    assert loaded.augment_kind == "affine"  # what every run before the field augmented with


def test_noise_strength_and_fresh_teacher_reach_their_stages(tiny_data, monkeypatch):
    given = {}

    def spy(name, stage):
        def wrapped(*args, **kwargs):
            given[name] = args, kwargs
            return stage(*args, **kwargs)
        return wrapped

    for name in ("train_teacher", "blind_distill", "finetune"):
        monkeypatch.setattr(experiment, name, spy(name, getattr(experiment, name)))
    run_experiment(ExperimentConfig(**{**TINY, "teacher_input_noise": 0.25, "blind_augment": True,
                                       "blind_augment_strength": 3.0,
                                       "finetune_fresh_teacher": False}))
    teacher_settings, blind_settings = given["train_teacher"][0][5], given["blind_distill"][0][5]
    assert teacher_settings.input_noise == 0.25
    assert blind_settings.augment and blind_settings.augment_strength == 3.0
    assert given["finetune"][1]["fresh_teacher"] is False


def test_table1_rows_share_teachers_as_documented():
    """Rows 1 and 3 (CNN teacher) and rows 2 and 4 (MLP teacher) must train one teacher each."""
    x = torch.zeros(4, 1, 28, 28)
    keys = [teacher_key(replace(TABLE1.base, teacher=r.teacher, student=r.student, **r.overrides), x,
                        torch.device("cpu")) for r in TABLE1.rows]
    assert keys[0] == keys[2] and keys[1] == keys[3] and keys[0] != keys[1]


def test_teacher_key_ignores_how_a_number_is_written():
    x = torch.zeros(4, 1, 28, 28)

    def key(**fields):
        return teacher_key(ExperimentConfig(**fields), x, torch.device("cpu"))

    assert key(teacher_input_noise=0) == key(teacher_input_noise=0.0)
    assert key(teacher_lr=1) == key(teacher_lr=1.0)
    assert key(teacher_input_noise=0.5) != key(teacher_input_noise=0.0)


def test_teacher_key_tells_augmentations_apart_only_when_the_teacher_is_augmented():
    x = torch.zeros(4, 1, 28, 28)

    def key(**fields):
        return teacher_key(ExperimentConfig(**fields), x, torch.device("cpu"))

    assert key(augment_kind="crop_flip") != key()
    plain = {"teacher_augment": False, "blind_augment": True}
    assert key(augment_kind="crop_flip", **plain) == key(**plain)
