"""The preprocessing a model expects, taken from the model itself (timm's ``resolve_model_data_config``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch.nn as nn


@dataclass(frozen=True)
class DataConfig:
    """Square input size and per-channel mean/std.

    ``interpolation`` is the model's own preference, kept for reference: images are always
    resized once, with antialiased bilinear filtering, when they enter the cache.
    """

    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bilinear"

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_size": self.image_size,
            "mean": list(self.mean),
            "std": list(self.std),
            "interpolation": self.interpolation,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DataConfig":
        return cls(
            image_size=int(data["image_size"]),
            mean=tuple(float(v) for v in data["mean"]),  # type: ignore[arg-type]
            std=tuple(float(v) for v in data["std"]),  # type: ignore[arg-type]
            interpolation=str(data.get("interpolation", "bilinear")),
        )


def resolve_data_config(model: "nn.Module", image_size: int) -> DataConfig:
    """Mean/std/interpolation from the model's pretrained config; the size is ours (``--image-size``)."""
    from timm.data import resolve_model_data_config

    cfg = resolve_model_data_config(model)
    mean = tuple(float(v) for v in cfg["mean"])
    std = tuple(float(v) for v in cfg["std"])
    if len(mean) == 1:  # single-channel configs: we always feed 3 replicated channels
        mean, std = mean * 3, std * 3
    return DataConfig(image_size, mean, std, str(cfg.get("interpolation", "bilinear")))  # type: ignore[arg-type]
