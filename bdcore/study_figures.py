"""A study's figures (plotly): the two-axis matrix as a heatmap, and a figure against one axis
with mean +- std over seeds as error bars, one line per value of another axis if there is one."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from .study_views import SEED


def heatmap(table: pd.DataFrame, figure: str, rows: str, columns: str) -> go.Figure:
    """``table`` (``study_views.matrix``): accuracy per cell, written in the cell."""
    text = [["" if pd.isna(v) else f"{100 * v:.2f}" for v in row] for row in table.to_numpy()]
    fig = go.Figure(go.Heatmap(z=table.to_numpy(), x=[str(c) for c in table.columns],
                               y=[str(i) for i in table.index], text=text, texttemplate="%{text}",
                               colorscale="Viridis", colorbar=dict(title="accuracy", tickformat=".0%")))
    fig.update_layout(title=f"{figure}: {rows} (rows) x {columns}", xaxis_title=columns,
                      yaxis_title=rows, yaxis_autorange="reversed", height=420,
                      margin=dict(l=10, r=10, t=50, b=10))
    return fig


def against(means: pd.DataFrame, axis: str, figure: str, lines: str | None = None) -> go.Figure:
    """``figure``'s mean against ``axis`` (from ``study_views.over_seeds``), std as error bars."""
    fig = go.Figure()
    groups = [(None, means)] if lines is None else list(means.groupby(lines, sort=False))
    for name, group in groups:
        x = pd.to_numeric(group[axis], errors="coerce")
        numeric = x.notna().all()
        order = x.argsort() if numeric else range(len(group))
        group = group.iloc[list(order)]
        fig.add_trace(go.Scatter(
            x=(x.iloc[list(order)] if numeric else group[axis]), y=group[f"{figure} mean"],
            error_y=dict(type="data", array=group[f"{figure} std"].fillna(0)), mode="lines+markers",
            name=str(name) if name is not None else figure))
    numeric_axis = pd.to_numeric(means[axis], errors="coerce").notna().all()
    fig.update_layout(title=f"{figure} against {axis} (mean +- std over {SEED}s)",
                      xaxis_title=axis, yaxis_title="test accuracy", yaxis_tickformat=".1%", height=400,
                      xaxis_type="log" if numeric_axis and pd.to_numeric(means[axis]).min() > 0 and
                      pd.to_numeric(means[axis]).max() / pd.to_numeric(means[axis]).min() >= 20 else None,
                      margin=dict(l=10, r=10, t=50, b=10), legend_title_text=lines or "")
    return fig
