"""The plotly charts of the scores and extraction pages, from small pre-aggregated frames (a few
hundred rows however many samples, so no chart sends per-sample data to the browser)."""
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go


def histograms_figure(hist: pd.DataFrame, column: str) -> go.Figure:
    """One small histogram of ``column`` per class taught (``scores.class_histograms``' frame),
    on shared bins and a shared x axis so the classes compare."""
    fig = px.bar(hist, x="middle", y="count", facet_col="teaches", facet_col_wrap=5,
                 hover_data={"left": ":.3g", "right": ":.3g", "middle": False},
                 labels={"middle": column, "count": "images"}, color_discrete_sequence=["#b91c1c"])
    rows = -(-hist["teaches"].nunique() // 5)
    fig.update_traces(width=float(hist["right"].iloc[0] - hist["left"].iloc[0]) if len(hist) else None)
    fig.update_yaxes(matches=None, showticklabels=True)  # a rare class keeps a readable scale
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[-1]))
    fig.update_layout(height=60 + 170 * rows, margin=dict(l=10, r=10, t=30, b=10), bargap=0)
    return fig


def extraction_figure(table: pd.DataFrame, measure: str, title: str, percent: bool) -> go.Figure:
    """``measure`` per class, one bar per student checkpoint (``extraction``'s frame)."""
    fig = px.bar(table, x="class", y=measure, color="model", barmode="group", title=title,
                 color_discrete_sequence=["#7c3aed", "#0d9488", "#f59e0b", "#2563eb", "#db2777"])
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=40, b=10),
                      yaxis_tickformat=".0%" if percent else None)
    fig.update_xaxes(type="category", title=None)
    return fig
