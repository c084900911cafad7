"""Training a classifier plugin on labelled radiographs: ``radtool classify train``.

:func:`train` runs the whole job from a :class:`TrainConfig`, in the order that fails fastest:
check the options and that pretrained weights can be had, read the label table(s) and split
patient-safe validation, build the model, and only then decode the images once into a uint8
memmap cache. The loop is timm's (``train.py``): ``create_optimizer_v2`` AdamW (no weight decay
on norms and biases, fused on CUDA), a per-update cosine schedule, masked BCE, early stopping on
validation loss; :func:`train_one_epoch` makes no host synchronisation per step (the loss is
summed on the device). On CUDA, steps run in bf16 autocast with channels_last, compiled with
``torch.compile`` by default. The same code runs in one process or under ``torchrun`` (DDP);
``--batch-size`` is the global batch, split over ranks, so a DDP run sees the same batches as a
single-process run. Checkpoints are written and read only by :mod:`radtool_vision.checkpoint`,
and each epoch's run files (best.pt, last.pt, metrics.json, config.json, history, curves) are
written together as one unit (:func:`radtool_vision.checkpoint.run_state`), so any kill leaves
them all at one epoch.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import __version__
from .batches import BatchFeeder, Split, epoch_order
from .cache import load_or_build
from .checkpoint import check_resumable, load_checkpoint, load_model_state, open_run_state, run_state, save_checkpoint
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
from .data_config import DataConfig
from .errors import UserError
from .families import ClassifierPlugin
from .io import write_csv, write_json
from .metrics import best_f1_thresholds, full_report, metrics_block
from .optim import create_optimizer, create_scheduler, default_batch_size, scaled_lr
from .plugins import load_plugin
from .runtime import (
    NullReporter,
    Precision,
    Reporter,
    Runtime,
    all_reduce_sum,
    barrier,
    broadcast_object,
    gather_rows,
    resolve_precision,
    seed_everything,
    shard,
    start,
    stop,
)
from .transforms import augment_params, prepare_batch

logger = logging.getLogger(__name__)

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
    allow_outside_root: bool = False  # read table paths that lead outside the image root (../, absolute)
    val_fraction: float = 0.1
    classes: list[str] = field(default_factory=lambda: list(DEFAULT_CLASSES))
    uncertain: str = "ignore"
    balance: str = "none"
    undersample: dict[str, float] = field(default_factory=dict)
    views: str = "frontal"
    image_size: int = 320
    epochs: int = 10
    batch_size: int | None = None  # None: the family's GPU batch on CUDA, 32 on CPU
    lr: float | None = None  # None: follows the global batch (optim.scaled_lr)
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
    compile: bool | None = None  # None: on for CUDA, off on CPU
    amp: str = "auto"  # auto (bf16 on CUDA) | bf16 | off
    channels_last: bool | None = None  # None: on for CUDA
    # report text joined by report id (radtool_vision.textfusion): X = [X_text, X_image]; None = images only
    text: Path | None = None  # a `radtool parse` output folder (graphs.jsonl)
    text_sections: str | None = None  # None: the request sections (INDICATION, HISTORY, ...)
    allow_label_sections: bool = False  # FINDINGS / IMPRESSION: the labels' own sections (leaky)
    text_dim: int | None = None
    text_hidden: int = 256
    text_fusion: str = "concat"
    text_dropout: float = 0.25

    def text_spec(self):
        """(TextFusionSpec, label-section warning or None) of a fusion run; (None, None) for images only."""
        if self.text is None:
            if self.text_sections is not None or self.allow_label_sections:
                raise UserError("--text-sections and --allow-label-sections need --text PARSE_DIR")
            return None, None
        from .textfusion import join_column, make_spec

        return make_spec(self.text, self.text_sections, self.allow_label_sections, self.text_dim, self.text_hidden,
                         self.text_fusion, self.text_dropout, join_column(self.data, self.image_index, self.id_column))

    def validate(self) -> None:
        check_choice(self.uncertain, UNCERTAIN_POLICIES, "--uncertain")
        check_choice(self.balance, BALANCE_MODES, "--balance")
        check_choice(self.views, VIEW_CHOICES, "--views")
        for name, value, low in (("--epochs", self.epochs, 1), ("--batch-size", self.batch_size, 1),
                                 ("--image-size", self.image_size, 16), ("--patience", self.patience, 1),
                                 ("--workers", self.workers, 0)):
            if value is not None and value < low:
                raise UserError(f"{name} must be at least {low}, not {value}")
        if self.lr is not None and (not self.lr > 0 or not math.isfinite(self.lr)):
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
        self.text_spec()  # --text options (and the label-section guard) fail here, before any work

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        return {k: str(v) if isinstance(v, Path) else v for k, v in out.items()}


# -- data ---------------------------------------------------------------------------------


def _load_tables(cfg: TrainConfig) -> tuple[ImageTable, ImageTable]:
    table = load_image_table(cfg.data, cfg.image_root, cfg.image_index, cfg.id_column, cfg.views,
                             cfg.allow_outside_root)
    table.require(cfg.classes)
    if cfg.val_data is not None:
        val = load_image_table(
            cfg.val_data, cfg.val_image_root or cfg.image_root, cfg.val_image_index, cfg.id_column, cfg.views,
            cfg.allow_outside_root,
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


def _build_split(table: ImageTable, cfg: TrainConfig, runtime: Runtime, reporter: Reporter, name: str,
                 text_spec=None) -> Split:
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
    if len(rows) == 0:
        raise UserError(f"none of the {len(paths)} {name} images could be read (first: {paths[0]})")
    if len(rows) < len(paths):
        reporter.note(f"{len(paths) - len(rows)} unreadable {name} image(s) skipped")
    split = Split(table, targets[rows], cache, rows)
    if text_spec is not None:  # fusion run: the report text of each kept image (textfusion)
        from .textfusion import table_text

        split.text = table_text(table, text_spec.id_column, cfg.text, text_spec).subset(rows)
    return split


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


def masked_bce(logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of BCE over known targets (NaN = masked) and how many there were, both as device tensors."""
    mask = ~torch.isnan(targets)
    safe = torch.where(mask, targets, torch.zeros_like(targets))
    loss = F.binary_cross_entropy_with_logits(logits.float(), safe, pos_weight=weight, reduction="none")
    return (loss * mask).sum(), mask.sum()


@dataclass
class StepContext:
    """What every training step needs, fixed for the run."""

    model: nn.Module  # what the step calls: DDP- and/or torch.compile-wrapped
    optimizer: torch.optim.Optimizer
    scheduler: Any
    precision: Precision
    data_config: DataConfig
    device: torch.device
    world_size: int = 1
    weight: torch.Tensor | None = None
    text: Any = None  # fusion runs: positions -> text vectors (textfusion.TextBatches, with dropout)


def train_step(ctx: StepContext, images: torch.Tensor, targets: torch.Tensor, params: torch.Tensor | None,
               known_targets: int, text: torch.Tensor | None = None) -> torch.Tensor:
    """One update; returns the batch's summed BCE as a device tensor (no host synchronisation).

    The loss is normalised by the known targets of the *global* batch (``known_targets``, counted on
    the host): DDP averages gradients over ranks, so the update equals one process on the whole batch.
    """
    x = prepare_batch(images, ctx.data_config, ctx.device, params, channels_last=ctx.precision.channels_last)
    y = targets.to(ctx.device, non_blocking=True)
    with ctx.precision.autocast():
        logits = ctx.model(x) if text is None else ctx.model(x, text.to(ctx.device, non_blocking=True))
    total, _ = masked_bce(logits, y, ctx.weight)
    loss = total * (ctx.world_size / max(known_targets, 1))
    ctx.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    ctx.optimizer.step()
    return total.detach()


def train_one_epoch(ctx: StepContext, feeder: BatchFeeder, batches: list[np.ndarray], known: list[int],
                    num_updates: int, reporter: Reporter, is_main: bool = True) -> tuple[torch.Tensor, int]:
    """Run ``batches`` (this rank's share of each global batch); returns (summed loss on device, updates)."""
    loss_sum = torch.zeros((), device=ctx.device)
    for step, (positions, images, targets, params) in enumerate(feeder.iterate(batches)):
        text = None if ctx.text is None else ctx.text(positions)
        loss_sum += train_step(ctx, images, targets, params, known[step], text)
        num_updates += 1
        ctx.scheduler.step_update(num_updates=num_updates)
        if is_main:
            reporter.advance()
    return loss_sum, num_updates


@torch.no_grad()
def _validate(
    model: nn.Module, split: Split, data_config: DataConfig, runtime: Runtime, precision: Precision,
    batch_size: int, weight: torch.Tensor | None, reporter: Reporter,
) -> tuple[np.ndarray, float]:
    """Logits for the whole validation split (each image once) and the mean masked BCE.

    Runs the eager model (never the compiled one): the last, smaller batch would make
    torch.compile build another graph, for a pass that costs a fraction of an epoch.
    """
    model.eval()
    positions = shard(len(split), runtime)
    per_rank = max(1, batch_size // runtime.world_size)
    batches = [positions[i:i + per_rank] for i in range(0, len(positions), per_rank)]
    feeder = BatchFeeder(split, pin_memory=runtime.cuda)
    out_idx, out_logits = [], []
    if runtime.is_main:
        reporter.stage("validating", len(batches))
    for pos, images, _, _ in feeder.iterate(batches):
        x = prepare_batch(images, data_config, runtime.device, channels_last=precision.channels_last)
        text = None if split.text is None else torch.from_numpy(split.text.dense(pos)).to(runtime.device)
        with precision.autocast():
            logits = model(x) if text is None else model(x, text)
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
    return logits, float(total) / max(int(count), 1)


# -- the job ------------------------------------------------------------------------------


def train(cfg: TrainConfig, reporter: Reporter | None = None) -> dict[str, Any]:
    """Train ``cfg.plugin`` and write the run folder; returns the summary stored in config.json.

    A run that fails before its first checkpoint removes the ``--out`` folder it created, so a
    failed run never leaves an empty or half-filled folder; after a checkpoint the folder is a run
    that ``--resume`` continues.
    """
    reporter = reporter or NullReporter()
    cfg.validate()
    plugin = load_plugin(cfg.plugin)
    arch = plugin.check_arch(cfg.arch)
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is a file; give a folder for the run")
    last_path, best_path = out / "last.pt", out / "best.pt"
    open_run_state(out)  # a kill inside a fallback (non-exchange) swap of RUN/state is undone first
    if cfg.resume and not last_path.is_file():
        raise UserError(f"--resume: no checkpoint {last_path} to resume from")
    if not cfg.resume and (last_path.exists() or best_path.exists()):
        raise UserError(f"{out} already holds a training run; pass --resume to continue it or choose another --out")
    runtime = start(cfg.device)
    created = runtime.is_main and not out.exists()
    try:
        return _train(cfg, plugin, arch, runtime, reporter)
    except BaseException:
        if created and runtime.is_main and out.is_dir() and not last_path.exists():
            shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        stop(runtime)


def _train(cfg: TrainConfig, plugin: ClassifierPlugin, arch: str, runtime: Runtime, reporter: Reporter) -> dict[str, Any]:
    out = Path(cfg.out)
    last_path, best_path = out / "last.pt", out / "best.pt"
    world = runtime.world_size
    if cfg.batch_size is not None and cfg.batch_size % world:
        raise UserError(f"--batch-size {cfg.batch_size} must be divisible by the number of processes ({world})")
    resume_state = load_checkpoint(last_path, "--resume checkpoint", resume=True) if cfg.resume else None
    seed_everything(cfg.seed)

    train_table, val_table = _load_tables(cfg)
    if cfg.pretrained and cfg.weights is None and not cfg.resume and hasattr(plugin, "check_pretrained"):
        plugin.check_pretrained(arch)  # offline and not cached: one line now, not after the cache is built
    if runtime.is_main:
        reporter.info(f"{len(train_table)} training and {len(val_table)} validation images "
                      f"({len(set(train_table.groups()))} and {len(set(val_table.groups()))} patients)")

    seed_everything(cfg.seed)  # same initial weights on every rank and in every run
    model = plugin.create_model(arch, len(cfg.classes), pretrained=cfg.pretrained and not cfg.resume,
                                weights=None if cfg.resume else cfg.weights)
    data_config = plugin.data_config(model, cfg.image_size)
    text_spec, _ = cfg.text_spec()
    if text_spec is not None:  # X = [X_text, X_image]: the image model's pooled features beside the text MLP
        from .textfusion import build_model

        model = build_model(model, text_spec, len(cfg.classes))
    if cfg.freeze_backbone:
        head = classifier_module(model)
        for p in model.parameters():
            p.requires_grad_(False)
        for p in head.parameters():
            p.requires_grad_(True)

    if runtime.is_main:
        out.mkdir(parents=True, exist_ok=True)
    barrier(runtime)
    train_split = _build_split(train_table, cfg, runtime, reporter, "training", text_spec)
    val_split = _build_split(val_table, cfg, runtime, reporter, "validation", text_spec)
    n_train = len(train_split)
    requested = cfg.batch_size or default_batch_size(getattr(plugin, "cuda_batch_size", 128), cfg.image_size,
                                                     runtime.cuda, world)
    global_batch = min(requested, (n_train // world) * world)
    if global_batch < world:
        raise UserError(f"only {n_train} training images: too few for {world} processes")
    per_rank = global_batch // world
    steps_per_epoch = n_train // global_batch
    lr = cfg.lr or scaled_lr(global_batch)

    precision = resolve_precision(runtime.device, cfg.amp, cfg.channels_last)
    precision.prepare_model(model, runtime.device)
    if runtime.cuda:
        torch.backends.cudnn.benchmark = True
    step_model: nn.Module = model
    if runtime.distributed:
        step_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[runtime.device.index] if runtime.cuda else None
        )
    use_compile = runtime.cuda if cfg.compile is None else cfg.compile
    if use_compile:
        step_model = torch.compile(step_model)
    optimizer = create_optimizer(model, lr, cfg.weight_decay, runtime.cuda)
    total_steps = cfg.epochs * steps_per_epoch
    warmup_steps = min(total_steps // 2, int(round(cfg.warmup_epochs * steps_per_epoch)))
    scheduler = create_scheduler(optimizer, lr, warmup_steps, total_steps)

    weight_np = pos_weight(train_split.targets) if cfg.balance == "pos-weight" else None
    weight = None if weight_np is None else torch.from_numpy(weight_np).to(runtime.device)
    sampling = sample_weights(train_split.targets) if cfg.balance == "sampler" else None

    settings = {
        "plugin": plugin.name, "arch": arch, "classes": list(cfg.classes), "image_size": cfg.image_size,
        "uncertain": cfg.uncertain, "views": cfg.views, "balance": cfg.balance, "undersample": dict(cfg.undersample),
        "seed": cfg.seed, "val_fraction": cfg.val_fraction, "global_batch_size": global_batch, "epochs": cfg.epochs,
    }
    settings["text"] = None if text_spec is None else {k: v for k, v in text_spec.to_dict().items() if k != "parse_dir"}
    meta = {"plugin": plugin.name, "arch": arch, "classes": list(cfg.classes), "data_config": data_config.to_dict(),
            "uncertain": cfg.uncertain, "views": cfg.views, "settings": settings}
    if text_spec is not None:
        meta["text"] = text_spec.to_dict()  # what load_run needs to rebuild the text branch
    loop: dict[str, Any] = {"epoch": 0, "history": [], "best_val_loss": math.inf, "best_epoch": 0, "bad_epochs": 0,
                            "thresholds": [0.5] * len(cfg.classes), "num_updates": 0}
    if resume_state is not None:
        check_resumable(resume_state, settings, last_path)
        load_model_state(model, resume_state, last_path)
        optimizer.load_state_dict(resume_state["optimizer"])
        loop.update(resume_state["loop"])
        loop["history"] = list(loop["history"])
        scheduler.step_update(num_updates=int(loop["num_updates"]))

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
        "precision": {"amp": str(precision.amp_dtype).replace("torch.", "") if precision.amp_dtype else "off",
                      "channels_last": precision.channels_last, "compile": use_compile},
        "global_batch_size": global_batch,
        "lr": lr,
        "lr_rule": "--lr" if cfg.lr else f"{LR_RULE} (global batch {global_batch})",
        "steps_per_epoch": steps_per_epoch,
        "n_train": n_train,
        "n_val": len(val_split),
        "n_unreadable": {"train": int((~train_split.cache.ok).sum()), "val": int((~val_split.cache.ok).sum())},
        "pos_weight": None if weight_np is None else weight_np.tolist(),
        "text": None if text_spec is None else _text_summary(text_spec, train_split, val_split),
        "label_policy": "blank = 0 (not mentioned); -1 = " + {
            "ignore": "masked out of the loss and metrics", "zeros": "0", "ones": "1"}[cfg.uncertain],
    }
    best_meta = _best_meta(load_checkpoint(best_path, "best checkpoint")) if cfg.resume and best_path.is_file() else None
    if runtime.is_main:
        with run_state(out) as unit:  # config.json for these options; metrics.json re-derived from best.pt
            _write_summary(unit, summary, best_meta)
        reporter.info(f"{steps_per_epoch} steps per epoch of {global_batch} images ({n_train} training, "
                      f"{len(val_split)} validation), lr {lr:.2e}, {runtime.device.type}"
                      f"{', bf16' if precision.amp_dtype else ''}{', channels_last' if precision.channels_last else ''}"
                      f"{', torch.compile' if use_compile else ''}")

    ctx = StepContext(step_model, optimizer, scheduler, precision, data_config, runtime.device, world, weight)
    if text_spec is not None:
        from .textfusion import TextBatches

        text_batches = TextBatches(train_split.text, text_spec.dropout, cfg.seed)
        ctx.text = lambda positions: text_batches(positions, feeder_epoch[0])
        if runtime.is_main:
            t = summary["text"]
            reporter.info(f"report text from {', '.join(text_spec.encoder.sections)}: {t['n_nonempty']['train']} of "
                          f"{len(train_split)} training images have some ({t['n_with_text']['train']} with a parsed report)")
    feeder_epoch = [0]  # augmentation is keyed by (seed, epoch, image); the feeder thread draws it

    def params_fn(positions: np.ndarray) -> np.ndarray:
        return augment_params(positions, feeder_epoch[0], cfg.seed)

    feeder = BatchFeeder(train_split, pin_memory=runtime.cuda, params=params_fn if cfg.augment else None)
    stopped_early = False
    for epoch in range(int(loop["epoch"]) + 1, cfg.epochs + 1):
        if loop["bad_epochs"] >= cfg.patience:
            stopped_early = True
            break
        t0 = time.perf_counter()
        torch.manual_seed(cfg.seed * 1000 + epoch)  # dropout / drop-path, same on resume
        _set_train_mode(model, cfg.freeze_backbone)
        feeder_epoch[0] = epoch
        order = epoch_order(n_train, epoch, cfg.seed, sampling)
        chunks = [order[k * global_batch:(k + 1) * global_batch] for k in range(steps_per_epoch)]
        local = [c[runtime.rank * per_rank:(runtime.rank + 1) * per_rank] for c in chunks]
        known = [int((~np.isnan(train_split.targets[c])).sum()) for c in chunks]
        if runtime.is_main:
            reporter.stage(f"epoch {epoch}/{cfg.epochs}", steps_per_epoch)
        try:
            loss_sum, loop["num_updates"] = train_one_epoch(ctx, feeder, local, known, int(loop["num_updates"]),
                                                            reporter, runtime.is_main)
        except torch.cuda.OutOfMemoryError as exc:
            raise UserError(f"out of GPU memory with a global batch of {global_batch} ({per_rank} per GPU) at "
                            f"{cfg.image_size}px; pass a smaller --batch-size") from exc
        if runtime.is_main:
            reporter.done()
        loss_sum_f, loss_count = all_reduce_sum(runtime, [float(loss_sum), float(sum(known) / world)])
        train_seconds = time.perf_counter() - t0

        logits, val_loss = _validate(model, val_split, data_config, runtime, precision, global_batch, weight, reporter)
        probs = 1.0 / (1.0 + np.exp(-logits))
        block = metrics_block(probs, val_split.targets, cfg.classes, [0.5] * len(cfg.classes))
        row = {
            "epoch": epoch,
            "train_loss": loss_sum_f / max(loss_count, 1),
            "val_loss": val_loss,
            "val_macro_auroc": block["macro"]["auroc"],
            "val_macro_f1": block["macro"]["f1"],
            "lr": optimizer.param_groups[0]["lr"],
            "seconds": time.perf_counter() - t0,
            "train_images_per_s": steps_per_epoch * global_batch / max(train_seconds, 1e-9),
        }
        loop["history"].append(row)
        loop["epoch"] = epoch
        improved = val_loss < loop["best_val_loss"] - 1e-6
        if improved:
            loop.update(best_val_loss=val_loss, best_epoch=epoch, bad_epochs=0,
                        thresholds=best_f1_thresholds(probs, val_split.targets))
        else:
            loop["bad_epochs"] += 1
        if runtime.is_main:
            reporter.epoch(row)
            thresholds = [float(t) for t in loop["thresholds"]]
            # one unit: the epoch's files appear together or not at all (checkpoint.run_state); best.pt
            # holds its own metrics report, and metrics.json / config.json are derived from it
            with run_state(out) as unit:
                if improved:
                    report = full_report(probs, val_split.targets, cfg.classes, loop["thresholds"], "validation")
                    report.update({"epoch": epoch, "val_loss": val_loss})
                    best = {**meta, "thresholds": thresholds, "epoch": epoch, "val_loss": float(val_loss),
                            "report": report}
                    save_checkpoint(unit / "best.pt", model, best)
                    best_meta = _best_meta(best)
                _write_summary(unit, summary, best_meta)
                save_checkpoint(unit / "last.pt", model, {**meta, "thresholds": thresholds}, optimizer, loop)
                _write_history(unit, loop["history"], out.name)
        barrier(runtime)

    if loop["bad_epochs"] >= cfg.patience and len(loop["history"]) < cfg.epochs:
        stopped_early = True
    summary.update({"epochs_run": len(loop["history"]), "stopped_early": stopped_early})
    if runtime.is_main:
        with run_state(out) as unit:
            summary = _write_summary(unit, summary, best_meta)
    return broadcast_object(runtime, summary)


def _text_summary(spec, train_split: Split, val_split: Split) -> dict[str, Any]:
    """What config.json says about the text of a fusion run (spec, coverage, the leakage flag)."""
    from .text import check_sections

    return {**spec.to_dict(),
            "n_with_text": {"train": int(train_split.text.found.sum()), "val": int(val_split.text.found.sum())},
            "n_nonempty": {"train": train_split.text.nonempty(), "val": val_split.text.nonempty()},
            "label_section_warning": check_sections(spec.encoder.sections, True, spec.parse_dir)}


LR_RULE = "1e-4 x sqrt(global batch / 32)"


def _best_meta(best: dict[str, Any]) -> dict[str, Any]:
    """What config.json and metrics.json repeat from best.pt (never from the loop state)."""
    return {"best_epoch": int(best.get("epoch", 0)), "best_val_loss": best.get("val_loss"),
            "thresholds": dict(zip(best["classes"], best["thresholds"])), "report": best.get("report")}


def _write_summary(unit: Path, summary: dict[str, Any], best: dict[str, Any] | None) -> dict[str, Any]:
    """metrics.json and config.json into a run unit, their best-epoch fields derived from what best.pt holds."""
    summary = dict(summary)
    if best is None:
        summary.update({"best_epoch": 0, "best_val_loss": None})
    else:
        summary.update({k: v for k, v in best.items() if k != "report"})
        if isinstance(best.get("report"), dict):
            write_json(unit / "metrics.json", best["report"])
    write_json(unit / "config.json", summary)
    return summary


def _write_history(unit: Path, history: list[dict[str, Any]], title: str) -> None:
    from .plots import training_curves

    write_csv(unit / "history.csv", HISTORY_COLUMNS, ([r.get(c) for c in HISTORY_COLUMNS] for r in history))
    training_curves(history, unit, title=title)


def load_config(run: Path) -> dict[str, Any]:
    open_run_state(run)
    path = Path(run) / "config.json"
    if not path.is_file():
        raise UserError(f"no training run in {run} (config.json missing)")
    return json.loads(path.read_text())
