"""The Embeddings page's panels below the charts: the selection shared by the charts (kept in the
session, so one selection highlights the same samples in every chart), its images and soft labels,
"locate" for a gallery image, and saving the selection as a named transfer set."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from bdcore.curation.transfer_sets import TransferSetError, save_from_run
from bdcore.embeddings import Embedding, ExploreSession, softmax
from bdcore.embeddings.figures import soft_label_tile

SELECTION = "embed_selection"  # {"role": the chart it was made in, "rows": frame rows, "samples": ...}
LOCATE = "embed_locate"  # the sample a gallery image asked to locate: "labeled #12"
MAX_TILES = 48


def selection(samples: str) -> tuple[str | None, list[int]]:
    """The chart the current selection was made in, and its frame rows; none if it was made on
    other samples (``samples``: the run and sample spec the charts show)."""
    chosen = st.session_state.get(SELECTION) or {}
    if chosen.get("samples") != samples:
        return None, []
    return chosen["role"], list(chosen["rows"])


def record(role: str, event, samples: str) -> None:
    """Keep a chart's new box / lasso / click selection and redraw every chart with it (a chart's
    own selection state is lost when its figure changes, so the session keeps it); an empty event
    (a chart redrawn with a highlight starts empty) keeps the last one."""
    points = event.selection.points if event and event.selection else []
    rows = sorted({int(p["customdata"][0]) for p in points if p.get("customdata")})
    if rows and (role, rows) != selection(samples):
        st.session_state[SELECTION] = {"role": role, "rows": rows, "samples": samples}
        st.rerun()


def forget() -> None:
    """Drop the selection ("Clear selection")."""
    st.session_state.pop(SELECTION, None)


def located(frame: pd.DataFrame) -> pd.DataFrame:
    """The point "locate" asked for, as (x, y[, z], label) rows of ``frame`` (none when unset)."""
    wanted = st.session_state.get(LOCATE)
    if not wanted:
        return frame.iloc[:0].assign(label=[])
    which, index = wanted.split(" #")
    hit = frame[(frame["set"] == which) & (frame["index"] == int(index))]
    return hit.assign(label=f"{wanted}")


def _caption(frame: pd.DataFrame, r: int) -> str:
    return (f"{frame['set'][r]} #{frame['index'][r]} · true {frame['true_class'][r]} · "
            f"{frame['predicted'][r]} {frame['confidence'][r]:.2f}")


def point_details(session: ExploreSession, frames: dict[str, pd.DataFrame],
                  embeddings: dict[str, Embedding], row: int, temperature: float) -> None:
    """One clicked point: its image and each shown model's soft label for it."""
    frame = next(iter(frames.values()))
    image = session.images(frame["set"][row], np.array([frame["index"][row]]))[0]
    st.subheader(f"{frame['set'][row]} #{frame['index'][row]} (true class {frame['true_class'][row]})")
    columns = st.columns(len(embeddings))
    for column, (role, emb) in zip(columns, embeddings.items(), strict=True):
        probs = softmax(emb.logits[[row]], temperature)[0]
        column.image(soft_label_tile(image, probs, scale=6), caption=f"{role}: {_caption(frames[role], row)}")
    st.caption(f"Bars: soft label at temperature {temperature:g} over {', '.join(session.data.classes)} "
               "(red: most likely).")


def gallery(session: ExploreSession, role: str, frame: pd.DataFrame, emb: Embedding, rows: list[int],
            temperature: float) -> None:
    """The selected images with their soft labels, and "locate" to mark one in the charts."""
    shown = rows[:MAX_TILES]
    probs = softmax(emb.logits[shown], temperature)
    images = [session.images(frame["set"][r], np.array([frame["index"][r]]))[0] for r in shown]
    st.image([soft_label_tile(img, p) for img, p in zip(images, probs, strict=True)],
             caption=[_caption(frame, r) for r in shown], width=150)
    first = f"First {MAX_TILES} of {len(rows)} shown. " if len(rows) > MAX_TILES else ""
    st.caption(f"{first}Bars: soft label over {', '.join(session.data.classes)} (red: most likely).")
    names = [f"{frame['set'][r]} #{frame['index'][r]}" for r in shown]
    if st.session_state.get(LOCATE) not in names:
        st.session_state[LOCATE] = None
    st.selectbox("locate an image in the charts", [None, *names], key=LOCATE,
                 format_func=lambda n: "(none)" if n is None else n,
                 help="Marks the image's point with an arrow in every chart, the replay's included.")


def save_selection(session: ExploreSession, role: str, frame: pd.DataFrame, rows: list[int],
                   how: str) -> None:
    """Save the selection's unlabeled images as a named transfer set (a run can then train on it
    as ``--unlabeled subset:NAME``); labeled test images are not part of a transfer set."""
    picked = frame.loc[rows]
    unlabeled = picked.loc[picked["set"] == "unlabeled", "index"].to_numpy(np.int64)
    with st.form("save transfer set", clear_on_submit=False):
        st.markdown(f"**Save as a transfer set**: the {len(unlabeled):,} unlabeled images of this selection"
                    + (f" ({len(picked) - len(unlabeled):,} labeled test images are left out)"
                       if len(picked) > len(unlabeled) else ""))
        name = st.text_input("name", placeholder="e.g. sneakers-and-bags", key="transfer_set_name")
        if not st.form_submit_button("Save transfer set"):
            return
    try:
        saved = save_from_run(session, unlabeled, name.strip(), {
            "model": role, "how": "embedding selection",
            "details": f"{how}, {len(picked):,} points selected ({len(unlabeled):,} unlabeled kept)"})
    except TransferSetError as err:
        st.error(str(err))
        return
    st.success(f"Saved transfer set {saved.name!r}: {saved.size:,} images. Train on it with the "
               f"unlabeled set `{saved.spec}` (Launch page or `--unlabeled {saved.spec}`).")
