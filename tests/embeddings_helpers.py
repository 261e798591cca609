"""A tiny finished run for the explorer tests: real checkpoints (briefly trained CNN teacher and
an untrained student) on the tiny datasets of conftest.py, registered in the run store."""
from __future__ import annotations

from pathlib import Path

import torch

from bdcore.config import ExperimentConfig
from bdcore.data import load_pair
from bdcore.models import build_model
from bdcore.runs import RunDir, save_weights
from bdcore.store import RunStore


def make_finished_run(store: RunStore | None = None, teacher: str = "mlp", student: str = "mlp",
                      steps: int = 30) -> tuple[str, Path]:
    """A run folder with config.json, teacher/blind/finetune-kall checkpoints and final.json;
    the teacher is trained a few steps so its predictions mean something."""
    config = ExperimentConfig(teacher=teacher, student=student, teacher_epochs=1, blind_epochs=1,
                              finetune_epochs=1)
    store = store or RunStore()
    run_id = store.add(config)
    run = RunDir.create(config, store.root, name=run_id)
    data = load_pair(config.pair_spec())
    torch.manual_seed(0)
    model = build_model(teacher, data.input_shape, data.num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(data.train_x), data.train_y).backward()
        opt.step()
    save_weights(model, run.checkpoint("teacher"))
    for stage in ("blind", "finetune-kall"):
        save_weights(build_model(student, data.input_shape, data.num_classes), run.checkpoint(stage))
    final = {"teacher_acc": 0.9, "blind_acc": 0.5, "finetune_acc": {"all": 0.9}, "seconds": {}}
    run.write_final(final)
    store.set_run_dir(run_id, run.path)
    store.mark_succeeded(run_id, final)
    return run_id, run.path
