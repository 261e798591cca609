"""Versus the usual way: one supervised MNIST epoch (then the test accuracy) with bdcore's loop,
against a torchvision ``datasets.MNIST`` + ``ToTensor``/``Normalize`` + ``DataLoader`` pipeline and
a textbook fp32 loop (PyTorch's MNIST example: Adam, ``loss.item()`` every 10 batches, test
batches of 1000). Same model, batch size and device; MLP and CNN.

    python bench/versus_usual.py [--device cpu|cuda] [--quick]

The torchvision dataset reads the same IDX files, extracted into a temporary root. DataLoader
workers: 0 on a CPU (workers would take cores from training), 4 with pinned memory on a GPU."""
from __future__ import annotations

import gzip
import shutil
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from common import DEFAULTS, QUICK_LIMIT, QUICK_TEST, Context, Figure, standalone, timed

from bdcore.data import locate_dataset
from bdcore.stage_settings import StageSettings
from bdcore.stages import train_teacher

TARGETS = {"cpu": {"mlp": 5.0, "cnn": 2.0}, "cuda": {"mlp": 10.0, "cnn": 10.0}}
ACC_TOLERANCE_PT = 0.5  # "same accuracy": ours at most this far below the usual way
RAW = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
       "t10k-labels-idx1-ubyte")


def torchvision_root(tmp: Path) -> Path:
    """A torchvision root (``root/MNIST/raw/*-ubyte``) made from the MNIST files bdcore reads."""
    location, _ = locate_dataset("mnist")
    if location is None:
        raise FileNotFoundError("MNIST not found (set BD_DATA_DIR)")
    raw = tmp / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in RAW:
        plain, packed = location.path / name, location.path / f"{name}.gz"
        if plain.is_file():
            shutil.copyfile(plain, raw / name)
        else:
            with gzip.open(packed, "rb") as src, open(raw / name, "wb") as dst:
                shutil.copyfileobj(src, dst)
    return tmp


def usual_loaders(root: Path, ctx: Context, workers: int):
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    train = datasets.MNIST(str(root), train=True, download=False, transform=transform)
    test = datasets.MNIST(str(root), train=False, download=False, transform=transform)
    if ctx.quick:
        train, test = (Subset(train, range(min(len(train), QUICK_LIMIT))),
                       Subset(test, range(min(len(test), QUICK_TEST))))
    extra = {"num_workers": workers, "pin_memory": ctx.cuda}
    return (DataLoader(train, batch_size=ctx.batch_size, shuffle=True, **extra),
            DataLoader(test, batch_size=1000, shuffle=False, **extra))


def usual_epoch(model, train_loader, test_loader, device) -> float:
    """The textbook loop, fp32, contiguous: returns the test accuracy after one epoch."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for batch_idx, (x, y) in enumerate(train_loader):
        x, y = x.to(device), y.to(device)
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if batch_idx % 10 == 0:
            loss.item()  # the example logs the loss every 10 batches
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in test_loader:
            x, y = x.to(device), y.to(device)
            correct += (model(x).argmax(1) == y).sum().item()
            total += len(y)
    return correct / total


def compare(ctx: Context, name: str, loaders) -> dict:
    d = ctx.data
    # warm-up both paths on a slice (first-call kernel selection, allocator)
    torch.manual_seed(0)
    train_teacher(ctx.model(name), d.train_x[:4 * ctx.batch_size], d.train_y[:4 * ctx.batch_size],
                  d.test_x[:256], d.test_y[:256], StageSettings(1, DEFAULTS.teacher_lr, ctx.batch_size),
                  seed=0)
    from torch.utils.data import DataLoader, Subset

    warm_loaders = [DataLoader(Subset(loader.dataset, range(min(size, len(loader.dataset)))),
                               batch_size=loader.batch_size)
                    for loader, size in zip(loaders, (4 * ctx.batch_size, 256), strict=True)]
    usual_epoch(ctx.model(name).to(memory_format=torch.contiguous_format), *warm_loaders, ctx.device)
    torch.manual_seed(0)
    ours_model = ctx.model(name)
    reports, ours_wall = timed(ctx.device, train_teacher, ours_model, d.train_x, d.train_y,
                               d.test_x, d.test_y,
                               StageSettings(1, DEFAULTS.teacher_lr, ctx.batch_size), seed=0)
    torch.manual_seed(0)
    usual_model = ctx.model(name).to(memory_format=torch.contiguous_format)
    usual_acc, usual_s = timed(ctx.device, usual_epoch, usual_model, *loaders, ctx.device)
    return {"ours_s": reports[-1].seconds, "ours_wall_s": ours_wall, "ours_acc": reports[-1].test_acc,
            "usual_s": usual_s, "usual_acc": usual_acc}


def run(ctx: Context, workers: int | None = None) -> list[Figure]:
    workers = (4 if ctx.cuda else 0) if workers is None else workers
    targets = TARGETS["cuda" if ctx.cuda else "cpu"]
    figures = []
    with tempfile.TemporaryDirectory(prefix="bench-tv-") as tmp:
        loaders = usual_loaders(torchvision_root(Path(tmp)), ctx, workers)
        for name in ("mlp", "cnn"):
            ctx.say(f"  {name}: one epoch ours, then one epoch the usual way ({workers} workers) ...")
            r = compare(ctx, name, loaders)
            ctx.shared[f"versus_usual_{name}"] = r
            speedup = r["usual_s"] / r["ours_s"]
            figures.append(Figure(
                f"versus the usual way, {name.upper()}: epoch speed-up", speedup, "x",
                f">= {targets[name]:g}x", speedup >= targets[name],
                f"ours {r['ours_s']:.2f} s (bf16 autocast where native, channels-last, resident tensors), "
                f"usual {r['usual_s']:.2f} s (DataLoader, {workers} workers, fp32); one epoch of "
                f"{len(ctx.data.train_x)} images + test evaluation each"))
            diff = (r["ours_acc"] - r["usual_acc"]) * 100
            figures.append(Figure(
                f"versus the usual way, {name.upper()}: accuracy after 1 epoch, ours - usual", diff, "pt",
                f">= -{ACC_TOLERANCE_PT} pt", diff >= -ACC_TOLERANCE_PT,
                f"ours {r['ours_acc']:.2%} (AdamW one-cycle lr {DEFAULTS.teacher_lr}), usual "
                f"{r['usual_acc']:.2%} (Adam lr 1e-3)"))
    return figures


if __name__ == "__main__":
    standalone(run, __doc__.splitlines()[0])
