"""Training batches from the decode-once cache: the split's rows, targets and a background reader.

Batches travel as pinned uint8 (B, 1, S, S) tensors with their targets and augmentation
parameters, all prepared by a background thread, so the training step never waits on the host
and makes no small pageable copies.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
import torch

from .cache import ImageCache
from .data import ImageTable


@dataclass
class Split:
    """One side (train or validation) after filtering: table rows, targets and cache rows."""

    table: ImageTable
    targets: np.ndarray  # (N, C) float32, NaN = masked
    cache: ImageCache
    rows: np.ndarray  # row in the cache for each kept image
    text: Any = None  # fusion runs: textfusion's TextRows, one report vector per kept image

    def __len__(self) -> int:
        return len(self.rows)


class BatchFeeder:
    """Batches of cached uint8 images, read from the memmap by a background thread."""

    def __init__(self, split: Split, prefetch: int = 3, pin_memory: bool = False,
                 params: Callable[[np.ndarray], np.ndarray] | None = None):
        self.split = split
        self.images = split.cache.open()
        self.prefetch = prefetch
        self.pin_memory = pin_memory  # page-locked batches make the host-to-GPU copy asynchronous
        self.params = params  # per-image augmentation parameters, drawn here rather than in the step

    def load(self, positions: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        rows = self.split.rows[positions]
        order = np.argsort(rows)  # sequential memmap reads
        data = np.empty((len(rows), 1, self.images.shape[1], self.images.shape[2]), dtype=np.uint8)
        data[order, 0] = self.images[rows[order]]
        images, targets = torch.from_numpy(data), torch.from_numpy(self.split.targets[positions])
        params = None if self.params is None else torch.from_numpy(self.params(positions))
        if self.pin_memory:
            images, targets = images.pin_memory(), targets.pin_memory()
            params = None if params is None else params.pin_memory()
        return images, targets, params

    def iterate(self, batches: list[np.ndarray]) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        q: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop_flag = threading.Event()

        def worker() -> None:
            try:
                for positions in batches:
                    if stop_flag.is_set():
                        return
                    q.put((positions, *self.load(positions)))
            except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
                q.put(exc)
            q.put(None)

        thread = threading.Thread(target=worker, daemon=True)
        thread.start()
        try:
            while True:
                item = q.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop_flag.set()
            while thread.is_alive():
                try:
                    q.get_nowait()
                except queue.Empty:
                    thread.join(timeout=0.05)


def epoch_order(n: int, epoch: int, seed: int, weights: np.ndarray | None) -> np.ndarray:
    """The global order of training images for one epoch (identical on every rank)."""
    rng = np.random.default_rng((seed, 104729, epoch))
    if weights is not None:
        return rng.choice(n, size=n, replace=True, p=weights)
    return rng.permutation(n)
