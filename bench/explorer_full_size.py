"""The explorer at full size: UMAP and t-SNE of a run's whole labeled test set and unlabeled set
(70,000 points for MNIST + Fashion-MNIST) in the teacher's feature space, as the Embeddings page
computes them, with their quality.

    python bench/explorer_full_size.py [--run RUN_DIR] [--neighbours] [--methods umap tsne] \
        [--params JSON ...]

Features are the teacher's penultimate features over both whole sets (computed once, cached in the
run). Each reduction is timed alone (wall and CPU seconds of this process, /proc/loadavg beside);
UMAP's one-off JIT warm-up (seeded and parallel) is done first and timed apart (the app does it in a
background thread). Quality, comparable between settings:
- kNN accuracy: 10-NN classification of the 2-D points, 5-fold, labeled classes and unlabeled
  classes apart (20 classes), over all points;
- trustworthiness (10 neighbours) of 5,000 points drawn with seed 0 (sklearn's is quadratic in
  memory: 70,000 points would need 20 GB), against the reducer's input (after PCA)."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from embeddings_speed import load, newest_run, timed

from bdcore.embeddings import ExploreSession, ReduceParams, set_outputs
from bdcore.embeddings.neighbours import approximate_knn, exact_knn
from bdcore.embeddings.reduce import prepare, reduce, warm_up_umap

TRUST_SAMPLE = 5000


def whole_sets(session: ExploreSession) -> tuple[np.ndarray, np.ndarray]:
    """The teacher's features over the labeled test set then the unlabeled set, and 20-class labels."""
    feats = [set_outputs(session, "teacher", w, features=True)["features"].astype(np.float32)
             for w in ("labeled", "unlabeled")]
    data = session.data
    unl = data.unlabeled_labels.numpy() if data.unlabeled_labels is not None else np.zeros(len(feats[1]), int)
    return np.concatenate(feats), np.r_[data.test_y.numpy(), unl + data.num_classes]


def quality(x: np.ndarray, coords: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    from sklearn.manifold import trustworthiness
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    pick = np.random.default_rng(0).choice(len(x), size=min(TRUST_SAMPLE, len(x)), replace=False)
    trust = trustworthiness(x[pick], coords[pick], n_neighbors=10)
    knn = cross_val_score(KNeighborsClassifier(10), coords, labels, cv=5).mean()
    return trust, knn


def neighbour_graphs(x: np.ndarray, k: int = 15) -> None:
    """The exact and the approximate neighbour search side by side on the reducer's input, with
    the approximate one's recall (the share of the true k neighbours it finds)."""
    exact, wall_exact, _ = timed(lambda: exact_knn(x, k))
    approx, wall_approx, _ = timed(lambda: approximate_knn(x, k))
    found = np.mean([len(np.intersect1d(a, b)) / k for a, b in zip(approx[0], exact[0], strict=True)])
    print(f"neighbours ({k}) of {len(x):,} x {x.shape[1]}: exact {wall_exact:.1f} s, approximate "
          f"{wall_approx:.1f} s, recall {found:.4f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path,
                        help="a finished run folder (default: the newest under $BD_RUNS_DIR)")
    parser.add_argument("--methods", nargs="+", default=["umap", "tsne"])
    parser.add_argument("--params", nargs="+", default=["{}"],
                        help="JSON of ReduceParams fields to override; several: each is timed")
    parser.add_argument("--neighbours", action="store_true",
                        help="first time the exact and the approximate neighbour search side by side")
    args = parser.parse_args()
    import torch

    session = ExploreSession(args.run or newest_run())
    (x, labels), wall, _ = timed(lambda: whole_sets(session))
    print(f"run {session.path}\n{len(x):,} points x {x.shape[1]} features (teacher {session.config.teacher}) "
          f"in {wall:.1f} s; cpu threads {torch.get_num_threads()}", flush=True)
    if args.neighbours:
        neighbour_graphs(prepare(x, ReduceParams(method="umap")))
        neighbour_graphs(prepare(x, ReduceParams(method="tsne")), k=91)  # t-SNE's 3 x perplexity + 1
    (_, wall, _) = timed(warm_up_umap)
    print(f"UMAP JIT warm-up, seeded and parallel (one-off, excluded below): {wall:.1f} s", flush=True)
    for method in args.methods:
        for changes in args.params:
            params = replace(ReduceParams(method=method), **json.loads(changes))
            before = load()
            coords, wall, cpu = timed(lambda params=params: reduce(x, params))
            trust, knn = quality(prepare(x, params), coords, labels)
            print(f"{method:5s} {len(x):,} points: {wall:6.1f} s wall ({cpu:6.1f} s CPU)  trustworthiness "
                  f"{trust:.4f}  kNN accuracy {knn:.4f}  load {before} -> {load()}  params {changes}",
                  flush=True)


if __name__ == "__main__":
    main()
