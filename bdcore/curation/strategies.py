"""Built-in ways to pick a transfer set from the teacher's soft labels over the unlabeled set.
Each takes the soft labels at T=1 (``probs``, N x C) and a budget, and returns the rows it keeps;
none looks at any label, so a curated set is chosen from the scores alone."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

DROP_SHARE = 0.2  # drop_ambiguous: the most ambiguous fifth goes first


def _quotas(available: np.ndarray, budget: int) -> np.ndarray:
    """An equal share of ``budget`` per class, a class with fewer rows than its share giving all it
    has and the rest going to the others (water-filling), so the budget is spent when it can be."""
    take = np.zeros_like(available)
    left = min(budget, int(available.sum()))
    while left > 0:
        open_classes = np.flatnonzero(take < available)
        share = max(left // len(open_classes), 1)
        for c in open_classes[np.argsort(available[open_classes] - take[open_classes], kind="stable")]:
            extra = min(share, available[c] - take[c], left)
            take[c] += extra
            left -= extra
            if left == 0:
                break
    return take


def balanced(probs: np.ndarray, budget: int, rng: np.random.Generator) -> np.ndarray:
    """Equal numbers per teacher class (its top-1), drawn at random within each class: Nayak et
    al.'s class-balanced transfer set. A class the teacher rarely predicts gives all it has."""
    teaches = probs.argmax(1)
    members = [np.flatnonzero(teaches == c) for c in range(probs.shape[1])]
    take = _quotas(np.array([len(m) for m in members]), budget)
    return np.concatenate([rng.choice(m, size=k, replace=False) for m, k in zip(members, take, strict=True)])


def top_confident(probs: np.ndarray, budget: int, rng: np.random.Generator) -> np.ndarray:
    """Per class, the rows that give it the highest probability, an equal share each. Rows are
    ranked by each class's own probability, whatever the teacher's top-1, so a class the teacher
    rarely predicts still gets the images that teach it most; a row wanted by two classes goes to
    the one that ranks it higher and the other takes its next best."""
    n, classes = probs.shape
    budget = min(budget, n)
    order = np.argsort(-probs, axis=0, kind="stable")  # column c: rows by probability of c
    chosen = np.zeros(n, dtype=bool)
    cursor = np.zeros(classes, dtype=int)
    quota = _quotas(np.full(classes, n), budget)
    for _round in range(int(quota.max())):  # round robin: one row per class per round
        for c in np.flatnonzero(quota > 0):
            while cursor[c] < n and chosen[order[cursor[c], c]]:
                cursor[c] += 1
            if cursor[c] < n:
                chosen[order[cursor[c], c]] = True
                quota[c] -= 1
    return np.flatnonzero(chosen)


def drop_ambiguous(probs: np.ndarray, budget: int, rng: np.random.Generator) -> np.ndarray:
    """Without the most ambiguous rows (the highest-entropy fifth), then a random ``budget`` of
    the rest (all of it when the budget is larger)."""
    entropy = -(probs * np.log(np.clip(probs, 1e-12, None))).sum(1)
    kept = np.argsort(entropy, kind="stable")[: len(probs) - int(len(probs) * DROP_SHARE)]
    return rng.choice(kept, size=min(budget, len(kept)), replace=False)


def random(probs: np.ndarray, budget: int, rng: np.random.Generator) -> np.ndarray:
    """A uniform random ``budget`` of the rows: the baseline every curated set must beat."""
    return rng.choice(len(probs), size=min(budget, len(probs)), replace=False)


@dataclass(frozen=True)
class Strategy:
    label: str
    help: str
    pick: Callable[[np.ndarray, int, np.random.Generator], np.ndarray]


STRATEGIES: dict[str, Strategy] = {
    "balanced": Strategy("class-balanced by teacher class", "Equal numbers per teacher class (its top-1), "
                         "drawn at random within each class (Nayak et al.'s balanced transfer set).",
                         balanced),
    "top_confident": Strategy("top-confident per class", "Per class, the images that give it the highest "
                              "probability, an equal share each.", top_confident),
    "drop_ambiguous": Strategy("drop the most ambiguous", f"Without the {DROP_SHARE:.0%} of images with the "
                               "most ambiguous soft labels (highest entropy), then a random budget.",
                               drop_ambiguous),
    "random": Strategy("random", "A uniform random budget: the baseline.", random),
}


def check_strategy(name: str) -> Strategy:
    if name not in STRATEGIES:
        raise ConfigError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    return STRATEGIES[name]


def select(name: str, probs: np.ndarray, budget: int, seed: int = 0) -> np.ndarray:
    """The sorted rows strategy ``name`` keeps of ``probs`` (N x C soft labels at T=1), at most
    ``budget`` of them, drawn with ``seed`` where the strategy draws at random."""
    strategy = check_strategy(name)
    if budget < 1:
        raise ConfigError(f"a transfer set's budget must be at least 1 image, got {budget}")
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or len(probs) == 0:
        raise ConfigError(f"soft labels must be a non-empty (N, classes) array, got shape {probs.shape}")
    rows = strategy.pick(probs, budget, np.random.default_rng(seed))
    return np.sort(rows.astype(np.int64))
