"""The score filters of the Unlabeled page: the classes taught and a range slider per score, read
into a ``ScoreFilter`` that names only what the user narrowed."""
import math

import pandas as pd
import streamlit as st

from bdcore.curation.scores import SCORE_HELP, SCORES, ScoreFilter

PROBABILITIES = ("confidence", "margin")  # always within [0, 1]


def _bounds(values: pd.Series, column: str) -> tuple[float, float, float]:
    """The slider's (low, high, step): [0, 1] for probabilities, else the data's range widened to
    whole steps (0.01, or 0.1 for a wide range such as energy's), so every sample is inside."""
    if column in PROBABILITIES:
        return 0.0, 1.0, 0.01
    low, high = float(values.min()), float(values.max())
    step = 0.01 if high - low <= 10 else 0.1
    low, high = math.floor(low / step) * step, math.ceil(high / step) * step
    return round(low, 2), round(max(high, low + step), 2), step


def score_filters(scores: pd.DataFrame, classes: list[str]) -> ScoreFilter:
    """The filter widgets; the unchanged ones are left out of the filter (and of its description)."""
    teaches = st.multiselect("teaches (the model's top-1 class)", classes, placeholder="every class",
                             help="Keep only the images the model assigns to these labeled classes.")
    ranges = []
    columns = st.columns(3)
    for i, column in enumerate(SCORES):
        low, high, step = _bounds(scores[column], column)
        chosen = columns[i % 3].slider(column, low, high, (low, high), step, help=SCORE_HELP[column])
        if chosen != (low, high):
            ranges.append((column, float(chosen[0]), float(chosen[1])))
    return ScoreFilter(tuple(teaches), tuple(ranges))
