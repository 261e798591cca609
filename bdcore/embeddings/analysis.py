"""What the teacher makes of the unlabeled set: for each labeled class the unlabeled samples it
maps there most confidently, the most ambiguous ones, how its predictions cover the labeled
classes, the affinity between unlabeled and labeled classes, and nearest labeled neighbours."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch


def entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of each row."""
    p = np.clip(probs, 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=1)


def top_k(probs: np.ndarray, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most likely classes per row and their probabilities, most likely first."""
    k = min(k, probs.shape[1])
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(probs, order, axis=1)


def most_confident(probs: np.ndarray, k: int = 8) -> dict[int, np.ndarray]:
    """For each class c, the ``k`` rows the model gives c the highest probability, best first."""
    k = min(k, len(probs))
    return {c: np.argsort(-probs[:, c], kind="stable")[:k] for c in range(probs.shape[1])}


def most_ambiguous(probs: np.ndarray, k: int = 16) -> np.ndarray:
    """The ``k`` rows with the highest entropy, most ambiguous first."""
    return np.argsort(-entropy(probs), kind="stable")[: min(k, len(probs))]


def class_coverage(probs: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """Per labeled class: how many samples the model predicts as it (count and share) and its share
    of all soft-label mass. A class with a tiny share is one the unlabeled set barely teaches."""
    predicted = np.bincount(probs.argmax(axis=1), minlength=len(classes))
    mass = probs.sum(axis=0)
    return pd.DataFrame({"class": classes, "predicted": predicted,
                         "predicted_share": predicted / max(len(probs), 1),
                         "soft_label_share": mass / max(mass.sum(), 1e-12)})


def affinity(probs: np.ndarray, labels: np.ndarray, n_groups: int) -> np.ndarray:
    """(n_groups, classes): the mean soft label of the rows with each label (NaN for no rows)."""
    out = np.full((n_groups, probs.shape[1]), np.nan)
    for g in range(n_groups):
        rows = labels == g
        if rows.any():
            out[g] = probs[rows].mean(axis=0)
    return out


def affinity_table(matrix: np.ndarray, counts: np.ndarray, group_names: list[str],
                   classes: list[str]) -> pd.DataFrame:
    """For each unlabeled class: the labeled class it is mapped to most (highest mean soft
    label), that mean probability, the runner-up, and how many samples it has."""
    rows = []
    for g, name in enumerate(group_names):
        if np.isnan(matrix[g]).all():
            continue
        order = np.argsort(-matrix[g])
        rows.append({"unlabeled class": name, "samples": int(counts[g]),
                     "maps to": classes[order[0]], "mean probability": float(matrix[g, order[0]]),
                     "runner-up": classes[order[1]] if len(order) > 1 else "",
                     "runner-up probability": float(matrix[g, order[1]]) if len(order) > 1 else np.nan})
    return pd.DataFrame(rows)


def nearest(query: np.ndarray, pool: np.ndarray, k: int = 8,
            metric: str = "euclidean") -> tuple[np.ndarray, np.ndarray]:
    """Indices of the ``k`` rows of ``pool`` nearest to ``query`` (one row) and their distances."""
    q = torch.as_tensor(np.asarray(query, np.float32)).view(1, -1)
    p = torch.as_tensor(np.asarray(pool, np.float32))
    if metric == "cosine":
        q, p = torch.nn.functional.normalize(q, dim=1), torch.nn.functional.normalize(p, dim=1)
        dist = 1 - (p @ q.T).squeeze(1)
    else:
        dist = torch.cdist(q, p).squeeze(0)
    d, i = dist.topk(min(k, len(p)), largest=False)
    return i.numpy(), d.numpy()
