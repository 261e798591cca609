"""Per-sample scores of the unlabeled set, their filters and histograms, and the OOD AUROC."""
import time

import numpy as np
import pytest

from bdcore.curation.scores import SCORES, ScoreFilter, class_histograms, ood_separation, sample_scores

CLASSES = ["a", "b", "c"]


def test_scores_of_known_logits():
    logits = np.array([[0.0, 0.0, 0.0],       # uniform: least confident, most ambiguous
                       [10.0, 0.0, 0.0],      # sure of a
                       [0.0, 2.0, 2.0]])      # torn between b and c
    s = sample_scores(logits, temperature=4.0, classes=CLASSES)
    assert list(s.columns) == ["index", "teaches", *SCORES]
    assert list(s["index"]) == [0, 1, 2] and list(s["teaches"]) == ["a", "a", "b"]
    assert s["confidence"].tolist() == pytest.approx([1 / 3, 1 / (1 + 2 * np.exp(-10)), 0.4683], abs=1e-4)
    assert s["margin"].tolist() == pytest.approx([0.0, 0.99991, 0.0], abs=1e-4)
    assert s["entropy_t1"][0] == pytest.approx(np.log(3)) and s["entropy_t1"][1] < 0.01
    assert s["entropy_T"][1] > s["entropy_t1"][1]  # a higher T softens the soft label
    assert s["energy"].tolist() == pytest.approx([-np.log(3), -10.0, -(2 + np.log(2 + np.exp(-2)))], abs=1e-4)
    assert s["max_logit"].tolist() == [0.0, 10.0, 2.0]
    assert all(s[c].dtype == np.float32 for c in SCORES)


def test_scores_are_stable_for_huge_logits_and_refuse_a_class_mismatch():
    s = sample_scores(np.array([[1000.0, 0.0, -1000.0]]), 20.0, CLASSES)
    assert np.isfinite(s[list(SCORES)].to_numpy()).all() and s["energy"][0] == pytest.approx(-1000.0)
    with pytest.raises(ValueError, match="3 classes"):
        sample_scores(np.zeros((2, 4)), 1.0, CLASSES)


def test_filter_keeps_the_chosen_classes_and_ranges_and_says_so():
    s = sample_scores(np.random.default_rng(0).normal(size=(500, 3)) * 3, 1.0, CLASSES)
    everything = ScoreFilter()
    assert len(everything.apply(s)) == 500 and everything.describe() == "no filter (every sample)"
    f = ScoreFilter(teaches=("a", "c"), ranges=(("confidence", 0.6, 1.0), ("energy", -100.0, -2.0)))
    kept = f.apply(s)
    assert 0 < len(kept) < 500
    assert set(kept["teaches"]) <= {"a", "c"} and kept["confidence"].min() >= 0.6
    assert kept["energy"].max() <= -2.0
    by_hand = s[s["teaches"].isin(["a", "c"]) & (s["confidence"] >= 0.6) & (s["energy"] <= -2.0)]
    assert kept["index"].tolist() == by_hand["index"].tolist()
    assert f.describe() == "teaches a, c; 0.6 <= confidence <= 1; -100 <= energy <= -2"


def test_class_histograms_share_bins_and_count_every_sample():
    s = sample_scores(np.random.default_rng(1).normal(size=(1000, 3)) * 2, 1.0, CLASSES)
    h = class_histograms(s, "confidence", bins=20)
    assert len(h) == 3 * 20 and set(h["teaches"]) == set(CLASSES)
    assert h.groupby("teaches", observed=True)["count"].sum().to_dict() == (
        s["teaches"].value_counts().to_dict())
    assert (h.groupby("teaches")["left"].apply(list).map(tuple).nunique()) == 1  # same bins for every class
    flat = class_histograms(s.assign(confidence=np.float32(0.5)), "confidence", bins=5)
    assert flat["count"].sum() == 1000  # a constant score still lands in a bin


def test_energy_separates_out_of_distribution_logits():
    rng = np.random.default_rng(2)
    inside = rng.normal(size=(400, 10))
    inside[np.arange(400), rng.integers(0, 10, 400)] += 8  # one confident class each
    outside = rng.normal(size=(300, 10))  # flat, low logits
    auc = ood_separation(inside, outside)
    assert set(auc) == {"energy", "max_logit", "1 - confidence"}
    assert all(v > 0.95 for v in auc.values())
    assert ood_separation(inside, inside)["energy"] == pytest.approx(0.5)  # no separation: chance


def test_scores_of_sixty_thousand_samples_take_well_under_a_second():
    logits = np.random.default_rng(3).normal(size=(60_000, 10)).astype(np.float32)
    start = time.perf_counter()
    s = sample_scores(logits, 20.0, [str(c) for c in range(10)])
    ScoreFilter(("1", "2"), (("margin", 0.1, 0.9),)).apply(s)
    class_histograms(s, "entropy_T")
    assert time.perf_counter() - start < 1.0 and len(s) == 60_000
