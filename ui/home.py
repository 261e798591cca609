"""Home: what blind distillation is, and two buttons for the classic run: quick, or the paper's settings."""
import streamlit as st

from bdcore.data import locate_dataset
from bdcore.presets import PRESETS, preset_config
from ui.launching import launch, report

QUICK_CAPTION = "the whole run in about a minute"

st.title("Blind Distillation Explorer")
st.markdown(
    """
A **teacher** network is trained on a labeled dataset (say, MNIST digits). A **student** then
learns from the teacher's *soft labels* (its temperature-softened predictions) on a completely
different, **unlabeled** dataset (say, Fashion-MNIST clothes): it never sees a single digit, yet
it learns to read them. A few labeled samples per class then **fine-tune** it, often past its
teacher. This tool runs all three stages, shows the curves live, and lets you compare runs.
"""
)

st.graphviz_chart(
    """
digraph {
  rankdir=LR; node [shape=box, style="rounded,filled", fillcolor="#eef2ff", fontname="sans-serif"];
  L [label="labeled set\\n(MNIST)"]; U [label="unlabeled set\\n(Fashion-MNIST)"];
  T [label="teacher", fillcolor="#dbeafe"]; S [label="blind student", fillcolor="#dcfce7"];
  F [label="fine-tuned student", fillcolor="#fef9c3"]; K [label="k labeled\\nsamples / class"];
  L -> T [label=" 1. supervised"]; U -> T [label=" soft labels (T=20)", style=dashed];
  T -> S [label=" 2. blind distillation"]; S -> F [label=" 3. fine-tune"]; K -> F; T -> F [style=dashed];
}
""",
    width="stretch",
)

left, right = st.columns([2, 3])
with left:
    st.subheader("Run it")
    st.write("MNIST labeled, Fashion-MNIST unlabeled, CNN teacher and student, temperature 20: "
             "the paper's Table 1, first row.")
    if st.button(f"Quick demo: {QUICK_CAPTION}", type="primary", help=PRESETS["quick"].summary):
        st.session_state["home_launch"] = launch(preset_config("quick"))
    if st.button("The paper's settings: several minutes on a CPU", help=PRESETS["paper"].summary):
        st.session_state["home_launch"] = launch(preset_config("paper"))
    if "home_launch" in st.session_state:
        report(st.session_state["home_launch"])
with right:
    st.subheader("Data on this machine")
    for name in ("mnist", "fashion-mnist"):
        found, _ = locate_dataset(name)
        if found is None:
            st.warning(f"{name}: not found locally; it will be downloaded on first use when online.")
        elif found.demo_subset:
            st.info(f"{name}: using the **bundled demo subset** (10,000 images), not the full set. "
                    "Set `BD_DATA_DIR` to a folder with the full files for paper-grade results.")
        else:
            st.write(f"{name}: {found.describe()}")
    st.page_link("ui/launch.py", label="Set up your own run", icon="🚀")
