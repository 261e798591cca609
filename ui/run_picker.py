"""UI shared by the two explorer pages: picking a run with a trained teacher and opening it."""
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from bdcore.embeddings import ExploreError, ExploreSession, checkpoint_stamps, explorable_runs
from ui.resources import explore_session, run_store


def soft_label_temperature(where: DeltaGenerator, session: ExploreSession, horizontal: bool = False) -> float:
    """T=1, or the run's distillation temperature: the soft labels the explorer pages show."""
    return where.radio("soft labels at", list(dict.fromkeys([1.0, session.config.temperature])),
                       horizontal=horizontal,
                       format_func=lambda t: f"T={t:g}" + (" (distillation)" if t != 1 else ""))


def pick_run(where: DeltaGenerator, key: str, empty_message: str) -> ExploreSession:
    """A run picker in ``where``; stops the page with a plain message when there is no run to
    explore or the chosen one cannot be opened."""
    choices = {c.run_id: c for c in explorable_runs(run_store())}
    if not choices:
        st.info(empty_message)
        st.stop()
    run_id = where.selectbox("run", list(choices), format_func=lambda i: choices[i].label, key=key)
    path = choices[run_id].path
    try:
        return explore_session(str(path.resolve()), run_id, checkpoint_stamps(path))
    except ExploreError as err:
        st.error(str(err))
        st.stop()
