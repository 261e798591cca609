"""The embedding engine on tiny data: sampling, features, reducers, caching, determinism, and
that labeled and unlabeled points really come from their sets."""
import json
import time
from dataclasses import replace

import numpy as np
import pytest
import torch

from bdcore.data import load_dataset
from bdcore.embeddings import (
    ExploreError,
    ExploreSession,
    ReduceParams,
    SampleSpec,
    draw_samples,
    embed,
    explorable_runs,
    forward_outputs,
    reduce,
    set_outputs,
)
from bdcore.embeddings.neighbours import exact_knn, without_self
from bdcore.embeddings.reduce import tsne_impl_for
from bdcore.models import build_model
from bdcore.store import RunStore

from embeddings_helpers import make_finished_run

FAST = ReduceParams(method="tsne", n_iter=50, perplexity=10)


@pytest.fixture
def session(tiny_data):
    run_id, path = make_finished_run()
    return ExploreSession(path, run_id)


def test_samples_are_stratified_seeded_and_distinct():
    labels = np.repeat(np.arange(4), [40, 30, 20, 10])
    a = draw_samples(labels, labels, len(labels), SampleSpec(20, 50, seed=3))
    assert len(a.labeled) == 20 and len(a.unlabeled) == 50 and len(a) == 70
    assert np.bincount(labels[a.labeled], minlength=4).tolist() == [8, 6, 4, 2]
    assert len(set(a.unlabeled)) == 50 and a.unlabeled.max() < len(labels)
    again = draw_samples(labels, labels, len(labels), SampleSpec(20, 50, seed=3))
    other = draw_samples(labels, labels, len(labels), SampleSpec(20, 50, seed=4))
    assert np.array_equal(a.labeled, again.labeled) and np.array_equal(a.unlabeled, again.unlabeled)
    assert not np.array_equal(a.labeled, other.labeled)
    unlabeled_only = draw_samples(labels, None, 7, SampleSpec(5, 100))
    assert sorted(unlabeled_only.unlabeled) == list(range(7))  # capped at the set's size


def test_features_are_the_last_linear_layers_input_and_logits_the_output():
    torch.manual_seed(0)
    model = build_model("cnn", (1, 28, 28), 10).eval()
    x = torch.randn(37, 1, 28, 28)
    feats, logits = forward_outputs(model, x, amp=False, batch_size=16)
    assert feats.shape == (37, 350) and logits.shape == (37, 10)
    with torch.no_grad():
        assert np.allclose(logits, model(x).numpy(), atol=1e-5)
        assert np.allclose(feats, model[:-1](x).numpy(), atol=1e-5)


@pytest.mark.parametrize("method,dims", [("tsne", 2), ("tsne", 3), ("pca", 2), ("pca", 3), ("umap", 2)])
def test_reducers_give_the_asked_shape_and_are_seeded(method, dims):
    x = np.random.default_rng(0).normal(size=(120, 20)).astype(np.float32)
    params = ReduceParams(method=method, dims=dims, n_iter=50, perplexity=10, n_epochs=20, n_neighbors=8)
    out = reduce(x, params)
    assert out.shape == (120, dims) and np.isfinite(out).all()
    assert np.allclose(out, reduce(x, params))


def test_both_tsne_implementations_and_the_auto_choice():
    x = np.random.default_rng(1).normal(size=(90, 10)).astype(np.float32)
    for impl in ("sklearn", "opentsne"):
        assert reduce(x, ReduceParams(n_iter=50, perplexity=10, tsne_impl=impl)).shape == (90, 2)
    assert tsne_impl_for(2000, ReduceParams()) == "sklearn"
    assert tsne_impl_for(10000, ReduceParams()) == "opentsne"
    assert tsne_impl_for(10000, ReduceParams(dims=3)) == "sklearn"


def test_bad_params_are_refused_with_a_message():
    with pytest.raises(ValueError, match="init 'spectral' does not apply to tsne"):
        ReduceParams(init="spectral").validate()
    with pytest.raises(ValueError, match="dims must be 2 or 3"):
        reduce(np.zeros((10, 3)), ReduceParams(dims=4))


def test_exact_knn_starts_with_the_point_itself():
    x = np.random.default_rng(2).normal(size=(50, 4)).astype(np.float32)
    idx, dist = exact_knn(x, 5)
    assert (idx.shape == (50, 5) and (idx[:, 0] == np.arange(50)).all()
            and np.allclose(dist[:, 0], 0, atol=1e-3))
    assert (np.diff(dist, axis=1) >= -1e-6).all()


def test_embedding_points_come_from_their_sets(session):
    emb = embed(session, "teacher", SampleSpec(30, 40, seed=1), FAST)
    assert emb.coords.shape == (70, 2) and emb.logits.shape == (70, 10)
    assert emb.is_unlabeled.sum() == 40
    test, unlabeled = load_dataset("mnist", "test"), load_dataset("fashion-mnist", "train")
    lab, unl = emb.index[~emb.is_unlabeled], emb.index[emb.is_unlabeled]
    assert np.array_equal(session.images("labeled", lab), test.images[lab].numpy())
    assert np.array_equal(session.images("unlabeled", unl), unlabeled.images[unl].numpy())
    assert np.array_equal(emb.true_label[~emb.is_unlabeled], test.labels[lab].numpy())
    assert np.array_equal(emb.true_label[emb.is_unlabeled], unlabeled.labels[unl].numpy())


def test_embeddings_are_cached_on_disk_and_deterministic(session):
    spec = SampleSpec(20, 20, seed=2)
    first = embed(session, "teacher", spec, FAST)
    assert not first.cached and set(first.seconds) == {"features", "reduce"}
    assert list((session.path / "explore-cache").glob("*.npz"))
    second = embed(session, "teacher", spec, FAST)
    assert second.cached and np.array_equal(first.coords, second.coords)
    session.cache.clear()
    fresh = embed(session, "teacher", spec, FAST)
    assert not fresh.cached and np.allclose(first.coords, fresh.coords)
    student = embed(session, "blind", spec, FAST)  # same samples, another model, another key
    assert not student.cached and np.array_equal(student.index, first.index)
    assert embed(session, "teacher", spec, FAST, representation="logits").coords.shape == (40, 2)


def test_whole_set_outputs_are_cached(session):
    out = set_outputs(session, "teacher", "unlabeled")
    assert out["logits"].shape == (200, 10)
    with_feats = set_outputs(session, "teacher", "labeled", features=True)
    assert with_feats["features"].shape == (100, 50) and with_feats["features"].dtype == np.float16
    assert np.array_equal(set_outputs(session, "teacher", "unlabeled")["logits"], out["logits"])


def test_explorable_runs_come_from_the_store_and_the_runs_folder(tiny_data):
    store = RunStore()
    stored, _ = make_finished_run(store)
    no_teacher = store.add(store.get(stored).config)
    assert store.claim_next(max_running=2) == (no_teacher, None)  # running, its teacher not trained yet
    store.set_run_dir(no_teacher, store.root.run(no_teacher).path)
    store.root.run(no_teacher).path.mkdir()
    choices = explorable_runs(store)
    assert [c.run_id for c in choices] == [stored]
    assert choices[0].roles == ["teacher", "blind", "finetune-kall"]
    store.delete(stored)  # still a folder with a teacher: listed from the runs root
    [folder] = explorable_runs(store)
    assert folder.run_id == stored and "folder" in folder.label


def test_a_run_without_teacher_or_data_is_refused_plainly(tiny_data):
    run_id, path = make_finished_run()
    (path / "teacher.safetensors").unlink()
    with pytest.raises(ExploreError, match="no trained teacher yet"):
        ExploreSession(path, run_id)
    run_id, path = make_finished_run()
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "unlabeled": "kmnist"}))  # not on disk
    with pytest.raises(ExploreError, match="data cannot be loaded.*kmnist"):
        ExploreSession(path, run_id)


def test_a_key_being_computed_makes_the_second_caller_wait_then_load(tmp_path):
    """Two callers of one key (two sessions, or the app and a run's worker): the second is told it
    waits, blocks until the first has saved, and then finds the result."""
    import threading

    from bdcore.embeddings import ArrayCache

    cache, inside, waited, found = ArrayCache(tmp_path), threading.Event(), [], []

    def first() -> None:
        with cache.computing("k", waiting=lambda: waited.append("first")):
            inside.set()
            time.sleep(0.3)
            cache.save("k", {"x": np.arange(3)})

    thread = threading.Thread(target=first)
    thread.start()
    inside.wait(5)
    with cache.computing("k", waiting=lambda: waited.append("second")):
        found.append(cache.load("k"))
    thread.join()
    assert waited == ["second"]
    assert found[0]["x"].tolist() == [0, 1, 2]


def test_exact_knn_matches_brute_force_and_drops_only_self():
    x = np.random.default_rng(4).normal(size=(300, 6)).astype(np.float32)
    x[7] = x[3]  # an exact duplicate may rank before the row itself
    idx, dist = exact_knn(x, 8)
    full = np.linalg.norm(x[:, None] - x[None], axis=2)
    assert np.allclose(dist, np.sort(full, axis=1)[:, :8], atol=1e-4)
    others, _ = without_self(idx, dist)
    assert others.shape == (300, 7) and not (others == np.arange(300)[:, None]).any()


def test_the_atlas_holds_every_image_as_a_tile_and_is_written_once(session, tmp_path):
    from PIL import Image

    from bdcore.embeddings.atlas import PER_ROW, write_atlas

    atlas = write_atlas(session, tmp_path, "/app/static/atlas/")
    assert atlas.counts == {"labeled": 100, "unlabeled": 200} and atlas.tile == 28
    folder = tmp_path / atlas.url.split("/")[-2]
    assert str(session.path) not in atlas.url  # the served name does not reveal the run's path
    sheet = np.asarray(Image.open(folder / "unlabeled-0.png"))
    assert sheet.shape == (2 * 28, PER_ROW * 28)  # 200 tiles: two rows of 100
    for i in (0, 57, 199):
        r, c = divmod(i, PER_ROW)
        tile = sheet[r * 28:(r + 1) * 28, c * 28:(c + 1) * 28]
        assert np.array_equal(tile, session.images("unlabeled", [i])[0, 0])
    stamp = (folder / "labeled-0.png").stat().st_mtime_ns
    assert write_atlas(session, tmp_path, "/app/static/atlas/") == atlas
    assert (folder / "labeled-0.png").stat().st_mtime_ns == stamp  # not written again


def test_reducers_start_from_a_given_layout():
    x = np.random.default_rng(5).normal(size=(120, 10)).astype(np.float32)
    start = np.random.default_rng(6).normal(size=(120, 2))
    for params in (ReduceParams(n_iter=50, perplexity=10),
                   ReduceParams(method="umap", n_epochs=20, n_neighbors=8)):
        out = reduce(x, params, init=start)
        assert out.shape == (120, 2) and np.isfinite(out).all()
    with pytest.raises(ValueError, match="starting layout must be 120 x 2"):
        reduce(x, ReduceParams(), init=start[:10])


def test_a_selection_is_highlighted_in_2d_and_3d_charts(session):
    from bdcore.embeddings.figures import embedding_frame, linked, scatter_figure

    for dims in (2, 3):
        emb = embed(session, "teacher", SampleSpec(20, 20, seed=3), replace(FAST, dims=dims))
        frame = embedding_frame(emb, session)
        fig = scatter_figure(frame, session)
        assert linked(fig, set(), frame.iloc[:0]) is fig  # nothing to show: the shared figure itself
        marked = linked(fig, {1, 25}, frame.loc[[25]].assign(label="unlabeled #x"))
        if dims == 2:
            picked = {int(t.customdata[i][0]) for t in marked.data for i in t.selectedpoints}
            assert picked == {1, 25} and marked.layout.annotations[0].text == "unlabeled #x"
        else:
            assert len(marked.data[-1].x) == 2 and marked.layout.scene.annotations[0].text == "unlabeled #x"
        assert all(getattr(t, "selectedpoints", None) is None for t in fig.data)  # the shared one unchanged
