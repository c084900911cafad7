"""Optimiser, learning-rate schedule and the default batch size, the timm way.

* :func:`create_optimizer`: timm's ``create_optimizer_v2`` (AdamW; no weight decay on norms,
  biases and other 1-D parameters), fused on CUDA.
* :func:`create_scheduler`: timm's ``CosineLRScheduler`` stepped per update (``t_in_epochs=False``):
  linear warm-up, then cosine decay to ``lr_min``. It is a pure function of the update count,
  so ``--resume`` only needs that count.
* :func:`default_batch_size` / :func:`scaled_lr`: on a GPU the family's batch that fills an 80 GB
  card at 320 px (scaled by the pixel count for other sizes); the learning rate follows the
  global batch with timm's square-root rule for adaptive optimisers.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

LR_BASE = 1e-4  # AdamW peak learning rate at LR_BASE_BATCH images per update
LR_BASE_BATCH = 32
CPU_BATCH_SIZE = 32
REFERENCE_SIZE = 320
LR_MIN_FRACTION = 0.01  # cosine decays to 1 % of the peak


def default_batch_size(cuda_batch: int, image_size: int, cuda: bool, world_size: int = 1) -> int:
    """The global batch when --batch-size is not given."""
    if not cuda:
        return CPU_BATCH_SIZE
    per_gpu = cuda_batch * (REFERENCE_SIZE / image_size) ** 2
    per_gpu = max(8, min(1024, 2 ** int(math.log2(max(per_gpu, 1)))))  # a power of two, for the kernels
    return per_gpu * world_size


def scaled_lr(global_batch: int) -> float:
    """LR_BASE at LR_BASE_BATCH, scaled by sqrt(batch / LR_BASE_BATCH) (timm's rule for Adam-type optimisers)."""
    return LR_BASE * math.sqrt(global_batch / LR_BASE_BATCH)


def create_optimizer(model: nn.Module, lr: float, weight_decay: float, cuda: bool) -> torch.optim.Optimizer:
    from timm.optim import create_optimizer_v2

    extra = {"fused": True} if cuda else {}
    return create_optimizer_v2(model, opt="adamw", lr=lr, weight_decay=weight_decay, filter_bias_and_bn=True,
                               **extra)


def create_scheduler(optimizer: torch.optim.Optimizer, lr: float, warmup_steps: int, total_steps: int):
    from timm.scheduler import CosineLRScheduler

    warmup_steps = max(0, min(warmup_steps, total_steps - 1))
    return CosineLRScheduler(
        optimizer,
        t_initial=max(1, total_steps - warmup_steps),
        lr_min=lr * LR_MIN_FRACTION,
        warmup_t=warmup_steps,
        warmup_lr_init=lr / max(warmup_steps, 1) if warmup_steps else lr,
        warmup_prefix=True,  # the cosine starts at the peak, after warm-up
        t_in_epochs=False,
    )
