"""Reduce features to 2-D or 3-D: t-SNE (openTSNE or scikit-learn, picked by size), UMAP (on a
k-nearest-neighbour graph computed in torch, neighbours.py, so pynndescent never runs) or PCA.
Every reducer is seeded, so the same inputs and params give the same picture, except UMAP from
LARGE points: its layout then runs on torch's threads, which umap-learn does only unseeded
(threads race to move shared points). The embedding cache keeps the first picture, so a user sees the same
one until the cache is cleared."""
from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from sklearn.decomposition import PCA

from ..errors import ConfigError
from .features import Progress
from .neighbours import APPROXIMATE_FROM, exact_knn, nearest_neighbours, without_self

METRICS = ("euclidean", "cosine")  # cosine: rows scaled to unit length, then euclidean
INITS = {"tsne": ("pca", "random"), "umap": ("spectral", "pca", "random"), "pca": ("pca",)}
TSNE_IMPLS = ("auto", "opentsne", "sklearn")
EARLY_ITER = 250  # t-SNE early-exaggeration iterations, before ``n_iter`` normal ones
LARGE = APPROXIMATE_FROM  # UMAP from this many points: approximate neighbours, PCA start, parallel layout
FFT_FROM = 5000  # t-SNE "auto": scikit-learn's Barnes-Hut below this many points, openTSNE's FFT from it


@dataclass(frozen=True)
class ReduceParams:
    method: str = "tsne"  # a key of REDUCERS
    dims: int = 2
    perplexity: float = 30.0  # t-SNE
    learning_rate: float = 0.0  # t-SNE; 0 = the implementation's "auto"
    n_iter: int = 250  # t-SNE iterations after early exaggeration (quality: bench/embeddings_speed.py)
    tsne_impl: str = "auto"  # auto: the faster implementation for this size (bench/embeddings_speed.py)
    n_neighbors: int = 15  # UMAP
    min_dist: float = 0.1  # UMAP
    n_epochs: int = 200  # UMAP
    metric: str = "euclidean"
    init: str = "auto"  # auto: pca for t-SNE, spectral for UMAP (pca from LARGE points)
    pca_dims: int = 50  # features are first reduced to this many PCA components (0: never)
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    def resolved_init(self, n: int = 0) -> str:
        """``init`` for ``n`` points: "auto" is PCA for a UMAP of LARGE points or more, whose
        spectral start (an eigenproblem on the whole graph) costs seconds for the same picture."""
        if self.init != "auto":
            return self.init
        return "pca" if self.method == "umap" and n >= LARGE else INITS[self.method][0]

    def validate(self) -> ReduceParams:
        problems = []
        if self.method not in REDUCERS:
            problems.append(f"method: choose one of {', '.join(REDUCERS)}")
        elif self.resolved_init() not in INITS[self.method]:
            problems.append(f"init {self.init!r} does not apply to {self.method} "
                            f"(choose {', '.join(INITS[self.method])})")
        if self.dims not in (2, 3):
            problems.append("dims must be 2 or 3")
        if self.metric not in METRICS:
            problems.append(f"metric: choose one of {', '.join(METRICS)}")
        if self.tsne_impl not in TSNE_IMPLS:
            problems.append(f"tsne_impl: choose one of {', '.join(TSNE_IMPLS)}")
        if self.perplexity <= 0 or self.learning_rate < 0 or self.n_iter < 1:
            problems.append("perplexity and n_iter must be > 0, learning_rate >= 0")
        if self.n_neighbors < 2 or not 0 <= self.min_dist <= 1 or self.n_epochs < 1:
            problems.append("n_neighbors must be >= 2, min_dist in [0, 1], n_epochs >= 1")
        if problems:
            raise ConfigError("invalid embedding params: " + "; ".join(problems))
        return self


def prepare(x: np.ndarray, params: ReduceParams) -> np.ndarray:
    """Metric scaling and PCA pre-reduction (standard before t-SNE / UMAP; also much faster)."""
    x = np.asarray(x, dtype=np.float32)
    if params.metric == "cosine":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    if params.method != "pca" and 0 < params.pca_dims < min(x.shape):
        x = PCA(params.pca_dims, random_state=params.seed).fit_transform(x).astype(np.float32)
    return x


def tsne_impl_for(n: int, params: ReduceParams) -> str:
    """``auto``: scikit-learn's Barnes-Hut below FFT_FROM points (openTSNE's FFT grid costs more
    than it saves there; openTSNE itself uses Barnes-Hut there too) and openTSNE's FFT from it,
    in 2-D; 3-D has no FFT, so scikit-learn.
    bench/embeddings_speed.py measures both, with their trustworthiness and kNN accuracy."""
    if params.tsne_impl != "auto":
        return params.tsne_impl
    return "opentsne" if n >= FFT_FROM and params.dims == 2 else "sklearn"


def tsne_start(init: np.ndarray) -> np.ndarray:
    """A previous layout rescaled to t-SNE's customary starting spread (standard deviation 1e-4 on
    the first axis, openTSNE's convention), its shape kept."""
    init = np.asarray(init, dtype=np.float64)
    centred = init - init.mean(axis=0)
    return centred / max(float(centred[:, 0].std()), 1e-12) * 1e-4


def _tsne(x: np.ndarray, params: ReduceParams, progress: Progress, init: np.ndarray | None) -> np.ndarray:
    x = prepare(x, params)
    perplexity = min(params.perplexity, max((len(x) - 1) / 3, 1.0))
    # From a given layout (a replay's previous epoch) there is no early exaggeration: its clusters
    # are formed already, and exaggeration would pull them together and reshuffle them.
    early = 0 if init is not None else EARLY_ITER
    start = params.resolved_init() if init is None else tsne_start(init)
    total = early + params.n_iter
    if tsne_impl_for(len(x), params) == "sklearn":
        from sklearn.manifold import TSNE

        progress(0.0, f"t-SNE (scikit-learn, {total} iterations)")
        # scikit-learn always runs 250 exaggerated iterations: at factor 1 they are ordinary ones
        tsne = TSNE(params.dims, perplexity=perplexity, max_iter=max(total, EARLY_ITER + 1), init=start,
                    early_exaggeration=12.0 if init is None else 1.0,
                    learning_rate=params.learning_rate or "auto", random_state=params.seed)
        return tsne.fit_transform(x).astype(np.float32)
    import openTSNE
    import openTSNE.nearest_neighbors

    progress(0.0, "t-SNE neighbours")
    done = [0]

    def tick(_iteration: int, _error: float, _embedding: np.ndarray) -> bool:
        done[0] += 25
        progress(min(done[0] / total, 1.0), f"t-SNE iteration {min(done[0], total)}/{total}")
        return False

    # The neighbours perplexity weighs (3 x perplexity), from neighbours.py: faster here than
    # openTSNE's own Annoy index (docs/performance.md, "The explorer at full size").
    idx, dist = without_self(*nearest_neighbours(x, min(len(x) - 1, int(3 * perplexity)) + 1, params.seed))
    affinities = openTSNE.affinity.PerplexityBasedNN(
        perplexity=perplexity, knn_index=openTSNE.nearest_neighbors.PrecomputedNeighbors(idx, dist),
        n_jobs=torch.get_num_threads(), random_state=params.seed)
    tsne = openTSNE.TSNE(n_components=params.dims, perplexity=perplexity, n_iter=params.n_iter,
                         early_exaggeration_iter=early, initialization=start,
                         learning_rate=params.learning_rate or "auto", random_state=params.seed,
                         negative_gradient_method="fft" if len(x) >= FFT_FROM and params.dims == 2 else "bh",
                         n_jobs=torch.get_num_threads(), callbacks=tick, callbacks_every_iters=25)
    return np.asarray(tsne.fit(x, affinities=affinities), dtype=np.float32)


def _umap(x: np.ndarray, params: ReduceParams, progress: Progress, init: np.ndarray | None) -> np.ndarray:
    x = prepare(x, params)
    progress(0.05, "UMAP neighbour graph")
    knn = nearest_neighbours(x, params.n_neighbors, params.seed)
    progress(0.2, f"UMAP layout ({params.n_epochs} epochs)")
    start = params.resolved_init(len(x)) if init is None else np.asarray(init, np.float64)
    return _umap_layout(x, knn, params, start, parallel=len(x) >= LARGE)


def _umap_layout(x: np.ndarray, knn: tuple[np.ndarray, np.ndarray], params: ReduceParams,
                 start: str | np.ndarray, parallel: bool) -> np.ndarray:
    import numba
    import umap

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no search index is kept: transform() is never used
        reducer = umap.UMAP(n_neighbors=min(params.n_neighbors, len(x)), n_components=params.dims,
                            min_dist=params.min_dist, init=start, n_epochs=params.n_epochs,
                            # umap-learn runs its epochs in parallel only when unseeded
                            random_state=None if parallel else params.seed,
                            n_jobs=min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)
                            if parallel else 1,
                            precomputed_knn=(*knn, None))
        return reducer.fit_transform(x).astype(np.float32)


def _pca(x: np.ndarray, params: ReduceParams, progress: Progress, _init: np.ndarray | None) -> np.ndarray:
    progress(0.0, "PCA")
    x = prepare(x, params)
    return PCA(params.dims, random_state=params.seed).fit_transform(x).astype(np.float32)


# (features, params, progress, starting layout or None) -> coordinates
REDUCERS: dict[str, Callable[[np.ndarray, ReduceParams, Progress, np.ndarray | None], np.ndarray]] = {
    "tsne": _tsne,
    "umap": _umap,
    "pca": _pca,
}


def reduce(x: np.ndarray, params: ReduceParams, progress: Progress | None = None,
           init: np.ndarray | None = None) -> np.ndarray:
    """``x`` (n, d) to (n, params.dims) with the chosen reducer; ``init`` (n, dims), a layout to
    start t-SNE or UMAP from instead of ``params.init`` (PCA, being linear, ignores it)."""
    params.validate()
    if len(x) < params.dims + 2:
        raise ConfigError(f"need at least {params.dims + 2} samples to embed, got {len(x)}")
    if init is not None and np.shape(init) != (len(x), params.dims):
        raise ConfigError(f"a starting layout must be {len(x)} x {params.dims}, got {np.shape(init)}")
    out = REDUCERS[params.method](x, params, progress or (lambda _f, _m: None), init)
    (progress or (lambda _f, _m: None))(1.0, "done")
    return out


def warm_up_umap() -> None:
    """Compile UMAP's JIT functions, seeded and parallel, on a tiny input, so the first real UMAP
    does not pay for them (numba does not cache them on disk); run it once per process in a
    background thread."""
    x = np.random.default_rng(0).normal(size=(64, 8)).astype(np.float32)
    params = ReduceParams(method="umap", n_neighbors=5, n_epochs=5, pca_dims=0)
    knn = exact_knn(x, params.n_neighbors)
    for parallel in (False, True):
        _umap_layout(x, knn, params, "random", parallel)
