"""The paper's Tables 2, 3 and 4 end to end, on stand-in folders of the real sets' layouts that
each test writes itself (these machines cannot reach CIFAR, Caltech-256, ImageNet or OpenImages):
every row with every k, printed beside the paper; missing data named in one line before anything
runs; each table as a preset of the Launch page; and a table run again in its runs folder
continuing where it stopped.

The CIFAR stand-ins are torchvision's pickle layout with made-up pixels, so torchvision's md5
checks (``torchvision.datasets.cifar.check_integrity``) are patched to pass for them."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from bdcore.cli import main
from bdcore.errors import UserError
from bdcore.experiment import EventKind, ExperimentResult
from bdcore.presets import PRESETS, preset_config
from bdcore.reports import paper_reference
from bdcore.reproduce import TABLE1, TABLES, RowResult, check_table_data, run_table
from bdcore.runs import RunsRoot
from bdcore.stage_names import finetune_stage

ROOT = Path(__file__).resolve().parents[1]
CLASSES = 20
# a few optimiser steps per stage; 16 divides every stand-in split, so no batch holds a single
# image (MobileNetV2's last batch-norm at 32 px sees one value per channel: an error in training)
TINY = {"teacher_epochs": 1, "blind_epochs": 1, "finetune_epochs": 1, "finetune_min_steps": 0,
        "batch_size": 16, "image_size": 32, "device": "cpu"}
SIZES = [(40, 30), (64, 48), (33, 57), (120, 90), (48, 48)]  # mixed, as the real collections


def write_jpegs(folder: Path, n: int, seed: int, suffix: str = ".jpg") -> None:
    """``n`` colour JPEGs of mixed sizes, tinted by ``seed`` (a class's colour)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        width, height = SIZES[i % len(SIZES)]
        pixels = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
        pixels[..., seed % 3] += np.uint8(40 + 9 * (seed % CLASSES))
        Image.fromarray(pixels).save(folder / f"{folder.name}_{i:04d}{suffix}", quality=85)


def write_caltech256(data: Path, per_class: int = 5) -> None:
    """The extracted 256_ObjectCategories.tar: 001.ak47/001_0001.jpg, ... (a fifth held out)."""
    for c in range(CLASSES):
        write_jpegs(data / "caltech256" / "256_ObjectCategories" / f"{c + 1:03d}.class{c}", per_class, c)


def write_imagenet(data: Path) -> None:
    """ILSVRC2012's train/<wnid>/*.JPEG and val/<wnid>/*.JPEG (val sorted into class folders)."""
    for c in range(CLASSES):
        write_jpegs(data / "imagenet" / "train" / f"n0{1440764 + c}", 4, c, ".JPEG")
        write_jpegs(data / "imagenet" / "val" / f"n0{1440764 + c}", 2, c, ".JPEG")


def write_openimages(data: Path) -> None:
    """Loose images in split folders, nested: train/<shard>/*.jpg and validation/*.jpg."""
    write_jpegs(data / "openimages" / "train" / "train_0", 16, 100)
    write_jpegs(data / "openimages" / "train" / "train_1", 16, 101)
    write_jpegs(data / "openimages" / "validation", 16, 102)


def write_cifar(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """cifar-10-batches-py/ (data_batch_1..5, test_batch, batches.meta) and cifar-100-python/
    (train, test, meta): rows of 3072 bytes (R, G, B planes), made-up pixels tinted by class."""
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *args, **kwargs: True)
    rng = np.random.default_rng(0)

    def batch(n: int, classes: int, label_key: str) -> bytes:
        labels = rng.integers(0, classes, n)
        rows = rng.integers(0, 80, (n, 3072), dtype=np.uint8)
        rows[np.arange(n), labels * 3] = 255  # something a tiny network can pick up
        return pickle.dumps({"data": rows, label_key: labels.tolist()})

    cifar10 = data / "cifar10" / "cifar-10-batches-py"
    cifar10.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (cifar10 / name).write_bytes(batch(16, 10, "labels"))
    (cifar10 / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))
    cifar100 = data / "cifar100" / "cifar-100-python"
    cifar100.mkdir(parents=True)
    for name in ("train", "test"):
        (cifar100 / name).write_bytes(batch(48, 100, "fine_labels"))
    (cifar100 / "meta").write_bytes(pickle.dumps({"fine_label_names": [f"f{i}" for i in range(100)]}))


@pytest.fixture
def stand_ins(isolated_env, monkeypatch) -> Path:
    data = isolated_env / "data"
    write_cifar(data, monkeypatch)
    write_caltech256(data)
    write_imagenet(data)
    write_openimages(data)
    return data


@pytest.mark.parametrize("name", ["table2", "table3", "table4"])
def test_table_runs_end_to_end_beside_the_paper(stand_ins, name):
    table = TABLES[name]
    [row] = run_table(name, overrides=TINY)
    assert list(row.result.finetune_acc) == table.finetune_ks  # every k of the recipe
    assert set(row.measured) == {"teacher", "blind", *table.finetune_ks}
    assert isinstance(row.meets_paper, bool)
    text = table.format([row], wall_seconds=1.0)
    assert table.title in text and f"{row.teacher.upper()} -> {row.student.upper()}" in text
    for k in table.finetune_ks:
        assert f"fine-tune ({k})" in text
    for key, figure in table.rows[0].paper.items():  # each paper figure beside the measured one
        assert f"{row.measured[key]:.2%} ({figure:.2%})" in text


def result(teacher: float, blind: float, finetune: dict[str, float]) -> ExperimentResult:
    return ExperimentResult(teacher, blind, finetune, {"teacher": 1.0}, False, "cpu", 0, "/runs/x")


def test_table1_prints_as_before_with_all_as_its_k():
    rows = [RowResult(r.teacher, r.student, r.paper, result(0.996, 0.975, {"all": 0.9965}))
            for r in TABLE1.rows]
    text = TABLE1.format(rows)
    header = "teacher -> student             teacher             blind     fine-tune (all)   seconds  ok"
    first = "CNN -> CNN             99.60% (99.50%)   97.50% (96.20%)     99.65% (99.60%)         1  yes"
    assert f"{header}\n{'-' * 92}\n{first}" in text
    assert "no figure" not in text


def test_table4_compares_only_the_figures_the_paper_gives_and_notes_its_second_row():
    table = TABLES["table4"]
    [spec] = table.rows
    assert set(spec.paper) == {"teacher", "blind", "all"}  # the paper's k = 10 and 20 are "X%", "Y%"
    measured = result(0.73, 0.60, {"10": 0.1, "20": 0.2, "all": 0.69})
    row = RowResult(spec.teacher, spec.student, spec.paper, measured)
    assert row.meets_paper
    text = table.format([row])
    assert "10.00% (-)" in text and "69.00% (68.08%)" in text and "no figure" in text
    assert "55.60%" in text and "67.75%" in text  # the paper's other row


def test_missing_data_is_one_line_naming_every_set_and_nothing_is_written(isolated_env, capsys):
    assert main(["reproduce", "table3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    data = isolated_env / "data"
    for name, layout, download in (("caltech256", "001.ak47/", "data.caltech.edu"),
                                   ("openimages", "flat or in sub-folders", "storage.googleapis.com")):
        assert f"'{name}'" in err and layout in err and download in err and str(data / name) in err
    assert not (isolated_env / "runs").exists()


def test_cifar_offline_is_missing_but_online_may_still_be_downloaded(isolated_env, monkeypatch):
    with pytest.raises(UserError) as info:
        check_table_data("table2")
    assert "cifar-10-batches-py" in str(info.value) and "cifar-100-python" in str(info.value)
    monkeypatch.delenv("BD_OFFLINE")
    check_table_data("table2")  # torchvision downloads them when the run loads them


@pytest.mark.parametrize("name", ["table2", "table3", "table4"])
def test_preset_is_the_tables_first_row(name):
    table = TABLES[name]
    assert preset_config(name).validate() == table.row_config(table.rows[0])
    assert "needs" in PRESETS[name].summary


def test_runs_page_reference_lines_come_from_every_table():
    expected = {"teacher": 0.682, "blind": 0.64, "finetune-k10": 0.716, "finetune-k20": 0.7446,
                "finetune-kall": 0.7649}
    assert paper_reference(preset_config("table3")) == expected
    assert paper_reference(preset_config("paper"))["finetune-kall"] == 0.996
    assert paper_reference(preset_config("table3", student="cnn")) == {}


def test_launch_page_fills_the_form_from_a_table_preset_without_its_data(isolated_env):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run().switch_page("ui/launch.py").run()
    at.radio[0].set_value("table3").run()
    assert not at.exception
    assert [s.value for s in at.selectbox if s.label in ("teacher", "student")] == ["mobilenet_v2"] * 2
    assert at.text_input[0].value == "10, 20, all"
    # the keyed dataset pickers follow the preset too (launch.forget_datasets)
    assert [at.selectbox(key=f"{role}_choice").value for role in ("labeled", "unlabeled")] == [
        "caltech256", "openimages"]
    errors = " ".join(e.value for e in at.error)  # the previews say what to download, no traceback
    assert "'caltech256' was not found" in errors and "'openimages' was not found" in errors



def test_a_table_run_again_in_the_same_folder_continues_rather_than_starts_over(tiny_data, tmp_path):
    root = RunsRoot(tmp_path / "runs")
    quick = {"teacher_epochs": 1, "blind_epochs": 1, "finetune_epochs": 1, "finetune_min_steps": 0,
             "batch_size": 16, "device": "cpu", "labeled_limit": 64, "unlabeled_limit": 64}
    first = run_table("table1", root=root, overrides=quick)
    folders = {r.path for r in root.run_folders()}
    assert len(folders) == len(TABLE1.rows)
    # a kill during row 2's fine-tune: its fine-tune is not in the ledger and no final.json
    interrupted = Path(first[1].result.run_dir)
    ledger = json.loads((interrupted / "stages.json").read_text())
    del ledger[finetune_stage(None)]
    (interrupted / "stages.json").write_text(json.dumps(ledger))
    (interrupted / "final.json").unlink()
    events = []
    again = run_table("table1", root=root, overrides=quick, on_event=events.append)
    assert {r.path for r in root.run_folders()} == folders  # no row started over in a new folder
    assert [r.measured for r in again] == [r.measured for r in first]  # the same runs' figures
    assert (interrupted / "final.json").exists()
    loaded = [e.text for e in events if e.kind == EventKind.STAGE_LOADED]
    assert len(loaded) == 3 * len(TABLE1.rows) - 1  # every stage but the one fine-tune run again
