"""How much of the teacher a student copied through its logits alone (the paper's closing remark on
model security): on the labeled test set, per true class, how often the student's top-1 is the
teacher's and the mean KL(teacher || student) of their soft labels at T=1, for the blind student
and each fine-tuned one. The blind student never saw a labeled image, so its agreement is pure
extraction; the fine-tuned ones show what a few labels add."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..embeddings import ExploreSession, set_outputs
from ..embeddings.features import Progress
from ..stage_names import TEACHER

ALL = "all classes"  # the row of every test sample together


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def agreement(teacher_logits: np.ndarray, student_logits: np.ndarray, labels: np.ndarray,
              classes: list[str]) -> pd.DataFrame:
    """One row per true class, then one for ``ALL``: samples, agreement (share where the student's
    top-1 is the teacher's), mean_kl (KL(teacher || student) at T=1, nats), and both models'
    accuracies, so a low agreement can be told from a teacher that is itself wrong there."""
    if teacher_logits.shape != student_logits.shape or len(labels) != len(teacher_logits):
        raise ValueError(f"teacher logits {teacher_logits.shape}, student logits {student_logits.shape} "
                         f"and {len(labels)} labels do not match")
    log_t, log_s = _log_softmax(teacher_logits), _log_softmax(student_logits)
    kl = (np.exp(log_t) * (log_t - log_s)).sum(axis=1)
    t_top, s_top = log_t.argmax(axis=1), log_s.argmax(axis=1)
    measures = {"agreement": s_top == t_top, "mean_kl": kl, "student_accuracy": s_top == labels,
                "teacher_accuracy": t_top == labels}
    rows = []
    for name, keep in [*((c, labels == i) for i, c in enumerate(classes)),
                       (ALL, np.ones(len(labels), dtype=bool))]:
        n = int(keep.sum())
        rows.append({"class": name, "samples": n,
                     **{k: float(v[keep].mean()) if n else np.nan for k, v in measures.items()}})
    return pd.DataFrame(rows)


def extraction(session: ExploreSession, progress: Progress | None = None) -> pd.DataFrame:
    """``agreement`` of every student checkpoint of the run (blind, then each fine-tune) with its
    teacher on the labeled test set, one frame with a ``model`` column (the role). The logits
    come from ``set_outputs``, so they are computed once per checkpoint and cached on disk."""
    students = [role for role in session.roles if role != TEACHER]
    labels = session.data.test_y.numpy()
    roles = [TEACHER, *students]
    logits = {}
    for i, role in enumerate(roles):
        logits[role] = set_outputs(session, role, "labeled", progress=None if progress is None else (
            lambda f, m, i=i: progress((i + f) / len(roles), m)))["logits"]
    frames = [agreement(logits[TEACHER], logits[role], labels, session.data.classes).assign(model=role)
              for role in students]
    columns = ["model", "class", "samples", "agreement", "mean_kl", "student_accuracy", "teacher_accuracy"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)
