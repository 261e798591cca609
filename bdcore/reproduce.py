"""Reproductions of the paper's tables at documented defaults, printed beside the paper."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from .config import ExperimentConfig
from .experiment import EventFn, ExperimentResult, run_experiment
from .runs import RunsRoot
from .train import ProgressFn


@dataclass(frozen=True)
class RowSpec:
    teacher: str
    student: str
    paper: dict[str, float]  # "teacher", "blind", "finetune" (k = all), as fractions
    overrides: dict = field(default_factory=dict)


@dataclass
class RowResult:
    teacher: str
    student: str
    paper: dict[str, float]
    result: ExperimentResult

    @property
    def measured(self) -> dict[str, float]:
        r = self.result
        return {"teacher": r.teacher_acc, "blind": r.blind_acc, "finetune": r.finetune_acc["all"]}

    @property
    def meets_paper(self) -> bool:
        return all(self.measured[k] >= v for k, v in self.paper.items())

    def headline(self) -> str:
        m = self.measured
        return (f"{self.teacher.upper()} -> {self.student.upper()}: teacher {m['teacher']:.2%}, "
                f"blind {m['blind']:.2%}, fine-tune(all) {m['finetune']:.2%}")

    def to_dict(self) -> dict:
        return {"teacher": self.teacher, "student": self.student, **self.result.to_dict(),
                "paper": self.paper, "meets_paper": self.meets_paper}


@dataclass(frozen=True)
class Table:
    title: str
    base: ExperimentConfig
    rows: list[RowSpec]

    def format(self, results: list[RowResult], wall_seconds: float | None = None) -> str:
        lines = [self.title, "",
                 f"{'teacher -> student':<20}{'teacher':>18}{'blind':>18}{'fine-tune (all)':>20}"
                 f"{'seconds':>10}  ok", "-" * 92]
        for r in results:
            cells = [f"{r.measured[k]:.2%} ({r.paper[k]:.2%})" for k in ("teacher", "blind", "finetune")]
            lines.append(f"{r.teacher.upper() + ' -> ' + r.student.upper():<20}{cells[0]:>18}{cells[1]:>18}"
                         f"{cells[2]:>20}{sum(r.result.seconds.values()):>10.0f}  "
                         f"{'yes' if r.meets_paper else 'NO'}")
        lines += ["", "measured (paper); 'ok' = every figure matches or beats the paper"]
        if wall_seconds is not None:
            lines.append(f"wall time {wall_seconds:.0f} s for the whole table, teacher cache included "
                         f"({len(results)} rows; docs/results.md lists earlier runs and their machines)")
        return "\n".join(lines)


# Table 1: each row's settings beyond the defaults, and the measurements behind them: docs/results.md
# ("Why each row runs as it does").
MLP_TEACHER = {"teacher_augment": False, "teacher_input_noise": 0.0}
MLP_STUDENT = {"blind_epochs": 10, "finetune_epochs": 10, "finetune_lr": 1e-3}
CACHED_FINETUNE = {"finetune_fresh_teacher": False}
TABLE1 = Table(
    title="Table 1: MNIST (labeled) <- Fashion-MNIST (unlabeled)",
    base=ExperimentConfig(labeled="mnist", unlabeled="fashion-mnist", finetune_ks=["all"]),
    rows=[
        RowSpec("cnn", "cnn", {"teacher": 0.995, "blind": 0.962, "finetune": 0.996}),
        RowSpec("mlp", "mlp", {"teacher": 0.9769, "blind": 0.84, "finetune": 0.9795},
                {**MLP_TEACHER, **MLP_STUDENT}),
        RowSpec("cnn", "mlp", {"teacher": 0.995, "blind": 0.686, "finetune": 0.9816},
                {**MLP_STUDENT, **CACHED_FINETUNE, "blind_epochs": 14, "blind_augment": True,
                 "blind_augment_strength": 4.0}),
        RowSpec("mlp", "cnn", {"teacher": 0.9769, "blind": 0.8945, "finetune": 0.9926},
                {**MLP_TEACHER, **CACHED_FINETUNE, "hard_label_weight": 0.9, "blind_epochs": 3,
                 "finetune_epochs": 6}),
    ],
)
TABLES = {"table1": TABLE1}


def run_table(name: str, *, seed: int = 0, device: str = "auto", root: RunsRoot | None = None,
              on_epoch: ProgressFn | None = None, on_event: EventFn | None = None,
              on_row: Callable[[RowResult], None] | None = None) -> list[RowResult]:
    """Run every row of a table; rows sharing a teacher train it once (the teacher cache)."""
    table = TABLES[name]
    results = []
    for row in table.rows:
        config = replace(table.base, teacher=row.teacher, student=row.student, seed=seed,
                         device=device, **row.overrides)
        result = run_experiment(config, root, on_epoch, on_event)
        results.append(RowResult(row.teacher, row.student, row.paper, result))
        if on_row is not None:
            on_row(results[-1])
    return results
