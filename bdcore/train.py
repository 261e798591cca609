"""The training loop: one plain function, read top to bottom. Data are in-memory tensors on the
training device, batches taken by index; or a set streamed from the prepared cache on disk, a
shuffled batch at a time. Progress leaves through a callback. Started by torchrun, each process
trains its part of every batch under DistributedDataParallel (bdcore.distributed)."""
from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from typing import Protocol

import torch
from torch import nn

from . import distributed
from .augment import add_input_noise, batch_augment
from .data.imageset import Images, take_rows
from .data.streamed import StreamedImages
from .device import autocast_dtype
from .errors import ConfigError, TrainingDivergedError
from .stage_settings import StageSettings

# Inference batch sizes: large on accelerators; small on CPU, where 256-image batches stay in
# cache (measured in docs/performance.md, "Inference batch size on CPU").
EVAL_BATCH = {"cpu": 256}
EVAL_BATCH_DEFAULT = 4096


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


def precision_context(device: torch.device, enabled: bool = True):
    dtype = autocast_dtype(device) if enabled else None
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def _prepare(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Channels-last input for convolutional models (free for one channel, faster in bf16)."""
    return x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x


@torch.inference_mode()
def predict_logits(model: nn.Module, x: Images, amp: bool = True) -> torch.Tensor:
    """Logits for every row of ``x`` in large batches, as float32, in eval mode."""
    was_training = model.training
    model.eval()
    outputs = []
    with precision_context(x.device, amp):
        for chunk in x.split(EVAL_BATCH.get(x.device.type, EVAL_BATCH_DEFAULT)):
            outputs.append(model(_prepare(model, chunk)).float())
    model.train(was_training)
    return torch.cat(outputs) if outputs else x.new_zeros((0, 0))


def _rank_rows(x: Images) -> torch.Tensor:
    return torch.arange(len(x), device=x.device)[distributed.rank_rows(len(x))]


def predict_all(model: nn.Module, x: Images, amp: bool = True) -> torch.Tensor:
    """``predict_logits`` of every row; with several processes, each predicts its share of the rows
    and the shares are gathered once."""
    if not distributed.is_distributed():
        return predict_logits(model, x, amp)
    return distributed.gather_rows(predict_logits(model, take_rows(x, _rank_rows(x)), amp), len(x))


def accuracy(model: nn.Module, x: Images, y: torch.Tensor, amp: bool = True) -> float:
    if not distributed.is_distributed():
        return (predict_logits(model, x, amp).argmax(1) == y).float().mean().item()
    rows = _rank_rows(x)  # each process scores its share; the counts are summed
    correct = (predict_logits(model, take_rows(x, rows), amp).argmax(1) == y[rows]).sum()
    return distributed.sum_over_ranks(correct).item() / len(x)


def _scheduler(opt: torch.optim.Optimizer, settings: StageSettings, steps: int):
    if settings.schedule == "linear":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1 - step / max(steps, 1))
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=settings.lr, total_steps=max(steps, 1),
                                               pct_start=0.15)


class EpochState:
    """Everything a stage needs to continue after a given epoch; handed to a ``Checkpointer``."""

    def __init__(self, model: nn.Module, opt: torch.optim.Optimizer, sched, generator: torch.Generator):
        self.model, self.opt, self.sched, self.generator = model, opt, sched, generator

    def state_dict(self) -> dict:
        return {"opt": self.opt.state_dict(), "sched": self.sched.state_dict(),
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        saved = state["generator"]
        if len(saved) == len(self.generator.get_state()):
            self.generator.set_state(saved)
        else:  # saved on another kind of device: continue with a stream seeded by the saved one
            digest = hashlib.sha256(saved.numpy().tobytes()).digest()
            self.generator.manual_seed(int.from_bytes(digest[:8], "little"))


def generator_device(device: torch.device) -> torch.device:
    """Where a stage's random numbers are drawn: on a CUDA device (no copy per batch), else on
    the CPU (the same stream as before on CPU; MPS generators are not relied on)."""
    return device if device.type == "cuda" else torch.device("cpu")


def steps_in_epoch(n: int, batch_size: int, same_size: bool = False) -> int:
    """Batches in an epoch of ``n`` images. CUDA graphs replay one recorded step, so a graphed
    stage needs every batch the same size (``same_size``): its epochs drop their last partial
    batch, a different one each epoch since each epoch draws a new permutation."""
    if same_size and n >= batch_size:
        return n // batch_size
    return -(-n // batch_size)


def epoch_batches(inputs: Images, batch_size: int, steps: int,
                  generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch's (row indices, images) batches. In memory: index slices of a seeded permutation
    drawn on the device (airbench). On disk: litdata's shuffled stream, seeded from the same
    generator, so a resumed stage draws the same epochs.

    With several processes each yields its part of every global batch: in memory, its equal
    slice of the batch (of a last batch that does not divide, the few rows beyond a multiple of the
    process count are left out); on disk, litdata's own share of the stream for this rank (it
    shards by rank once the process group is up), ``batch_size / processes`` at a time. The
    ``generator`` is the same on every rank, so all draw the same permutation or seed."""
    world, rank = distributed.world_size(), distributed.rank()
    if isinstance(inputs, StreamedImages):
        seed = int(torch.randint(2**31 - 1, (1,), generator=generator, device=generator.device))
        batches = inputs.shuffled_batches(batch_size // world, steps, seed)
        yield from batches if world == 1 else distributed.in_lockstep(batches, inputs.device)
        return
    order = torch.randperm(len(inputs), generator=generator, device=generator.device).to(inputs.device)
    for i in range(steps):
        index = order[i * batch_size:(i + 1) * batch_size]
        if world > 1:
            share = len(index) // world
            if share == 0:
                return
            index = index[rank * share:(rank + 1) * share]
        yield index, inputs[index]


def _rank_draws(device: torch.device, seed: int, epoch: int) -> torch.Generator:
    """With several processes, this rank's random draws for an epoch: its augmentations and input
    noise, and dropout through the global generator. Ranks perturb their parts independently while
    the stage's own generator, which orders the batches, stays the same on every rank; seeded from
    the epoch, so a run resumed at that epoch draws the same."""
    mixed = (seed * 1_000_003 + epoch * 7_919 + distributed.rank()) % 2**63
    torch.manual_seed(mixed)
    return torch.Generator(device).manual_seed(mixed)


class Checkpointer(Protocol):
    """Saves a stage after each epoch and restores it on resume (see bdcore.runs.StageCheckpointer)."""

    def restore(self, state: EpochState) -> list[EpochReport]: ...

    def save(self, state: EpochState, report: EpochReport) -> None: ...


def check_finite(model: nn.Module, train_loss: float, epoch: int, stage: str) -> None:
    """Stop a stage that diverged, before the epoch is reported or checkpointed: its weights are
    garbage, and a run trained on from them would end 'succeeded' with chance accuracy. The weights
    are checked too: the epoch's last step can break them after a finite loss."""
    if math.isfinite(train_loss):
        weights_ok = torch.stack([p.detach().isfinite().all() for p in model.parameters()]).all()
        if weights_ok.item():
            return
        what = "the weights became NaN or infinite"
    else:
        what = f"loss became {'NaN' if math.isnan(train_loss) else 'infinite'}"
    raise TrainingDivergedError(f"{what} at epoch {epoch} of stage {stage}; lower the learning rate "
                                "or temperature")


def fit(model: nn.Module, inputs: Images, batch_loss: BatchLoss, test_x: Images,
        test_y: torch.Tensor, settings: StageSettings, *, stage: str, seed: int, amp: bool = True,
        on_epoch: ProgressFn | None = None, checkpointer: Checkpointer | None = None) -> list[EpochReport]:
    """Train ``model`` on ``inputs`` with ``batch_loss`` and report test accuracy after each epoch.

    The loop never reads labels itself: what a batch is scored against is ``batch_loss``'s
    business, which is how the blind stage is kept blind. With a ``checkpointer``, a stage
    resumes after its last saved epoch."""
    device = inputs.device
    generator = torch.Generator(generator_device(device)).manual_seed(seed)
    n, bs = len(inputs), settings.batch_size
    several = distributed.is_distributed()
    if several and n < distributed.world_size():  # a rank with no rows would have no loss to report
        raise ConfigError(f"stage {stage} has {n} training image(s), fewer than the "
                          f"{distributed.world_size()} processes: use fewer processes (--procs) or "
                          "more images (a larger k)")
    # CUDA graphs replay one recorded step, without DistributedDataParallel's gradient hooks
    graphed = settings.compile and device.type == "cuda" and not several
    steps_per_epoch = steps_in_epoch(n, bs, same_size=graphed)
    # fused: one kernel per step on CUDA instead of one per parameter group operation
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=0.0,
                            fused=device.type == "cuda")
    # reduce-overhead: CUDA graphs, for small models whose steps are launch-bound on a GPU
    train_model = distributed.wrap(model)  # several processes: DDP averages their gradients
    step_model = torch.compile(train_model, mode="reduce-overhead" if graphed else "default") \
        if settings.compile else train_model
    sched = _scheduler(opt, settings, steps_per_epoch * settings.epochs)
    state = EpochState(model, opt, sched, generator)
    augment = batch_augment(settings.augment_kind, settings.augment_strength) if settings.augment else None
    reports = checkpointer.restore(state) if checkpointer is not None else []
    for epoch in range(len(reports) + 1, settings.epochs + 1):
        start = time.perf_counter()
        model.train()
        total, seen = torch.zeros((), device=device), 0
        draws = _rank_draws(generator.device, seed, epoch) if several else generator
        for index, x in epoch_batches(inputs, bs, steps_per_epoch, generator):
            if augment is not None:
                x = augment(x, draws)
            if settings.input_noise:
                x = add_input_noise(x, settings.input_noise, draws)
            x = _prepare(model, x)
            with precision_context(device, amp):
                loss = batch_loss(step_model(x), index, x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.detach() * len(index)
            seen += len(index)
        if several:  # every rank's sum and rows, so each reports (and checks) the same loss
            sums = torch.stack([total.double(), total.new_tensor(seen, dtype=torch.float64)])
            total, seen = distributed.sum_over_ranks(sums).tolist()
        train_loss = float(total) / seen  # one sync per epoch: NaN in any batch makes the sum NaN
        check_finite(model, train_loss, epoch, stage)
        lr = opt.param_groups[0]["lr"]
        report = EpochReport(stage, epoch, settings.epochs, train_loss,
                             accuracy(model, test_x, test_y, amp), lr, time.perf_counter() - start)
        reports.append(report)
        if on_epoch is not None and distributed.is_main():
            on_epoch(report)
        if checkpointer is not None:
            checkpointer.save(state, report)
    return reports
