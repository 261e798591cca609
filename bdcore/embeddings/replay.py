"""Replay of the blind stage: the student's embedding at each kept epoch (``RunDir.snapshot``) of
the same samples, on one shared layout. Each epoch's t-SNE / UMAP starts from the previous epoch's
layout (so a cluster stays where it was unless the features really moved it), and each layout is
then rotated onto the previous one (orthogonal Procrustes: a rotation or reflection and one scale),
which also settles PCA's arbitrary signs. Every epoch is cached like any embedding."""
from __future__ import annotations

import time

import numpy as np
import torch
from scipy.linalg import orthogonal_procrustes

from ..errors import DataError, first_line
from ..models import build_model
from ..runs import load_weights
from ..stage_names import BLIND
from .cache import cache_key
from .engine import ENGINE_VERSION, Embedding, sample_set
from .features import REPRESENTATIONS, Progress, forward_outputs
from .reduce import ReduceParams, reduce
from .samples import SampleSpec
from .source import ExploreError, ExploreSession


def replay_role(epoch: int) -> str:
    """How a replayed epoch is named in titles and tables: ``blind@e3``."""
    return f"{BLIND}@e{epoch}"


def replay_epochs(session: ExploreSession) -> list[int]:
    """The blind-stage epochs of this run with a kept snapshot (none for runs made before they
    were kept)."""
    return session.run.snapshot_epochs(BLIND)


def _snapshot_identity(session: ExploreSession, epoch: int) -> dict:
    stat = session.run.snapshot(BLIND, epoch).stat()
    return {"run": session.run_id, "epoch": epoch, "size": stat.st_size, "mtime": stat.st_mtime_ns}


def _outputs(session: ExploreSession, epoch: int, x) -> tuple[np.ndarray, np.ndarray]:
    path = session.run.snapshot(BLIND, epoch)
    model = build_model(session.config.student, session.data.input_shape, session.data.num_classes)
    try:
        load_weights(model, path)
    except DataError as err:
        raise ExploreError(f"run {session.run_id}: the blind stage's epoch {epoch} snapshot {path} cannot "
                           f"be loaded ({first_line(err.__cause__ or err)})") from err
    return forward_outputs(model.eval().requires_grad_(False), x, amp=session.config.amp)


def align(coords: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``coords`` rotated (or reflected), scaled and shifted to lie as close as they can to
    ``reference``, point by point (orthogonal Procrustes); their shape is unchanged."""
    a = coords - coords.mean(axis=0)
    b = reference - reference.mean(axis=0)
    rotation, scale = orthogonal_procrustes(a, b)
    factor = scale / max(float((a ** 2).sum()), 1e-12)  # the least-squares scale for this rotation
    return (a @ rotation * factor + reference.mean(axis=0)).astype(np.float32)


def replay(session: ExploreSession, spec: SampleSpec = SampleSpec(), params: ReduceParams = ReduceParams(),
           representation: str = "features", progress: Progress | None = None) -> list[Embedding]:
    """One embedding per kept blind-stage epoch, oldest first, each of role ``blind@eN``."""
    if representation not in REPRESENTATIONS:
        raise ExploreError(f"representation: choose one of {', '.join(REPRESENTATIONS)}")
    epochs = replay_epochs(session)
    if not epochs:
        raise ExploreError(f"run {session.run_id} kept no blind-stage snapshots (runs made before "
                           "snapshots were kept, or still in their teacher stage): nothing to replay")
    params.validate()
    progress = progress or (lambda _f, _m: None)
    samples = sample_set(session, spec)
    data = session.data
    x = torch.cat([data.test_x[torch.as_tensor(samples.labeled, dtype=torch.long)],
                   data.unlabeled_x[torch.as_tensor(samples.unlabeled, dtype=torch.long)]])
    labels = [data.test_y.numpy()[samples.labeled],
              np.full(len(samples.unlabeled), -1) if data.unlabeled_labels is None
              else data.unlabeled_labels.numpy()[samples.unlabeled]]
    unlabeled = np.r_[np.zeros(len(samples.labeled), bool), np.ones(len(samples.unlabeled), bool)]
    common = dict(is_unlabeled=unlabeled,
                  index=np.r_[samples.labeled, samples.unlabeled].astype(np.int64),
                  true_label=np.concatenate(labels).astype(np.int64))
    frames: list[Embedding] = []
    chain: list[dict] = []  # an epoch's layout depends on every earlier one it started from
    for i, epoch in enumerate(epochs):
        chain.append(_snapshot_identity(session, epoch))
        key = cache_key(v=ENGINE_VERSION, kind="replay", chain=chain, spec=spec.to_dict(),
                        params=params.to_dict(), representation=representation)
        role = replay_role(epoch)

        def report(fraction: float, message: str, i: int = i, role: str = role) -> None:
            progress((i + fraction) / len(epochs), f"{role}: {message}")

        hit = session.cache.load(key)
        if hit is not None:
            frames.append(Embedding(**hit, role=role, representation=representation, spec=spec,
                                    params=params, cached=True))
            continue
        start = time.perf_counter()
        feats, logits = _outputs(session, epoch, x)
        seconds = {"features": time.perf_counter() - start}
        start = time.perf_counter()
        previous = frames[-1].coords if frames else None
        coords = reduce(feats if representation == "features" else logits, params, report, init=previous)
        if previous is not None:
            coords = align(coords, previous)
        seconds["reduce"] = time.perf_counter() - start
        frame = Embedding(coords=coords, logits=logits, role=role, representation=representation,
                          spec=spec, params=params, seconds=seconds, **common)
        session.cache.save(key, frame.arrays(), {"run": session.run_id, "role": role, "chain": chain,
                                                 "spec": spec.to_dict(), "params": params.to_dict(),
                                                 "representation": representation, "seconds": seconds})
        frames.append(frame)
    progress(1.0, "done")
    return frames
