"""The "Save as transfer set" form of the Unlabeled page: a name, then the chosen rows of the run's
unlabeled set saved as a named transfer set (``transfer_sets.save_from_run``) that a new run can
train on, with where they came from."""
import numpy as np
import streamlit as st

from bdcore.curation.transfer_sets import TransferSetError, load, save_from_run
from bdcore.embeddings import ExploreSession
from bdcore.errors import UserError
from ui.launching import relaunch_button


def save_form(key: str, session: ExploreSession, rows: np.ndarray, role: str, how: str, details: str) -> None:
    """A form saving ``rows`` (sorted rows of the run's unlabeled set), chosen by ``how`` ("score
    filter", "class gallery" or "strategy"; ``details`` in plain words) from ``role``'s scores;
    once saved, the one-click relaunch of the run on it (kept across reruns, so it can be pressed)."""
    with st.form(key):
        name = st.text_input("transfer set name", max_chars=64, placeholder="e.g. confident-5k",
                             key=f"{key}_name",
                             help="Letters, digits, '.', '_' and '-'; a run trains on it as subset:NAME.")
        st.caption(f"{len(rows):,} images: {details}")
        submitted = st.form_submit_button("Save as transfer set", icon="💾")
    if submitted:
        try:
            ts = save_from_run(session, rows, name.strip(), {"model": role, "how": how, "details": details})
        except TransferSetError as err:
            st.error(str(err))
            return
        st.session_state[f"{key}_saved"] = ts.name
    saved = st.session_state.get(f"{key}_saved")
    if saved is None:
        return
    try:
        ts = load(saved)
    except UserError:  # deleted since (Datasets page)
        del st.session_state[f"{key}_saved"]
        return
    st.success(f"Saved transfer set **{ts.name}** ({ts.size:,} images). Relaunch this run on it "
               f"below (its teacher is reused), or train any run on `{ts.spec}` (Launch page, or "
               f"`python -m bdcore run --unlabeled {ts.spec}`).")
    relaunch_button(ts, key=f"{key}_relaunch")
