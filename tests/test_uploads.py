"""Uploaded datasets (bdcore.uploads) with real zips built here: good ones are saved as image folders
the loader reads; hostile or damaged ones are refused in one line with nothing written anywhere
under the data dir (and no temporary folder left). Then the Launch page's upload form and the
Datasets page through AppTest."""
from __future__ import annotations

import io
import signal
import stat
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from bdcore import uploads
from bdcore.config import ExperimentConfig
from bdcore.data import load_dataset
from bdcore.store import RunStore
from bdcore.uploads import (
    UploadError,
    check_upload_name,
    delete_upload,
    list_uploads,
    preview_images,
    save_images,
    save_upload,
    save_zip,
    upload_path,
)

from test_app import by_label, no_workers, page  # noqa: F401 (no_workers: a fixture, used by name)

ROOT = Path(__file__).resolve().parents[1]


def image(value: int = 0, fmt: str = "PNG", size: int = 8) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size, size), value, np.uint8)).save(buf, fmt)
    return buf.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def zip_of(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buf.getvalue()


def classes_zip(top: str = "", per_class: int = 5) -> bytes:
    return zip_of({f"{top}{cls}/{i}.png": image((i * 20 + c * 100) % 256)
                   for c, cls in enumerate(("cat", "dog")) for i in range(per_class)})


def tree(folder: Path) -> list[str]:
    """Everything under ``folder``: what a refusal must leave as it was."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def data(isolated_env) -> Path:
    folder = isolated_env / "data"
    (folder / "mnist").mkdir()
    (folder / "mnist" / "keep.txt").write_text("another dataset's file")
    return folder


def refused(data: Path, call, text: str) -> str:
    before = tree(data)
    with pytest.raises(UploadError) as err:
        call()
    message = str(err.value)
    assert text in message, message
    assert "\n" not in message
    assert tree(data) == before  # nothing written, no temporary folder left
    return message


# ---- good uploads ----------------------------------------------------------------------------------

def test_a_zip_of_class_folders_is_a_labeled_dataset(data):
    report = save_zip("pets", classes_zip())
    assert (report.name, report.images, report.skipped) == ("pets", 10, 0)
    assert report.path == data.resolve() / "uploads" / "pets" and report.spec == f"folder:{report.path}"
    assert report.layout.startswith("labeled: 2 classes (cat, dog)")
    train = load_dataset(report.spec, "train")
    assert train.classes == ["cat", "dog"] and len(train) == 8  # a fifth held out as the test split


def test_a_flat_zip_is_an_unlabeled_dataset(data):
    report = save_zip("flat", zip_of({f"{i}.png": image(i) for i in range(4)}))
    assert report.images == 4 and report.layout.startswith("unlabeled")
    assert len(load_dataset(report.spec, "train")) == 4


def test_a_single_top_folder_is_dropped_and_archivers_extras_skipped(data):
    entries = {f"myset/{cls}/{i}.png": image(i) for cls in ("a", "b") for i in range(2)}
    entries |= {"__MACOSX/myset/._x.png": b"\0\5\26\7", "myset/.DS_Store": b"\0",
                "myset/docs/README.md": b"hi"}
    report = save_zip("wrapped", zip_of(entries))
    assert sorted(p.name for p in report.path.iterdir()) == ["a", "b"]  # no myset/, no empty docs/
    assert report.images == 4 and report.skipped == 3
    assert ("myset/docs/README.md", "not an image") in report.skipped_examples


def test_images_are_told_by_content_not_by_suffix(data):
    bomb = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0))
    bomb += png_chunk(b"IDAT", zlib.compress(b"")) + png_chunk(b"IEND", b"")  # 900 megapixels, it says
    report = save_zip("mixed", zip_of({
        "a.png": image(1), "b.jpg": image(2, "PNG"), "photo": image(3, "JPEG"), "fake.png": b"not an image",
        "notes.txt": b"text", "bomb.png": bomb}))
    assert report.images == 3 and report.skipped == 3
    assert sorted(p.name for p in report.path.iterdir()) == ["a.png", "b.jpg", "photo.jpg"]
    reasons = dict(report.skipped_examples)
    assert reasons["fake.png"] == "not an image" and "too" in reasons["bomb.png"]


def test_loose_images_are_an_unlabeled_dataset(data):
    report = save_images("loose", [("a.png", image(1)), ("b.jpeg", image(2, "JPEG")), ("c.txt", b"x")])
    assert (report.images, report.skipped, report.layout) == (2, 1, "unlabeled: flat folder")


def test_save_upload_tells_a_zip_by_content_and_refuses_a_zip_among_images(data):
    assert save_upload("z", [("data.bin", io.BytesIO(classes_zip()))]).images == 10
    assert save_upload("i", [("a.png", io.BytesIO(image(1))), ("b.png", io.BytesIO(image(2)))]).images == 2
    refused(data, lambda: save_upload("both", [("a.zip", io.BytesIO(classes_zip())),
                                              ("b.png", io.BytesIO(image(1)))]), "a zip on its own")
    refused(data, lambda: save_upload("none", []), "choose a zip")


def test_replace_only_when_asked(data):
    save_zip("pets", classes_zip())
    refused(data, lambda: save_zip("pets", classes_zip(per_class=2)), "exists already")
    assert save_zip("pets", classes_zip(per_class=2), replace=True).images == 4
    assert [info.images for info in list_uploads()] == [4]
    assert not [p for p in (data / "uploads").iterdir() if p.name.startswith(".")]


def test_list_and_delete(data):
    save_zip("pets", classes_zip())
    save_images("loose", [("a.png", image(1))])
    infos = list_uploads()
    assert [(i.name, i.images) for i in infos] == [("loose", 1), ("pets", 10)]
    assert infos[1].bytes == sum(p.stat().st_size for p in upload_path("pets").rglob("*.png"))
    assert infos[1].layout.startswith("labeled: 2 classes") and infos[1].created.year >= 2024
    delete_upload("pets")
    assert [i.name for i in list_uploads()] == ["loose"]
    for name in ("pets", "../mnist", "..", "uploads/../../mnist"):
        refused(data, lambda n=name: delete_upload(n), "")
    assert (data / "mnist" / "keep.txt").exists()


def test_preview_reads_at_most_16_files_taking_each_class_in_turn(data, monkeypatch):
    report = save_zip("pets", classes_zip(per_class=20))
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda fp, *a, **kw: opened.append(fp) or real_open(fp, *a, **kw))
    thumbs = preview_images(report.path)
    assert len(thumbs) == len(opened) == 16
    assert [caption for caption, _ in thumbs[:4]] == ["cat", "dog", "cat", "dog"]


# ---- refused uploads: nothing written --------------------------------------------------------------

def symlink_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("cat/1.png", image(1))
        link = zipfile.ZipInfo("cat/link.png")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    return buf.getvalue()


def encrypted_zip() -> bytes:
    """A member flagged encrypted (zipfile cannot write one: the flag is set in both its headers)."""
    data = bytearray(zip_of({"secret.png": image(1)}, zipfile.ZIP_STORED))
    data[6] |= 0x1  # the local header's flags
    data[data.rfind(b"PK\x01\x02") + 8] |= 0x1  # the central directory's
    return bytes(data)


def lying_size_zip() -> bytes:
    """A member of 2 MB of zeros whose central directory entry declares 1,000 bytes: it passes the
    ratio check on what it declares and must be caught while it is decompressed."""
    data = bytearray(zip_of({"a.png": image(1), "zeros.png": bytes(2 * 2**20)}))
    entry = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, entry + 24, 1000)
    return bytes(data)


def understated_count_zip() -> bytes:
    """Six images, an end record that says one."""
    data = bytearray(zip_of({f"{i}.png": image(i) for i in range(6)}))
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, 1, 1)
    return bytes(data)


HOSTILE = [
    pytest.param(lambda: zip_of({"../evil.png": image(1)}), "goes up a folder", id="dot-dot"),
    pytest.param(lambda: zip_of({"/abs.png": image(1)}), "absolute path", id="absolute"),
    pytest.param(lambda: zip_of({"\\abs.png": image(1)}), "absolute path", id="backslash-absolute"),
    pytest.param(lambda: zip_of({"C:\\x.png": image(1)}), "drive letter", id="drive-letter"),
    pytest.param(lambda: zip_of({"C:x.png": image(1)}), "drive letter", id="drive-relative"),
    pytest.param(lambda: zip_of({"a/../../x.png": image(1)}), "goes up a folder", id="traversal-inside"),
    pytest.param(lambda: zip_of({"a\\..\\..\\x.png": image(1)}), "goes up a folder",
                 id="traversal-backslash"),
    pytest.param(lambda: zip_of({"ok.png": image(1), "bad\n.png": image(2)}), "control characters",
                 id="newline-in-name"),
    pytest.param(symlink_zip, "symbolic link", id="symlink"),
    pytest.param(encrypted_zip, "encrypted", id="encrypted"),
    pytest.param(lambda: zip_of({"a/x.png": image(1), "a//x.png": image(2)}), "appears twice",
                 id="duplicate-after-normalising"),
    pytest.param(lambda: zip_of({"a": image(1), "a/x.png": image(2)}), "both a file and a folder",
                 id="file-and-folder"),
    pytest.param(lambda: zip_of({"x.png": image(1)}, zipfile.ZIP_BZIP2), "compression method", id="bzip2"),
    pytest.param(lambda: zip_of({"bomb.png": bytes(20 * 2**20)}), "zip bomb", id="member-ratio"),
    pytest.param(lambda: zip_of({f"{i}.png": bytes(900_000) for i in range(3)}), "zip bomb",
                 id="overall-ratio"),
    pytest.param(lying_size_zip, "damaged", id="declared-size-lies"),
    pytest.param(lambda: zip_of({"README.md": b"# hello", "fake.png": b"text"}), "no images", id="no-images"),
    pytest.param(lambda: zip_of({}), "no images", id="empty-zip"),
    pytest.param(lambda: b"PK\x03\x04 this is not really a zip", "not a readable zip", id="not-a-zip"),
    pytest.param(lambda: zip_of({"a.png": image(1)})[:-30], "not a readable zip", id="truncated"),
]


@pytest.mark.parametrize("build, text", HOSTILE)
def test_a_hostile_or_damaged_zip_is_refused_with_nothing_written(build, text, data):
    message = refused(data, lambda: save_zip("evil", build()), text)
    assert "Nothing was saved" in message


@pytest.mark.parametrize("build", [lambda: io.BytesIO(lying_size_zip()), lying_size_zip])
def test_refused_after_a_good_upload_leaves_the_uploads_as_they_were(build, data):
    save_zip("pets", classes_zip())
    refused(data, lambda: save_zip("evil", build()), "damaged")


def test_caps_on_size_files_and_expansion(data, monkeypatch):
    monkeypatch.setattr(uploads, "MAX_ZIP_BYTES", 1000)
    refused(data, lambda: save_zip("big", classes_zip()), "MB; the limit is")
    monkeypatch.setattr(uploads, "MAX_ZIP_BYTES", 2**30)
    monkeypatch.setattr(uploads, "MAX_FILES", 5)
    refused(data, lambda: save_zip("many", zip_of({f"{i}.png": image(i) for i in range(6)})),
            "lists 6 files")  # the end record, before the directory is parsed
    refused(data, lambda: save_zip("many", understated_count_zip()), "holds 6 files")
    refused(data, lambda: save_images("many", [(f"{i}.png", image(i)) for i in range(6)]), "limit is 5")
    monkeypatch.setattr(uploads, "MAX_FILES", 50_000)
    monkeypatch.setattr(uploads, "MAX_TOTAL_BYTES", 500)
    refused(data, lambda: save_zip("wide", classes_zip()), "expands to")
    refused(data, lambda: save_images("wide", [(f"{i}.png", bytes(300)) for i in range(3)]), "GB")


def test_the_byte_counter_stops_a_member_longer_than_it_declares(tmp_path, monkeypatch):
    """zipfile itself stops at the declared size (then fails the CRC); the counter does not rely
    on it, and stops the whole upload at the cap."""
    staged = uploads._Staged(tmp_path)
    with pytest.raises(UploadError, match="more than the 10 bytes it declares"):
        staged.add("a.png", [bytes(8), bytes(8)], declared=10)
    monkeypatch.setattr(uploads, "MAX_TOTAL_BYTES", 20)
    with pytest.raises(UploadError, match="expands past"):
        staged.add("b.png", [bytes(8), bytes(8)])


@pytest.mark.parametrize("files, text", [
    ([("../a.png", image(1))], "goes up a folder"),
    ([("dir/a.png", image(1))], "not a plain file name"),
    ([("a.png", image(1)), ("a.png", image(2))], "two files are named"),
    ([("a.txt", b"text")], "no images"),
])
def test_loose_files_are_refused_with_nothing_written(files, text, data):
    refused(data, lambda: save_images("loose", files), text)


@pytest.mark.parametrize("name, text", [
    ("", "give the dataset a name"), ("   ", "give the dataset a name"), ("../x", "may hold only"),
    ("a b", "may hold only"), ("x/y", "may hold only"), (".hidden", "may hold only"), ("é", "may hold only"),
    ("a" * 65, "at most 64"), ("pets", "exists already"),
])
def test_bad_names_are_refused_with_nothing_written(name, text, data):
    save_zip("pets", classes_zip())
    refused(data, lambda: save_zip(name, classes_zip()), text)
    refused(data, lambda: check_upload_name(name), text)


# ---- a failure or a kill mid-way -------------------------------------------------------------------

def test_a_failure_mid_extraction_leaves_nothing(data, monkeypatch):
    before = tree(data)
    calls = []

    def failing(path):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as a stopped server would
        return "PNG", ""

    monkeypatch.setattr(uploads, "_image_format", failing)
    with pytest.raises(KeyboardInterrupt):
        save_zip("pets", classes_zip())
    assert tree(data) == before


KILLED_WRITER = """
import sys, time
from bdcore import uploads
def slow(path):
    print("writing", flush=True)
    time.sleep(60)
uploads._image_format = slow
uploads.save_zip(sys.argv[1], open(sys.argv[2], "rb").read())
"""


def test_a_killed_writer_leaves_no_dataset_and_its_temporary_folder_is_removed_later(data, tmp_path):
    archive = tmp_path / "pets.zip"
    archive.write_bytes(classes_zip())
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, "pets", str(archive)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    [left] = (data / "uploads").iterdir()
    assert left.name.startswith(".tmp-pets-") and not upload_path("pets").exists()
    assert list_uploads() == [] and not left.exists()
    assert save_zip("pets", classes_zip()).images == 10


def test_a_dataset_whose_replacement_was_killed_is_put_back(data):
    save_zip("pets", classes_zip())
    gone = subprocess.Popen(["true"])
    gone.wait()
    aside = data / "uploads" / f".old-pets-{gone.pid}-abcd"
    upload_path("pets").rename(aside)  # where a replacement killed between its two renames left it
    assert [(i.name, i.images) for i in list_uploads()] == [("pets", 10)] and not aside.exists()


# ---- the pages -------------------------------------------------------------------------------------

def upload_in_launch_page(at: AppTest, name: str, files: list[tuple[str, bytes, str]]) -> AppTest:
    by_label(at.text_input, "dataset name").set_value(name)
    at.file_uploader[0].set_value(files)
    return by_label(at.button, "Save the dataset").click().run()


@pytest.mark.usefixtures("no_workers")
def test_launch_page_uploads_a_zip_and_offers_it_in_the_pickers(tiny_data):
    at = page("ui/launch.py").run()
    upload_in_launch_page(at, "pets", [("pets.zip", classes_zip(), "application/zip")])
    assert not at.exception and not at.error
    assert "Saved 10 images as 'pets'" in at.success[0].value
    [grid] = [i for i in at.image if len(i.value) > 1]
    assert sorted(set(grid.captions)) == ["cat", "dog"]
    picker = at.selectbox(key="labeled_choice")
    assert "uploaded: pets" in picker.options
    picker.set_value("uploaded: pets").run()
    assert not at.exception
    assert str(upload_path("pets")) in " ".join(c.value for c in at.caption)  # its preview's source
    at.button[0].click().run()  # Launch: the run uses the upload as a folder dataset
    [record] = RunStore().list()
    assert record.config.labeled == f"folder:{upload_path('pets')}"


def test_launch_page_previews_an_upload_saved_again_under_its_name_afresh(tiny_data):
    save_images("set", [("a.png", image(1))])
    at = page("ui/launch.py").run()
    at.selectbox(key="labeled_choice").set_value("uploaded: set").run()
    assert at.image[0].captions[0].startswith("1 images")
    delete_upload("set")
    save_zip("set", classes_zip())
    at.run()
    # not the cached preview of the old one; a collection's preview counts all its images
    assert at.image[0].captions[0].startswith("10 images")


def test_launch_page_refuses_a_hostile_zip_in_an_error_box(tiny_data):
    before = tree(tiny_data)
    at = page("ui/launch.py").run()
    upload_in_launch_page(at, "evil", [("evil.zip", zip_of({"../evil.png": image(1)}), "application/zip")])
    assert not at.exception
    [error] = at.error
    assert error.value.startswith("Not saved: upload refused: '../evil.png' goes up a folder")
    assert tree(tiny_data) == before
    upload_in_launch_page(at, "loose", [("a.png", image(1), "image/png"), ("b.png", image(2), "image/png")])
    assert "Saved 2 images as 'loose' (unlabeled" in at.success[0].value


def test_datasets_page_lists_previews_and_deletes_after_confirming(isolated_env):
    save_zip("pets", classes_zip())
    save_images("loose", [("a.png", image(1))])
    used = RunStore().add(ExperimentConfig(labeled=f"folder:{upload_path('pets')}"))
    at = page("ui/datasets.py").run()
    assert not at.exception
    assert [s.value for s in at.subheader] == ["loose", "pets"]
    assert "10 images" in at.caption[1].value and "labeled: 2 classes" in at.caption[1].value
    assert [len(i.value) for i in at.image] == [1, 10]
    at.button(key="delete_pets").click().run()
    assert used in at.warning[0].value  # the runs trained on it are named
    at.button(key="cancel_pets").click().run()
    assert [s.value for s in at.subheader] == ["loose", "pets"] and not at.warning
    at.button(key="delete_pets").click().run()
    at.button(key="confirm_pets").click().run()
    assert not at.exception
    assert at.success[0].value == "Deleted 'pets'." and [s.value for s in at.subheader] == ["loose"]
    assert [i.name for i in list_uploads()] == ["loose"]


def test_datasets_page_with_nothing_uploaded(isolated_env):
    at = page("ui/datasets.py").run()
    assert not at.exception and "No uploaded datasets yet" in at.info[0].value
