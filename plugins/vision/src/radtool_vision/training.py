"""Training a classifier plugin on labelled radiographs: ``radtool classify train``.

One function, :func:`train`, runs the whole job from a :class:`TrainConfig`: read the label
table(s), split patient-safe validation, decode images once into a uint8 memmap cache, build the
model from its plugin, then AdamW with warm-up + cosine decay, masked BCE, early stopping on
validation loss, a checkpoint every epoch and the best one kept. The same code runs in one
process or under ``torchrun`` (DDP); ``--batch-size`` is the global batch, split over ranks,
so a DDP run sees the same batches as a single-process run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import __version__
from .cache import ImageCache, load_or_build
from .data import (
    BALANCE_MODES,
    DEFAULT_CLASSES,
    UNCERTAIN_POLICIES,
    VIEW_CHOICES,
    ImageTable,
    check_choice,
    load_image_table,
    pos_weight,
    sample_weights,
    split_by_group,
    to_targets,
    undersample,
)
from .errors import UserError
from .io import save_torch, write_csv, write_json
from .metrics import best_f1_thresholds, full_report, metrics_block
from .plugins import ClassifierPlugin, DataConfig, load_plugin
from .runtime import (
    NullReporter,
    Reporter,
    Runtime,
    all_reduce_sum,
    barrier,
    broadcast_object,
    gather_rows,
    seed_everything,
    shard,
    start,
    stop,
)
from .transforms import augment_params, prepare_batch

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "radtool-vision.classifier.v1"
HISTORY_COLUMNS = (
    "epoch", "train_loss", "val_loss", "val_macro_auroc", "val_macro_f1", "lr", "seconds", "train_images_per_s",
)


@dataclass
class TrainConfig:
    plugin: str
    data: Path
    out: Path
    image_root: Path | None = None
    image_index: Path | None = None
    id_column: str | None = None
    arch: str | None = None
    val_data: Path | None = None
    val_image_root: Path | None = None
    val_image_index: Path | None = None
    val_fraction: float = 0.1
    classes: list[str] = field(default_factory=lambda: list(DEFAULT_CLASSES))
    uncertain: str = "ignore"
    balance: str = "none"
    undersample: dict[str, float] = field(default_factory=dict)
    views: str = "frontal"
    image_size: int = 320
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    freeze_backbone: bool = False
    pretrained: bool = True
    weights: Path | None = None
    patience: int = 3
    seed: int = 0
    device: str = "auto"
    workers: int = 4
    augment: bool = True
    resume: bool = False

    def validate(self) -> None:
        check_choice(self.uncertain, UNCERTAIN_POLICIES, "--uncertain")
        check_choice(self.balance, BALANCE_MODES, "--balance")
        check_choice(self.views, VIEW_CHOICES, "--views")
        for name, value, low in (("--epochs", self.epochs, 1), ("--batch-size", self.batch_size, 1),
                                 ("--image-size", self.image_size, 16), ("--patience", self.patience, 1),
                                 ("--workers", self.workers, 0)):
            if value < low:
                raise UserError(f"{name} must be at least {low}, not {value}")
        if not self.lr > 0 or not math.isfinite(self.lr):
            raise UserError(f"--lr must be a positive number, not {self.lr}")
        if self.weight_decay < 0 or self.warmup_epochs < 0:
            raise UserError("--weight-decay and --warmup-epochs must not be negative")
        if not self.classes:
            raise UserError("--classes must name at least one class")
        unknown = [c for c in self.undersample if c not in self.classes]
        if unknown:
            raise UserError(f"--undersample names {unknown[0]!r}, which is not in --classes ({', '.join(self.classes)})")
        if self.val_data is None and not 0.0 < self.val_fraction < 1.0:
            raise UserError(f"--val-fraction must be between 0 and 1 (exclusive), not {self.val_fraction}; or pass --val-data")

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        return {k: str(v) if isinstance(v, Path) else v for k, v in out.items()}


@dataclass
class Split:
    """One side (train or validation) after filtering: table rows, targets and cache rows."""

    table: ImageTable
    targets: np.ndarray  # (N, C) float32, NaN = masked
    cache: ImageCache
    rows: np.ndarray  # row in the cache for each kept image

    def __len__(self) -> int:
        return len(self.rows)


# -- data ---------------------------------------------------------------------------------


def _load_tables(cfg: TrainConfig) -> tuple[ImageTable, ImageTable]:
    table = load_image_table(cfg.data, cfg.image_root, cfg.image_index, cfg.id_column, cfg.views)
    table.require(cfg.classes)
    if cfg.val_data is not None:
        val = load_image_table(
            cfg.val_data, cfg.val_image_root or cfg.image_root, cfg.val_image_index, cfg.id_column, cfg.views
        )
        val.require(cfg.classes)
        train = table
    else:
        train_idx, val_idx = split_by_group(table.groups(), cfg.val_fraction, cfg.seed)
        train, val = table.subset(train_idx), table.subset(val_idx)
    if cfg.undersample:
        keep = undersample(train.labels(cfg.classes), cfg.classes, cfg.undersample, cfg.seed)
        if len(keep) == 0:
            raise UserError("--undersample dropped every training image")
        train = train.subset(keep)
    return train, val


def _build_split(table: ImageTable, cfg: TrainConfig, runtime: Runtime, reporter: Reporter, name: str) -> Split:
    paths = table.paths
    cache_dir = Path(cfg.out) / "cache"
    if runtime.is_main:
        reporter.stage(f"caching {name} images ({cfg.image_size}px)", len(paths))
        cache, _ = load_or_build(paths, cfg.image_size, cache_dir, cfg.workers, reporter.advance)
        reporter.done()
    barrier(runtime)
    if not runtime.is_main:
        cache, _ = load_or_build(paths, cfg.image_size, cache_dir, cfg.workers)
    targets = to_targets(table.labels(cfg.classes), cfg.uncertain)
    rows = np.flatnonzero(cache.ok)
    if len(rows) < len(paths):
        reporter.note(f"{len(paths) - len(rows)} unreadable {name} image(s) skipped")
    if len(rows) == 0:
        raise UserError(f"none of the {len(paths)} {name} images could be read (first: {paths[0]})")
    return Split(table, targets[rows], cache, rows)


class BatchFeeder:
    """Batches of cached uint8 images, read from the memmap by a background thread."""

    def __init__(self, split: Split, prefetch: int = 3, pin_memory: bool = False):
        self.split = split
        self.images = split.cache.open()
        self.prefetch = prefetch
        self.pin_memory = pin_memory  # page-locked batches make the host-to-GPU copy asynchronous

    def load(self, positions: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self.split.rows[positions]
        order = np.argsort(rows)  # sequential memmap reads
        data = np.empty((len(rows), 1, self.images.shape[1], self.images.shape[2]), dtype=np.uint8)
        data[order, 0] = self.images[rows[order]]
        images, targets = torch.from_numpy(data), torch.from_numpy(self.split.targets[positions])
        if self.pin_memory:
            images, targets = images.pin_memory(), targets.pin_memory()
        return images, targets

    def iterate(self, batches: list[np.ndarray]) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
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


# -- model --------------------------------------------------------------------------------


def classifier_module(model: nn.Module) -> nn.Module:
    if hasattr(model, "get_classifier"):
        head = model.get_classifier()
        if isinstance(head, nn.Module) and any(True for _ in head.parameters()):
            return head
    for attr in ("head", "fc", "classifier", "heads"):
        head = getattr(model, attr, None)
        if isinstance(head, nn.Module) and any(True for _ in head.parameters()):
            return head
    raise UserError(f"cannot find the classifier of {type(model).__name__} for --freeze-backbone")


def _set_train_mode(model: nn.Module, frozen_backbone: bool) -> None:
    model.train()
    if frozen_backbone:  # keep BatchNorm statistics of the frozen backbone fixed
        model.eval()
        classifier_module(model).train()


def masked_bce(logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None) -> tuple[torch.Tensor, int]:
    """Sum of BCE over known targets (NaN = masked) and how many there were."""
    mask = ~torch.isnan(targets)
    safe = torch.where(mask, targets, torch.zeros_like(targets))
    loss = F.binary_cross_entropy_with_logits(logits.float(), safe, pos_weight=weight, reduction="none")
    return (loss * mask).sum(), int(mask.sum().item())


def lr_lambda(warmup_steps: int, total_steps: int):
    def fn(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return fn


def _state_dict_cpu(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}


# -- the loop -----------------------------------------------------------------------------


@torch.no_grad()
def _validate(
    model: nn.Module, split: Split, data_config: DataConfig, runtime: Runtime, batch_size: int,
    weight: torch.Tensor | None, reporter: Reporter,
) -> tuple[np.ndarray, float]:
    """Logits for the whole validation split (each image once) and the mean masked BCE."""
    model.eval()
    positions = shard(len(split), runtime)
    per_rank = max(1, batch_size // runtime.world_size)
    batches = [positions[i:i + per_rank] for i in range(0, len(positions), per_rank)]
    feeder = BatchFeeder(split, pin_memory=runtime.cuda)
    out_idx, out_logits = [], []
    if runtime.is_main:
        reporter.stage("validating", len(batches))
    for pos, images, _ in feeder.iterate(batches):
        x = prepare_batch(images, data_config, runtime.device, channels_last=runtime.cuda)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=runtime.cuda):
            logits = model(x)
        out_idx.append(torch.from_numpy(pos))
        out_logits.append(logits.float())
        if runtime.is_main:
            reporter.advance()
    if runtime.is_main:
        reporter.done()
    idx, logits = gather_rows(runtime, torch.cat(out_idx), torch.cat(out_logits))
    if len(idx) != len(split):
        raise RuntimeError(f"validation gathered {len(idx)} of {len(split)} images")
    t = torch.from_numpy(split.targets[idx])
    total, count = masked_bce(torch.from_numpy(logits), t, None if weight is None else weight.cpu())
    return logits, float(total) / max(count, 1)


def train(cfg: TrainConfig, reporter: Reporter | None = None) -> dict[str, Any]:
    """Train ``cfg.plugin`` and write the run folder; returns the summary stored in config.json."""
    reporter = reporter or NullReporter()
    cfg.validate()
    plugin = load_plugin(cfg.plugin)
    arch = plugin.check_arch(cfg.arch)
    runtime = start(cfg.device)
    try:
        return _train(cfg, plugin, arch, runtime, reporter)
    finally:
        stop(runtime)


def _train(cfg: TrainConfig, plugin: ClassifierPlugin, arch: str, runtime: Runtime, reporter: Reporter) -> dict[str, Any]:
    out = Path(cfg.out)
    last_path, best_path = out / "last.pt", out / "best.pt"
    if cfg.resume and not last_path.is_file():
        raise UserError(f"--resume: no checkpoint {last_path} to resume from")
    if not cfg.resume and (last_path.exists() or best_path.exists()):
        raise UserError(f"{out} already holds a training run; pass --resume to continue it or choose another --out")
    world = runtime.world_size
    if cfg.batch_size % world:
        raise UserError(f"--batch-size {cfg.batch_size} must be divisible by the number of processes ({world})")
    seed_everything(cfg.seed)
    if runtime.is_main:
        out.mkdir(parents=True, exist_ok=True)
    barrier(runtime)

    train_table, val_table = _load_tables(cfg)
    train_split = _build_split(train_table, cfg, runtime, reporter, "training")
    val_split = _build_split(val_table, cfg, runtime, reporter, "validation")
    n_train = len(train_split)
    global_batch = min(cfg.batch_size, (n_train // world) * world)
    if global_batch < world:
        raise UserError(f"only {n_train} training images: too few for {world} processes")
    per_rank = global_batch // world
    steps_per_epoch = n_train // global_batch

    seed_everything(cfg.seed)  # same initial weights on every rank and in every run
    model = plugin.create_model(arch, len(cfg.classes), pretrained=cfg.pretrained, weights=cfg.weights)
    data_config = plugin.data_config(model, cfg.image_size)
    if cfg.freeze_backbone:
        head = classifier_module(model)
        for p in model.parameters():
            p.requires_grad_(False)
        for p in head.parameters():
            p.requires_grad_(True)
    model.to(runtime.device)
    if runtime.cuda:
        model.to(memory_format=torch.channels_last)
    trainable = [p for p in model.parameters() if p.requires_grad]
    ddp_model: nn.Module = model
    if runtime.distributed:
        ddp_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[runtime.device.index] if runtime.cuda else None
        )
    optimizer = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
    total_steps = cfg.epochs * steps_per_epoch
    warmup_steps = min(total_steps // 2, int(round(cfg.warmup_epochs * steps_per_epoch)))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(warmup_steps, total_steps))

    weight_np = pos_weight(train_split.targets) if cfg.balance == "pos-weight" else None
    weight = None if weight_np is None else torch.from_numpy(weight_np).to(runtime.device)
    sampling = sample_weights(train_split.targets) if cfg.balance == "sampler" else None

    history: list[dict[str, Any]] = []
    start_epoch, best_loss, best_epoch, bad_epochs = 1, math.inf, 0, 0
    thresholds = [0.5] * len(cfg.classes)
    if cfg.resume:
        state = torch.load(last_path, map_location="cpu", weights_only=True)
        _check_resumable(state, plugin.name, arch, cfg)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history = list(state["history"])
        start_epoch = int(state["epoch"]) + 1
        best_loss, best_epoch = float(state["best_val_loss"]), int(state["best_epoch"])
        bad_epochs = int(state["bad_epochs"])
        thresholds = list(state["thresholds"])

    summary: dict[str, Any] = {
        "radtool_vision": __version__,
        "torch": torch.__version__,
        "plugin": plugin.name,
        "arch": arch,
        "classes": list(cfg.classes),
        "data_config": data_config.to_dict(),
        "options": cfg.to_dict(),
        "world_size": world,
        "device": runtime.device.type,
        "global_batch_size": global_batch,
        "steps_per_epoch": steps_per_epoch,
        "n_train": n_train,
        "n_val": len(val_split),
        "n_unreadable": {"train": int((~train_split.cache.ok).sum()), "val": int((~val_split.cache.ok).sum())},
        "pos_weight": None if weight_np is None else weight_np.tolist(),
        "label_policy": "blank = 0 (not mentioned); -1 = " + {
            "ignore": "masked out of the loss and metrics", "zeros": "0", "ones": "1"}[cfg.uncertain],
    }
    if runtime.is_main:
        write_json(out / "config.json", summary)

    feeder = BatchFeeder(train_split, pin_memory=runtime.cuda)
    stopped_early = False
    for epoch in range(start_epoch, cfg.epochs + 1):
        if bad_epochs >= cfg.patience:
            stopped_early = True
            break
        t0 = time.perf_counter()
        torch.manual_seed(cfg.seed * 1000 + epoch)  # dropout / drop-path, same on resume
        _set_train_mode(model, cfg.freeze_backbone)
        order = epoch_order(n_train, epoch, cfg.seed, sampling)
        chunks = [order[k * global_batch:(k + 1) * global_batch] for k in range(steps_per_epoch)]
        local = [c[runtime.rank * per_rank:(runtime.rank + 1) * per_rank] for c in chunks]
        counts = [int((~np.isnan(train_split.targets[c])).sum()) for c in chunks]
        loss_sum, loss_count = 0.0, 0
        if runtime.is_main:
            reporter.stage(f"epoch {epoch}/{cfg.epochs}", steps_per_epoch)
        for step, (pos, images, targets) in enumerate(feeder.iterate(local)):
            params = torch.from_numpy(augment_params(pos, epoch, cfg.seed)) if cfg.augment else None
            x = prepare_batch(images, data_config, runtime.device, params, channels_last=runtime.cuda)
            y = targets.to(runtime.device, non_blocking=True)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=runtime.cuda):
                logits = ddp_model(x)
            total, count = masked_bce(logits, y, weight)
            # normalise by the known targets of the *global* batch: DDP averages gradients over
            # ranks, so the update equals a single process on the whole batch
            loss = total * world / max(counts[step], 1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += float(total.detach())
            loss_count += count
            if runtime.is_main:
                reporter.advance()
        if runtime.is_main:
            reporter.done()
        loss_sum, loss_count = all_reduce_sum(runtime, [loss_sum, float(loss_count)])
        train_seconds = time.perf_counter() - t0

        logits, val_loss = _validate(model, val_split, data_config, runtime, global_batch, weight, reporter)
        probs = 1.0 / (1.0 + np.exp(-logits))
        block = metrics_block(probs, val_split.targets, cfg.classes, [0.5] * len(cfg.classes))
        row = {
            "epoch": epoch,
            "train_loss": loss_sum / max(loss_count, 1),
            "val_loss": val_loss,
            "val_macro_auroc": block["macro"]["auroc"],
            "val_macro_f1": block["macro"]["f1"],
            "lr": optimizer.param_groups[0]["lr"],
            "seconds": time.perf_counter() - t0,
            "train_images_per_s": steps_per_epoch * global_batch / max(train_seconds, 1e-9),
        }
        history.append(row)
        improved = val_loss < best_loss - 1e-6
        if improved:
            best_loss, best_epoch, bad_epochs = val_loss, epoch, 0
            thresholds = best_f1_thresholds(probs, val_split.targets)
        else:
            bad_epochs += 1
        if runtime.is_main:
            reporter.epoch(row)
            _write_epoch(out, model, optimizer, scheduler, history, epoch, best_loss, best_epoch,
                         bad_epochs, thresholds, plugin.name, arch, cfg, data_config)
            if improved:
                save_torch(best_path, _best_checkpoint(model, plugin.name, arch, cfg, data_config, thresholds,
                                                       epoch, val_loss))
                report = full_report(probs, val_split.targets, cfg.classes, thresholds, "validation")
                report.update({"epoch": epoch, "val_loss": val_loss})
                write_json(out / "metrics.json", report)
        barrier(runtime)

    summary.update({
        "best_epoch": best_epoch,
        "best_val_loss": best_loss if math.isfinite(best_loss) else None,
        "thresholds": dict(zip(cfg.classes, thresholds)),
        "epochs_run": len(history),
        "stopped_early": stopped_early or (bad_epochs >= cfg.patience and len(history) < cfg.epochs),
    })
    if runtime.is_main:
        write_json(out / "config.json", summary)
    summary = broadcast_object(runtime, summary)
    return summary


def _check_resumable(state: dict, plugin: str, arch: str, cfg: TrainConfig) -> None:
    saved = (state.get("plugin"), state.get("arch"), list(state.get("classes", [])))
    if saved != (plugin, arch, list(cfg.classes)):
        raise UserError(
            f"--resume: checkpoint was trained with plugin={saved[0]}, arch={saved[1]}, classes={saved[2]}; "
            "pass the same --plugin, --arch and --classes"
        )


def _best_checkpoint(model, plugin, arch, cfg, data_config, thresholds, epoch, val_loss) -> dict[str, Any]:
    return {
        "format": CHECKPOINT_FORMAT,
        "model": _state_dict_cpu(model),
        "plugin": plugin,
        "arch": arch,
        "classes": list(cfg.classes),
        "data_config": data_config.to_dict(),
        "thresholds": [float(t) for t in thresholds],
        "uncertain": cfg.uncertain,
        "views": cfg.views,
        "epoch": int(epoch),
        "val_loss": float(val_loss),
    }


def _write_epoch(out, model, optimizer, scheduler, history, epoch, best_loss, best_epoch, bad_epochs,
                 thresholds, plugin, arch, cfg, data_config) -> None:
    from .plots import training_curves

    save_torch(out / "last.pt", {
        "format": CHECKPOINT_FORMAT,
        "model": _state_dict_cpu(model),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "history": history,
        "epoch": int(epoch),
        "best_val_loss": float(best_loss),
        "best_epoch": int(best_epoch),
        "bad_epochs": int(bad_epochs),
        "thresholds": [float(t) for t in thresholds],
        "plugin": plugin,
        "arch": arch,
        "classes": list(cfg.classes),
        "data_config": data_config.to_dict(),
    })
    write_csv(out / "history.csv", HISTORY_COLUMNS, ([r.get(c) for c in HISTORY_COLUMNS] for r in history))
    training_curves(history, out)


def load_config(run: Path) -> dict[str, Any]:
    path = Path(run) / "config.json"
    if not path.is_file():
        raise UserError(f"no training run in {run} (config.json missing)")
    return json.loads(path.read_text())
