"""Checkpoints: the one place that writes and reads ``best.pt`` / ``last.pt`` and reads ``--weights`` files.

Like timm's ``load_checkpoint`` / ``clean_state_dict``: every file is read with
``torch.load(weights_only=True)`` (tensors and plain values only, never arbitrary pickles), state
dicts are cleaned of DDP (``module.``) and ``torch.compile`` (``_orig_mod.``) prefixes, and a
checkpoint is always built by :func:`checkpoint_dict`, whether it is the best epoch (weights and
what inference needs) or the last one (plus optimiser and loop state, for ``--resume``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
