"""Embeddings: the joint t-SNE / UMAP / PCA picture of labeled and unlabeled samples in a model's
feature space (the paper's Figure 6), up to the whole sets (70,000 points for MNIST + Fashion-MNIST),
with hover images, linked selection between models, the blind stage's replay and export."""
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
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
)
from bdcore.embeddings.figures import COLOUR_BY, embedding_frame, frame_for_csv, linked
from bdcore.embeddings.reduce import INITS, TSNE_IMPLS
from bdcore.embeddings.replay import replay, replay_epochs
from bdcore.errors import UserError
from bdcore.stage_names import TEACHER
from ui.embedding_panels import forget, gallery, located, point_details, record, save_selection, selection
from ui.resources import hover_atlas, scatter_chart, umap_warmed_up
from ui.run_picker import pick_run, soft_label_temperature

HOVER_THUMBNAILS = Path(__file__).resolve().parents[1] / "assets" / "hover_thumbnails.js"
METHOD_NAMES = {"tsne": "t-SNE", "umap": "UMAP", "pca": "PCA"}

st.title("Embeddings")
st.caption("Labeled test images and unlabeled images, embedded together in a model's feature "
           "space (the paper's section 5.1, Figure 6). Labeled classes are in reds and purples, "
           "unlabeled ones in greens and blues. Hover a point for its image and the model's top-3 "
           "classes; click a point, or draw a box or lasso, to see the images with their soft labels "
           "and the same samples highlighted in the other model's chart.")
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
                          format_func=METHOD_NAMES.get)
    representation = c3.selectbox("space", REPRESENTATIONS, format_func=lambda r: {
        "features": "penultimate features", "logits": "logits"}[r])
    dims = c4.radio("dimensions", [2, 3], [2, 3].index(d.dims), horizontal=True)
    c1, c2, c3, c4 = st.columns(4)
    first = first_view_spec(session)
    n_test, n_unl = len(session.data.test_y), len(session.data.unlabeled_x)
    # 0 asks for a whole set: all 70,000 points of MNIST + Fashion-MNIST take 1-2 minutes to embed
    # once (docs/explorer.md); the default stays the few-second first view the run's worker prepared.
    n_labeled = c1.number_input(f"labeled test samples (0: all {n_test:,})", 0, n_test, first.n_labeled, 1000)
    n_unlabeled = c2.number_input(f"unlabeled samples (0: all {n_unl:,})", 0, n_unl, first.n_unlabeled, 1000)
    sample_seed = c3.number_input("sample seed", 0, 2**31 - 1, first.seed)
    seed = c4.number_input("embedding seed", 0, 2**31 - 1, d.seed,
                           help="fixes the picture, except a UMAP of 20,000 points or more: its layout runs "
                                "on every thread, unseeded (the cache keeps the first picture)")
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
spec = SampleSpec(int(n_labeled) or n_test, int(n_unlabeled) or n_unl, int(sample_seed))
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
thumbs_on = c4.toggle("hover images", value=True, help="Each point's image, fetched by the browser "
                      "when first hovered (a few sheets of small tiles per run), for any number of points.")
flat = dims == 3 and st.toggle("select in the x-y view", help="Box and lasso work in 2-D only: this draws "
                               "the same 3-D embedding seen from above (its x and y), where they work.")

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
if flat:
    frames = {role: f.drop(columns="z") for role, f in frames.items()}
groups = sorted(set().union(*(set(f["group"]) for f in frames.values())))
hidden = st.multiselect("hide classes", groups, help="Hide some classes of either set.")
atlas = hover_atlas(str(session.path), session) if thumbs_on else None
selectable = "z" not in next(iter(frames.values()))
samples = f"{session.run_id} {spec}"  # a selection's rows mean these samples only
source, rows = selection(samples)


def chart(role: str, frame: pd.DataFrame, title: str, key: str) -> go.Figure:
    """One model's scatter (shared across sessions) with the selection and located point on it."""
    view = frame[frame["set"].isin(sets) & ~frame["group"].isin(hidden)]
    fig = scatter_chart(str(session.path), int(pd.util.hash_pandas_object(view).sum()), colour_by,
                        f"{title} · {len(view):,} points", atlas.url if atlas else "", view, session, atlas)
    fig = linked(fig, set(rows), located(view))
    event = st.plotly_chart(fig, key=key, on_select="rerun" if selectable else "ignore",
                            selection_mode=("box", "lasso", "points"),
                            config={"toImageButtonOptions": {"format": "png", "scale": 2,
                                                             "filename": f"embedding-{role}"}})
    if selectable:
        record(role, event, samples)
    return fig


method_name = METHOD_NAMES[method]
for column, (role, emb) in zip(st.columns(len(roles)), embeddings.items(), strict=True):
    frame = frames[role]
    with column:
        fig = chart(role, frame, f"{role} · {representation} · {method_name}", f"scatter-{role}")
        timing = " + ".join(f"{k} {v:.1f} s" for k, v in emb.seconds.items())
        st.caption(("loaded from the cache" if emb.cached else f"computed: {timing}; cached for next time")
                   + ". PNG: the camera icon above the chart.")
        d1, d2 = st.columns(2)
        d1.download_button("Embedding CSV", frame_for_csv(frame).to_csv(index=False),
                           f"embedding-{session.run_id}-{role}.csv", "text/csv", key=f"csv-{role}")
        d2.download_button("Figure HTML", lambda fig=fig: fig.to_html(include_plotlyjs=True),
                           f"embedding-{session.run_id}-{role}.html", "text/html", key=f"html-{role}")

if rows:
    where = source if source in frames else next(iter(frames))
    c1, c2 = st.columns([4, 1])
    c1.subheader(f"Selected in {source}: {len(rows):,} samples (highlighted in every chart)")
    if c2.button("Clear selection"):
        forget()
        st.rerun()
    if len(rows) == 1:
        point_details(session, frames, embeddings, rows[0], temperature)
    gallery(session, where, frames[where], embeddings[where], rows, temperature)
    save_selection(session, where, frames[where], rows,
                   f"{method_name} {2 if flat else dims}-D of {representation}")
elif selectable:
    st.caption("Click a point, or draw a box or lasso in a chart, to see its images, highlight them in the "
               "other model's chart and save them as a transfer set.")

epochs = replay_epochs(session)
st.subheader("Replay: the student during the blind stage")
if not epochs:
    st.caption("This run kept no blind-stage snapshots (runs trained before they were kept, or still in "
               "their teacher stage).")
elif st.toggle(f"Replay the blind stage ({len(epochs)} saved epochs: {', '.join(map(str, epochs))})",
               help="The student's embedding of the same samples after each saved epoch. Each epoch's "
                    "layout starts from the previous one's and is rotated onto it, so points move only "
                    "as the features do. Computed once per setting, then cached."):
    bar = st.progress(0.0, text="replay: starting")
    try:
        replayed = replay(session, spec, params, representation,
                          progress=lambda f, m: bar.progress(min(max(f, 0.0), 1.0), text=m))
    except UserError as err:
        bar.empty()
        st.error(str(err))
        st.stop()
    bar.empty()
    by_epoch = dict(zip(epochs, replayed, strict=True))
    epoch = st.select_slider("blind-stage epoch", epochs, value=epochs[-1])
    shown = by_epoch[epoch]
    frame = embedding_frame(shown, session, temperature)
    if flat:
        frame = frame.drop(columns="z")
    chart(shown.role, frame, f"student after blind epoch {epoch} · {representation} · {method_name}",
          "scatter-replay")
