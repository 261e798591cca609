"""What the Unlabeled and Model extraction pages compute once and share among every session and
tab (each an ``st.cache_resource``, keyed on the run's folder and the checkpoints' stamps, so a
retrained model is never served stale): the scores of every unlabeled sample, a strategy's
selection, and the extraction table. Shared objects: callers only read them."""
import numpy as np
import pandas as pd
import streamlit as st

from bdcore.curation.extraction import extraction
from bdcore.curation.scores import sample_scores
from bdcore.curation.strategies import select
from bdcore.embeddings import ExploreSession
from bdcore.embeddings.features import Progress

TRUE_CLASS = "true class"  # the unlabeled set's own label, shown where it has one (never trained on)


# Four: a class comparing a few models or temperatures of one run; each is about 3 MB for 60,000 samples.
@st.cache_resource(max_entries=4, show_spinner=False)
def unlabeled_scores(path: str, stamps: tuple, role: str, temperature: float,
                     _session: ExploreSession, _logits: np.ndarray) -> pd.DataFrame:
    """``sample_scores`` of ``role``'s logits over the whole unlabeled set (``_logits``), with the
    unlabeled set's true class when it has labels."""
    data = _session.data
    scores = sample_scores(_logits, temperature, data.classes)
    if data.unlabeled_labels is not None and data.unlabeled_classes:
        scores.insert(2, TRUE_CLASS, pd.Categorical.from_codes(data.unlabeled_labels.numpy(),
                                                               categories=data.unlabeled_classes))
    return scores


@st.cache_resource(max_entries=16, show_spinner=False)
def strategy_rows(path: str, stamps: tuple, role: str, strategy: str, budget: int, seed: int,
                  _probs: np.ndarray) -> np.ndarray:
    """``strategies.select``'s rows of the unlabeled set for ``role``'s soft labels at T=1."""
    return select(strategy, _probs, budget, seed)


@st.cache_resource(max_entries=4, show_spinner=False)
def extraction_table(path: str, stamps: tuple, _session: ExploreSession,
                     _progress: Progress | None = None) -> pd.DataFrame:
    """``extraction``'s agreement and KL of every student checkpoint of the run with its teacher."""
    return extraction(_session, _progress)
