"""Stage names, built and ordered in this one place. A run has a teacher stage, a blind stage and
one fine-tune stage per k ("finetune-k10", "finetune-kall"); checkpoints, metrics, the stage
ledger and the run store all carry these names."""
from __future__ import annotations

from collections.abc import Iterable

TEACHER = "teacher"
BLIND = "blind"
FINETUNE = "finetune"  # the kind shared by every fine-tune stage
_FINETUNE_PREFIX = "finetune-k"


def finetune_stage(per_class: int | None) -> str:
    """The stage that fine-tunes on ``per_class`` labeled samples per class (None: all of them)."""
    return f"{_FINETUNE_PREFIX}{'all' if per_class is None else per_class}"


def run_stages(finetune_sizes: Iterable[int | None]) -> list[str]:
    """Every stage of a run, in the order it trains them."""
    return [TEACHER, BLIND, *(finetune_stage(k) for k in finetune_sizes)]


def stage_kind(name: str) -> str | None:
    """``teacher``, ``blind`` or ``finetune``; None for a name that is not a stage."""
    if name in (TEACHER, BLIND):
        return name
    k = name.removeprefix(_FINETUNE_PREFIX)
    if name.startswith(_FINETUNE_PREFIX) and (k == "all" or k.isdigit()):
        return FINETUNE
    return None


def _order(name: str) -> tuple[int, float]:
    """Teacher, blind, then fine-tunes by k with "all" last."""
    kind = stage_kind(name)
    if kind != FINETUNE:
        return (0 if kind == TEACHER else 1, 0.0)
    k = name.removeprefix(_FINETUNE_PREFIX)
    return (2, float("inf") if k == "all" else int(k))


def sort_stages(names: Iterable[str]) -> list[str]:
    """The stage names among ``names`` (others are dropped), in training order."""
    return sorted({n for n in names if stage_kind(n) is not None}, key=_order)
