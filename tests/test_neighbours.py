"""The neighbour search UMAP and t-SNE build on: the approximate search finds the exact search's
neighbours, deterministically, and large sets take the fast path."""
import importlib

import numpy as np
import pytest

from bdcore.embeddings import neighbours
from bdcore.embeddings.neighbours import approximate_knn, exact_knn, nearest_neighbours, without_self
from bdcore.embeddings.reduce import ReduceParams

reducing = importlib.import_module("bdcore.embeddings.reduce")  # the package exports a function of that name


def clustered(n: int, seed: int = 0, dims: int = 12) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(10, dims)) * 4
    return (centres[rng.integers(0, 10, n)] + rng.normal(size=(n, dims))).astype(np.float32)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, truth, strict=True)]))


def test_the_approximate_search_finds_the_true_neighbours_and_their_distances():
    x = clustered(3000)
    truth, true_dist = exact_knn(x, 10)
    idx, dist = approximate_knn(x, 10, seed=0)
    assert idx.shape == (3000, 10) and dist.shape == (3000, 10)
    assert (idx[:, 0] == np.arange(3000)).all()  # each point first, at distance 0
    assert recall(idx, truth) >= 0.97
    direct = np.linalg.norm(x[:, None] - x[idx], axis=2)
    assert np.allclose(dist, direct, atol=1e-4)
    assert (np.diff(dist, axis=1) >= -1e-5).all()  # nearest first
    assert (dist >= true_dist - 1e-4).all()  # never nearer than the truth


def test_the_approximate_search_is_deterministic_for_a_seed():
    x = clustered(2000, seed=3)
    first, second = approximate_knn(x, 8, seed=5), approximate_knn(x, 8, seed=5)
    assert (first[0] == second[0]).all() and np.array_equal(first[1], second[1])


def test_more_probes_find_more_and_probing_every_cell_is_exact():
    x = clustered(2000, seed=1, dims=30)
    truth, _ = exact_knn(x, 15)
    few, many = recall(approximate_knn(x, 15, probes=1)[0], truth), recall(approximate_knn(x, 15)[0], truth)
    assert few < many
    assert recall(approximate_knn(x, 15, probes=10_000)[0], truth) == 1.0  # every cell probed


def test_a_cell_of_many_equal_points_is_searched_in_chunks(monkeypatch):
    monkeypatch.setattr(neighbours, "CHUNK", 64)  # the cell of 500 equal points in 8 blocks
    x = np.concatenate([np.zeros((500, 4), np.float32), clustered(300, dims=4)])
    idx, dist = approximate_knn(x, 5)
    assert (dist[:500] == 0).all() and (idx[:500] < 500).all()  # its neighbours are its copies
    assert recall(idx[500:], exact_knn(x, 5)[0][500:]) >= 0.95


def test_tiny_sets_and_more_neighbours_than_a_cell_holds():
    x = clustered(40, seed=2)
    idx, _ = approximate_knn(x, 39)  # 6 cells of about 7 points: candidates from every cell
    assert recall(idx, exact_knn(x, 39)[0]) == 1.0
    idx, _ = approximate_knn(x[:3], 5)  # k above n: every point, as exact_knn
    assert idx.shape == (3, 3)
    others, _ = without_self(*approximate_knn(x, 6))
    assert others.shape == (40, 5) and not (others == np.arange(40)[:, None]).any()


def test_large_sets_take_the_approximate_search(monkeypatch):
    calls = []
    monkeypatch.setattr(neighbours, "approximate_knn", lambda x, k, seed: calls.append(len(x)) or ("a", k))
    monkeypatch.setattr(neighbours, "APPROXIMATE_FROM", 100)
    x = clustered(150)
    assert nearest_neighbours(x, 5) == ("a", 5) and calls == [150]
    assert nearest_neighbours(x[:99], 5)[0].shape == (99, 5)  # exact below the threshold


@pytest.mark.parametrize("n, parallel, start", [(300, False, "spectral"), (400, True, "pca")])
def test_umap_runs_parallel_from_a_pca_start_for_large_sets(monkeypatch, n, parallel, start):
    monkeypatch.setattr(reducing, "LARGE", 350)
    seen = {}
    real = reducing._umap_layout

    def spy(x, knn, params, init, parallel):
        seen.update(init=init, parallel=parallel)
        return real(x, knn, params, init, parallel)

    monkeypatch.setattr(reducing, "_umap_layout", spy)
    out = reducing.reduce(clustered(n), ReduceParams(method="umap", n_epochs=20, pca_dims=0))
    assert out.shape == (n, 2) and np.isfinite(out).all()
    assert seen == {"init": start, "parallel": parallel}
