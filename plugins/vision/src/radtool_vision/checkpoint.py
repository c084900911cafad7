"""Checkpoints: the one place that writes and reads ``best.pt`` / ``last.pt`` and reads ``--weights`` files.

Like timm's ``load_checkpoint`` / ``clean_state_dict``: every file is read with
``torch.load(weights_only=True)`` (tensors and plain values only, never arbitrary pickles), state
dicts are cleaned of DDP (``module.``) and ``torch.compile`` (``_orig_mod.``) prefixes, and a
checkpoint is always built by :func:`checkpoint_dict`, whether it is the best epoch (weights and
what inference needs) or the last one (plus optimiser and loop state, for ``--resume``).

A training run's files are written as one unit (:func:`run_state`): ``best.pt``, ``last.pt``,
``metrics.json``, ``config.json``, ``history.csv`` and the curves live in ``RUN/state/``, which is
replaced as a whole at each epoch (``radtool.io.writers.atomic_dir``: an atomic exchange of two
folders), and ``RUN/best.pt`` etc. are relative links into it. A kill at any point therefore leaves
either the previous epoch's files or the new epoch's, never a mix: best.pt, metrics.json and
config.json always describe the same best epoch, and last.pt's loop state always agrees with them.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from radtool.io.writers import MARKER, atomic_dir, recover

from .errors import UserError
from .io import save_torch

if TYPE_CHECKING:  # pragma: no cover
    import torch
    import torch.nn as nn

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "radtool-vision.classifier.v1"
# what a run checkpoint must hold to rebuild the model for evaluate / predict / explain
META_KEYS = ("plugin", "arch", "classes", "data_config", "thresholds")
# what must hold on --resume: the same model, classes and data (options that change the run's meaning)
RESUME_KEYS = ("plugin", "arch", "classes", "image_size", "uncertain", "views", "balance", "undersample",
               "seed", "val_fraction", "global_batch_size", "text")


def unwrap_model(model: "nn.Module") -> "nn.Module":
    """The plain model inside DDP and ``torch.compile`` wrappers (timm.utils.unwrap_model)."""
    from timm.utils import unwrap_model as timm_unwrap

    return timm_unwrap(model)


def clean_state_dict(state: dict[str, Any]) -> dict[str, Any]:
    """Drop DDP / torch.compile prefixes in either order (timm.models.clean_state_dict)."""
    from timm.models import clean_state_dict as timm_clean

    return timm_clean({k: v for k, v in state.items() if isinstance(k, str)})


def model_state_cpu(model: "nn.Module") -> dict[str, "torch.Tensor"]:
    return {k: v.detach().to("cpu").contiguous() for k, v in unwrap_model(model).state_dict().items()}


def checkpoint_dict(model: "nn.Module", meta: dict[str, Any], optimizer=None, loop: dict[str, Any] | None = None) -> dict[str, Any]:
    """The checkpoint layout: format tag, cleaned CPU weights, run metadata, and (for last.pt) training state."""
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise ValueError(f"checkpoint metadata lacks {missing}")
    out: dict[str, Any] = {"format": CHECKPOINT_FORMAT, "model": model_state_cpu(model), **meta}
    if optimizer is not None:
        out["optimizer"] = optimizer.state_dict()
    if loop is not None:
        out["loop"] = loop
    return out


def save_checkpoint(path: str | Path, model: "nn.Module", meta: dict[str, Any], optimizer=None,
                    loop: dict[str, Any] | None = None) -> None:
    """Write atomically (temporary file, then rename): a killed job never leaves half a checkpoint."""
    save_torch(path, checkpoint_dict(model, meta, optimizer, loop))


def _torch_load(path: Path) -> Any:
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated zip, pickle with objects, not a torch file, ...
        raise UserError(f"cannot read checkpoint {path}: it is damaged or not a tensors-only torch file "
                        f"({type(exc).__name__})") from exc


def load_checkpoint(path: str | Path, what: str = "checkpoint", resume: bool = False) -> dict[str, Any]:
    """Read a radtool-vision checkpoint; one-line UserError when it is missing, damaged or foreign."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    state = _torch_load(path)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path} is not a radtool-vision checkpoint")
    needed = [*META_KEYS, "model", *(("optimizer", "loop") if resume else ())]
    missing = [k for k in needed if k not in state]
    if missing or not isinstance(state["model"], dict):
        raise UserError(f"checkpoint {path} is incomplete (no {', '.join(missing) or 'model weights'})")
    state["model"] = clean_state_dict(state["model"])
    return state


def load_model_state(model: "nn.Module", state: dict[str, Any], path: str | Path) -> None:
    """Load a checkpoint's weights strictly; a mismatch is the user's wrong file, said in one line."""
    try:
        unwrap_model(model).load_state_dict(state["model"])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise UserError(f"checkpoint {path} does not fit the model it names ({first})") from exc


def check_resumable(state: dict[str, Any], settings: dict[str, Any], path: str | Path) -> None:
    """``--resume`` continues the same run: refuse, in one line, settings that differ from the checkpoint's."""
    saved = state.get("settings", {})
    diff = [k for k in RESUME_KEYS if k in saved and k in settings and saved[k] != settings[k]]
    if diff:
        parts = ", ".join(f"{k}={saved[k]!r} (now {settings[k]!r})" for k in diff)
        raise UserError(f"--resume: {path} was trained with {parts}; pass the same options or choose another --out")


def read_state_dict(path: str | Path) -> dict[str, Any]:
    """Tensors from a ``--weights`` file (state dict, timm/torchvision checkpoint, safetensors, radtool best.pt)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(path)))
        except Exception as exc:  # noqa: BLE001
            raise UserError(f"cannot read weights file {path}: {type(exc).__name__}") from exc
    obj = _torch_load(path)
    for key in ("model", "state_dict", "model_state_dict", "state_dict_ema"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        raise UserError(f"weights file {path} does not hold a state dict")
    return clean_state_dict(obj)


def load_weights(model: "nn.Module", path: str | Path) -> dict[str, int]:
    """Load matching tensors from ``path``; a classifier of another size is left as initialised."""
    state = read_state_dict(path)
    own = model.state_dict()
    matched = {k: v for k, v in state.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
    if not matched:
        raise UserError(f"weights file {path} has no tensors that fit this model ({type(model).__name__})")
    model.load_state_dict(matched, strict=False)
    report = {"loaded": len(matched), "skipped": len(state) - len(matched), "missing": len(own) - len(matched)}
    logger.info("loaded %(loaded)d tensors from weights file (%(skipped)d skipped, %(missing)d left)", report)
    return report


# -- the run folder's files as one unit ---------------------------------------------------------

STATE_DIR = "state"


def open_run_state(run: str | Path) -> None:
    """Undo what a kill inside the (non-exchange) fallback swap of ``RUN/state`` left, before reading a run."""
    state = Path(run) / STATE_DIR
    if Path(run).is_dir():
        try:
            note = recover(state)
        except OSError as exc:  # a read-only copy of a run: read what is there
            note = f"cannot restore {state} ({exc.strerror})"
        if note:
            logger.warning(note)


def _carry(src: Path, dst: Path) -> None:
    """An unchanged file into the new unit: a hard link (no copy of a large checkpoint), else a copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _link(run: Path, name: str) -> None:
    """``RUN/name`` -> ``state/name`` (relative), replacing whatever is there in one rename."""
    top = run / name
    target = f"{STATE_DIR}/{name}"
    if top.is_symlink() and os.readlink(top) == target:
        return
    tmp = run / f".{name}.link.tmp"
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    os.symlink(target, tmp)
    os.replace(tmp, top)


@contextmanager
def run_state(run: str | Path) -> Iterator[Path]:
    """A folder to write this epoch's run files into; on success it replaces ``RUN/state`` as a whole.

    Files the block does not write are carried over from the current unit (hard links), or, for a
    run written before units existed, from the plain files at the top of ``RUN``. Top-level names new
    to the run are linked before the swap (a link to a file not there yet reads as "not written");
    plain legacy files are replaced by links only after it, so a kill never loses one.
    """
    run = Path(run)
    current = run / STATE_DIR
    open_run_state(run)
    for name in LINKED:  # a link being made when a run was killed
        if (run / f".{name}.link.tmp").is_symlink():
            (run / f".{name}.link.tmp").unlink()
    with atomic_dir(current) as tmp:
        yield tmp
        source = current if current.is_dir() else run
        for name in LINKED:
            old = source / name
            if not (tmp / name).exists() and old.is_file():
                _carry(old, tmp / name)
        names = sorted(p.name for p in tmp.iterdir() if p.is_file() and p.name != MARKER)
        for name in names:
            if not (run / name).exists() and not (run / name).is_symlink():
                _link(run, name)
    for name in names:
        _link(run, name)


# the run files that live in RUN/state (cache/ and anything else stay at the top)
LINKED = ("best.pt", "last.pt", "metrics.json", "config.json", "history.csv", "loss.png", "metrics.png")
