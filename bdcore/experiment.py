"""Run one experiment end to end: data, teacher (trained or reused), blind student, and one
fine-tuned student per k. Everything lands in a run directory, and a run that was stopped
resumes from its last finished stage and epoch. Started by torchrun, every process runs this
function; rank 0 alone writes the run directory and the teacher cache and tells the callbacks."""
from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

import torch
from torch import nn

from . import distributed
from .checkpoints import StageCheckpointer, StageLedger
from .config import ExperimentConfig
from .data import load_pair
from .device import device_name, resolve_device
from .faults import fault_point
from .manifest import run_manifest
from .models import build_model
from .runs import RunDir, RunsRoot, load_weights, remove_temp_files, save_weights, write_json_atomic
from .stage_names import BLIND, TEACHER, finetune_stage
from .stage_settings import StagePlan
from .stages import blind_distill, finetune, train_teacher
from .teachers import load_cached_teacher, store_teacher, teacher_key
from .train import EpochReport, ProgressFn, accuracy


class EventKind(Enum):
    NOTE = "note"  # a fact about the data or settings a person should see
    TEACHER_REUSED = "teacher reused"  # the teacher came from the cache instead of training
    STAGE_LOADED = "stage loaded"  # a stage finished before a resume was loaded, not trained
    PREPARING = "preparing"  # an image collection is being decoded into the prepared cache


@dataclass(frozen=True)
class RunEvent:
    """Something a run reports besides its epochs."""
    kind: EventKind
    text: str
    done: int = 0  # PREPARING: images decoded so far, of ``total``
    total: int = 0


EventFn = Callable[[RunEvent], None]


@dataclass
class ExperimentResult:
    teacher_acc: float
    blind_acc: float
    finetune_acc: dict[str, float]  # k ("10", "all", ...) -> accuracy
    seconds: dict[str, float]  # stage -> wall seconds (data loading included as "data")
    teacher_reused: bool
    device: str
    seed: int
    run_dir: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def run_experiment(config: ExperimentConfig, root: RunsRoot | None = None,
                   on_epoch: ProgressFn | None = None, on_event: EventFn | None = None,
                   run: RunDir | None = None) -> ExperimentResult:
    """Run (or, given an existing ``run`` under ``root``, resume) all three stages."""
    config.validate()
    distributed.check_batch(config.batch_size)
    main = distributed.is_main()
    tell = on_event if on_event is not None and main else (lambda _event: None)
    root = root or RunsRoot.default()
    # the device and the data first: a run they refuse leaves no run folder behind
    device = resolve_device(config.device)
    start = time.perf_counter()

    def preparing(what: str, done: int, total: int) -> None:
        tell(RunEvent(EventKind.PREPARING, f"preparing {what}: {done:,} of {total:,} images decoded",
                      done, total))

    data = load_pair(config.pair_spec(), preparing).to(device)
    data_seconds = time.perf_counter() - start
    if run is None:  # rank 0 creates it; every rank is told where
        run = RunDir(distributed.from_main(RunDir.create(config, root).path if main else None))
    if main:
        remove_temp_files(run.path)  # half-written files of a killed attempt
        if not run.manifest_path.exists():  # a resumed run keeps the manifest of its first start
            write_json_atomic(run.manifest_path, run_manifest(config, data, device))
    ledger = StageLedger(run)
    distributed.barrier()  # every rank has read the ledger before rank 0 adds to it

    def report(r: EpochReport) -> None:
        run.log(r.to_dict())
        if on_epoch is not None:
            on_epoch(r)

    def stage(name: str, model: nn.Module, train: Callable[[StageCheckpointer], list[EpochReport]],
              extra: dict | None = None) -> float:
        """Run one stage unless the ledger says it is done; ``extra`` (filled in by ``train``)
        is recorded beside its accuracy."""
        if name in ledger.done:
            StageCheckpointer(run, name).clear()  # left by a kill between stages.json and clear()
            load_weights(model, run.checkpoint(name))
            tell(RunEvent(EventKind.STAGE_LOADED,
                          f"{name}: already finished, loaded from {run.checkpoint(name).name}"))
            return ledger.done[name]["test_acc"]
        start = time.perf_counter()
        checkpointer = StageCheckpointer(run, name)
        acc = train(checkpointer)[-1].test_acc
        if main:
            save_weights(model, run.checkpoint(name))
        fault_point("stage.before_ledger")
        ledger.finish(name, test_acc=acc, seconds=time.perf_counter() - start, **(extra or {}))
        fault_point("stage.before_clear")
        checkpointer.clear()
        return acc

    for note in data.notes:
        tell(RunEvent(EventKind.NOTE, note))

    plan = config.stage_plan(TEACHER)
    torch.manual_seed(plan.seed)
    teacher = build_model(config.teacher, data.input_shape, data.num_classes).to(device)
    key = teacher_key(config, data.train_x, device)
    teacher_info = {"reused": False}

    def train_or_reuse_teacher(checkpointer: StageCheckpointer) -> list[EpochReport]:
        # a teacher this run was training is continued, not swapped for the one it cached just
        # before a kill: the run keeps reporting that it trained its teacher. Rank 0 looks (another
        # run may cache this teacher meanwhile) and hands the others its answer and weights.
        found = None if checkpointer.saved() or not main else load_cached_teacher(teacher, root, key)
        cached = distributed.from_main(found)
        teacher_info["reused"] = cached is not None
        if cached is not None:
            distributed.broadcast_module(teacher)
            tell(RunEvent(EventKind.TEACHER_REUSED,
                          f"teacher reused from cache {key} (test accuracy {cached['test_acc']:.4f})"))
            return [EpochReport(**cached["epochs"][-1])]
        reports = train_teacher(teacher, data.train_x, data.train_y, data.test_x, data.test_y,
                                plan.settings, seed=plan.seed, stage=plan.name, amp=config.amp,
                                on_epoch=report, checkpointer=checkpointer)
        if main:
            remove_temp_files(root.teacher_weights(key).parent)  # left by a run killed while caching it
            store_teacher(teacher, root, key, {"test_acc": reports[-1].test_acc, "key": key,
                                               "epochs": [r.to_dict() for r in reports]})
        return reports

    teacher_acc = stage(TEACHER, teacher, train_or_reuse_teacher, teacher_info)
    teacher.eval().requires_grad_(False)

    plan = config.stage_plan(BLIND)
    torch.manual_seed(plan.seed)
    student = build_model(config.student, data.input_shape, data.num_classes).to(device)
    if config.blind_epochs == 0:  # no blind stage: the student starts untrained ("k samples alone")
        def untrained(_ckpt: StageCheckpointer) -> list[EpochReport]:
            acc = accuracy(student, data.test_x, data.test_y, config.amp)
            return [EpochReport(BLIND, 0, 0, float("nan"), acc, 0.0, 0.0)]

        blind_acc = stage(BLIND, student, untrained)
    else:
        blind_acc = stage(BLIND, student, lambda ckpt: blind_distill(
            student, teacher, data.unlabeled_x, data.test_x, data.test_y, plan.settings,
            temperature=config.temperature, seed=plan.seed, stage=plan.name, amp=config.amp,
            on_epoch=report, checkpointer=ckpt))

    def tune(model: nn.Module, per_class: int | None, plan: StagePlan):
        return lambda ckpt: finetune(
            model, teacher, data.train_x, data.train_y, data.test_x, data.test_y, plan.settings,
            per_class=per_class, temperature=config.finetune_temperature,
            hard_label_weight=config.hard_label_weight, seed=plan.seed, stage=plan.name,
            fresh_teacher=config.finetune_fresh_teacher, amp=config.amp, on_epoch=report,
            checkpointer=ckpt)

    finetune_acc = {}
    for k, per_class in zip(config.finetune_ks, config.finetune_sizes(), strict=True):
        tuned = copy.deepcopy(student)
        subset = len(data.train_y) if per_class is None else per_class * data.num_classes
        plan = config.stage_plan(finetune_stage(per_class), subset)
        # dropout draws from the global generator: seeded per stage, as the teacher's and the blind
        # student's are, so a fine-tune resumed after earlier stages were loaded draws the same
        torch.manual_seed(plan.seed)
        finetune_acc[k] = stage(plan.name, tuned, tune(tuned, per_class, plan))

    seconds = {"data": data_seconds, **{name: rec["seconds"] for name, rec in ledger.done.items()}}
    result = ExperimentResult(teacher_acc, blind_acc, finetune_acc, seconds,
                              bool(ledger.done[TEACHER].get("reused")), device_name(device),
                              config.seed, str(run.path), data.notes)
    if main:
        run.write_final(result.to_dict())
    return result
