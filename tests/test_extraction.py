"""Student-teacher agreement and KL on the labeled test set, per class and per checkpoint."""
import numpy as np
import pytest

from bdcore.curation.extraction import ALL, agreement, extraction
from bdcore.embeddings import ExploreSession
from bdcore.store import RunStore

from embeddings_helpers import make_finished_run


def test_agreement_and_kl_per_class_of_known_logits():
    teacher = np.array([[5.0, 0.0], [5.0, 0.0], [0.0, 5.0], [0.0, 5.0]])
    student = np.array([[5.0, 0.0], [0.0, 5.0], [0.0, 5.0], [0.0, 5.0]])
    labels = np.array([0, 0, 1, 0])
    table = agreement(teacher, student, labels, ["x", "y"]).set_index("class")
    assert table.index.tolist() == ["x", "y", ALL]
    assert table["samples"].tolist() == [3, 1, 4]
    assert table["agreement"].tolist() == pytest.approx([2 / 3, 1.0, 0.75])
    assert table["student_accuracy"].tolist() == pytest.approx([1 / 3, 1.0, 0.5])
    assert table["teacher_accuracy"].tolist() == pytest.approx([2 / 3, 1.0, 0.75])
    p = np.exp([5.0, 0.0]) / np.exp([5.0, 0.0]).sum()
    swapped_kl = (p * (np.log(p) - np.log(p[::-1]))).sum()  # the one sample the student gets backwards
    assert table.loc["x", "mean_kl"] == pytest.approx(swapped_kl / 3)
    assert table.loc["y", "mean_kl"] == pytest.approx(0.0, abs=1e-12)  # identical soft labels


def test_agreement_of_a_class_without_test_samples_is_nan_and_shapes_must_match():
    table = agreement(np.zeros((2, 3)), np.zeros((2, 3)), np.array([0, 0]), ["a", "b", "c"])
    assert table.set_index("class").loc["b", "samples"] == 0
    assert np.isnan(table.set_index("class").loc["b", "agreement"])
    with pytest.raises(ValueError, match="do not match"):
        agreement(np.zeros((2, 3)), np.zeros((3, 3)), np.array([0, 0]), ["a", "b", "c"])


def test_extraction_covers_every_student_checkpoint_of_a_run(tiny_data):
    _run_id, path = make_finished_run(RunStore())
    session = ExploreSession(path)
    seen = []
    table = extraction(session, progress=lambda f, m: seen.append(f))
    assert table["model"].unique().tolist() == ["blind", "finetune-kall"]  # the teacher is the reference
    overall = table[table["class"] == ALL].set_index("model")
    assert overall["samples"].tolist() == [len(session.data.test_y)] * 2
    assert ((overall["agreement"] >= 0) & (overall["agreement"] <= 1)).all()
    assert (overall["mean_kl"] > 0).all()  # untrained students differ from the trained teacher
    assert overall["teacher_accuracy"].iloc[0] > 0.5 and seen and max(seen) == pytest.approx(1.0)
