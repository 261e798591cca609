"""Embedding speed and quality on a finished run, as the Embeddings page computes them.

    python bench/embeddings_speed.py [--run RUN_DIR] [--no-compare]

1. end to end (teacher features + reduction, nothing cached): 2,000 points (1,000 labeled test +
   1,000 unlabeled) with t-SNE, 10,000 (5,000 + 5,000) with t-SNE and with UMAP; UMAP's one-off
   numba JIT warm-up is done first and timed apart (the app does it in a background thread);
2. the two t-SNE implementations (scikit-learn Barnes-Hut, openTSNE FFT) on the same features and
   iterations at both sizes, with trustworthiness (10 neighbours, against the reducer's input)
   and the 10-NN accuracy of the embedding (5-fold, labeled classes and unlabeled classes apart),
   which decide the engine's ``auto`` choice.
Prints wall seconds, CPU seconds of this process and /proc/loadavg beside each figure (another
process on the same cores slows the wall figures)."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bdcore.embeddings import ArrayCache, ExploreSession, ReduceParams, SampleSpec, embed
from bdcore.embeddings.engine import sample_outputs, sample_set
from bdcore.embeddings.reduce import prepare, reduce, tsne_impl_for, warm_up_umap
from bdcore.runs import RunsRoot


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def newest_run() -> Path:
    root = RunsRoot.default()
    found = [r.path for r in root.run_folders() if r.final_path.exists() and r.checkpoint("teacher").exists()]
    if not found:
        sys.exit(f"no finished run with a teacher under {root.path}; pass --run RUN_DIR")
    return found[0]  # run_folders lists the newest first


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def quality(x: np.ndarray, coords: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    from sklearn.manifold import trustworthiness
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    trust = trustworthiness(x, coords, n_neighbors=10)
    knn = cross_val_score(KNeighborsClassifier(10), coords, labels, cv=5).mean()
    return trust, knn


def end_to_end(session: ExploreSession, n: int, params: ReduceParams) -> None:
    session.cache = ArrayCache(Path(tempfile.mkdtemp(prefix="bd-bench-cache-")))  # nothing cached
    before = load()
    emb, wall, cpu = timed(lambda: embed(session, "teacher", SampleSpec(n // 2, n // 2, 0), params))
    after = load()
    feats, _ = sample_outputs(session, "teacher", sample_set(session, emb.spec))
    labels = emb.true_label + emb.is_unlabeled * session.data.num_classes
    trust, knn = quality(prepare(feats, params), emb.coords, labels)
    impl = f" ({tsne_impl_for(n, params)})" if params.method == "tsne" else ""
    print(f"{params.method}{impl:12s} {n:6d} points: {wall:6.2f} s wall ({cpu:6.2f} s CPU; features "
          f"{emb.seconds['features']:.2f} s + reduction {emb.seconds['reduce']:.2f} s)  "
          f"trustworthiness {trust:.4f}  kNN accuracy {knn:.4f}  load {before} -> {after}", flush=True)


def compare(session: ExploreSession, n: int, params: ReduceParams) -> None:
    samples = sample_set(session, SampleSpec(n // 2, n // 2, 0))
    feats, _ = sample_outputs(session, "teacher", samples)
    data = session.data
    unl = data.unlabeled_labels.numpy()[samples.unlabeled] if data.unlabeled_labels is not None \
        else np.zeros(len(samples.unlabeled), int)
    labels = np.r_[data.test_y.numpy()[samples.labeled], unl + data.num_classes]
    x = prepare(feats, params)
    for impl in ("sklearn", "opentsne"):
        before = load()
        coords, wall, cpu = timed(lambda impl=impl: reduce(feats, replace(params, tsne_impl=impl)))
        trust, knn = quality(x, coords, labels)
        print(f"  t-SNE {impl:9s} {n:6d} points: {wall:6.2f} s wall ({cpu:6.2f} s CPU)  "
              f"trustworthiness {trust:.4f}  kNN accuracy {knn:.4f}  load {before} -> {load()}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path,
                        help="a finished run folder (default: the newest under $BD_RUNS_DIR)")
    parser.add_argument("--no-compare", action="store_true", help="skip the implementation comparison")
    args = parser.parse_args()
    import torch

    path = args.run or newest_run()
    (session, wall, _) = timed(lambda: ExploreSession(path))
    print(f"run {path}\ncpu threads {torch.get_num_threads()}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    print(f"data loaded and paired in {wall:.2f} s (not part of the figures below)")
    (_, wall, _) = timed(warm_up_umap)
    print(f"UMAP JIT warm-up (one-off, excluded below; the app runs it in a background thread): {wall:.2f} s")
    session.cache = ArrayCache(Path(tempfile.mkdtemp(prefix="bd-bench-cache-")))
    embed(session, "teacher", SampleSpec(50, 50, 1), ReduceParams(method="pca"))  # first forward pass
    print("end to end (teacher features + reduction, cache empty):")
    tsne, umap = ReduceParams(method="tsne"), ReduceParams(method="umap")
    end_to_end(session, 2000, tsne)
    end_to_end(session, 10000, tsne)
    end_to_end(session, 10000, umap)
    if not args.no_compare:
        print(f"t-SNE implementations, same features, 250 + {tsne.n_iter} iterations, perplexity "
              f"{tsne.perplexity:g}, PCA to {tsne.pca_dims}:")
        compare(session, 2000, tsne)
        compare(session, 10000, tsne)


if __name__ == "__main__":
    main()
