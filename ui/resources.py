"""What every page, session and browser tab of the app process shares: the run store, the runs
opened for exploration, and UMAP's one-off warm-up (each an ``st.cache_resource``)."""
import threading
from pathlib import Path

import streamlit as st

from bdcore.embeddings import ExploreSession, warm_up_umap
from bdcore.jobs import Housekeeper
from bdcore.runs import RunsRoot
from bdcore.store import RunStore


@st.cache_resource(show_spinner=False)
def _store_at(path: str) -> RunStore:
    return RunStore(path)


def run_store() -> RunStore:
    """The process's RunStore. Keyed on the store file's resolved path, which follows
    $BD_RUNS_DIR (each test points it at a new folder), so a changed runs root gets its own store."""
    return _store_at(str(RunsRoot.default().store_path.resolve()))


# Two at most: each holds a paired dataset in memory (about 0.5 GB for MNIST + Fashion-MNIST).
@st.cache_resource(max_entries=2, show_spinner="Loading the run's data and models...")
def explore_session(path: str, run_id: str, stamps: tuple) -> ExploreSession:
    """The run at ``path`` opened for exploration, shared by every page and tab. ``stamps``
    (``bdcore.embeddings.checkpoint_stamps(path)``) is only part of the key: a run whose
    checkpoints changed since (a stage finished, a resume) is opened afresh."""
    return ExploreSession(Path(path), run_id)


@st.cache_resource(show_spinner=False)
def umap_warmed_up() -> threading.Thread:
    """Starts compiling UMAP's numba functions (or loading numba's disk cache) once per process,
    in the background, so that the first UMAP a user asks for does not wait for it."""
    thread = threading.Thread(target=warm_up_umap, name="umap-warm-up", daemon=True)
    thread.start()
    return thread


@st.cache_resource(show_spinner=False)
def _housekeeper_for(path: str) -> Housekeeper:
    return Housekeeper(_store_at(path))


def housekeeper() -> Housekeeper:
    """The process's queue housekeeper: one ``jobs.schedule`` every few seconds at most, however
    many sessions watch the Runs page."""
    return _housekeeper_for(str(RunsRoot.default().store_path.resolve()))
