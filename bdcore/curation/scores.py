"""Scores of every unlabeled sample under one model, from its logits: the class it teaches (its
top-1), how sure it is (confidence, margin, entropy at T=1 and at the run's T) and how far the
sample looks from what the model was trained on (energy, max-logit). Also the filters the
Unlabeled page applies to them, in plain words for a transfer set's provenance, per-class
histograms, and the AUROC that says which score separates out-of-distribution samples best.

Out-of-distribution scores (cleanlab's OutOfDistribution is not installed; these need only the
logits): ``energy`` = -logsumexp(logits) at T=1 (Liu et al. 2020), HIGHER = more
out-of-distribution; ``max_logit`` = the largest logit, LOWER = more out-of-distribution."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# The score columns of ``sample_scores``; with "index" and "teaches" they make the whole frame.
SCORES = ("confidence", "margin", "entropy_t1", "entropy_T", "energy", "max_logit")
# What each score means, for table headers and help texts.
SCORE_HELP = {
    "confidence": "top-1 probability at T=1",
    "margin": "top-1 minus top-2 probability at T=1 (small: torn between two classes)",
    "entropy_t1": "entropy of the soft label at T=1, in nats (high: ambiguous)",
    "entropy_T": "entropy of the soft label at the run's distillation T, in nats: what the student sees",
    "energy": "-logsumexp(logits): higher = more out-of-distribution",
    "max_logit": "largest logit: lower = more out-of-distribution",
}


def _log_softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    z = logits.astype(np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _entropy(log_probs: np.ndarray) -> np.ndarray:
    return -(np.exp(log_probs) * log_probs).sum(axis=1)


def sample_scores(logits: np.ndarray, temperature: float, classes: list[str]) -> pd.DataFrame:
    """One row per sample (``index``: its row in the set the logits are of): the class it teaches
    (the model's top-1 in ``classes``) and the scores of ``SCORES``, all float32."""
    logits = np.asarray(logits)
    if logits.ndim != 2 or logits.shape[1] != len(classes):
        raise ValueError(f"logits of shape {logits.shape} do not match {len(classes)} classes")
    log_p1 = _log_softmax(logits, 1.0)
    top = np.sort(log_p1, axis=1)
    first = np.exp(top[:, -1])
    second = np.exp(top[:, -2]) if len(classes) > 1 else np.zeros(len(top))
    shifted = logits.max(axis=1)
    energy = -(shifted + np.log(np.exp(logits - shifted[:, None]).sum(axis=1)))
    frame = pd.DataFrame({
        "index": np.arange(len(logits), dtype=np.int64),
        "teaches": pd.Categorical.from_codes(log_p1.argmax(axis=1), categories=classes),
        "confidence": first,
        "margin": first - second,
        "entropy_t1": _entropy(log_p1),
        "entropy_T": _entropy(_log_softmax(logits, temperature)),
        "energy": energy,
        "max_logit": shifted,
    })
    return frame.astype({s: np.float32 for s in SCORES})


@dataclass(frozen=True)
class ScoreFilter:
    """The rows a user keeps: those the model assigns to one of ``teaches`` (all when empty) with
    every score of ``ranges`` inside its closed [low, high]."""
    teaches: tuple[str, ...] = ()
    ranges: tuple[tuple[str, float, float], ...] = ()

    def apply(self, scores: pd.DataFrame) -> pd.DataFrame:
        keep = np.ones(len(scores), dtype=bool)
        if self.teaches:
            keep &= scores["teaches"].isin(self.teaches).to_numpy()
        for column, low, high in self.ranges:
            values = scores[column].to_numpy()
            keep &= (values >= low) & (values <= high)
        return scores[keep]

    def describe(self) -> str:
        """The filter in plain words, e.g. for a transfer set's provenance."""
        parts = [f"teaches {', '.join(self.teaches)}"] if self.teaches else []
        parts += [f"{low:.4g} <= {column} <= {high:.4g}" for column, low, high in self.ranges]
        return "; ".join(parts) or "no filter (every sample)"


def class_histograms(scores: pd.DataFrame, column: str, bins: int = 30) -> pd.DataFrame:
    """Counts of ``column`` per class the samples teach, on one set of ``bins`` equal bins over the
    column's range (so the classes compare): columns teaches, left, right, middle, count. A few
    hundred rows however many samples, so a chart of them sends no per-sample data."""
    values = scores[column].to_numpy(np.float64)
    low, high = (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)
    edges = np.linspace(low, high if high > low else low + 1.0, bins + 1)
    codes = scores["teaches"].cat.codes.to_numpy()
    frames = []
    for code, name in enumerate(scores["teaches"].cat.categories):
        counts, _ = np.histogram(values[codes == code], edges)
        frames.append(pd.DataFrame({"teaches": name, "left": edges[:-1], "right": edges[1:],
                                    "middle": (edges[:-1] + edges[1:]) / 2, "count": counts}))
    return pd.concat(frames, ignore_index=True)


# Each OOD candidate as a score that is HIGHER for a more out-of-distribution sample.
OOD_SCORES = {"energy": lambda s: s["energy"], "max_logit": lambda s: -s["max_logit"],
              "1 - confidence": lambda s: 1 - s["confidence"]}


def ood_separation(in_logits: np.ndarray, out_logits: np.ndarray) -> dict[str, float]:
    """AUROC of each score of ``OOD_SCORES`` at telling ``out_logits``' samples (positives:
    out-of-distribution) from ``in_logits``' (1.0: perfect, 0.5: chance)."""
    classes = [str(c) for c in range(np.shape(in_logits)[1])]
    inside, outside = sample_scores(in_logits, 1.0, classes), sample_scores(out_logits, 1.0, classes)
    from sklearn.metrics import roc_auc_score  # only the measurement needs it: not on the page's import

    truth = np.r_[np.zeros(len(inside)), np.ones(len(outside))]
    return {name: float(roc_auc_score(truth, np.r_[score(inside), score(outside)]))
            for name, score in OOD_SCORES.items()}
