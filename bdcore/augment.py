"""Input perturbations a stage may apply to each batch: random small affine distortions and
Gaussian pixel noise. Kept apart from the training loop so that the config can name their limits."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augmentation:
    """Random small affine distortions, drawn per image: the kind of variation handwriting has."""
    max_rotate_deg: float = 10.0
    max_scale: float = 0.1  # relative zoom in or out
    max_shift_px: float = 2.0

    def scaled(self, factor: float) -> Augmentation:
        """Rotations and zooms times ``factor``, shifts times its square root: a 28-pixel image
        moved by 8 pixels has lost part of its object (docs/results.md, the CNN -> MLP row)."""
        return Augmentation(self.max_rotate_deg * factor, self.max_scale * factor,
                            self.max_shift_px * math.sqrt(factor))


AUGMENT = Augmentation()
# Zoom ranges grow with the strength (Augmentation.scaled); at 100% an image could shrink to a point
MAX_AUGMENT_STRENGTH = 1 / AUGMENT.max_scale


def random_affine(x: torch.Tensor, generator: torch.Generator | None,
                  aug: Augmentation = AUGMENT) -> torch.Tensor:
    """Rotate, scale and shift each image by its own random amount (bilinear, edge-padded).

    One batched ``grid_sample`` call; the random numbers are drawn where the generator lives
    (on a CUDA device, see ``train.generator_device``), so a CUDA step needs no host-device copy."""
    n, _, h, w = x.shape
    where = generator.device if generator is not None else x.device
    draw = lambda: torch.rand(n, generator=generator, device=where) * 2 - 1  # noqa: E731  in [-1, 1]
    angle = draw() * math.radians(aug.max_rotate_deg)
    scale = 1 + draw() * aug.max_scale
    shift_x, shift_y = draw() * aug.max_shift_px * 2 / w, draw() * aug.max_shift_px * 2 / h
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift_x], 1), torch.stack([sin, cos, shift_y], 1)], 1)
    grid = F.affine_grid(theta.to(x.device, x.dtype), [n, x.shape[1], h, w], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def add_input_noise(x: torch.Tensor, std: float, generator: torch.Generator | None) -> torch.Tensor:
    """Gaussian noise on every pixel. A teacher trained on noisy images is a smoother function
    of its input, which a student can copy from unlabeled images far from the labeled ones
    (docs/results.md, the CNN -> MLP row)."""
    where = generator.device if generator is not None else x.device
    noise = torch.randn(x.shape, generator=generator, device=where)
    return x + std * noise.to(x.device, x.dtype)
