"""What every page, session and browser tab of the app process shares: the run store, the Runs
page's curves, the runs opened for exploration, the Embeddings charts and hover-image atlases, and
UMAP's one-off warm-up (each an ``st.cache_resource``)."""
import threading
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from bdcore.embeddings import ExploreSession, warm_up_umap
from bdcore.embeddings.atlas import Atlas, write_atlas
from bdcore.embeddings.figures import scatter_figure
from bdcore.jobs import Housekeeper
from bdcore.reports import curves_figure, curves_frame
from bdcore.runs import RunsRoot
from bdcore.store import RunRecord, RunStore


@st.cache_resource(show_spinner=False)
def _store_at(path: str) -> RunStore:
    return RunStore(path)


def run_store() -> RunStore:
    """The process's RunStore. Keyed on the store file's resolved path, which follows
    $BD_RUNS_DIR (each test points it at a new folder), so a changed runs root gets its own store."""
    return _store_at(str(RunsRoot.default().store_path.resolve()))


# Keyed on the store's change stamp and the runs shown: every session watching the same runs shares one
# frame and one figure per change (an epoch, a status) instead of building its own; building the
# figure (plotly, one reference line per run and panel) was most of a Runs page's server time.
# Shared objects: callers only read them.
@st.cache_resource(max_entries=32, show_spinner=False)
def curves_data(stamp: tuple, run_ids: tuple[str, ...], _records: list[RunRecord]) -> pd.DataFrame:
    """The epochs of ``run_ids`` (``_records``, in that order) as the Runs page plots them."""
    return curves_frame(run_store().epochs(list(run_ids)), _records)


@st.cache_resource(max_entries=32, show_spinner=False)
def curves_chart(stamp: tuple, run_ids: tuple[str, ...], metric: str, _records: list[RunRecord]) -> go.Figure:
    """The Runs page's chart of ``metric`` for ``run_ids`` (``_records``, in that order)."""
    return curves_figure(curves_data(stamp, run_ids, _records), _records, metric)


# Two at most: each holds a paired dataset in memory (about 0.5 GB for MNIST + Fashion-MNIST).
@st.cache_resource(max_entries=2, show_spinner="Loading the run's data and models...")
def explore_session(path: str, run_id: str, stamps: tuple) -> ExploreSession:
    """The run at ``path`` opened for exploration, shared by every page and tab. ``stamps``
    (``bdcore.embeddings.checkpoint_stamps(path)``) is only part of the key: a run whose
    checkpoints changed since (a stage finished, a resume) is opened afresh."""
    return ExploreSession(Path(path), run_id)


# The one folder the app serves (server.enableStaticServing serves ./static/ beside app.py at
# /app/static/): it holds nothing but the atlases written here.
STATIC = Path(__file__).resolve().parents[1] / "static"


@st.cache_resource(max_entries=16, show_spinner=False)
def scatter_chart(path: str, view_hash: int, colour_by: str, title: str, atlas_url: str,
                  _view: pd.DataFrame, _session: ExploreSession, _atlas: Atlas | None) -> go.Figure:
    """The Embeddings page's chart of ``_view`` (``view_hash``: its content; ``atlas_url``: where
    ``_atlas``'s sheets are, "" without hover images), built once for every session showing the
    same points the same way. Building it (plotly express, 2,000 points) was about 0.5 s of a
    render's 0.6 s, paid by each of a class's sessions in turn (docs/reliability.md, "Many users").
    Shared object: callers only read it."""
    return scatter_figure(_view, _session, colour_by, _atlas.to_dict() if _atlas else None, title=title)


@st.cache_resource(max_entries=8, show_spinner="Writing the run's hover images (once per run)...")
def hover_atlas(path: str, _session: ExploreSession) -> Atlas:
    """The run's sprite atlas (every image of both sets), written once into the served folder and
    shared by every session; the browser fetches a sheet only when a point on it is hovered."""
    base = st.get_option("server.baseUrlPath").strip("/")
    return write_atlas(_session, STATIC / "atlas", f"/{base + '/' if base else ''}app/static/atlas/")


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
