"""Batch preprocessing on the training device: augmentation, 3-channel replication, normalisation.

Images travel as uint8 (B, 1, S, S) from the cache and are turned into floats on the device,
which keeps host-to-device traffic and CPU work small. Augmentation parameters are drawn per
image from ``(seed, epoch, image index)``, so a run is reproducible and gives the same batches
whether it runs in one process or is split over DDP ranks.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

from .data_config import DataConfig

# rotation (degrees), scale, x/y shift (fraction of half-width), flip probability,
# contrast and brightness ranges: small, plausible changes of positioning and exposure
MAX_ROTATION = 10.0
SCALE_RANGE = (0.92, 1.08)
MAX_SHIFT = 0.06
FLIP_PROB = 0.5
CONTRAST_RANGE = (0.8, 1.2)
MAX_BRIGHTNESS = 0.08
N_AUG_PARAMS = 7


def augment_params(indices: np.ndarray, epoch: int, seed: int) -> np.ndarray:
    """(B, 7) float32: angle, scale, shift x, shift y, flip, contrast, brightness per image."""
    out = np.empty((len(indices), N_AUG_PARAMS), dtype=np.float32)
    for row, idx in enumerate(indices):
        rng = np.random.default_rng((seed, epoch, int(idx)))
        u = rng.random(N_AUG_PARAMS)
        out[row] = (
            (2 * u[0] - 1) * MAX_ROTATION,
            SCALE_RANGE[0] + u[1] * (SCALE_RANGE[1] - SCALE_RANGE[0]),
            (2 * u[2] - 1) * MAX_SHIFT,
            (2 * u[3] - 1) * MAX_SHIFT,
            float(u[4] < FLIP_PROB),
            CONTRAST_RANGE[0] + u[5] * (CONTRAST_RANGE[1] - CONTRAST_RANGE[0]),
            (2 * u[6] - 1) * MAX_BRIGHTNESS,
        )
    return out


def augment(x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Apply geometric and intensity augmentation to a float (B, 1, H, W) batch in [0, 1]."""
    p = params.to(device=x.device, dtype=torch.float32, non_blocking=True)
    angle = p[:, 0] * (math.pi / 180.0)
    scale = p[:, 1]
    flip = 1.0 - 2.0 * p[:, 4]  # -1 flips horizontally
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos * flip, -sin, p[:, 2]], dim=1),
            torch.stack([sin * flip, cos, p[:, 3]], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    x = (x - 0.5) * p[:, 5].view(-1, 1, 1, 1) + 0.5 + p[:, 6].view(-1, 1, 1, 1)
    return x.clamp_(0.0, 1.0)


@functools.lru_cache(maxsize=16)
def _mean_std(mean: tuple[float, ...], std: tuple[float, ...], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Made once per run and device: no host-to-device copy in the training step."""
    return (torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1).to(device),
            torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1).to(device))


def normalize(x: torch.Tensor, data_config: DataConfig) -> torch.Tensor:
    """(B, 1, H, W) in [0, 1] -> (B, 3, H, W) normalised with the model's own mean and std."""
    mean, std = _mean_std(tuple(data_config.mean), tuple(data_config.std), x.device)
    return (x.expand(-1, 3, -1, -1) - mean) / std


def prepare_batch(
    images: torch.Tensor,
    data_config: DataConfig,
    device: torch.device,
    params: torch.Tensor | None = None,
    channels_last: bool = False,
) -> torch.Tensor:
    """uint8 (B, S, S) or (B, 1, S, S) -> normalised float (B, 3, S, S) on ``device``."""
    x = images.to(device, non_blocking=True)
    if x.dim() == 3:
        x = x.unsqueeze(1)
    x = x.float().div_(255.0)
    if params is not None:
        x = augment(x, params)
    x = normalize(x, data_config)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x
