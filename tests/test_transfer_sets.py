"""Transfer sets and the strategies that pick them: what a strategy keeps, how a set is saved,
listed, loaded and deleted, how an explored run's rows map back to its sources (through
unlabeled_limit and through another transfer set), and that a run trains on ``subset:NAME`` with
its parent's cached teacher."""
import numpy as np
import pytest
import torch

from bdcore.config import ExperimentConfig
from bdcore.curation import transfer_sets
from bdcore.curation.strategies import STRATEGIES, select
from bdcore.curation.transfer_sets import Part, TransferSetError
from bdcore.data import load_dataset, load_pair
from bdcore.embeddings import ExploreSession
from bdcore.errors import ConfigError, DataError
from bdcore.experiment import EventKind, run_experiment
from bdcore.runs import RunsRoot


def soft_labels(n: int = 600, classes: int = 5, seed: int = 0, skew: float = 3.0) -> np.ndarray:
    """Soft labels whose top-1 is skewed towards class 0 (as Fashion-MNIST's are towards a few digits)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, classes))
    logits[:, 0] += skew * rng.random(n)
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_strategy_keeps_at_most_the_budget_of_distinct_sorted_rows(name):
    probs = soft_labels()
    rows = select(name, probs, 100, seed=3)
    assert len(rows) == 100 and len(np.unique(rows)) == 100 and np.all(np.diff(rows) > 0)
    assert np.array_equal(rows, select(name, probs, 100, seed=3))  # seeded
    assert len(select(name, probs, 10_000)) == (480 if name == "drop_ambiguous" else 600)  # all it can


def test_balanced_gives_each_teacher_class_an_equal_share_and_rare_classes_all_they_have():
    probs = soft_labels()
    teaches = probs.argmax(1)
    counts = np.bincount(teaches, minlength=5)
    rows = select("balanced", probs, 200)
    got = np.bincount(teaches[rows], minlength=5)
    assert got.sum() == 200
    for c in range(5):  # a class short of the equal share gives all it has, the rest share the remainder
        assert got[c] == counts[c] if counts[c] < 40 else got[c] >= 40
    assert got.max() - got[counts >= 40].min() <= 1 + (200 - 40 * 5) // max((counts >= 40).sum(), 1)


def test_top_confident_takes_each_classs_highest_probabilities_even_where_it_is_not_top_1():
    probs = soft_labels()
    rows = set(select("top_confident", probs, 50).tolist())
    for c in range(5):
        best = np.argsort(-probs[:, c])[:5]  # the first few of each column are always kept
        assert set(best.tolist()) <= rows
    never_top = np.random.default_rng(1).dirichlet([1, 1, 1], 100)
    never_top[:, 2] = never_top[:, :2].min(1) * np.linspace(0.1, 0.9, 100)  # class 2 is never top-1
    never_top /= never_top.sum(1, keepdims=True)
    rows = select("top_confident", never_top, 30)
    assert set(np.argsort(-never_top[:, 2])[:10].tolist()) <= set(rows.tolist())  # class 2's ten best
    assert 2 not in never_top.argmax(1)  # balanced, by top-1, would give class 2 none of them


def test_drop_ambiguous_never_keeps_the_most_ambiguous_fifth():
    probs = soft_labels()
    entropy = -(probs * np.log(probs)).sum(1)
    worst = set(np.argsort(-entropy)[: len(probs) // 5].tolist())
    assert not worst & set(select("drop_ambiguous", probs, 10_000).tolist())


def test_bad_strategy_budget_or_soft_labels_are_refused_plainly():
    with pytest.raises(ConfigError, match="unknown strategy 'best'.*balanced"):
        select("best", soft_labels(), 10)
    with pytest.raises(ConfigError, match="budget must be at least 1"):
        select("random", soft_labels(), 0)
    with pytest.raises(ConfigError, match="non-empty"):
        select("random", np.zeros((0, 3)), 10)


def test_a_transfer_set_is_saved_listed_loaded_and_deleted(tiny_data):
    ts = transfer_sets.save("fashion-top", [Part("fashion-mnist", np.array([5, 1, 5, 9]), 200)],
                            {"how": "strategy", "details": "top_confident, budget 3"})
    assert (ts.spec, ts.size) == ("subset:fashion-top", 3)
    loaded = transfer_sets.load("fashion-top")
    assert loaded.parts[0].rows.tolist() == [1, 5, 9] and loaded.provenance["how"] == "strategy"
    assert [t.name for t in transfer_sets.list_transfer_sets()] == ["fashion-top"]
    images = load_dataset("subset:fashion-top", "train")
    source = load_dataset("fashion-mnist", "train")
    assert torch.equal(images.images, source.images[[1, 5, 9]]) and images.labels.tolist() == \
        source.labels[[1, 5, 9]].tolist()
    with pytest.raises(TransferSetError, match="exists already"):
        transfer_sets.save("fashion-top", [Part("fashion-mnist", np.array([2]))], {})
    transfer_sets.delete("fashion-top")
    with pytest.raises(TransferSetError, match="no transfer set named 'fashion-top'"):
        transfer_sets.load("fashion-top")


@pytest.mark.parametrize("name", ["", "../x", "a b", "-x", "x" * 65])
def test_unusable_names_and_empty_sets_are_refused(tiny_data, name):
    with pytest.raises(TransferSetError, match="not usable"):
        transfer_sets.save(name, [Part("fashion-mnist", np.array([1]))], {})
    with pytest.raises(TransferSetError, match="would be empty"):
        transfer_sets.save("empty", [Part("fashion-mnist", np.array([], dtype=np.int64))], {})


def test_a_transfer_set_is_unlabeled_only_and_a_changed_source_is_named(tiny_data):
    transfer_sets.save("few", [Part("fashion-mnist", np.array([0, 1]), 200)], {})
    with pytest.raises(ConfigError, match="transfer set, which is unlabeled"):
        ExperimentConfig(labeled="subset:few").validate()
    ExperimentConfig(unlabeled="subset:few").validate()
    with pytest.raises(TransferSetError, match="no test split"):
        load_dataset("subset:few", "test")
    transfer_sets.delete("few")
    transfer_sets.save("few", [Part("fashion-mnist", np.array([0, 1]), 60_000)], {})
    with pytest.raises(DataError, match="saved from 60000 images of fashion-mnist, which now has 200"):
        load_dataset("subset:few", "train")


def test_a_union_joins_transfer_sets_and_whole_datasets(tiny_data):
    transfer_sets.save("a", [Part("fashion-mnist", np.array([0, 1, 2]))], {})
    transfer_sets.save("b", [Part("fashion-mnist", np.array([2, 3]))], {})
    both = transfer_sets.union(["subset:a", "subset:b"], "ab")
    assert both.parts[0].rows.tolist() == [0, 1, 2, 3] and both.provenance["how"] == "union"
    mixed = transfer_sets.union(["subset:a", "mnist"], "a-and-mnist", sizes={"mnist": 200})
    images = load_dataset("subset:a-and-mnist", "train")
    assert len(images) == 203 and images.classes[0].startswith("fashion-mnist: ")
    assert images.labels.max() >= 10  # mnist's labels follow fashion-mnist's classes
    assert mixed.sources == ["fashion-mnist", "mnist"]


def test_rows_saved_from_an_explored_run_are_the_images_it_showed(tiny_data):
    """Through unlabeled_limit, then through a transfer set trained on with a limit again."""
    root = RunsRoot.default()

    def session_for(config: ExperimentConfig):
        run = root.run(f"r{len(list(root.path.glob('r*')))}")
        run.path.mkdir(parents=True)
        run.config_path.write_text(config.to_json())
        session = ExploreSession.__new__(ExploreSession)  # only what save_from_run reads
        session.config, session.run_id = config, run.path.name
        session.data = load_pair(config.pair_spec())
        return session

    first = session_for(ExperimentConfig(unlabeled_limit=50, seed=4))
    picked = np.array([3, 7, 11, 40])
    ts = transfer_sets.save_from_run(first, picked, "picked", {"model": "teacher", "how": "score filter"})
    shown = first.data.unlabeled_x[torch.from_numpy(picked)]
    assert ts.provenance == {"run": first.run_id, "model": "teacher", "how": "score filter"}
    second = session_for(ExperimentConfig(unlabeled="subset:picked"))
    assert torch.allclose(second.data.unlabeled_x.sort(0).values, shown.sort(0).values)
    again = transfer_sets.save_from_run(second, np.array([0, 2]), "again", {})
    assert set(again.parts[0].rows) <= set(ts.parts[0].rows) and again.size == 2
    third = session_for(ExperimentConfig(unlabeled="subset:picked", unlabeled_limit=2, seed=1))
    kept = transfer_sets.save_from_run(third, np.array([0, 1]), "kept", {})
    assert set(kept.parts[0].rows) <= set(ts.parts[0].rows) and kept.size == 2
    with pytest.raises(TransferSetError, match="rows must be from 0 to 3"):
        transfer_sets.save_from_run(second, np.array([4]), "bad", {})


def test_a_run_on_a_transfer_set_reuses_its_parents_cached_teacher(tiny_data):
    quick = dict(teacher="mlp", student="mlp", teacher_epochs=1, blind_epochs=1, finetune_epochs=1,
                 finetune_ks=["5"], finetune_min_steps=0, teacher_augment=False, teacher_input_noise=0.0)
    parent = run_experiment(ExperimentConfig(**quick))
    transfer_sets.save("half", [Part("fashion-mnist", np.arange(0, 200, 2), 200)], {"run": "parent"})
    events = []
    child = run_experiment(ExperimentConfig(**quick, unlabeled="subset:half"), on_event=events.append)
    assert child.teacher_reused and child.teacher_acc == parent.teacher_acc
    assert any(e.kind is EventKind.NOTE and "transfer set half: 100 images (100 of fashion-mnist)" in e.text
               for e in events)


@pytest.mark.parametrize("streamed", [False, True])
def test_a_transfer_set_over_an_image_folder_is_read_in_memory_or_streamed(tiny_data, tmp_path, monkeypatch,
                                                                          streamed):
    from test_prepared import unlabeled_folder

    if streamed:
        monkeypatch.setenv("BD_IN_MEMORY_MB", "0")
    spec = f"folder:{unlabeled_folder(tmp_path / 'photos', n=30)}"
    transfer_sets.save("photos", [Part(spec, np.array([2, 7, 19]), 30)], {})
    data = load_pair(ExperimentConfig(unlabeled="subset:photos").pair_spec())
    whole = load_pair(ExperimentConfig(unlabeled=spec).pair_spec())
    assert len(data.unlabeled_x) == 3 and data.input_shape == (1, 28, 28)
    assert torch.allclose(data.unlabeled_x[torch.arange(3)], whole.unlabeled_x[torch.tensor([2, 7, 19])])
    if streamed:  # a view of the prepared collection: nothing is read into memory
        from bdcore.data.streamed import StreamedImages

        assert isinstance(data.unlabeled_x, StreamedImages)
