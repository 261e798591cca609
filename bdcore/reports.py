"""Tables and plotly figures of runs, for the app's Runs page (no UI code here)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from .config import ExperimentConfig
from .reproduce import TABLES
from .stage_names import TEACHER, sort_stages
from .store import RunRecord


def run_label(run_id: str, c: ExperimentConfig) -> str:
    """A run in one short line: the end of its id, its pair, its models and temperature."""
    return f"{run_id[-6:]} {c.labeled}<-{c.unlabeled} {c.teacher}->{c.student} T={c.temperature:g}"


def paper_reference(config: ExperimentConfig) -> dict[str, float]:
    """The paper's figures by stage for this pair and these architectures, if a table has them."""
    for table in TABLES.values():
        if (config.labeled, config.unlabeled) != (table.base.labeled, table.base.unlabeled):
            continue
        for row in table.rows:
            if (row.teacher, row.student) == (config.teacher, config.student):
                return row.paper_by_stage()
    return {}


def curves_frame(epochs: list[dict], records: list[RunRecord]) -> pd.DataFrame:
    labels = {r.id: run_label(r.id, r.config) for r in records}
    frame = pd.DataFrame(epochs, columns=["run_id", "stage", "epoch", "epochs", "train_loss",
                                          "test_acc", "lr", "seconds"])
    frame = frame[frame["run_id"].isin(labels)]
    frame["run"] = frame["run_id"].map(labels)
    return frame


def curves_figure(frame: pd.DataFrame, records: list[RunRecord], metric: str = "test_acc") -> go.Figure:
    """One panel per stage, one line per run; the teacher's accuracy (dashed) and the paper's
    figures (dotted) as reference lines on the accuracy panels."""
    order = sort_stages(frame["stage"])
    title = {"test_acc": "test accuracy", "train_loss": "training loss"}[metric]
    fig = px.line(frame, x="epoch", y=metric, color="run", facet_col="stage",
                  category_orders={"stage": order}, markers=True, labels={metric: title})
    fig.for_each_annotation(lambda a: a.update(text=a.text.replace("stage=", "")))  # panel titles
    fig.update_xaxes(matches=None, dtick=1 if frame["epoch"].max() <= 20 else None)
    if metric == "test_acc" and len(frame):
        fig.update_yaxes(tickformat=".1%")
        for record in records:
            final = record.final or {}
            paper = paper_reference(record.config)
            for col, stage in enumerate(order, start=1):
                if final.get("teacher_acc") is not None and stage != TEACHER:
                    fig.add_hline(y=final["teacher_acc"], line_dash="dash", line_color="grey",
                                  row=1, col=col,  # one label: plotly writes "new text" for None
                                  **({"annotation_text": "teacher"} if col == 2 else {}))
                if stage in paper:
                    fig.add_hline(y=paper[stage], line_dash="dot", line_color="firebrick", row=1, col=col,
                                  annotation_text=f"paper {paper[stage]:.2%}")
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=40, b=10), legend_title_text="run",
                      legend=dict(orientation="h", y=-0.25))
    return fig


def summary_frame(records: list[RunRecord]) -> pd.DataFrame:
    """Final accuracies of every run, one row each (percent), ready for a table or CSV."""
    rows = []
    for r in records:
        final = r.final or {}
        row = {"id": r.id, "status": r.status, "labeled": r.config.labeled,
               "unlabeled": r.config.unlabeled, "teacher": r.config.teacher,
               "student": r.config.student, "temperature": r.config.temperature,
               "seed": r.config.seed, "teacher_reused": r.teacher_reused,
               "teacher_acc": final.get("teacher_acc"), "blind_acc": final.get("blind_acc")}
        for k, acc in (final.get("finetune_acc") or {}).items():
            row[f"finetune_k{k}_acc"] = acc
        row["seconds"] = round(sum((final.get("seconds") or {}).values()), 1) if final else None
        rows.append(row)
    return pd.DataFrame(rows)


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.2%}"


def runs_table(records: list[RunRecord]) -> pd.DataFrame:
    """The Runs page's live table: one short row per run, accuracies as text ("" until known) so
    that it fits a page; ``summary_frame`` has every field, for the CSV."""
    ks = list(dict.fromkeys(k for r in records for k in (r.final or {}).get("finetune_acc") or {}))
    rows = []
    for r in records:
        final = r.final or {}
        tuned = final.get("finetune_acc") or {}
        rows.append({"run": run_label(r.id, r.config), "status": str(r.status), "progress": r.progress,
                     "stage": r.stage or "", "teacher": _percent(final.get("teacher_acc")),
                     "blind": _percent(final.get("blind_acc")),
                     **{f"fine-tune k={k}": _percent(tuned.get(k)) for k in ks},
                     "seconds": f"{sum(final['seconds'].values()):.0f}" if final.get("seconds") else "",
                     "note": r.error or r.message or ""})
    return pd.DataFrame(rows)


def final_figures(record: RunRecord) -> dict[str, float | None]:
    """A run's final accuracies by stage: teacher, blind, then "fine-tune k=..." for each k."""
    final = record.final or {}
    return {"teacher": final.get("teacher_acc"), "blind": final.get("blind_acc"),
            **{f"fine-tune k={k}": acc for k, acc in (final.get("finetune_acc") or {}).items()}}


def parent_child_frame(parent: RunRecord, child: RunRecord) -> pd.DataFrame:
    """A run relaunched on a transfer set beside the run the set came from: each final accuracy
    of either, and the change in points ("" until both are known)."""
    mine, theirs = final_figures(child), final_figures(parent)
    rows = []
    for stage in dict.fromkeys([*theirs, *mine]):
        a, b = theirs.get(stage), mine.get(stage)
        rows.append({"stage": stage, "parent": a, "this run": b,
                     "change": None if a is None or b is None else 100 * (b - a)})
    return pd.DataFrame(rows)


def seed_group_key(config: ExperimentConfig) -> str:
    """Runs whose configs differ only in their seed share this key."""
    settings = {**asdict(config), "seed": None}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]


def seed_groups(records: list[RunRecord]) -> pd.DataFrame:
    """Finished runs that differ only in seed, one row per group: how many seeds, and each final
    accuracy's mean and sample std over them (std blank for one seed)."""
    groups: dict[str, list[RunRecord]] = {}
    for r in records:
        if r.final:
            groups.setdefault(seed_group_key(r.config), []).append(r)
    rows = []
    for members in groups.values():
        first = members[0]
        row = {"runs": run_label(first.id, first.config).split(" ", 1)[-1],
               "seeds": ", ".join(str(m.config.seed) for m in members)}
        figures = pd.DataFrame([final_figures(m) for m in members])
        for stage in figures.columns:
            values = pd.to_numeric(figures[stage], errors="coerce")
            row[f"{stage} mean"] = values.mean()
            row[f"{stage} std"] = values.std() if len(values.dropna()) > 1 else None
        rows.append(row)
    return pd.DataFrame(rows)
