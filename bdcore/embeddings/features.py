"""A model's penultimate features (the input of its classifier layer, ``models.classifier_layer``,
caught with a forward hook) and its logits, in large batches under inference mode."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ..device import autocast_dtype
from ..models import classifier_layer

REPRESENTATIONS = ("features", "logits")
BATCH = 1024
Progress = Callable[[float, str], None]


def forward_outputs(model: nn.Module, x: torch.Tensor, amp: bool = True, batch_size: int = BATCH,
                    progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(features, logits) as float32 arrays for every row of ``x``; bf16 autocast where the
    device runs it natively and ``amp`` is on (docs/performance.md)."""
    device = next(model.parameters()).device
    dtype = autocast_dtype(device) if amp else None
    caught: list[torch.Tensor] = []
    hook = classifier_layer(model).register_forward_hook(lambda _m, inputs, _out: caught.append(inputs[0]))
    feats, logits = [], []
    model.eval()
    try:
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype or torch.bfloat16,
                                                   enabled=dtype is not None):
            for i, batch in enumerate(x.split(batch_size)):
                out = model(batch.to(device))
                feats.append(caught.pop().float().flatten(1).cpu())
                logits.append(out.float().cpu())
                if progress is not None:
                    progress(min(1.0, (i + 1) * batch_size / max(len(x), 1)), "features")
    finally:
        hook.remove()
    if not feats:
        return np.zeros((0, classifier_layer(model).in_features), np.float32), np.zeros((0, 0), np.float32)
    return torch.cat(feats).numpy(), torch.cat(logits).numpy()


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
