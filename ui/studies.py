"""Studies: launch many runs at once (architecture matrix, temperature sweep, seeds) and watch
them as one: progress, the teacher x student heatmap, accuracy against an axis with mean +- std
over seeds, the best combination, and the table as CSV or LaTeX."""
import streamlit as st

from bdcore import studies
from bdcore.errors import UserError
from bdcore.models import MODELS
from bdcore.presets import PRESETS
from bdcore.store import ACTIVE
from bdcore.study_figures import against, heatmap
from bdcore.study_views import SEED, best, by_k, figure_columns, matrix, over_seeds, runs_frame, to_latex
from ui.resources import housekeeper, run_store

st.title("Studies")
st.caption("A study is one launch of many runs: a preset, then every combination of the values "
           "you give (teacher and student architectures, temperatures, seeds). Its runs go through "
           "the ordinary queue and share teachers; they can be cancelled and resumed together.")
store = run_store()


with st.expander("Launch a study", expanded=not studies.list_studies(store.root)):
    with st.form("study"):
        c1, c2 = st.columns(2)
        name = c1.text_input("study name", placeholder="e.g. matrix-quick")
        preset = c2.selectbox("start from", list(PRESETS), index=list(PRESETS).index("quick"),
                              format_func=lambda p: f"{p}: {PRESETS[p].summary}")
        c1, c2 = st.columns(2)
        teachers = c1.multiselect("teacher architectures", list(MODELS), default=["cnn"])
        students = c2.multiselect("student architectures", list(MODELS), default=["cnn"])
        c1, c2 = st.columns(2)
        temperatures = c1.text_input("temperatures", "20", help="comma-separated, e.g. 1, 2, 5, 10, 20, 50")
        seeds = c2.number_input("seeds per combination", 1, 20, 1)
        if st.form_submit_button("Launch the study", type="primary"):
            try:
                axes = {"teacher": teachers, "student": students,
                        "temperature": [studies.parse_value("temperature", v)
                                        for v in temperatures.split(",") if v.strip()],
                        SEED: list(range(int(seeds)))}
                spec = studies.StudySpec(name.strip(), preset, {}, {k: v for k, v in axes.items() if v})
                study = studies.launch(spec.validate(), store)
                st.success(f"Study {spec.name}: {len(study.run_ids)} runs queued (identical runs are "
                           "shared).")
            except UserError as err:
                st.error(str(err))

found = studies.list_studies(store.root)
if not found:
    st.info("No studies yet.")
    st.stop()
chosen = st.selectbox("study", [s.spec.name for s in found])
study = next(s for s in found if s.spec.name == chosen)
rows = studies.records(study, store)
active = sum(r is not None and r.status in ACTIVE for _p, r in rows)


@st.fragment(run_every=3 if active else None)
def watch() -> None:
    """Redraws the study's figures while its runs train."""
    housekeeper().tick()
    rows = studies.records(study, store)
    frame = runs_frame(study, rows)
    done = int((frame["status"] == "succeeded").sum())
    st.progress(done / len(frame), text=f"{done} of {len(frame)} runs succeeded"
                + (f"; {active} queued or running" if active else ""))
    axes = list(study.spec.all_axes())
    figures = figure_columns(frame)
    if not figures or frame[figures].isna().all().all():
        st.info("No run has finished yet.")
        st.dataframe(frame, hide_index=True)
        return
    c1, c2 = st.columns([4, 1])
    figure = c1.radio("figure", figures, index=min(1, len(figures) - 1), horizontal=True)
    image = c2.radio("charts download as", ["png", "svg"], horizontal=True,
                     help="the camera icon at a chart's top right saves it in this format")

    def download(chart: str) -> dict:  # the camera icon's format and file name
        return {"toImageButtonOptions": {"format": image, "filename": f"study-{chosen}-{chart}"}}

    if "teacher" in axes and "student" in axes:
        st.plotly_chart(heatmap(matrix(frame, "teacher", "student", figure), figure, "teacher", "student"),
                        key="heatmap", config=download("heatmap"))
    swept = [a for a in axes if a not in ("teacher", "student", SEED)]
    means = over_seeds(frame, axes)
    for axis in swept:
        others = [a for a in axes if a not in (axis, SEED)]
        st.plotly_chart(against(means, axis, figure, others[0] if len(others) == 1 else None),
                        key=f"against-{axis}", config=download(axis))
    if sum(c.startswith("fine-tune k=") for c in figures) > 1:  # several ks per run: accuracy against k
        others = [a for a in axes if a != SEED]
        tuned = by_k(frame).assign(k=lambda f: f["k"].astype(str))
        st.plotly_chart(against(over_seeds(tuned, [*others, "k"]), "k", "fine-tune acc",
                                others[0] if len(others) == 1 else None),
                        key="against-k", config=download("k"))
    top = best(frame, axes, figure)
    if top:
        st.success("Best: " + ", ".join(f"{k} {v}" for k, v in top.items() if k != figure)
                   + f": {figure} {top[figure]:.2%} (mean over seeds)")
    st.dataframe(means, hide_index=True)
    c1, c2, c3 = st.columns(3)
    c1.download_button("Table CSV", means.to_csv(index=False), f"study-{chosen}.csv", "text/csv")
    c2.download_button("Table LaTeX", to_latex(means, f"Study {chosen}: test accuracy (%)"),
                       f"study-{chosen}.tex", "text/x-tex")
    c3.download_button("Every run CSV", frame.to_csv(index=False), f"study-{chosen}-runs.csv", "text/csv")


watch()
c1, c2, c3 = st.columns(3)
try:
    if c1.button("Cancel its runs", disabled=not active):
        st.toast(f"{studies.cancel(study, store)} runs cancelled")
    if c2.button("Resume its runs"):
        st.toast(f"{studies.resume(study, store)} runs queued to resume")
    if c3.button("Forget the study", help="its runs and their results stay on the Runs page"):
        studies.delete(chosen, store.root)
        st.rerun()
except UserError as err:
    st.warning(str(err))
