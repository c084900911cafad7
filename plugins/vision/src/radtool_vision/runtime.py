"""Devices, DDP process groups and progress reporting shared by the commands.

Under ``torchrun`` (WORLD_SIZE > 1) a process group is started with NCCL on GPU and gloo on
CPU; otherwise everything runs in one process and the collective helpers are no-ops.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
import torch.distributed as dist

from .data import check_choice
from .errors import UserError

DEVICE_CHOICES = ("auto", "cpu", "cuda")
AMP_CHOICES = ("auto", "bf16", "off")


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"


@dataclass(frozen=True)
class Precision:
    """How steps run on the device: bf16 autocast and channels_last (both on by default on CUDA).

    The same settings can be asked for on CPU, which is how the tests exercise the CUDA path.
    """

    device_type: str
    amp_dtype: torch.dtype | None = None
    channels_last: bool = False

    def autocast(self):
        return torch.autocast(self.device_type, dtype=self.amp_dtype or torch.float32,
                              enabled=self.amp_dtype is not None)

    def prepare_model(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        model.to(device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        return model


def resolve_precision(device: torch.device, amp: str = "auto", channels_last: bool | None = None) -> Precision:
    check_choice(amp, AMP_CHOICES, "--amp")
    cuda = device.type == "cuda"
    dtype = torch.bfloat16 if amp == "bf16" or (amp == "auto" and cuda) else None
    return Precision(device.type, dtype, cuda if channels_last is None else channels_last)


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    check_choice(name, DEVICE_CHOICES, "--device")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def start(device: str = "auto") -> Runtime:
    """Resolve the device and, under torchrun, join the process group."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Runtime(resolve_device(device))
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return Runtime(dev, rank, world_size, local_rank)


def stop(runtime: Runtime) -> None:
    if runtime.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(runtime: Runtime) -> None:
    if runtime.distributed:
        dist.barrier()


def broadcast_object(runtime: Runtime, obj):
    if not runtime.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_sum(runtime: Runtime, values: list[float]) -> list[float]:
    if not runtime.distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=runtime.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def gather_rows(runtime: Runtime, indices: torch.Tensor, rows: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Gather (index, row) pairs from every rank; keep each index once, sorted.

    DistributedSampler-style sharding pads the last shard with repeats of the first images so
    every rank runs the same number of batches; dropping duplicate indices here means each
    validation image counts exactly once.
    """
    if runtime.distributed:
        indices = indices.to(runtime.device)
        rows = rows.to(runtime.device)
        all_idx = [torch.empty_like(indices) for _ in range(runtime.world_size)]
        all_rows = [torch.empty_like(rows) for _ in range(runtime.world_size)]
        dist.all_gather(all_idx, indices)
        dist.all_gather(all_rows, rows)
        indices, rows = torch.cat(all_idx), torch.cat(all_rows)
    idx = indices.cpu().numpy()
    data = rows.float().cpu().numpy()
    unique, first = np.unique(idx, return_index=True)
    return unique, data[first]


def shard(n: int, runtime: Runtime) -> np.ndarray:
    """This rank's share of ``range(n)``, padded so all ranks get the same count."""
    world = runtime.world_size
    total = -(-n // world) * world
    idx = np.arange(n)
    if total > n:
        idx = np.concatenate([idx, idx[: total - n]])
    return idx[runtime.rank::world]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


class Reporter(Protocol):
    """What library code tells the user about: stages with a known length, epochs, notes."""

    def stage(self, description: str, total: int | None = None) -> None: ...

    def advance(self, n: int = 1) -> None: ...

    def done(self) -> None: ...

    def epoch(self, row: dict) -> None: ...

    def note(self, text: str) -> None: ...

    def info(self, text: str) -> None: ...


class NullReporter:
    def stage(self, description: str, total: int | None = None) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def done(self) -> None:
        pass

    def epoch(self, row: dict) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def info(self, text: str) -> None:
        pass
