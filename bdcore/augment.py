"""Input perturbations a stage may apply to each batch: random small affine distortions (digits),
random-resized crops with horizontal flips (photos), and Gaussian pixel noise. Kept apart from the
training loop so that the config can name their limits."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

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


# torchvision's RandomResizedCrop draws areas from 8% of the image, made for 224-pixel crops of
# larger photos; at 32 pixels an 8% crop is a 9x9 patch that often misses the object. From 35%
# (19x19 of 32x32) a crop keeps most of a centred object, and the flip doubles the variety.
CROP_SCALE = (0.35, 1.0)  # the crop's area, as a fraction of the image's
CROP_RATIO = (3 / 4, 4 / 3)  # the crop's aspect ratio (width / height), torchvision's


def random_resized_crop_flip(x: torch.Tensor, generator: torch.Generator | None,
                             scale: tuple[float, float] = CROP_SCALE,
                             ratio: tuple[float, float] = CROP_RATIO,
                             flip_prob: float = 0.5) -> torch.Tensor:
    """Crop a random box of each image (area a fraction in ``scale`` of the image's, aspect ratio in
    ``ratio``), stretch it back to the image's size (bilinear), and mirror it left to right with
    probability ``flip_prob``.

    One batched ``grid_sample`` call, random numbers drawn where the generator lives (as
    ``random_affine``), no per-image loop. Where torchvision redraws a box that does not fit up to
    10 times, here each image's aspect ratio is drawn from the part of ``ratio`` at which a box of
    its area fits, so one draw per image always fits and the area is uniform in ``scale``."""
    n, _, h, w = x.shape
    where = generator.device if generator is not None else x.device
    u_area, u_aspect, u_x, u_y, u_flip = torch.rand(5, n, generator=generator, device=where)
    area = scale[0] + u_area * (scale[1] - scale[0])
    # a box of this area fits while its width and height are at most the image's
    fits_lo, fits_hi = torch.log(area * w / h), torch.log(w / (h * area))
    lo = torch.clamp(torch.full_like(area, math.log(ratio[0])), fits_lo, fits_hi)
    hi = torch.clamp(torch.full_like(area, math.log(ratio[1])), fits_lo, fits_hi)
    aspect = torch.exp(lo + u_aspect * (hi - lo))  # log-uniform, as torchvision's
    # the box's width, height and centre in grid_sample's [-1, 1] coordinates
    box_w = torch.sqrt(area * aspect * h / w).clamp(max=1)  # clamp: rounding at the edge of fitting
    box_h = torch.sqrt(area / aspect * w / h).clamp(max=1)
    centre_x, centre_y = (u_x * 2 - 1) * (1 - box_w), (u_y * 2 - 1) * (1 - box_h)
    sign = 1 - 2 * (u_flip < flip_prob).to(area.dtype)  # -1 reads each row right to left
    # Without rotation every output column reads one input column and every row one row, so the
    # grid is two outer sums; affine_grid's product per pixel costs 5x grid_sample itself on a CPU
    # (docs/performance.md, "On-device augmentation for larger inputs")
    cols = (torch.arange(w, device=where) * 2 + 1) / w - 1  # pixel centres, as align_corners=False
    rows = (torch.arange(h, device=where) * 2 + 1) / h - 1
    read_x = (centre_x[:, None] + (box_w * sign)[:, None] * cols).to(x.device, x.dtype)
    read_y = (centre_y[:, None] + box_h[:, None] * rows).to(x.device, x.dtype)
    grid = torch.stack([read_x[:, None, :].expand(n, h, w), read_y[:, :, None].expand(n, h, w)], -1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


BatchAugment = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]
AUGMENT_KINDS = {
    "affine": "random small rotations, zooms and shifts (handwriting: 28-pixel digits)",
    "crop_flip": "random-resized crops and horizontal flips (photos: 32-224 pixels)",
}


def batch_augment(kind: str, strength: float = 1.0) -> BatchAugment:
    """The augmentation ``kind`` (a key of AUGMENT_KINDS) at ``strength``: for affine, rotations
    and zooms times it and shifts times its root (``Augmentation.scaled``); for crop_flip, crops
    down to 0.35**strength of the area at aspect ratios up to (4/3)**strength either way, so that
    1 is the default ranges and any strength > 0 still gives a valid range."""
    if kind == "affine":
        return partial(random_affine, aug=AUGMENT.scaled(strength))
    if kind == "crop_flip":
        return partial(random_resized_crop_flip, scale=(CROP_SCALE[0] ** strength, CROP_SCALE[1]),
                       ratio=(CROP_RATIO[0] ** strength, CROP_RATIO[1] ** strength))
    raise ValueError(f"unknown augmentation {kind!r}; choose one of {', '.join(AUGMENT_KINDS)}")


def add_input_noise(x: torch.Tensor, std: float, generator: torch.Generator | None) -> torch.Tensor:
    """Gaussian noise on every pixel. A teacher trained on noisy images is a smoother function
    of its input, which a student can copy from unlabeled images far from the labeled ones
    (docs/results.md, the CNN -> MLP row)."""
    where = generator.device if generator is not None else x.device
    noise = torch.randn(x.shape, generator=generator, device=where)
    return x + std * noise.to(x.device, x.dtype)
