"""Tables, plotly figures and picture tiles for the explorer pages (no UI code here). Labeled
classes are drawn in one colour family (reds, pinks, purples) and unlabeled ones in another
(greens, blues), as in the paper's Figure 6."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from .analysis import entropy, top_k
from .engine import Embedding
from .features import softmax
from .source import ExploreSession

COLOUR_BY = {"source + true class": "group", "predicted class": "predicted",
             "confidence": "confidence", "entropy": "entropy"}
WARM = (-70.0, 35.0)  # hue range (degrees) of the labeled family: purple -> magenta -> red -> orange
COOL = (95.0, 230.0)  # the unlabeled family: green -> teal -> blue
UNKNOWN = "?"


def family(names: list[str], hues: tuple[float, float]) -> dict[str, str]:
    """Distinct colours for ``names`` inside one hue range, lightness alternating for contrast."""
    n = max(len(names), 1)
    return {name: f"hsl({(hues[0] + (hues[1] - hues[0]) * i / max(n - 1, 1)) % 360:.0f},"
                  f"{70 if i % 2 else 85}%,{35 if i % 2 else 58}%)" for i, name in enumerate(names)}


def embedding_frame(emb: Embedding, session: ExploreSession, temperature: float = 1.0) -> pd.DataFrame:
    """One row per point: coordinates, set, dataset, true and predicted class, confidence,
    entropy and the model's top-3 classes (soft labels at ``temperature``)."""
    data, config = session.data, session.config
    probs = softmax(emb.logits, temperature)
    order, top = top_k(probs, 3)
    frame = pd.DataFrame(emb.coords, columns=["x", "y", "z"][: emb.coords.shape[1]])
    frame.insert(0, "row", np.arange(len(emb.coords)))
    frame["set"] = np.where(emb.is_unlabeled, "unlabeled", "labeled")
    frame["dataset"] = np.where(emb.is_unlabeled, config.unlabeled, config.labeled)
    frame["index"] = emb.index
    names = [data.unlabeled_classes[t] if u and 0 <= t < len(data.unlabeled_classes)
             else data.classes[t] if not u else UNKNOWN
             for u, t in zip(emb.is_unlabeled, emb.true_label, strict=True)]
    frame["true_class"] = names
    frame["group"] = [f"{d}: {n}" if n != UNKNOWN else d
                      for d, n in zip(frame["dataset"], names, strict=True)]
    frame["predicted"] = [data.classes[i] for i in order[:, 0]]
    frame["confidence"] = top[:, 0]
    frame["entropy"] = entropy(probs)
    frame["top3"] = ["<br>".join(f"{data.classes[c]}: {p:.3f}" for c, p in zip(o, t, strict=True))
                     for o, t in zip(order, top, strict=True)]
    return frame


def group_colours(frame: pd.DataFrame, session: ExploreSession) -> dict[str, str]:
    config, data = session.config, session.data
    labeled = [f"{config.labeled}: {c}" for c in data.classes]
    unlabeled = [f"{config.unlabeled}: {c}" for c in data.unlabeled_classes] or [config.unlabeled]
    colours = {**family(labeled, WARM), **family(unlabeled, COOL)}
    colours.setdefault(config.unlabeled, family([config.unlabeled], COOL)[config.unlabeled])
    return colours


def scatter_figure(frame: pd.DataFrame, session: ExploreSession, colour_by: str = "source + true class",
                   atlas: dict | None = None, title: str = "") -> go.Figure:
    """The joint embedding, drawn with WebGL (2-D: ``Scattergl``; 3-D is WebGL anyway) so that
    70,000 points stay fluid; hover shows the true class and the model's top-3. ``atlas``
    (``Atlas.to_dict()``) goes into ``layout.meta``: the page's hover script crops each point's
    image from it, by customdata's set (1) and index (4)."""
    column = COLOUR_BY[colour_by]
    three_d = "z" in frame
    kwargs = dict(x="x", y="y", color=column, symbol="set", custom_data=["row", "set", "true_class", "top3",
                  "index"], symbol_map={"labeled": "circle", "unlabeled": "diamond"})
    if column == "group":
        order = list(group_colours(frame, session))
        kwargs.update(color_discrete_map=group_colours(frame, session),
                      category_orders={"group": [g for g in order if g in set(frame["group"])]})
    elif column == "predicted":
        kwargs.update(color_discrete_map=family(session.data.classes, WARM),
                      category_orders={"predicted": session.data.classes})
    else:
        kwargs.update(color_continuous_scale="Viridis" if column == "confidence" else "Magma_r")
    if three_d:
        fig = px.scatter_3d(frame, z="z", **kwargs)
    else:
        fig = px.scatter(frame, render_mode="webgl", **kwargs)
    small = len(frame) > 20_000  # smaller markers where 70,000 points would hide each other
    fig.update_traces(marker=dict(size=2 if three_d else 3 if small else 5, opacity=0.8),
                      hovertemplate="<b>%{customdata[1]}</b> #%{customdata[4]}<br>"
                                    "true class: %{customdata[2]}<br><i>model's top-3</i><br>"
                                    "%{customdata[3]}<extra></extra>")
    if column == "group":
        fig.for_each_trace(lambda t: t.update(name=t.name.split(",")[0]))
    fig.update_layout(height=640, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                      title=title or None, legend=dict(itemsizing="constant", font=dict(size=11)),
                      dragmode="lasso" if not three_d else "orbit", meta={"atlas": atlas} if atlas else None)
    if not three_d:
        fig.update_xaxes(showticklabels=False, title=None)
        fig.update_yaxes(showticklabels=False, title=None, scaleanchor="x")
    return fig


def linked(fig: go.Figure, rows: set[int] | None, located: pd.DataFrame | None = None) -> go.Figure:
    """A copy of a (shared) scatter figure with the frame rows ``rows`` highlighted (plotly's
    ``selectedpoints``: the others dimmed), as selected in another model's chart, and each row
    of ``located`` (x, y[, z], label) marked with an arrow; unchanged when there is neither."""
    if not rows and (located is None or located.empty):
        return fig
    fig = go.Figure(fig)
    if rows:
        marked = []  # 3-D traces have no selectedpoints: their selected points are drawn again on top
        for trace in fig.data:
            hits = [i for i, cd in enumerate(trace.customdata) if int(cd[0]) in rows]
            if "selectedpoints" in trace._valid_props:
                trace.selectedpoints = hits
            else:
                marked += [(trace.x[i], trace.y[i], trace.z[i]) for i in hits]
        if marked:
            x, y, z = zip(*marked, strict=True)
            fig.add_scatter3d(x=x, y=y, z=z, mode="markers", name="selected", hoverinfo="skip",
                              marker=dict(size=5, color="rgba(0,0,0,0)", line=dict(width=2, color="#111")))
    if located is not None and not located.empty:
        if "z" in located:
            fig.update_layout(scene_annotations=[dict(x=r.x, y=r.y, z=r.z, text=r.label, arrowhead=2,
                                                      ax=30, ay=-40) for r in located.itertuples()])
        else:
            for r in located.itertuples():
                fig.add_annotation(x=r.x, y=r.y, text=r.label, arrowhead=2, ax=30, ay=-40, bgcolor="#fff")
    return fig


def soft_label_tile(image: np.ndarray, probs: np.ndarray, scale: int = 3) -> np.ndarray:
    """An RGB tile: the image (scaled up) beside a bar chart of its soft label, the most
    likely class in red. uint8 (H, W, 3)."""
    img = image[0][..., None].repeat(3, axis=2) if image.shape[0] == 1 else image.transpose(1, 2, 0)
    img = img.repeat(scale, axis=0).repeat(scale, axis=1)
    h = img.shape[0]
    bar_w, gap = 6, 2
    chart = np.full((h, len(probs) * (bar_w + gap) + gap, 3), 255, np.uint8)
    chart[-1] = 160
    top = int(np.argmax(probs))
    for c, p in enumerate(probs):
        height = int(round(float(p) * (h - 2)))
        x0 = gap + c * (bar_w + gap)
        if height:
            chart[h - 1 - height: h - 1, x0: x0 + bar_w] = (220, 38, 38) if c == top else (90, 90, 110)
    return np.concatenate([img, np.full((h, 4, 3), 255, np.uint8), chart], axis=1)


def affinity_figure(matrix: np.ndarray, rows: list[str], classes: list[str], title: str) -> go.Figure:
    fig = px.imshow(matrix, x=classes, y=rows, text_auto=".2f", color_continuous_scale="Blues",
                    zmin=0, zmax=1, aspect="auto", labels=dict(color="mean soft label"))
    fig.update_layout(height=120 + 34 * len(rows), margin=dict(l=10, r=10, t=40, b=10), title=title)
    fig.update_xaxes(type="category", title=None)
    return fig


def coverage_figure(coverage: pd.DataFrame) -> go.Figure:
    long = coverage.melt(id_vars="class", value_vars=["predicted_share", "soft_label_share"],
                         var_name="measure", value_name="share")
    fig = px.bar(long, x="class", y="share", color="measure", barmode="group",
                 color_discrete_sequence=["#b91c1c", "#f59e0b"])
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=10, b=10), yaxis_tickformat=".0%")
    fig.update_xaxes(type="category")
    return fig


def frame_for_csv(frame: pd.DataFrame) -> pd.DataFrame:
    """The embedding as a plain table (no HTML in the top-3 column)."""
    out = frame.drop(columns=["group"]).copy()
    out["top3"] = out["top3"].str.replace("<br>", "; ")
    return out


