"""The training loop: one plain function, read top to bottom. Data are in-memory tensors on the
training device; batches are taken by index; progress leaves through a callback."""
from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .device import autocast_dtype

EVAL_BATCH = 4096


@dataclass
class EpochReport:
    """What a stage reports after each epoch (accuracies are fractions)."""
    stage: str
    epoch: int  # 1-based
    epochs: int
    train_loss: float
    test_acc: float
    lr: float
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


ProgressFn = Callable[[EpochReport], None]
# (student logits, batch indices, the batch as fed to the model) -> scalar loss
BatchLoss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class StageSettings:
    epochs: int
    lr: float
    batch_size: int = 256
    weight_decay: float = 0.0
    augment: bool = False  # random translations of up to AUGMENT_SHIFT pixels
    schedule: str = "onecycle"  # "onecycle" (warm-up then cosine decay) or "linear" (steady decay)


AUGMENT_SHIFT = 2


def random_translate(x: torch.Tensor, shift: int, generator: torch.Generator | None) -> torch.Tensor:
    """Shift each image by its own random offset in [-shift, shift] pixels (edge-replicated).

    Images sharing an offset are moved with one slice, so the cost is (2*shift+1)^2 copies per
    batch whatever its size, with no host-device sync (offsets are drawn on the CPU)."""
    n, _, h, w = x.shape
    side = 2 * shift + 1
    padded = F.pad(x, (shift, shift, shift, shift), mode="replicate")
    offsets = torch.randint(0, side * side, (n,), generator=generator)
    out = torch.empty_like(x)
    for offset in offsets.unique().tolist():
        members = (offsets == offset).nonzero().flatten().to(x.device, non_blocking=True)
        dy, dx = divmod(offset, side)
        out[members] = padded[members, :, dy:dy + h, dx:dx + w]
    return out


def precision_context(device: torch.device, enabled: bool = True):
    dtype = autocast_dtype(device) if enabled else None
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def _prepare(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Channels-last input for convolutional models (free for one channel, faster in bf16)."""
    return x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x


@torch.inference_mode()
def predict_logits(model: nn.Module, x: torch.Tensor, amp: bool = True) -> torch.Tensor:
    """Logits for every row of ``x`` in large batches, as float32, in eval mode."""
    was_training = model.training
    model.eval()
    outputs = []
    with precision_context(x.device, amp):
        for chunk in x.split(EVAL_BATCH):
            outputs.append(model(_prepare(model, chunk)).float())
    model.train(was_training)
    return torch.cat(outputs) if outputs else x.new_zeros((0, 0))


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, amp: bool = True) -> float:
    return (predict_logits(model, x, amp).argmax(1) == y).float().mean().item()


def _scheduler(opt: torch.optim.Optimizer, settings: StageSettings, steps: int):
    if settings.schedule == "linear":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1 - step / max(steps, 1))
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=settings.lr, total_steps=max(steps, 1),
                                               pct_start=0.15)


def fit(model: nn.Module, inputs: torch.Tensor, batch_loss: BatchLoss, test_x: torch.Tensor,
        test_y: torch.Tensor, settings: StageSettings, *, stage: str, seed: int, amp: bool = True,
        on_epoch: ProgressFn | None = None, first_epoch: int = 1) -> list[EpochReport]:
    """Train ``model`` on ``inputs`` with ``batch_loss`` and report test accuracy after each epoch.

    The loop never reads labels itself: what a batch is scored against is ``batch_loss``'s
    business, which is how the blind stage is kept blind."""
    device = inputs.device
    generator = torch.Generator().manual_seed(seed)
    n, bs = len(inputs), settings.batch_size
    steps_per_epoch = -(-n // bs)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    sched = _scheduler(opt, settings, steps_per_epoch * settings.epochs)
    for _ in range((first_epoch - 1) * steps_per_epoch):  # resuming: replay the schedule
        sched.step()
    reports = []
    for epoch in range(first_epoch, settings.epochs + 1):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(n, generator=generator).to(device)
        total = torch.zeros((), device=device)
        for i in range(steps_per_epoch):
            index = order[i * bs:(i + 1) * bs]
            x = inputs[index]
            if settings.augment:
                x = random_translate(x, AUGMENT_SHIFT, generator)
            x = _prepare(model, x)
            with precision_context(device, amp):
                loss = batch_loss(model(x), index, x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.detach() * len(index)
        lr = opt.param_groups[0]["lr"]
        report = EpochReport(stage, epoch, settings.epochs, total.item() / n,
                             accuracy(model, test_x, test_y, amp), lr, time.perf_counter() - start)
        reports.append(report)
        if on_epoch is not None:
            on_epoch(report)
    return reports
