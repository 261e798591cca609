"""Unlabeled explorer: what a model makes of every unlabeled sample. A sortable, filterable table of
scores (class taught, confidence, margin, entropy, out-of-distribution scores) with per-class
histograms; a gallery per taught class; built-in strategies; each able to save its images as a
named transfer set. Then class coverage, the affinity between unlabeled and labeled classes, the
most ambiguous images and nearest labeled neighbours."""
import numpy as np
import streamlit as st
import torch

from bdcore.curation.scores import SCORE_HELP, SCORES, class_histograms
from bdcore.curation.strategies import STRATEGIES
from bdcore.embeddings import ExploreError, outputs_of, set_outputs, softmax
from bdcore.embeddings.analysis import (
    affinity,
    affinity_table,
    class_coverage,
    entropy,
    most_ambiguous,
    most_confident,
    nearest,
)
from bdcore.embeddings.figures import affinity_figure, coverage_figure, soft_label_tile
from bdcore.errors import UserError
from bdcore.preview import image_grid
from ui.curation_figures import histograms_figure
from ui.curation_resources import TRUE_CLASS, strategy_rows, unlabeled_scores
from ui.run_picker import pick_run, soft_label_temperature
from ui.score_filters import score_filters
from ui.transfer_saving import save_form

GALLERY = 64  # images drawn at most per gallery: a class can hold tens of thousands

st.title("Unlabeled explorer")
st.caption("Blind distillation teaches only through the teacher's soft labels on the unlabeled set: "
           "this page scores every unlabeled image, shows which ones teach which labeled class and "
           "which classes the unlabeled set barely teaches, and saves the images you pick as a "
           "transfer set to train a new run on.")

c1, c2, c3 = st.columns([3, 1, 1])
session = pick_run(c1, "unl_run",
                   "No run with a trained teacher yet. Launch one from the Home or Launch page.")
role = c2.selectbox("model", session.roles)
temperature = soft_label_temperature(c3, session)
data, config = session.data, session.config
classes, unl_classes = data.classes, data.unlabeled_classes

bar = st.progress(0.0, text=f"{role} on the unlabeled set")
try:
    logits = set_outputs(session, role, "unlabeled", progress=lambda f, m: bar.progress(
        min(f, 1.0), text=f"{m} ({len(data.unlabeled_x)} images)"))["logits"]
except ExploreError as err:
    st.error(str(err))
    st.stop()
bar.empty()
probs = softmax(logits, temperature)
path, checkpoint = str(session.path.resolve()), tuple(session.identity(role).items())
scores = unlabeled_scores(path, checkpoint, role, float(config.temperature), session, logits)
st.write(f"**{len(probs):,}** unlabeled images ({config.unlabeled}), soft labels of the **{role}** "
         f"({config.teacher if role == 'teacher' else config.student}) over the {len(classes)} classes of "
         f"{config.labeled}, at T={temperature:g}.")
labels = data.unlabeled_labels
has_labels = labels is not None and bool(unl_classes)


# Each tab's widgets rerun only its own fragment: moving a filter slider does not redraw the
# galleries, and picking a neighbour does not resend the 60,000-row scores table.
@st.fragment
def scores_section() -> None:
    st.caption(f"Every unlabeled image under the {role}; click a column header to sort. The "
               f"out-of-distribution scores come from the logits alone: energy (higher = further from "
               f"{config.labeled}) and max-logit (lower = further)."
               + (f" The true {config.unlabeled} class is shown, never used." if has_labels else ""))
    chosen_filter = score_filters(scores, classes)
    kept = chosen_filter.apply(scores)
    st.write(f"**{len(kept):,}** of {len(scores):,} images match ({chosen_filter.describe()}).")
    st.dataframe(kept, hide_index=True, height=360, column_config={
        "index": st.column_config.NumberColumn("image #", help="row of the run's unlabeled set"),
        TRUE_CLASS: st.column_config.TextColumn(TRUE_CLASS, help="the unlabeled set's own label: never used"),
        **{s: st.column_config.NumberColumn(s, format="%.4f", help=SCORE_HELP[s]) for s in SCORES}})
    st.download_button("Scores CSV", kept.to_csv(index=False), f"scores-{session.run_id}-{role}.csv",
                       "text/csv")
    shown = st.selectbox("histogram of", SCORES, help="per class taught, of the images that match")
    if len(kept):
        st.plotly_chart(histograms_figure(class_histograms(kept, shown), shown), key="histograms")
    save_form("save_filter", session, kept["index"].to_numpy(), role, "score filter",
              f"{chosen_filter.describe()} ({len(kept):,} of {len(scores):,})")


@st.fragment
def gallery_section() -> None:
    taught = scores["teaches"].value_counts()
    c1, c2 = st.columns(2)
    klass = c1.selectbox("class taught", classes, format_func=lambda c: f"{c} ({taught[c]:,} images)")
    order = c2.radio("order", ["most confident first", "least confident first"], horizontal=True)
    members = scores[scores["teaches"] == klass].sort_values(
        "confidence", ascending=order.startswith("least"), kind="stable")
    if members.empty:
        st.info(f"The {role} assigns no unlabeled image to {klass}.")
    else:
        count = int(st.slider("images to keep", 1, len(members), min(len(members), 500),
                              help="the first ones in this order") if len(members) > 1 else 1)
        picked = members.iloc[:count]
        first = picked["index"].to_numpy()[:GALLERY]
        st.image(image_grid(torch.from_numpy(session.images("unlabeled", first)), columns=16), clamp=True,
                 caption=f"the first {len(first)} of the {count:,} kept: confidence "
                         f"{picked['confidence'].iloc[0]:.3f} to {picked['confidence'].iloc[-1]:.3f}")
        save_form("save_gallery", session, np.sort(picked["index"].to_numpy()), role, "class gallery",
                  f"the {count:,} images the {role} teaches {klass}, {order} "
                  f"(of {len(members):,})")

    st.subheader("Most confident unlabeled images per labeled class")
    per_class = st.slider("images per class", 4, 32, 12, 4)
    for c, rows in most_confident(probs, per_class).items():
        true = [unl_classes[int(labels[r])] for r in rows] if has_labels else []
        left, right = st.columns([1, 6])
        left.markdown(f"**{classes[c]}**  \n{probs[rows, c].min():.3f}–{probs[rows, c].max():.3f}")
        right.image(image_grid(torch.from_numpy(session.images("unlabeled", rows)), columns=per_class),
                    clamp=True, caption=", ".join(dict.fromkeys(true)) if true else None)


@st.fragment
def strategy_section() -> None:
    st.caption(f"Pick a transfer set from the {role}'s soft labels at T=1 alone (no label is read).")
    c1, c2, c3 = st.columns([2, 1, 1])
    strategy = c1.selectbox("strategy", list(STRATEGIES), format_func=lambda s: STRATEGIES[s].label)
    budget = int(c2.number_input("budget (images)", 1, len(scores), min(5000, len(scores)), 500))
    seed = int(c3.number_input("seed", 0, 2**31 - 1, 0))
    st.caption(STRATEGIES[strategy].help)
    try:
        rows = strategy_rows(path, checkpoint, role, strategy, budget, seed, softmax(logits, 1.0))
    except UserError as err:
        st.error(str(err))
        return
    picked = scores.iloc[rows]
    share = picked["teaches"].value_counts().reindex(classes, fill_value=0)
    st.write(f"**{len(rows):,}** of {len(scores):,} images; mean confidence "
             f"{picked['confidence'].mean():.3f} (all: {scores['confidence'].mean():.3f}); "
             "images per class taught:")
    st.bar_chart(share.rename("images"), height=220)
    save_form("save_strategy", session, rows, role, "strategy",
              f"{STRATEGIES[strategy].label}, budget {budget:,} of {len(scores):,}, seed {seed}")


def coverage_section() -> None:
    coverage = class_coverage(probs, classes)
    uniform = 1 / len(classes)
    scarce = coverage[coverage["predicted_share"] < uniform / 2]["class"].tolist()
    st.plotly_chart(coverage_figure(coverage), key="coverage")
    if scarce:
        st.warning(f"Barely taught: the {role} predicts {', '.join(scarce)} for under half the uniform "
                   f"share ({uniform / 2:.1%}) of the unlabeled images.")
    else:
        st.success(f"Every labeled class is predicted for at least half the uniform share "
                   f"({uniform / 2:.1%}).")
    with st.expander("coverage table"):
        st.dataframe(coverage, hide_index=True, column_config={
            c: st.column_config.NumberColumn(c, format="percent")
            for c in ("predicted_share", "soft_label_share")})
    if has_labels:
        st.subheader(f"Which {config.labeled} class each {config.unlabeled} class is mapped to")
        matrix = affinity(probs, labels.numpy(), len(unl_classes))
        counts = np.bincount(labels.numpy(), minlength=len(unl_classes))
        table = affinity_table(matrix, counts, unl_classes, classes)
        st.dataframe(table, hide_index=True, column_config={
            c: st.column_config.NumberColumn(c, format="%.3f")
            for c in ("mean probability", "runner-up probability")})
        title = f"mean soft label: {config.unlabeled} class (rows) x {config.labeled} class"
        st.plotly_chart(affinity_figure(matrix, unl_classes, classes, title), key="affinity")
        st.download_button("Affinity table CSV", table.to_csv(index=False),
                           f"affinity-{session.run_id}-{role}.csv", "text/csv")
    else:
        st.info(f"{config.unlabeled} has no labels, so there is no affinity between its classes and "
                f"{config.labeled}'s.")


@st.fragment
def neighbours_section() -> None:
    st.subheader("Most ambiguous unlabeled images")
    ambiguous = most_ambiguous(probs, 24)
    ambiguous_images = session.images("unlabeled", ambiguous)
    st.image([soft_label_tile(img, probs[r]) for img, r in zip(ambiguous_images, ambiguous, strict=True)],
             caption=[f"#{r} · entropy {entropy(probs[[r]])[0]:.2f}"
                      + (f" · {unl_classes[int(labels[r])]}" if has_labels else "") for r in ambiguous],
             width=150)
    st.caption(f"Bars: soft label over {', '.join(classes)} (red: most likely).")

    st.subheader("Nearest labeled neighbours of an unlabeled image")
    st.caption(f"In the {role}'s penultimate feature space, over the {len(data.test_y):,} labeled test "
               "images.")
    c1, c2, c3 = st.columns(3)
    query = int(c1.number_input("unlabeled image #", 0, len(probs) - 1, int(ambiguous[0])))
    k = int(c2.number_input("neighbours", 1, 32, 8))
    metric = c3.selectbox("distance", ["euclidean", "cosine"])
    pool = set_outputs(session, role, "labeled", features=True)
    q_feats, q_logits = outputs_of(session, role, "unlabeled", np.array([query]))
    near, dist = nearest(q_feats[0], pool["features"], k, metric)
    q_probs = softmax(q_logits, temperature)[0]
    left, right = st.columns([1, 5])
    left.image(soft_label_tile(session.images("unlabeled", np.array([query]))[0], q_probs), width=150,
               caption=f"#{query} · {classes[int(q_probs.argmax())]} {q_probs.max():.2f}"
                       + (f" · {unl_classes[int(labels[query])]}" if has_labels else ""))
    pool_probs = softmax(pool["logits"][near], temperature)
    right.image([soft_label_tile(img, p)
                 for img, p in zip(session.images("labeled", near), pool_probs, strict=True)],
                caption=[f"{classes[int(data.test_y[i])]} · d={d:.2f}"
                         for i, d in zip(near, dist, strict=True)], width=150)


scores_tab, gallery_tab, strategy_tab, coverage_tab, neighbours_tab = st.tabs(
    ["Scores", "Class gallery", "Strategies", "Coverage and affinity", "Ambiguous and neighbours"])
with scores_tab:
    scores_section()
with gallery_tab:
    gallery_section()
with strategy_tab:
    strategy_section()
with coverage_tab:
    coverage_section()
with neighbours_tab:
    neighbours_section()
