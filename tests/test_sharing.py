"""Identical requests share one run; the store's change stamp; the app's queue housekeeping; the
presets on the command line."""
import json
import multiprocessing
import queue
import threading

import pytest

from bdcore import jobs
from bdcore.cli import main
from bdcore.config import ExperimentConfig
from bdcore.presets import PRESETS, preset_config
from bdcore.store import RunStore

EPOCH = {"stage": "teacher", "epoch": 1, "epochs": 2, "train_loss": 0.5, "test_acc": 0.9, "lr": 1e-3,
         "seconds": 1.0}


@pytest.fixture
def queue_only(isolated_env, monkeypatch):
    """A store whose queue never starts workers (training is tested in test_jobs)."""
    monkeypatch.setattr(jobs, "schedule", lambda store: [])
    return RunStore()


def _press_quick(store_path: str, start, out) -> None:
    """One student's session: wait for the others, then press "quick"."""
    start.wait()
    out.put(jobs.submit(RunStore(store_path), preset_config("quick")).run_id)


@pytest.mark.parametrize("sessions", ["threads", "processes"])
def test_twenty_concurrent_launches_make_one_run(queue_only, sessions):
    """Twenty students press "quick" at once: app sessions (threads of one server) or separate
    processes (CLI calls, or several app servers on one runs folder)."""
    if sessions == "threads":
        start, out = threading.Event(), queue.Queue()
        students = [threading.Thread(target=_press_quick, args=(str(queue_only.path), start, out))
                    for _ in range(20)]
    else:
        context = multiprocessing.get_context("fork")  # the patched schedule goes with them
        start, out = context.Event(), context.Queue()
        students = [context.Process(target=_press_quick, args=(str(queue_only.path), start, out))
                    for _ in range(20)]
    for student in students:
        student.start()
    start.set()
    ids = [out.get(timeout=120) for _ in students]
    for student in students:
        student.join(timeout=60)
        assert getattr(student, "exitcode", 0) == 0
    assert len(ids) == 20 and len(set(ids)) == 1
    [record] = queue_only.list()
    assert record.id == ids[0] and record.config == preset_config("quick")


def test_same_settings_share_queued_running_and_succeeded_runs_only(queue_only):
    config = ExperimentConfig(teacher="mlp", student="mlp")
    first = jobs.submit(queue_only, config)
    assert not first.shared
    assert jobs.submit(queue_only, ExperimentConfig(teacher="mlp", student="mlp")) == jobs.Submission(
        first.run_id, True)
    queue_only.claim_next(1)
    assert jobs.submit(queue_only, config).run_id == first.run_id  # running
    queue_only.mark_succeeded(first.run_id, {})
    assert jobs.submit(queue_only, config).run_id == first.run_id  # succeeded
    other_seed = jobs.submit(queue_only, ExperimentConfig(teacher="mlp", student="mlp", seed=1))
    assert not other_seed.shared
    forced = jobs.submit(queue_only, config, force=True)
    assert not forced.shared and forced.run_id != first.run_id
    queue_only.mark_failed(forced.run_id, "killed")
    queue_only.delete(first.run_id)
    again = jobs.submit(queue_only, config)  # a failed run is resumed, not shared: a new run
    assert not again.shared and again.run_id not in (first.run_id, forced.run_id)


def test_a_run_being_cancelled_is_not_shared(queue_only):
    config = ExperimentConfig(teacher="mlp", student="mlp")
    first = jobs.submit(queue_only, config).run_id
    queue_only.claim_next(1)
    queue_only.cancel(first)  # its worker is asked to stop
    again = jobs.submit(queue_only, config)
    assert not again.shared and again.run_id != first


def test_a_run_saved_before_a_field_existed_is_still_the_same_config(queue_only):
    config = ExperimentConfig(teacher_input_noise=0.0)
    run_id = jobs.submit(queue_only, config).run_id
    import sqlite3

    saved = json.loads(config.to_json())
    del saved["teacher_input_noise"]  # as an earlier version wrote it (EARLIER_RUN_VALUES fills it in)
    with sqlite3.connect(queue_only.path) as db:
        db.execute("UPDATE runs SET config = ? WHERE id = ?", (json.dumps(saved), run_id))
    assert jobs.submit(queue_only, config) == jobs.Submission(run_id, True)


def test_change_stamp_moves_on_changes_not_on_heartbeats(queue_only):
    empty = queue_only.change_stamp()
    run_id = queue_only.add(ExperimentConfig())
    queued = queue_only.change_stamp()
    assert queued != empty and queued[0] == 1 and queued[2] == 1
    queue_only.claim_next(1)
    running = queue_only.change_stamp()
    queue_only.beat(run_id)
    assert queue_only.change_stamp() == running
    queue_only.add_epoch(run_id, EPOCH, 0.1)
    assert queue_only.change_stamp() != running
    queue_only.mark_succeeded(run_id, {})
    assert queue_only.change_stamp()[2] == 0


def test_housekeeper_schedules_at_most_once_per_interval(isolated_env, monkeypatch):
    calls = []
    monkeypatch.setattr(jobs, "schedule", lambda store: calls.append(store) or [])
    keeper = jobs.Housekeeper(RunStore(), every_s=60)
    for _ in range(5):
        keeper.tick()
    assert len(calls) == 1
    keeper.every_s = 0
    keeper.tick()
    assert len(calls) == 2


def test_cli_preset_and_explicit_options_on_top(tiny_data, capsys):
    assert main(["run", "--preset", "quick", "--teacher", "mlp", "--student", "mlp", "--teacher-epochs", "1",
                 "--blind-epochs", "1", "--batch-size", "256", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    config = ExperimentConfig.load(f"{result['run_dir']}/config.json")
    quick = preset_config("quick")
    assert (config.teacher, config.teacher_epochs, config.batch_size) == ("mlp", 1, 256)
    assert (config.finetune_epochs, config.hard_label_weight) == (quick.finetune_epochs,
                                                                  quick.hard_label_weight)


def test_cli_unknown_preset_and_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--preset", "fast"])
    assert exit_.value.code == 2 and "invalid choice: 'fast'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in PRESETS) and "(paper: 128)" in out


def test_cli_submit_shares_then_forces(queue_only, capsys):
    args = ["jobs", "--store", str(queue_only.path), "submit", "--preset", "quick"]
    assert main(args) == 0
    first = capsys.readouterr().out.strip()
    assert main(args) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == first and "shared, not queued again" in captured.err
    assert main([*args, "--force"]) == 0
    assert capsys.readouterr().out.strip() != first
    assert len(queue_only.list()) == 2
