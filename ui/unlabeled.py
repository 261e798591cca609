"""Unlabeled explorer: what the teacher makes of the unlabeled set. For each labeled class the
unlabeled images it maps there most confidently, the most ambiguous ones, class coverage, the
affinity between unlabeled and labeled classes, and nearest labeled neighbours."""
import numpy as np
import streamlit as st
import torch

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
from bdcore.preview import image_grid
from ui.run_picker import pick_run, soft_label_temperature

st.title("Unlabeled explorer")
st.caption("Blind distillation teaches only through the teacher's soft labels on the unlabeled set: "
           "this page shows which unlabeled images teach which labeled class, and which classes "
           "the unlabeled set barely teaches.")

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
st.write(f"**{len(probs):,}** unlabeled images ({config.unlabeled}), soft labels of the **{role}** "
         f"({config.teacher if role == 'teacher' else config.student}) over the {len(classes)} classes of "
         f"{config.labeled}, at T={temperature:g}.")

st.subheader("Class coverage")
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

labels = data.unlabeled_labels
if labels is not None and unl_classes:
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

st.subheader("Most confident unlabeled images per labeled class")
per_class = st.slider("images per class", 4, 32, 12, 4)
confident = most_confident(probs, per_class)
for c, rows in confident.items():
    images = session.images("unlabeled", rows)
    true = ([unl_classes[int(labels[r])] for r in rows] if labels is not None and unl_classes else [])
    left, right = st.columns([1, 6])
    left.markdown(f"**{classes[c]}**  \n{probs[rows, c].min():.3f}–{probs[rows, c].max():.3f}")
    right.image(image_grid(torch.from_numpy(images), columns=per_class), clamp=True,
                caption=", ".join(dict.fromkeys(true)) if true else None)

st.subheader("Most ambiguous unlabeled images")
ambiguous = most_ambiguous(probs, 24)
ambiguous_images = session.images("unlabeled", ambiguous)
st.image([soft_label_tile(img, probs[r]) for img, r in zip(ambiguous_images, ambiguous, strict=True)],
         caption=[f"#{r} · entropy {entropy(probs[[r]])[0]:.2f}"
                  + (f" · {unl_classes[int(labels[r])]}" if labels is not None and unl_classes else "")
                  for r in ambiguous], width=150)
st.caption(f"Bars: soft label over {', '.join(classes)} (red: most likely).")

st.subheader("Nearest labeled neighbours of an unlabeled image")
st.caption(f"In the {role}'s penultimate feature space, over the {len(data.test_y):,} labeled test images.")
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
                   + (f" · {unl_classes[int(labels[query])]}" if labels is not None and unl_classes else ""))
pool_probs = softmax(pool["logits"][near], temperature)
right.image([soft_label_tile(img, p)
             for img, p in zip(session.images("labeled", near), pool_probs, strict=True)],
            caption=[f"{classes[int(data.test_y[i])]} · d={d:.2f}" for i, d in zip(near, dist, strict=True)],
            width=150)
