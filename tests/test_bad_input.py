"""Bad input, every way in (issue 14, point 1): each case ends in one line that names the thing and
says what to do, exit status 2 in the CLI and an error box in the app; never a traceback, never a
silent acceptance, and nothing half-written. The cases themselves: tests/bad_input_cases.py; the
corpus and its counts: docs/reliability.md, "Bad input"."""
from __future__ import annotations

import math
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from bad_input_cases import (
    TEST_LABELS,
    TINY,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    Ctx,
    a_file,
    bomb,
    cached_teacher,
    case,
    cut_last,
    damaged_mnist,
    data_dir_is_file,
    data_dir_is_file_datasets,
    data_dir_missing,
    data_dir_unwritable,
    empty_mnist,
    env_runs_dir_is_file,
    env_runs_dir_is_file_jobs,
    flat_images,
    foreign_store,
    gz,
    gzip_free_bytes,
    idx_header,
    image_folder,
    jobs,
    locked_store,
    options,
    plain_mnist_empty,
    plain_mnist_truncated,
    png_bytes,
    run_folder,
    runs_dir_is_file,
    runs_dir_under_file,
    runs_disk_full,
    split_folder,
    store_file,
    submit,
    tiny_pair,
    truncate,
    truncated_store,
    with_file,
)
from streamlit.testing.v1 import AppTest

from bdcore import jobs as jobs_module
from bdcore.cli import main
from bdcore.config import ExperimentConfig
from bdcore.embeddings import ExploreSession
from bdcore.errors import TrainingDivergedError, UserError
from bdcore.jobs import run_dir_for
from bdcore.models import build_model
from bdcore.runs import RunDir, save_weights
from bdcore.stage_settings import StageSettings
from bdcore.store import RunStore, Status
from bdcore.train import fit
from bdcore.worker import work

ROOT = Path(__file__).resolve().parents[1]
# "Says what to do": an instruction, a choice offered, or the rule the value broke
ADVICE = re.compile(r"\b(choose|give|use|set|delete|remove|fix|check|put|lower|extract|add|free|"
                    r"turn|leave|restore|train|shrink|replace|cancel|stop|try|must|should|needs?|only|see)\b|"
                    r"python -m bdcore")
NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="asks for a GPU this machine has")

# --------------------------------------------------------------------------------------------
# The corpus: CLI cases, (build argv, what the message must name)
# --------------------------------------------------------------------------------------------

OPTION_CASES = [
    case(options("--temperature", "0"), "temperature", id="temperature-zero"),
    case(options("--temperature", "-1"), "temperature", id="temperature-negative"),
    case(options("--temperature", "inf"), "temperature", "finite", id="temperature-inf"),
    case(options("--temperature", "1e400"), "temperature", id="temperature-overflows-to-inf"),
    case(options("--temperature", "nan"), "temperature", id="temperature-nan"),
    case(options("--finetune-temperature", "0"), "finetune_temperature", id="finetune-temperature-zero"),
    case(options("--finetune-temperature", "inf"), "finetune_temperature", id="finetune-temperature-inf"),
    case(options("--teacher-lr", "0"), "teacher_lr", id="teacher-lr-zero"),
    case(options("--teacher-lr", "-0.1"), "teacher_lr", id="teacher-lr-negative"),
    case(options("--blind-lr", "inf"), "blind_lr", id="blind-lr-inf"),
    case(options("--finetune-lr", "nan"), "finetune_lr", id="finetune-lr-nan"),
    case(options("--teacher-epochs", "0"), "teacher_epochs", id="teacher-epochs-zero"),
    case(options("--teacher-epochs", "-3"), "teacher_epochs", id="teacher-epochs-negative"),
    case(options("--blind-epochs", "-1"), "blind_epochs", id="blind-epochs-negative"),
    case(options("--finetune-epochs", "-1"), "finetune_epochs", id="finetune-epochs-negative"),
    case(options("--finetune-min-steps", "-1"), "finetune_min_steps", id="finetune-min-steps-negative"),
    case(options("--batch-size", "0"), "batch_size", id="batch-size-zero"),
    case(options("--batch-size", "-8"), "batch_size", id="batch-size-negative"),
    case(options("--hard-label-weight", "1.5"), "hard_label_weight", id="hard-label-weight-above-1"),
    case(options("--hard-label-weight", "-0.1"), "hard_label_weight", id="hard-label-weight-negative"),
    case(options("--hard-label-weight", "nan"), "hard_label_weight", id="hard-label-weight-nan"),
    case(options("--teacher-input-noise", "-1"), "teacher_input_noise", id="input-noise-negative"),
    case(options("--teacher-input-noise", "inf"), "teacher_input_noise", id="input-noise-inf"),
    case(options("--blind-augment", "--blind-augment-strength", "0"), "blind_augment_strength",
         id="augment-strength-zero"),
    case(options("--blind-augment", "--blind-augment-strength", "10"), "blind_augment_strength",
         id="augment-strength-too-big"),
    case(options("--blind-augment", "--blind-augment-strength", "nan"), "blind_augment_strength",
         id="augment-strength-nan"),
    case(options("--no-blind-augment", "--blind-augment-strength", "2"), "blind_augment_strength",
         "blind_augment", id="combo-strength-without-blind-augment"),
    case(options("--no-finetune-fresh-teacher", "--no-finetune-augment"), "finetune_fresh_teacher",
         id="combo-fresh-teacher-without-augment"),
    case(options("--finetune-k", "0"), "fine-tune k", "'0'", id="finetune-k-zero"),
    case(options("--finetune-k", "-3"), "fine-tune k", "'-3'", id="finetune-k-negative"),
    case(options("--finetune-k", "ten"), "fine-tune k", "'ten'", id="finetune-k-word"),
    case(options("--finetune-k", "1.5"), "fine-tune k", "'1.5'", id="finetune-k-fraction"),
    case(options("--finetune-k", "10", "010"), "finetune_ks", id="finetune-k-duplicate"),
    case(options("--labeled-limit", "0"), "labeled_limit", id="labeled-limit-zero"),
    case(options("--unlabeled-limit", "-5"), "unlabeled_limit", id="unlabeled-limit-negative"),
    case(options("--labeled-limit", "many"), "--labeled-limit", "'many'", id="labeled-limit-word"),
    case(options("--teacher-epochs", "abc"), "--teacher-epochs", "'abc'", id="epochs-word"),
    case(options("--teacher-epochs", "1.5"), "--teacher-epochs", "'1.5'", id="epochs-fraction"),
    case(options("--temperature", "hot"), "--temperature", "'hot'", id="temperature-word"),
    case(options("--seed", "-1"), "seed", id="seed-negative"),
    case(options("--seed", "99999999999999999999999"), "seed", id="seed-too-big"),
    case(options("--teacher", "resnet"), "teacher", "'resnet'", id="unknown-teacher"),
    case(options("--student", ""), "student", id="empty-student"),
    case(options("--labeled", "imagenet21k"), "labeled", "'imagenet21k'", id="unknown-labeled-dataset"),
    case(options("--unlabeled", "folder:"), "unlabeled", id="folder-without-path"),
    case(options("--device", "tpu"), "device", "'tpu'", id="unknown-device"),
    case(options("--device", "cuda:x"), "device", "'cuda:x'", id="device-cuda-not-a-number"),
    case(options("--device", "cuda"), "cuda", id="device-cuda-absent", marks=NO_GPU),
    case(options("--device", "mps"), "mps", id="device-mps-absent"),
    case(options("--temperature", "0", "--batch-size", "0"), "temperature", "batch_size",
         id="two-problems-one-line"),
    case(options("--preset", "fast"), "--preset", "'fast'", id="unknown-preset"),
    case(options("--temprature", "4"), "--temprature", id="misspelt-option"),
    case(options("--runs-dir"), "--runs-dir", id="option-without-value"),
    case([], "command", id="no-command"),
    case(["train"], "'train'", id="unknown-command"),
    case(["reproduce", "table9"], "table9", id="reproduce-unknown-table"),
    case(["reproduce", "table1", "--device", "tpu"], "tpu", id="reproduce-unknown-device"),
    case(["reproduce", "table1", "--seed", "abc"], "--seed", id="reproduce-seed-word"),
]

JOBS_CASES = [
    case(submit("--temperature", "inf"), "temperature", id="submit-temperature-inf"),
    case(submit("--teacher-epochs", "0"), "teacher_epochs", id="submit-epochs-zero"),
    case(submit("--finetune-k", "0"), "fine-tune k", id="submit-finetune-k-zero"),
    case(submit("--device", "tpu"), "device", id="submit-unknown-device"),
    case(submit("--labeled", "folder:/no/such/folder"), "/no/such/folder", id="submit-folder-missing"),
    case(lambda ctx: submit("--unlabeled", f"folder:{a_file('x.zip', b'PK')(ctx)}")(ctx), "x.zip",
         "not a readable zip archive", id="submit-folder-is-a-broken-archive"),
    case(jobs("cancel", "no-such-run"), "no-such-run", id="cancel-unknown-run"),
    case(jobs("resume", "no-such-run"), "no-such-run", id="resume-unknown-run"),
    case(jobs("delete", "no-such-run"), "no-such-run", id="delete-unknown-run"),
    case(jobs("logs", "no-such-run"), "no-such-run", id="logs-unknown-run"),
    case(jobs("logs", "", status=None), "''", id="logs-empty-run-id"),
    case(jobs("resume", "{run}"), "queued", id="resume-queued-run"),
    case(jobs("delete", "{run}"), "queued", id="delete-queued-run"),
    case(jobs("cancel", "{run}", status="succeeded"), "succeeded", id="cancel-succeeded-run"),
    case(jobs("resume", "{run}", status="succeeded"), "succeeded", id="resume-succeeded-run"),
    case(jobs(status=None), "jobs_command", id="jobs-without-subcommand"),
    case(jobs("frobnicate", status=None), "'frobnicate'", id="jobs-unknown-subcommand"),
    case(jobs("cancel", status=None), "run_id", id="cancel-without-id"),
]

STORE_CASES = [
    case(store_file(lambda _ctx, p: p.write_text("id,status\n1,queued\n")), "store.db", id="store-text-file"),
    case(store_file(lambda _ctx, p: p.write_bytes(bytes(range(256)) * 8)), "store.db",
         id="store-random-bytes"),
    case(store_file(truncated_store), "store.db", id="store-truncated"),
    case(store_file(foreign_store), "store.db", id="store-foreign-sqlite"),
    case(store_file(locked_store), "store.db", "locked", id="store-locked"),
    case(store_file(lambda _ctx, p: p.mkdir()), "store.db", id="store-is-a-folder"),
    case(lambda ctx: ["jobs", "--store", "/sys/bd-store/runs.db", "list"], "/sys/bd-store",
         id="store-folder-cannot-be-created"),
    case(lambda ctx: ["jobs", "--store", str(a_file("f", b"x")(ctx) / "runs.db"), "list"], "{tmp}/f",
         id="store-under-a-file"),
]

FOLDER_CASES = [
    case(runs_dir_is_file, "{tmp}/runs-file", id="runs-dir-is-a-file"),
    case(runs_dir_under_file, "{tmp}/runs-file/runs", id="runs-dir-under-a-file"),
    case(lambda ctx: [*options(), "--runs-dir", "/sys/bd-runs"], "/sys/bd-runs",
         id="runs-dir-cannot-be-created"),
    case(lambda ctx: [*options(), "--runs-dir", "/sys"], "/sys", id="runs-dir-unwritable"),
    case(env_runs_dir_is_file, "{tmp}/runs-file", "BD_RUNS_DIR", id="env-runs-dir-is-a-file"),
    case(env_runs_dir_is_file_jobs, "{tmp}/runs-file", id="jobs-env-runs-dir-is-a-file"),
    case(lambda ctx: ["reproduce", "table1", "--runs-dir", "/sys/bd-runs"], "/sys/bd-runs",
         id="reproduce-runs-dir-cannot-be-created"),
    case(runs_disk_full, "No space left", "{tmp}/runs", id="runs-disk-full"),
    case(data_dir_is_file_datasets, "{tmp}/data-file", id="datasets-data-dir-is-a-file"),
]

# Dataset files: run_experiment loads the data before it makes the run folder, so nothing is written
DATA_CASES = [
    case(data_dir_is_file, "{tmp}/data-file", "BD_DATA_DIR", id="data-dir-is-a-file"),
    case(data_dir_missing, "kmnist", "{tmp}/no-such-data", id="data-dir-missing"),
    case(data_dir_unwritable, "kmnist", "/sys/bd-data", id="data-dir-unwritable"),
    case(damaged_mnist(cut_last(40)), TRAIN_IMAGES, id="idx-gz-truncated"),
    case(plain_mnist_truncated, "train-images-idx3-ubyte", id="idx-plain-truncated"),
    case(damaged_mnist(gz(bytes([8, 3, 0, 0]) + bytes(100))), TRAIN_IMAGES, "magic", id="idx-wrong-magic"),
    case(damaged_mnist(lambda p: p.write_bytes(gzip_free_bytes())), TRAIN_IMAGES, "decompress",
         id="gz-that-is-not-gzip"),
    case(damaged_mnist(lambda p: p.write_bytes(b"")), TRAIN_IMAGES, id="gz-empty-file"),
    case(plain_mnist_empty, "train-images-idx3-ubyte", id="idx-plain-empty-file"),
    case(damaged_mnist(lambda p: p.write_bytes(bytes(range(256)) * 40)), TRAIN_IMAGES, id="gz-random-bytes"),
    case(damaged_mnist(gz(bytes([0, 0, 8, 3, 0, 0]))), TRAIN_IMAGES, "header", id="idx-truncated-header"),
    case(damaged_mnist(gz(idx_header(8, 61) + bytes(61)), TRAIN_LABELS), "mnist", "labels",
         id="idx-label-count-mismatch"),
    case(damaged_mnist(gz(idx_header(8, 60, 784) + bytes(60 * 784))), "mnist", "uint8 images",
         id="idx-images-wrong-rank"),
    case(damaged_mnist(gz(idx_header(0x0D, 60, 28, 28) + bytes(60 * 784 * 4))), "mnist", "uint8 images",
         id="idx-images-float"),
    case(damaged_mnist(gz(idx_header(8, 60) + bytes([10] * 60)), TRAIN_LABELS), TRAIN_LABELS, "0..9",
         id="idx-label-out-of-range"),
    case(empty_mnist, TRAIN_IMAGES, "no images", id="idx-no-images"),
    case(damaged_mnist(truncate(30), TEST_LABELS), TEST_LABELS, id="idx-test-split-damaged"),
    case(damaged_mnist(cut_last(40), dataset="fashion-mnist"), "fashion-mnist", TRAIN_IMAGES,
         id="idx-unlabeled-set-damaged"),
    case(run_folder(lambda ctx: image_folder(ctx, {"only": 8}, "one/train") and
                    image_folder(ctx, {"only": 2}, "one/test").parent), "only", "at least 2 classes",
         id="folder-one-class"),
    case(run_folder(lambda ctx: (ctx.tmp / "empty").mkdir() or ctx.tmp / "empty"), "{tmp}/empty",
         id="folder-empty"),
    case(run_folder(with_file("notes.txt", b"hello", lambda ctx: (ctx.tmp / "images").mkdir() or
                              ctx.tmp / "images")), "no images", id="folder-of-non-images"),
    case(run_folder(flat_images), "{tmp}/flat", "unlabeled", id="folder-unlabeled-as-labeled"),
    case(run_folder(lambda ctx: ctx.tmp / "nowhere"), "{tmp}/nowhere", id="folder-missing"),
    case(run_folder(a_file("images.zip", b"PK\x03\x04")), "images.zip", "extract", id="folder-is-an-archive"),
    case(run_folder(a_file("images.tar.gz", b"\x1f\x8b")), "images.tar.gz", id="folder-is-a-tarball"),
    case(run_folder(a_file("manifest.csv", b"path,label\na.png,0\nb.png,1\n")), "manifest.csv", "can be read",
         id="csv-manifest-of-missing-files"),
    case(run_folder(unlabeled=lambda ctx: (ctx.tmp / "empty").mkdir() or ctx.tmp / "empty"), "{tmp}/empty",
         id="unlabeled-folder-empty"),
    case(run_folder(split_folder({"a": 2, "c": 2})), "c", "train/", id="split-folder-test-class-unknown"),
]

# Damaged images in a collection are skipped, counted and named in the run's notes: never fatal
SKIPPED_CASES = [
    case(run_folder(with_file("a/broken.png", b"not a png")), "broken.png", "not an image",
         id="folder-garbage-png"),
    case(run_folder(with_file("b/empty.jpg", b"")), "empty.jpg", "empty file", id="folder-zero-byte-jpg"),
    case(run_folder(with_file("a/cut.png", png_bytes()[:500])), "cut.png", "truncated",
         id="folder-truncated-png"),
    case(run_folder(unlabeled=with_file("x.png", b"\x89PNG garbage", flat_images)), "x.png",
         id="unlabeled-folder-garbage-image"),
    case(run_folder(bomb(1000)), "big.png", "too large", id="folder-decompression-bomb-error"),
    case(run_folder(bomb(3000)), "big.png", "too large", id="folder-decompression-bomb-warning"),
]

# A damaged teacher cache is found when the teacher stage starts, in a run folder already made
TEACHER_CACHE_CASES = [
    case(cached_teacher(lambda f: (f / "teacher.safetensors").write_bytes(b"\0" * 10)), "teachers",
         "delete", id="teacher-cache-weights-damaged"),
    case(cached_teacher(lambda f: (f / "teacher.json").write_text("{")), "teachers", "delete",
         id="teacher-cache-record-damaged"),
]

# Training that diverges: refused at the first bad epoch, the run folder kept as a failed run
# (--json: no progress bars on stderr, only the error)
DIVERGE_CASES = [
    case(lambda ctx: tiny_pair(ctx) or [*options("--blind-lr", "1e38", "--json")], "of stage",
         "lower the learning rate",
         id="diverge-blind-lr"),
    case(lambda ctx: tiny_pair(ctx) or [*options("--temperature", "1e30", "--json")], "of stage blind", "NaN",
         id="diverge-huge-temperature"),
]


# --------------------------------------------------------------------------------------------
# How every CLI case is checked
# --------------------------------------------------------------------------------------------

def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """(exit status, stderr) of the CLI run in this process; argparse exits through SystemExit."""
    capsys.readouterr()
    try:
        status = main(argv)
    except SystemExit as exit_:
        status = exit_.code
    return status, capsys.readouterr().err


def tree(folder: Path) -> set[str]:
    """Every file under ``folder``, but SQLite's transient side files (an empty runs folder made
    for a run that was then refused is harmless; a run folder holds a config.json)."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")
            if p.is_file() and not p.name.endswith(("-wal", "-shm", "-journal"))}


def store_rows(path: Path) -> int | None:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            return db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    except sqlite3.Error:
        return None


def assert_one_clear_line(err: str, names: tuple[str, ...], tmp: Path) -> None:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    [line] = lines
    assert line.startswith("error: "), line
    for name in names:
        assert name.replace("{tmp}", str(tmp)) in line, (name, line)
    assert ADVICE.search(line), f"says nothing to do: {line}"


def check_case(build, names, tmp: Path, monkeypatch, capsys, writes_nothing: bool = True) -> str:
    argv = build(Ctx(tmp, monkeypatch))
    before, rows = tree(tmp), store_rows(tmp / "runs" / "runs.db")
    status, err = run_cli(argv, capsys)
    assert status == 2, err
    assert_one_clear_line(err, names, tmp)
    if writes_nothing:
        assert tree(tmp) == before, "something was written"
        assert store_rows(tmp / "runs" / "runs.db") == rows, "a run was stored"
    return err


@pytest.mark.parametrize(("build", "names"), OPTION_CASES + JOBS_CASES + STORE_CASES + FOLDER_CASES)
def test_cli_refuses_in_one_line_and_writes_nothing(build, names, tmp_path, monkeypatch, capsys):
    check_case(build, names, tmp_path, monkeypatch, capsys)


@pytest.mark.parametrize(("build", "names"), DATA_CASES)
def test_cli_refuses_damaged_data_in_one_line_and_writes_nothing(build, names, tmp_path, monkeypatch, capsys):
    check_case(build, names, tmp_path, monkeypatch, capsys)


@pytest.mark.parametrize(("build", "names"), SKIPPED_CASES)
def test_damaged_images_are_skipped_and_named(build, names, tmp_path, monkeypatch, capsys):
    status, err = run_cli(build(Ctx(tmp_path, monkeypatch)), capsys)
    assert status == 0, err
    (note,) = [line for line in err.splitlines() if "images skipped" in line]
    assert "1 of" in note and all(name in note for name in names), note


@pytest.mark.parametrize(("build", "names"), TEACHER_CACHE_CASES)
def test_cli_refuses_a_damaged_teacher_cache_in_one_line(build, names, tmp_path, monkeypatch, capsys):
    check_case(build, names, tmp_path, monkeypatch, capsys, writes_nothing=False)


@pytest.mark.parametrize(("build", "names"), DIVERGE_CASES)
def test_diverging_training_fails_the_stage(build, names, tmp_path, monkeypatch, capsys):
    check_case(build, names, tmp_path, monkeypatch, capsys, writes_nothing=False)
    [run] = [p for p in (tmp_path / "runs").iterdir() if (p / "config.json").exists()]
    assert not (run / "final.json").exists()  # no summary of a run that did not finish
    assert "NaN" not in (run / "metrics.jsonl").read_text()  # the diverged epoch is not reported


def test_fit_stops_at_the_first_nan_epoch_and_reports_nothing_of_it():
    model = torch.nn.Linear(4, 2)
    reported = []
    with pytest.raises(TrainingDivergedError, match=r"^loss became NaN at epoch 1 of stage blind; lower"):
        fit(model, torch.zeros(8, 4), lambda logits, _i, _x: logits.sum() * math.nan, torch.zeros(2, 4),
            torch.zeros(2, dtype=torch.long), StageSettings(3, 1e-3, 4), stage="blind", seed=0, amp=False,
            on_epoch=reported.append)
    assert reported == []


def test_a_diverging_background_run_is_failed_not_succeeded(tiny_data, monkeypatch):
    store = RunStore()
    monkeypatch.setattr(jobs_module, "schedule", lambda _store: [])
    run_id = store.add(ExperimentConfig(**tiny_config(), temperature=1e30))
    assert store.claim_next(1) == (run_id, None)  # as a worker finds its run: claimed for it
    assert work(store, run_id) == Status.FAILED
    record = store.get(run_id)
    assert record.status == Status.FAILED and record.final is None
    assert "loss became NaN at epoch 1 of stage blind; lower the learning rate" in record.error


# --------------------------------------------------------------------------------------------
# A few cases as a user types them: a separate process, its real stderr and exit status
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, name", [
    pytest.param(["run", "--temperature", "inf"], "temperature", id="subprocess-temperature-inf"),
    pytest.param(["run", "--runs-dir", "/sys/bd-runs", *TINY], "/sys/bd-runs", id="subprocess-runs-dir"),
    pytest.param(["jobs", "--store", "{tmp}/notes.txt", "list"], "notes.txt", id="subprocess-text-store"),
    pytest.param(["run", "--teacher-epochs", "x"], "--teacher-epochs", id="subprocess-argparse"),
])
def test_cli_process_prints_one_line_and_exits_2(argv, name, tmp_path):
    (tmp_path / "notes.txt").write_text("not a database\n")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    done = subprocess.run([sys.executable, "-m", "bdcore", *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert_one_clear_line(done.stderr, (name,), tmp_path)
    assert not (tmp_path / "runs").exists() or tree(tmp_path / "runs") == set()


# --------------------------------------------------------------------------------------------
# A run folder's own files, as the explorer (Embeddings, Unlabeled pages) and a resume read them
# --------------------------------------------------------------------------------------------

def tiny_config(**overrides) -> dict:
    return {"teacher": "mlp", "student": "mlp", "teacher_epochs": 1, "blind_epochs": 1,
            "finetune_epochs": 1, "finetune_min_steps": 1, "batch_size": 64, "device": "cpu",
            "teacher_augment": False, "teacher_input_noise": 0.0, "finetune_augment": False, **overrides}


def explorable_run(ctx: Ctx, arch: str = "mlp") -> RunDir:
    """A run folder as a run leaves it: config.json and teacher and blind checkpoints (untrained
    weights will do: only their loading is under test), over the tiny pair."""
    tiny_pair(ctx)
    run = RunDir.create(ExperimentConfig(**tiny_config()), name="explore-me")
    for stage in ("teacher", "blind"):
        save_weights(build_model(arch, (1, 28, 28), 10), run.checkpoint(stage))
    return run


def damaged(file: str, damage: Callable[[Path], None], role: str = "teacher"):
    """Open the run for exploring after ``damage(path of file)`` and load ``role``'s model."""
    def explore(ctx: Ctx) -> None:
        run = explorable_run(ctx)
        damage(run.path / file)
        ExploreSession(run.path).model(role)
    return explore


def foreign_weights(ctx: Ctx) -> None:
    run = explorable_run(ctx)
    save_weights(build_model("cnn", (1, 28, 28), 10), run.checkpoint("teacher"))
    ExploreSession(run.path).model("teacher")


EXPLORE_CASES = [
    pytest.param(damaged("config.json", lambda p: p.write_text("{not json")), "config.json",
                 id="config-garbage"),
    pytest.param(damaged("config.json", lambda p: p.write_bytes(b"\xff\xfe\x00")), "config.json",
                 id="config-not-utf8"),
    pytest.param(damaged("config.json", lambda p: p.write_text("[1, 2]")), "config.json", id="config-a-list"),
    pytest.param(damaged("config.json", lambda p: p.write_text('{"temperature": "hot"}')), "temperature",
                 id="config-wrong-type"),
    pytest.param(damaged("config.json", lambda p: p.write_text('{"seed": true}')), "seed",
                 id="config-bool-for-int"),
    pytest.param(damaged("config.json", lambda p: p.write_text('{"finetune_ks": "all"}')), "finetune_ks",
                 id="config-text-for-list"),
    pytest.param(damaged("config.json", lambda p: p.write_text('{"colour": "red"}')), "colour",
                 id="config-unknown-field"),
    pytest.param(damaged("config.json", Path.unlink), "config.json", id="config-missing"),
    pytest.param(damaged("config.json", lambda p: p.write_text('{"labeled": "kmnist"}')), "kmnist",
                 id="config-dataset-missing"),
    pytest.param(damaged("teacher.safetensors", cut_last(100)), "teacher.safetensors",
                 id="checkpoint-truncated"),
    pytest.param(damaged("teacher.safetensors", lambda p: p.write_bytes(bytes(range(256)) * 4)),
                 "teacher.safetensors", id="checkpoint-random-bytes"),
    pytest.param(damaged("teacher.safetensors", lambda p: p.write_bytes(b"")), "teacher.safetensors",
                 id="checkpoint-empty"),
    pytest.param(foreign_weights, "teacher.safetensors", id="checkpoint-wrong-shapes"),
    pytest.param(damaged("blind.safetensors", cut_last(10), role="blind"), "blind.safetensors",
                 id="checkpoint-blind-truncated"),
    pytest.param(damaged("teacher.safetensors", lambda p: p.unlink() or p.mkdir()), "teacher.safetensors",
                 id="checkpoint-is-a-folder"),
]


@pytest.mark.parametrize("explore, name", EXPLORE_CASES)
def test_explorer_refuses_a_damaged_run_in_one_line(explore, name, tmp_path, monkeypatch):
    with pytest.raises(UserError) as info:
        explore(Ctx(tmp_path, monkeypatch))
    assert_one_clear_line(f"error: {info.value}", (name,), tmp_path)


def resumed(damage: Callable[[RunDir], None]):
    """A background run resumed after ``damage(its folder)``: the worker's error for the store."""
    def resume(ctx: Ctx) -> str:
        tiny_pair(ctx)
        ctx.monkeypatch.setattr(jobs_module, "schedule", lambda _store: [])
        store = RunStore()
        run_id = store.add(ExperimentConfig(**tiny_config()))
        run = run_dir_for(store, run_id)
        damage(run)
        assert store.claim_next(1) == (run_id, None)
        assert work(store, run_id) == Status.FAILED
        return store.get(run_id).error
    return resume


def teacher_done(run: RunDir) -> None:
    run.ledger_path.write_text('{"teacher": {"test_acc": 0.9, "seconds": 1.0}}')
    run.checkpoint("teacher").write_bytes(b"\0" * 20)


RESUME_CASES = [
    pytest.param(resumed(lambda run: run.ledger_path.write_text("{")), "stages.json",
                 id="resume-stages-garbage"),
    pytest.param(resumed(teacher_done), "teacher.safetensors", id="resume-finished-stage-checkpoint-damaged"),
    pytest.param(resumed(lambda run: run.epoch_index("teacher").write_text("[")), "teacher.last.json",
                 id="resume-epoch-index-garbage"),
]


@pytest.mark.parametrize("resume, name", RESUME_CASES)
def test_resume_of_a_damaged_run_fails_naming_the_file(resume, name, tmp_path, monkeypatch):
    error = resume(Ctx(tmp_path, monkeypatch))
    assert_one_clear_line(f"error: {error}", (name,), tmp_path)


def test_metrics_line_that_is_not_an_epoch_is_named(tmp_path):
    run = RunDir.create(ExperimentConfig(), name="r")
    run.metrics_path.write_text('{"stage": "teacher", "epoch": 1}\n[1, 2]\n')
    try:
        run.metrics()
    except UserError as err:
        assert "metrics.jsonl" in str(err)
    else:
        raise AssertionError("a line that is not an epoch record was accepted silently")


# --------------------------------------------------------------------------------------------
# Launch form values: an error box, no exception, nothing queued
# --------------------------------------------------------------------------------------------

def launch_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    return at.run().switch_page("ui/launch.py").run()


def by_label(widgets, label: str):
    return next(w for w in widgets if w.label == label)


def form_k(text: str):
    return lambda at, _ctx: at.text_input[0].set_value(text)


def form_folder(role: str, make: Callable[[Ctx], Path]):
    def choose(at: AppTest, ctx: Ctx) -> None:
        at.selectbox(key=f"{role}_choice").set_value("a folder of images...").run()
        at.text_input(key=f"{role}_folder").set_value(str(make(ctx))).run()
    return choose


def strength_without_augment(at: AppTest, _ctx: Ctx) -> None:
    by_label(at.checkbox, "augment unlabeled images").uncheck()
    by_label(at.number_input, "unlabeled distortion strength").set_value(2.5)


def fresh_teacher_without_augment(at: AppTest, _ctx: Ctx) -> None:
    by_label(at.checkbox, "augment fine-tuning").uncheck()
    by_label(at.checkbox, "teacher scores each distorted fine-tune batch").uncheck()


LAUNCH_CASES = [
    pytest.param(form_k("ten"), "positive whole number", id="form-k-word"),
    pytest.param(form_k("0"), "positive whole number", id="form-k-zero"),
    pytest.param(form_k("10, 10"), "each k once", id="form-k-duplicate"),
    pytest.param(form_k(" , "), "at least one fine-tune k", id="form-k-empty"),
    pytest.param(form_folder("labeled", lambda ctx: ctx.tmp / "nowhere"), "does not exist",
                 id="form-folder-missing"),
    pytest.param(form_folder("labeled", lambda ctx: image_folder(ctx, {"only": 6})), "no labels",
                 id="form-folder-one-class"),
    pytest.param(form_folder("labeled", flat_images), "no labels", id="form-folder-unlabeled-as-labeled"),
    pytest.param(form_folder("labeled", a_file("images.zip", b"PK")), "extract", id="form-folder-archive"),
    pytest.param(strength_without_augment, "blind_augment_strength", id="form-strength-without-augment"),
    pytest.param(fresh_teacher_without_augment, "finetune_fresh_teacher",
                 id="form-fresh-teacher-without-augment"),
]


@pytest.mark.parametrize("fill, text", LAUNCH_CASES)
def test_launch_form_refuses_with_an_error_box(fill, text, tiny_data, tmp_path, monkeypatch):
    monkeypatch.setattr(jobs_module, "schedule", lambda _store: [])
    at = launch_page()
    fill(at, Ctx(tmp_path, monkeypatch))
    at.button[0].click().run()
    assert not at.exception
    assert any(text in e.value for e in at.error), [e.value for e in at.error]
    assert not any("Traceback" in e.value for e in at.error)
    assert RunStore().list() == []


# --------------------------------------------------------------------------------------------
# Audit: no unpickling of files a user can hand over
# --------------------------------------------------------------------------------------------

def test_no_pickle_of_user_files():
    """torch.load only with weights_only=True, numpy never with pickles, no pickle module."""
    for path in [*ROOT.glob("bdcore/**/*.py"), *ROOT.glob("ui/*.py"), ROOT / "app.py"]:
        text = path.read_text()
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            assert "weights_only=True" in call, (path, call)
        assert "allow_pickle=True" not in text and not re.search(r"^\s*import pickle|pickle\.load", text,
                                                                   re.M), path


def test_corpus_has_at_least_100_cases():
    cases = (OPTION_CASES + JOBS_CASES + STORE_CASES + FOLDER_CASES + DATA_CASES + TEACHER_CACHE_CASES
             + DIVERGE_CASES + EXPLORE_CASES + RESUME_CASES + LAUNCH_CASES)
    assert len(cases) + 4 + 1 >= 100  # + the subprocess cases and the metrics line
