"""Runs: every run with live status and progress, actions, and curves. A tiny fragment asks the
store every few seconds whether anything changed (one aggregate query) and redraws the page only
when something did, so watching a run costs the machine almost nothing between epochs."""
import streamlit as st

from bdcore import jobs
from bdcore.curation.loop import parent_run
from bdcore.errors import UserError
from bdcore.reports import parent_child_frame, run_label, runs_table, seed_groups, summary_frame
from bdcore.store import ACTIVE, RESUMABLE, RunRecord
from ui.launching import launched_runs
from ui.resources import curves_chart, curves_data, housekeeper, run_store

ACTIVE_REFRESH_S = 2  # while a run is queued or running
IDLE_REFRESH_S = 15  # nothing active: only to notice runs launched elsewhere
MAX_NEW_CURVES = 8  # runs that appear while the page is open join the comparison up to this many
CURVES = {"test_acc": "test accuracy", "train_loss": "training loss"}
PAGE_RUN = "runs_page_run"  # set by each run of the whole page, cleared by its fragment's first check

st.title("Runs")
store = run_store()
stamp = store.change_stamp()  # read before the runs: a change in between shows up at the next check
records = store.list()
refresh_s = ACTIVE_REFRESH_S if any(r.status in ACTIVE for r in records) else IDLE_REFRESH_S


@st.fragment(run_every=refresh_s)
def redraw_on_change() -> None:
    """Draws nothing: checks the store and redraws the whole page when it changed. Not within a
    run of the whole page, which has just read the store: a rerun there would drop the click it
    carries (Cancel, while epochs arrive), so a change in between waits for the next check."""
    housekeeper().tick()  # at most every few seconds per app process: reap dead workers, start queued runs
    if not st.session_state.pop(PAGE_RUN, False) and store.change_stamp() != stamp:
        st.rerun()


def follow_new_runs(records: list[RunRecord]) -> None:
    """Runs this session launched, and runs that appear while the page is open, join the
    comparison without a click; on the first visit the newest three are shown too."""
    ids = [r.id for r in records]
    seen = st.session_state.get("seen_runs")
    followed = st.session_state.setdefault("followed_launches", set())
    launched = [i for i in launched_runs() if i not in followed]  # each once: the user may drop it
    followed.update(launched)
    by_id = {r.id: r for r in records}
    parents = [parent_run(by_id[i].config) for i in launched if i in by_id]  # a relaunch is shown beside
    launched += [p for p in parents if p]  # the run it came from
    # the widget's value; after a visit to another page (Streamlit then drops it) a copy of it
    compare = st.session_state.get("compare", st.session_state.get("compare_kept", []))
    if seen is None:  # first visit in this session
        compare = [*launched, *ids[:3]]
    else:
        compare = [*compare, *launched, *[i for i in reversed(ids) if i not in seen][:MAX_NEW_CURVES]]
    st.session_state["seen_runs"] = set(ids)
    st.session_state["compare"] = [i for i in dict.fromkeys(compare) if i in ids]


def runs_overview(records: list[RunRecord]) -> None:
    st.dataframe(runs_table(records), hide_index=True, width="stretch", column_config={
        "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0,
                                                    format="percent", width="small"),
        "run": st.column_config.TextColumn("run", width="medium"),
        "note": st.column_config.TextColumn("note", width="medium")})
    groups = seed_groups(records)
    if len(groups) and (groups["seeds"].str.contains(",")).any():  # some settings ran with several seeds
        with st.expander("Runs that differ only in seed, grouped (mean and std over seeds)"):
            st.dataframe(groups, hide_index=True, column_config={
                c: st.column_config.NumberColumn(c, format="percent") for c in groups.columns
                if c.endswith((" mean", " std"))})
    active = sum(r.status in ACTIVE for r in records)
    st.caption(f"{len(records)} run{'s' * (len(records) != 1)}, {active} queued or running; checked for "
               f"changes every {refresh_s} s")


def curves(records: list[RunRecord]) -> None:
    st.subheader("Curves")
    follow_new_runs(records)
    by_id = {r.id: r for r in records}
    chosen = st.multiselect("runs to compare", list(by_id), key="compare",
                            format_func=lambda i: run_label(i, by_id[i].config))
    st.session_state["compare_kept"] = chosen
    picked = [by_id[i] for i in chosen]
    frame = curves_data(stamp, tuple(chosen), picked) if picked else None
    if frame is None or frame.empty:
        waiting = [run_label(r.id, r.config) for r in picked if r.status in ACTIVE]
        st.info(f"Waiting for the first epoch of {', '.join(waiting)}." if waiting else
                "Pick one or more runs that have finished at least one epoch.")
        return
    # one chart at a time: each redraw costs the browser about a second of CPU on a 2-core machine,
    # taken from the training it shows (docs/performance.md, "Watching a run")
    metric = st.radio("curve", list(CURVES), format_func=CURVES.get, horizontal=True, key="curve")
    st.plotly_chart(curves_chart(stamp, tuple(chosen), metric, picked), key="curves")
    if metric == "test_acc":
        st.caption("Dashed grey: the run's teacher. Dotted red: the paper's Table 1 figure for this pair.")


def actions(records: list[RunRecord]) -> None:
    st.subheader("Actions")
    by_id = {r.id: r for r in records}
    run_id = st.selectbox("run", list(by_id), key="action_run",  # keyed: its labels change with status
                          format_func=lambda i: f"{run_label(i, by_id[i].config)} [{by_id[i].status}]")
    record = by_id[run_id]
    c1, c2, c3, c4 = st.columns(4)
    try:
        if c1.button("Cancel", disabled=record.status not in ACTIVE):
            st.toast(f"{record.id}: {jobs.cancel(store, record.id)}")
        if c2.button("Resume", disabled=record.status not in RESUMABLE):
            jobs.resume(store, record.id)
            st.toast(f"{record.id}: queued to resume")
        if c3.button("Delete", disabled=record.status in ACTIVE):
            jobs.delete(store, record.id)
            st.toast(f"{record.id}: deleted")
            st.rerun()
    except UserError as err:  # the run changed state since this page drew it
        st.warning(f"{err}. The table above shows its current state.")
    c4.download_button("Download all as CSV", summary_frame(records).to_csv(index=False),
                       "runs-summary.csv", "text/csv")
    if record.error:
        st.error(record.error)
    elif record.message:
        st.caption(record.message)
    for note in (record.final or {}).get("notes", []):  # demo subsets, skipped files, streamed sets
        st.info(note)
    compare_with_parent(record, by_id)



def compare_with_parent(record: RunRecord, by_id: dict[str, RunRecord]) -> None:
    """A run relaunched on a transfer set, beside the run the set was saved from: final accuracies
    side by side, and both runs' curves on one click."""
    parent = by_id.get(parent_run(record.config) or "")
    if parent is None:
        return
    limit = parent.config.unlabeled_limit
    st.markdown(f"**Relaunched on {record.config.unlabeled}** from run {parent.id}, which trained on "
                f"{parent.config.unlabeled}" + (f" (at most {limit:,} images)" if limit else "") + ":")
    st.dataframe(parent_child_frame(parent, record), hide_index=True, column_config={
        "parent": st.column_config.NumberColumn("parent", format="percent"),
        "this run": st.column_config.NumberColumn("this run", format="percent"),
        "change": st.column_config.NumberColumn("change (points)", format="%+.2f")})

    def show_both() -> None:  # a callback: it may set the multiselect's value before it is drawn
        st.session_state["compare"] = [parent.id, record.id]

    st.button("Compare their curves", on_click=show_both, key="compare_parent")


st.session_state[PAGE_RUN] = True
redraw_on_change()
if not records:
    st.info("No runs yet. Launch one from the Home or Launch page.")
else:
    runs_overview(records)
    curves(records)
    actions(records)
