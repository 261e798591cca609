"""What a study's runs say, as tables: one row per run (its axis values and final accuracies),
the mean +- std over seeds of every other combination, a two-axis matrix (teacher x student),
and the tables as CSV or LaTeX (booktabs, the paper's layout)."""
from __future__ import annotations

import pandas as pd

from .reports import final_figures
from .store import RunRecord
from .studies import Study

SEED = "seed"
ACC = " acc"  # the suffix of every figure's column: "teacher acc", "blind acc", "fine-tune k=10 acc"
# (never just "teacher": that is the axis of teacher architectures)


def _finals(record: RunRecord | None) -> dict[str, float | None]:
    figures = final_figures(record) if record is not None else {"teacher": None, "blind": None}
    return {f"{stage}{ACC}": value for stage, value in figures.items()}


def runs_frame(study: Study, rows: list[tuple[dict, RunRecord | None]]) -> pd.DataFrame:
    """One row per run: its axis values (as text, so mixed types sort and group), its id, status
    and final accuracies (NaN until known)."""
    out = []
    for point, record in rows:
        out.append({**{k: str(v) for k, v in point.items()}, "run": record.id if record else "(deleted)",
                    "status": str(record.status) if record else "deleted", **_finals(record)})
    frame = pd.DataFrame(out)
    for column in figure_columns(frame):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def figure_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if str(c).endswith(ACC)]


def over_seeds(frame: pd.DataFrame, axes: list[str]) -> pd.DataFrame:
    """Mean, std and count over seeds of each figure, per combination of the other axes (every run
    when the study has no seed axis)."""
    keys = [a for a in axes if a != SEED]
    figures = figure_columns(frame)
    if not keys:
        frame = frame.assign(study="all runs")
        keys = ["study"]
    grouped = frame.groupby(keys, sort=False)[figures]
    out = grouped.mean().add_suffix(" mean").join(grouped.std().add_suffix(" std")).join(
        grouped.count()[figures[:1]].rename(columns={figures[0]: "runs done"}) if figures else None)
    return out.reset_index()


def matrix(frame: pd.DataFrame, rows: str, columns: str, figure: str) -> pd.DataFrame:
    """``figure``'s mean over every other axis (seeds included) for each ``rows`` x ``columns``
    pair: the teacher x student table."""
    return frame.pivot_table(index=rows, columns=columns, values=figure, aggfunc="mean", sort=False)


def best(frame: pd.DataFrame, axes: list[str], figure: str) -> dict | None:
    """The combination of axis values (seeds averaged) with the highest mean ``figure``."""
    means = over_seeds(frame, axes)
    column = f"{figure} mean"
    if column not in means or means[column].isna().all():
        return None
    row = means.loc[means[column].idxmax()]
    return {**{a: row[a] for a in axes if a != SEED and a in row}, figure: float(row[column])}


def to_latex(table: pd.DataFrame, caption: str) -> str:
    """A booktabs table (\\toprule / \\midrule / \\bottomrule), percentages with two decimals,
    ``mean +- std`` columns joined as ``mean $\\pm$ std``."""
    cells = table.copy()
    for column in list(cells.columns):
        if column not in cells:  # a std column, already joined to its mean
            continue
        if str(column).endswith(" mean") and f"{str(column)[:-5]} std" in cells:
            base = str(column)[:-5]
            std = cells.pop(f"{base} std")
            cells[column] = [("--" if pd.isna(m) else f"{100 * m:.2f}" + ("" if pd.isna(s) else
                              f" $\\pm$ {100 * s:.2f}")) for m, s in zip(cells[column], std, strict=True)]
            cells = cells.rename(columns={column: base})
        elif pd.api.types.is_float_dtype(cells[column]):
            cells[column] = ["--" if pd.isna(v) else f"{100 * v:.2f}" for v in cells[column]]
    escape = lambda text: str(text).replace("_", "\\_").replace("%", "\\%").replace("&", "\\&")  # noqa: E731
    lines = ["\\begin{table}[t]", "\\centering", f"\\caption{{{escape(caption)}}}",
             "\\begin{tabular}{" + "l" * len(cells.columns) + "}", "\\toprule",
             " & ".join(escape(c) for c in cells.columns) + " \\\\", "\\midrule"]
    lines += [" & ".join(escape(v) for v in row) + " \\\\" for row in cells.itertuples(index=False)]
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"
