"""The "Save as transfer set" form of the Unlabeled page: a name, then the chosen rows of the run's
unlabeled set saved as a named transfer set (``transfer_sets.save_from_run``) that a new run can
train on, with where they came from."""
import numpy as np
import streamlit as st

from bdcore.curation.transfer_sets import TransferSetError, save_from_run
from bdcore.embeddings import ExploreSession

RELAUNCH = "relaunch_transfer_set"  # read by the Launch page: the transfer set just saved


def save_form(key: str, session: ExploreSession, rows: np.ndarray, role: str, how: str, details: str) -> None:
    """A form saving ``rows`` (sorted rows of the run's unlabeled set), chosen by ``how`` ("score
    filter", "class gallery" or "strategy"; ``details`` in plain words) from ``role``'s scores."""
    with st.form(key):
        name = st.text_input("transfer set name", max_chars=64, placeholder="e.g. confident-5k",
                             key=f"{key}_name",
                             help="Letters, digits, '.', '_' and '-'; a run trains on it as subset:NAME.")
        st.caption(f"{len(rows):,} images: {details}")
        submitted = st.form_submit_button("Save as transfer set", icon="💾")
    if not submitted:
        return
    try:
        ts = save_from_run(session, rows, name.strip(), {"model": role, "how": how, "details": details})
    except TransferSetError as err:
        st.error(str(err))
        return
    st.session_state[RELAUNCH] = ts.name
    st.success(f"Saved transfer set **{ts.name}** ({ts.size:,} images). Train a run on it with "
               f"`{ts.spec}` as the unlabeled set, on the Launch page or `python -m bdcore run "
               f"--unlabeled {ts.spec}`.")
    st.page_link("ui/launch.py", label=f"Launch a run on {ts.spec}", icon="🚀")
