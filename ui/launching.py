"""UI shared by the pages that launch runs (Home, Launch, and the curation pages' "relaunch on
this transfer set"): submit, remember what this session launched (the Runs page shows those
runs' curves without a click), and say what happened."""
import streamlit as st

from bdcore import jobs
from bdcore.config import ExperimentConfig
from bdcore.curation.loop import child_config, parent_config
from bdcore.curation.transfer_sets import TransferSet
from bdcore.errors import RunNotFoundError, UserError
from ui.resources import run_store

LAUNCHED = "launched_runs"  # session key: ids of the runs this session launched or joined, oldest first


def launch(config: ExperimentConfig, force: bool = False, procs: int = 1) -> jobs.Submission:
    """Submit ``config`` (ConfigError if invalid) to train in ``procs`` processes; a run with the
    same settings is joined unless ``force``."""
    submitted = jobs.submit(run_store(), config, force=force, procs=procs)
    ids = st.session_state.setdefault(LAUNCHED, [])
    if submitted.run_id not in ids:
        ids.append(submitted.run_id)
    return submitted


def launched_runs() -> list[str]:
    return list(st.session_state.get(LAUNCHED, []))


def report(submitted: jobs.Submission) -> None:
    """A line saying what the launch did, and the way to the Runs page."""
    if submitted.shared:
        try:
            status = run_store().get(submitted.run_id).status
        except RunNotFoundError:  # deleted since: nothing to point at any more
            return
        st.info(f"Run {submitted.run_id} has these very settings ({status}), so you are watching it "
                "instead of training it twice. To train it again, change the seed on the Launch page "
                "or press 'Train a new run with these settings anyway' there.")
    else:
        st.success(f"Run {submitted.run_id} launched in the background.")
    st.page_link("ui/runs.py", label="Watch it on the Runs page", icon="📈")


def relaunch_button(ts: TransferSet, key: str) -> None:
    """One click: the run ``ts`` was saved from, launched again on ``ts`` (its teacher reused from
    the cache); the Runs page then shows the child beside its parent."""
    if not st.button(f"Relaunch its run on {ts.spec}", key=key, type="primary",
                     help="Same settings as the run this set was saved from, with this set as the "
                          "unlabeled set; the teacher is reused, not trained again."):
        return
    try:
        report(launch(child_config(parent_config(ts, run_store()), ts)))
    except UserError as err:  # the parent run is gone, or its settings no longer validate
        st.error(str(err))
