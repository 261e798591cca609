"""UI shared by the two explorer pages: picking a run with a trained teacher and opening it."""
import streamlit as st

from bdcore.embeddings import ExploreError, ExploreSession, explorable_runs, open_session
from bdcore.store import RunStore


def pick_run(where, key: str, empty_message: str) -> ExploreSession:
    """A run picker in ``where``; stops the page with a plain message when there is no run to
    explore or the chosen one cannot be opened."""
    choices = {c.run_id: c for c in explorable_runs(RunStore())}
    if not choices:
        st.info(empty_message)
        st.stop()
    run_id = where.selectbox("run", list(choices), format_func=lambda i: choices[i].label, key=key)
    try:
        with st.spinner("Loading the run's data and models..."):
            return open_session(choices[run_id].path, run_id)
    except ExploreError as err:
        st.error(str(err))
        st.stop()
