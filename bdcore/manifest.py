"""A run's reproducibility manifest, written beside its config when it starts: the code version,
library versions, device, threads and processes, the data's fingerprints and sizes, and the seed, so that
two runs' figures can be told apart by more than their settings."""
from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import torch

from .config import ExperimentConfig
from .data import PairedData
from .device import device_name
from .distributed import world_size
from .teachers import data_fingerprint

LIBRARIES = ("torch", "torchvision", "numpy", "litdata", "umap-learn", "openTSNE", "streamlit")


def code_version() -> str:
    """The git commit of the code, "+dirty" with uncommitted changes; "unknown" outside a checkout."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def run_manifest(config: ExperimentConfig, data: PairedData, device: torch.device) -> dict:
    return {
        "code": code_version(),
        "python": sys.version.split()[0], "platform": platform.platform(),
        "libraries": {name: _version(name) for name in LIBRARIES},
        "device": device_name(device), "threads": torch.get_num_threads(),
        "processes": world_size(),  # of one run across processes (torchrun), each with ``threads``
        "data": {name: {"images": len(x), "fingerprint": data_fingerprint(x)}
                 for name, x in (("labeled train", data.train_x), ("labeled test", data.test_x),
                                 ("unlabeled", data.unlabeled_x))},
        "seed": config.seed,
    }
