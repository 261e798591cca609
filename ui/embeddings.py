"""Embeddings: the joint t-SNE / UMAP / PCA picture of labeled and unlabeled samples in a model's
feature space (the paper's Figure 6), with hover thumbnails, selection and export."""
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
import streamlit.components.v1 as components

from bdcore.embeddings import (
    METRICS,
    REDUCERS,
    REPRESENTATIONS,
    ReduceParams,
    SampleSpec,
    embed,
    first_view_spec,
    softmax,
)
from bdcore.embeddings.figures import (
    COLOUR_BY,
    embedding_frame,
    frame_for_csv,
    soft_label_tile,
)
from bdcore.embeddings.reduce import INITS, TSNE_IMPLS
from bdcore.errors import UserError
from bdcore.stage_names import TEACHER
from ui.resources import hover_thumbnails, scatter_chart, umap_warmed_up
from ui.run_picker import pick_run, soft_label_temperature

HOVER_THUMBNAILS = Path(__file__).resolve().parents[1] / "assets" / "hover_thumbnails.js"
MAX_THUMBNAILS = 5000  # each hover image is sent with the chart: about 1 KB a point

st.title("Embeddings")
st.caption("Labeled test images and unlabeled images, embedded together in a model's feature "
           "space (the paper's section 5.1, Figure 6). Labeled classes are in reds and purples, "
           "unlabeled ones in greens and blues. Hover a point for its image and the model's top-3 "
           "classes; draw a box or lasso to see the selected images with their soft labels.")
umap_warmed_up()  # numba compiles UMAP in the background while the user picks settings
components.html(f"<script>\n{HOVER_THUMBNAILS.read_text()}</script>", height=0)

session = pick_run(st.container(), "embed_run",
                   "No run with a trained teacher yet. Launch one from the Home or Launch page; its "
                   "embedding can be explored here as soon as its teacher stage has finished.")

d = ReduceParams()  # the defaults: the first view is then the one the run's worker computed ahead
with st.form("embedding settings"):
    c1, c2, c3, c4 = st.columns(4)
    roles = c1.multiselect("models (two: side by side)", session.roles, default=[TEACHER], max_selections=2,
                           help="Teacher and a student embed the same samples, for comparison.")
    method = c2.selectbox("method", list(REDUCERS), list(REDUCERS).index(d.method),
                          format_func=lambda m: {"tsne": "t-SNE", "umap": "UMAP", "pca": "PCA"}[m])
    representation = c3.selectbox("space", REPRESENTATIONS, format_func=lambda r: {
        "features": "penultimate features", "logits": "logits"}[r])
    dims = c4.radio("dimensions", [2, 3], [2, 3].index(d.dims), horizontal=True)
    c1, c2, c3, c4 = st.columns(4)
    first = first_view_spec(session)
    n_labeled = c1.number_input("labeled test samples", 1, len(session.data.test_y), first.n_labeled, 100)
    n_unlabeled = c2.number_input("unlabeled samples", 1, len(session.data.unlabeled_x), first.n_unlabeled,
                                  100)
    sample_seed = c3.number_input("sample seed", 0, 2**31 - 1, first.seed)
    seed = c4.number_input("embedding seed", 0, 2**31 - 1, d.seed)
    with st.expander("method parameters"):
        c1, c2, c3, c4 = st.columns(4)
        perplexity = c1.number_input("t-SNE perplexity", 2.0, 200.0, d.perplexity, 5.0)
        learning_rate = c2.number_input("t-SNE learning rate (0: auto)", 0.0, 5000.0, d.learning_rate, 50.0)
        n_iter = c3.number_input("t-SNE iterations (after 250 exaggerated)", 50, 5000, d.n_iter, 50)
        tsne_impl = c4.selectbox("t-SNE implementation", TSNE_IMPLS, TSNE_IMPLS.index(d.tsne_impl))
        c1, c2, c3, c4 = st.columns(4)
        n_neighbors = c1.number_input("UMAP n_neighbors", 2, 200, d.n_neighbors)
        min_dist = c2.number_input("UMAP min_dist", 0.0, 1.0, d.min_dist, 0.05)
        n_epochs = c3.number_input("UMAP epochs", 10, 2000, d.n_epochs, 50)
        pca_dims = c4.number_input("PCA pre-reduction (0: none)", 0, 512, d.pca_dims)
        c1, c2 = st.columns(2)
        metric = c1.selectbox("metric", METRICS, METRICS.index(d.metric))
        init = c2.selectbox("init", ["auto", "pca", "random", "spectral"], 0,  # "auto", as ReduceParams
                            help=f"t-SNE: {', '.join(INITS['tsne'])}; UMAP: {', '.join(INITS['umap'])}")
    st.form_submit_button("Compute embedding", type="primary")

params = ReduceParams(method=method, dims=dims, perplexity=perplexity, learning_rate=learning_rate,
                      n_iter=int(n_iter), tsne_impl=tsne_impl, n_neighbors=int(n_neighbors),
                      min_dist=min_dist, n_epochs=int(n_epochs), metric=metric, init=init,
                      pca_dims=int(pca_dims), seed=int(seed))
spec = SampleSpec(int(n_labeled), int(n_unlabeled), int(sample_seed))
if not roles:
    st.info("Pick at least one model.")
    st.stop()
try:
    params.validate()
except UserError as err:
    st.error(str(err))
    st.stop()

c1, c2, c3, c4 = st.columns(4)
colour_by = c1.selectbox("colour by", list(COLOUR_BY))
temperature = soft_label_temperature(c2, session, horizontal=True)
sets = c3.multiselect("show", ["labeled", "unlabeled"], default=["labeled", "unlabeled"])
thumbs_on = c4.toggle("hover thumbnails", value=True)

embeddings = {}
for role in roles:
    bar = st.progress(0.0, text=f"{role}: starting")
    try:
        embeddings[role] = embed(
            session, role, spec, params, representation,
            progress=lambda f, m, bar=bar, role=role: bar.progress(min(max(f, 0.0), 1.0),
                                                                   text=f"{role}: {m}"))
    except UserError as err:
        bar.empty()
        st.error(f"{role}: {err}")
        st.stop()
    bar.empty()

frames = {role: embedding_frame(e, session, temperature) for role, e in embeddings.items()}
groups = sorted(set().union(*(set(f["group"]) for f in frames.values())))
hidden = st.multiselect("hide classes", groups, help="Hide some classes of either set.")
columns = st.columns(len(roles))
selected: dict[str, list[int]] = {}
for column, (role, emb) in zip(columns, embeddings.items(), strict=True):
    frame = frames[role]
    keep = frame["set"].isin(sets) & ~frame["group"].isin(hidden)
    view = frame[keep]
    thumbs = None
    if thumbs_on and len(view) > MAX_THUMBNAILS:
        st.caption(f"Hover thumbnails are off above {MAX_THUMBNAILS:,} points "
                   f"(this chart has {len(view):,}).")
    elif thumbs_on:
        thumbs = hover_thumbnails(str(session.path), tuple(view["set"]), tuple(map(int, view["index"])),
                                  session)
    fig = scatter_chart(str(session.path), int(pd.util.hash_pandas_object(view).sum()), colour_by,
                        f"{role} · {representation} · {method} · {len(view)} points", thumbs is not None,
                        view, session, thumbs)
    with column:
        event = st.plotly_chart(fig, key=f"scatter-{role}", on_select="rerun" if dims == 2 else "ignore",
                                selection_mode=("box", "lasso", "points"),
                                config={"toImageButtonOptions": {"format": "png", "scale": 2,
                                                                 "filename": f"embedding-{role}"}})
        timing = " + ".join(f"{k} {v:.1f} s" for k, v in emb.seconds.items())
        st.caption(("loaded from the cache" if emb.cached else f"computed: {timing}; cached for next time")
                   + ". PNG: the camera icon above the chart.")
        d1, d2 = st.columns(2)
        d1.download_button("Embedding CSV", frame_for_csv(frame).to_csv(index=False),
                           f"embedding-{session.run_id}-{role}.csv", "text/csv", key=f"csv-{role}")
        d2.download_button("Figure HTML", lambda fig=fig: fig.to_html(include_plotlyjs=True),
                           f"embedding-{session.run_id}-{role}.html", "text/html", key=f"html-{role}")
        if dims == 2 and event and event.selection and event.selection.points:
            selected[role] = sorted({int(p["customdata"][0]) for p in event.selection.points
                                     if p.get("customdata")})

MAX_TILES = 48
for role, rows in selected.items():
    st.subheader(f"Selected in {role}: {len(rows)} samples")
    frame, emb = frames[role], embeddings[role]
    shown = rows[:MAX_TILES]
    probs = softmax(emb.logits[shown], temperature)
    images = [session.images(frame["set"][r], np.array([frame["index"][r]]))[0] for r in shown]
    st.image([soft_label_tile(img, p) for img, p in zip(images, probs, strict=True)],
             caption=[f"{frame['set'][r]} #{frame['index'][r]} · true {frame['true_class'][r]} · "
                      f"{frame['predicted'][r]} {frame['confidence'][r]:.2f}" for r in shown], width=150)
    if len(rows) > MAX_TILES:
        st.caption(f"First {MAX_TILES} of {len(rows)} shown. Bars: soft label over "
                   f"{', '.join(session.data.classes)} (red: most likely).")
    else:
        st.caption(f"Bars: soft label over {', '.join(session.data.classes)} (red: most likely).")
