"""Runs: every run with live status and progress, actions, curves and a summary table."""
import streamlit as st

from bdcore import jobs
from bdcore.errors import UserError
from bdcore.reports import curves_figure, curves_frame, run_label, summary_frame
from bdcore.store import ACTIVE, RESUMABLE, RunRecord, Status
from ui.resources import run_store

st.title("Runs")
store = run_store()
REFRESH_S = 2


@st.fragment(run_every=REFRESH_S)
def live_runs() -> None:
    jobs.schedule(store)  # marks dead workers failed and starts queued runs
    records = store.list()
    if not records:
        st.info("No runs yet. Launch one from the Home or Launch page.")
        return
    table = summary_frame(records)
    table.insert(2, "progress", [r.progress for r in records])
    table.insert(3, "stage", [r.stage or "" for r in records])
    table["note"] = [(r.error or r.message or "") for r in records]
    st.dataframe(
        table, hide_index=True, width="stretch",
        column_config={
            "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0,
                                                        format="percent"),
            **{c: st.column_config.NumberColumn(c, format="percent")
               for c in table.columns if c.endswith("_acc")},
        },
    )
    counts = {s: sum(r.status == s for r in records) for s in Status}
    st.markdown(" · ".join(f"**{n} {s}**" for s, n in counts.items() if n)
                + f" — refreshed every {REFRESH_S} s")
    st.session_state["records"] = records


def actions(records: list[RunRecord]) -> None:
    st.subheader("Actions")
    by_id = {r.id: r for r in records}
    run_id = st.selectbox("run", list(by_id),
                          format_func=lambda i: f"{run_label(i, by_id[i].config)} [{by_id[i].status}]")
    record = by_id[run_id]
    c1, c2, c3 = st.columns(3)
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
    if record.error:
        st.error(record.error)
    elif record.message:
        st.caption(record.message)


live_runs()
records = st.session_state.get("records") or store.list()
if records:
    actions(records)

    st.subheader("Curves")

    @st.fragment(run_every=REFRESH_S)
    def live_curves() -> None:
        current = {r.id: r for r in store.list() if r.progress > 0}
        labels = {run_label(r.id, r.config): r for r in current.values()}
        if "compare" not in st.session_state:
            st.session_state["compare"] = list(labels)[:3]
        st.session_state["compare"] = [c for c in st.session_state["compare"] if c in labels]
        chosen = st.multiselect("runs to compare", list(labels), key="compare")
        picked = [labels[c] for c in chosen]
        if not picked:
            st.info("Pick one or more runs that have finished at least one epoch.")
            return
        frame = curves_frame(store.epochs([r.id for r in picked]), picked)
        st.plotly_chart(curves_figure(frame, picked, "test_acc"), key="acc")
        st.plotly_chart(curves_figure(frame, picked, "train_loss"), key="loss")
        st.caption("Dashed grey: the run's teacher. Dotted red: the paper's Table 1 figure for this pair.")

    live_curves()

    st.subheader("Summary")
    summary = summary_frame(store.list())
    st.dataframe(summary, hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(c, format="percent")
                                for c in summary.columns if c.endswith("_acc")})
    st.download_button("Download CSV", summary.to_csv(index=False), "runs-summary.csv", "text/csv")
