"""Building one backbone: timm's ``create_model`` (or a torchvision builder for ``tv:NAME``).

Pretrained weights are looked up in the local hub caches *before* anything is built, so a run
without network and without cached weights stops at once, in one line, instead of retrying
the hub for a minute after the image cache has been filled (:func:`check_pretrained`). Weights
found in the Hugging Face cache are handed to timm as a local file, so no request is made.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from .errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    import torch.nn as nn

logger = logging.getLogger(__name__)

TORCHVISION_PREFIX = "tv:"
HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
NETWORK_PROBE_TIMEOUT_S = 3.0
NO_WEIGHTS_HINT = (
    "pass --no-pretrained to train from random weights, --weights FILE for a local checkpoint, "
    "or fill the hub cache (~/.cache/huggingface, HF_HOME) on a machine with network and copy it here"
)


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache folder, read from the environment at call time."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface")
    return Path(home) / "hub"


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    host, port = parsed.hostname, parsed.port or (443 if parsed.scheme != "http" else 80)
    if not host:
        return False
    try:
        with socket.create_connection((host, port), timeout=NETWORK_PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def _cached_hf_file(repo_id: str, filename: str | None) -> str | None:
    from huggingface_hub import try_to_load_from_cache

    for name in (filename,) if filename else HF_WEIGHT_FILES:
        found = try_to_load_from_cache(repo_id, name, cache_dir=str(hf_hub_cache()))
        if isinstance(found, str) and os.path.isfile(found):
            return found
    return None


def _torch_hub_file(url: str) -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def check_pretrained(arch: str) -> str | None:
    """Make sure pretrained weights for ``arch`` can be had, before any work; return a local file to load.

    Returns the cached file (Hugging Face cache) or None when timm/torchvision will load or
    download it themselves. Raises a one-line UserError when the weights are neither cached nor
    reachable (``HF_HUB_OFFLINE=1``, or the hub does not answer within a few seconds).
    """
    if arch.startswith(TORCHVISION_PREFIX):
        import torchvision

        name = arch[len(TORCHVISION_PREFIX):]
        url = torchvision.models.get_model_weights(name).DEFAULT.url
        if _torch_hub_file(url).is_file():
            return None
        where, source = f"{_torch_hub_file(url).parent}", url
    else:
        from timm.models import get_pretrained_cfg

        cfg = get_pretrained_cfg(arch)
        hf_id = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
        url = getattr(cfg, "url", None) if cfg is not None else None
        if not hf_id and not url:
            raise UserError(f"timm has no pretrained weights for {arch}; {NO_WEIGHTS_HINT}")
        if hf_id:
            found = _cached_hf_file(hf_id, getattr(cfg, "hf_hub_filename", None))
            if found:
                return found
            endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
            where, source = f"{hf_hub_cache()} ({hf_id})", endpoint
        else:
            if _torch_hub_file(url).is_file():
                return None
            where, source = str(_torch_hub_file(url).parent), url
    if hub_offline():
        why = "HF_HUB_OFFLINE is set"
    elif not _reachable(source):
        why = f"{urlparse(source).hostname} cannot be reached"
    else:
        return None  # not cached, but the hub answers: timm downloads it
    raise UserError(f"pretrained weights for {arch} are not in the hub cache {where} and {why}; {NO_WEIGHTS_HINT}")


def create_timm(arch: str, num_classes: int, pretrained: bool, weights_file: str | None = None) -> "nn.Module":
    """timm's ``create_model``; ``weights_file`` (from :func:`check_pretrained`) avoids any hub request."""
    import timm

    if not pretrained:
        return timm.create_model(arch, pretrained=False, num_classes=num_classes)
    overlay = {"file": weights_file} if weights_file else None
    try:
        return timm.create_model(arch, pretrained=True, num_classes=num_classes, pretrained_cfg_overlay=overlay)
    except Exception as exc:  # noqa: BLE001 - any failure to fetch weights is a user-fixable problem
        raise UserError(f"could not load pretrained weights for {arch} ({type(exc).__name__}); {NO_WEIGHTS_HINT}") from exc


def create_torchvision(name: str, num_classes: int, pretrained: bool) -> "nn.Module":
    import torchvision

    if not pretrained:
        return torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    try:
        model = torchvision.models.get_model(name, weights="DEFAULT")
    except Exception as exc:  # noqa: BLE001
        raise UserError(
            f"could not load pretrained torchvision weights for {name} ({type(exc).__name__}); {NO_WEIGHTS_HINT}"
        ) from exc
    replace_torchvision_head(model, num_classes)
    return model


def replace_torchvision_head(model: "nn.Module", num_classes: int) -> None:
    import torch.nn as nn

    for attr in ("fc", "classifier", "heads"):
        head = getattr(model, attr, None)
        if head is None:
            continue
        if isinstance(head, nn.Linear):
            setattr(model, attr, nn.Linear(head.in_features, num_classes))
            return
        if isinstance(head, nn.Sequential):
            for i in range(len(head) - 1, -1, -1):
                if isinstance(head[i], nn.Linear):
                    head[i] = nn.Linear(head[i].in_features, num_classes)
                    return
    raise UserError(f"cannot find the classifier layer of torchvision model {type(model).__name__}")


def resolve_layer(model: "nn.Module", path: str) -> "nn.Module":
    """A submodule named by a dotted path: ``stages.-1``, ``features.norm5``, ``features.*ReLU``.

    A part ``-1`` indexes a sequence; ``*Kind`` is the last descendant whose class is named ``Kind``.
    Raises AttributeError/IndexError when the model has no such layer.
    """
    module = model
    for part in path.split("."):
        if part.startswith("*"):
            found = [m for m in module.modules() if any(c.__name__ == part[1:] for c in type(m).__mro__)]
            if not found:
                raise AttributeError(f"no {part[1:]} in {type(module).__name__}")
            module = found[-1]
        elif part.lstrip("-").isdigit():
            module = module[int(part)]  # type: ignore[index]
        else:
            module = getattr(module, part)
    return module


def feature_module(model: "nn.Module") -> "nn.Module":
    """The module that produces the last feature map, as timm's feature_info names it."""
    info = getattr(model, "feature_info", None)
    if info:
        name = info[-1]["module"] if isinstance(info, list) else info.module_name()[-1]
        try:
            return model.get_submodule(name)
        except AttributeError:
            pass
    return resolve_layer(model, "*Conv2d")
