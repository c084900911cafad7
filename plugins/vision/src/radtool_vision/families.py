"""The seven built-in model families as one table of data, and the plugin contract they fill.

Like timm's ``_cfg`` dicts: a family is a row of :data:`FAMILIES` (default architecture, the timm
modules and torchvision name prefixes that belong to it, where Grad-CAM looks, the GPU batch
that fills an 80 GB card at 320 px), and :class:`ClassifierPlugin` is the one class that turns a
row into a plugin. Grad-CAM layers are dotted paths tried in order (timm layout first, then
torchvision's); see :func:`radtool_vision.models.resolve_layer`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .data_config import DataConfig, resolve_data_config
from .errors import UserError
from .models import TORCHVISION_PREFIX, check_pretrained, create_timm, create_torchvision, feature_module, resolve_layer

if TYPE_CHECKING:  # pragma: no cover
    import torch.nn as nn

logger = logging.getLogger(__name__)

FAMILIES: dict[str, dict[str, Any]] = {
    "convnext": dict(
        default_arch="convnext_tiny",
        description="ConvNeXt (timm); e.g. convnext_atto ... convnext_large, convnextv2_*",
        timm_modules=("convnext",), torchvision_prefixes=("convnext",),
        example_archs=("convnext_tiny", "convnext_small", "convnext_large", "convnext_atto"),
        gradcam_layers=("stages.-1", "features.-1"),
        cuda_batch_size=256,
    ),
    "densenet": dict(
        default_arch="densenet121",
        description="DenseNet (CheXNet-style); densenet121/169/201",
        timm_modules=("densenet",), torchvision_prefixes=("densenet",),
        example_archs=("densenet121", "densenet169", "densenet201"),
        gradcam_layers=("features.norm5", "features.-1"),
        cuda_batch_size=256,
    ),
    "resnet": dict(
        default_arch="resnet50",
        description="ResNet and variants (timm resnet module); resnet18 ... resnet152, resnet10t",
        timm_modules=("resnet",), torchvision_prefixes=("resnet", "wide_resnet", "resnext"),
        example_archs=("resnet18", "resnet34", "resnet50", "resnet10t"),
        gradcam_layers=("layer4.-1",),
        cuda_batch_size=256,
    ),
    "mobilenet": dict(
        default_arch="mobilenetv3_large_100",
        description="MobileNetV3/V4 (timm); small and fast",
        timm_modules=("mobilenetv3",), torchvision_prefixes=("mobilenet",),
        example_archs=("mobilenetv3_large_100", "mobilenetv3_small_050", "mobilenetv4_conv_small"),
        gradcam_layers=("blocks.-1", "features.-1"),  # last stage, before the 1x1 head conv
        cuda_batch_size=256,
    ),
    "vgg": dict(
        default_arch="vgg16_bn",
        description="VGG (timm); vgg11 ... vgg19_bn",
        timm_modules=("vgg",), torchvision_prefixes=("vgg",),
        example_archs=("vgg16_bn", "vgg16", "vgg19_bn", "vgg11"),
        gradcam_layers=("features.*ReLU",),  # last ReLU of the conv trunk, before pooling and the FC head
        cuda_batch_size=128,
    ),
    "efficientnet": dict(
        default_arch="efficientnet_b0",
        description="EfficientNet (timm efficientnet module); efficientnet_b0 ... b4, tf_efficientnetv2_*",
        timm_modules=("efficientnet",), torchvision_prefixes=("efficientnet",),
        example_archs=("efficientnet_b0", "efficientnet_b3", "tf_efficientnetv2_s"),
        gradcam_layers=("blocks.-1", "features.-1"),
        cuda_batch_size=256,
    ),
    "fusion": dict(
        kind="fusion",
        default_arch="vgg16,resnet50,convnext_tiny",
        description="VGG16 + ResNet50 + ConvNeXt features concatenated under one head (--arch a,b,c)",
        example_archs=("vgg16,resnet50,convnext_tiny",),
        cuda_batch_size=128,
    ),
}


@dataclass(frozen=True)
class ClassifierPlugin:
    """The plugin contract: a family of image classifiers the ``classify`` commands can train."""

    name: str
    default_arch: str
    description: str
    timm_modules: tuple[str, ...] = ()
    torchvision_prefixes: tuple[str, ...] = ()
    example_archs: tuple[str, ...] = ()
    gradcam_layers: tuple[str, ...] = ()
    cuda_batch_size: int = 128
    kind: str = "single"

    # -- architectures ----------------------------------------------------------------
    def check_arch(self, arch: str | None) -> str:
        """Return the architecture name to build, or raise a UserError naming the problem."""
        arch = (arch or self.default_arch).strip()
        if arch.startswith(TORCHVISION_PREFIX):
            import torchvision

            tv_name = arch[len(TORCHVISION_PREFIX):]
            if tv_name not in torchvision.models.list_models(module=torchvision.models):
                raise UserError(f"unknown torchvision architecture {tv_name!r} for plugin {self.name!r}")
            if not tv_name.startswith(self.torchvision_prefixes):
                raise UserError(
                    f"torchvision architecture {tv_name!r} is not in the {self.name} family "
                    f"(names start with {', '.join(self.torchvision_prefixes)})"
                )
            return arch
        import timm

        base = arch.split(".")[0]
        if not timm.is_model(base):
            raise UserError(
                f"unknown architecture {arch!r} for plugin {self.name!r}; "
                f"try one of {', '.join(self.example_archs)} or see timm.list_models()"
            )
        if base not in self.list_archs():
            raise UserError(
                f"architecture {arch!r} is not in the {self.name} family; "
                f"try one of {', '.join(self.example_archs)}"
            )
        return arch

    def list_archs(self) -> list[str]:
        import timm

        names: list[str] = []
        for module in self.timm_modules:
            names.extend(timm.list_models(module=module))
        return sorted(set(names))

    def check_pretrained(self, arch: str | None = None) -> list[str | None]:
        """Before any work: pretrained weights for each backbone are cached or downloadable (else UserError)."""
        return [check_pretrained(self.check_arch(arch))]

    # -- models -------------------------------------------------------------------------
    def create_model(
        self,
        arch: str | None = None,
        num_classes: int = 4,
        pretrained: bool = False,
        weights: str | Path | None = None,
    ) -> "nn.Module":
        """Build a classifier with ``num_classes`` logits.

        ``pretrained`` uses the library's own weights (from the local hub cache when they are
        there, else downloaded); ``weights`` loads a local checkpoint instead (a radtool
        ``best.pt``, a timm/torchvision state dict or a ``.safetensors`` file).
        """
        from .checkpoint import load_weights

        arch = self.check_arch(arch)
        if num_classes < 1:
            raise UserError("at least one class is needed")
        use_library_weights = pretrained and weights is None
        if arch.startswith(TORCHVISION_PREFIX):
            if use_library_weights:
                check_pretrained(arch)
            model = create_torchvision(arch[len(TORCHVISION_PREFIX):], num_classes, use_library_weights)
        else:
            local = check_pretrained(arch) if use_library_weights else None
            model = create_timm(arch, num_classes, use_library_weights, local)
        if weights is not None:
            load_weights(model, weights)
        return model

    def gradcam_target_layers(self, model: "nn.Module") -> list["nn.Module"]:
        for path in self.gradcam_layers:
            try:
                return [resolve_layer(model, path)]
            except (AttributeError, IndexError, TypeError):
                continue
        logger.debug("no family Grad-CAM layer in %s; using timm feature_info", type(model).__name__)
        return [feature_module(model)]

    def data_config(self, model: "nn.Module", image_size: int = 320) -> DataConfig:
        return resolve_data_config(model, image_size)


def family_of(model: "nn.Module") -> ClassifierPlugin | None:
    """The built-in family a timm model belongs to, by its class name (ConvNeXt, DenseNet, ResNet, ...)."""
    name = type(model).__name__.lower()
    for family, spec in FAMILIES.items():
        if spec.get("kind", "single") == "single" and family in name:
            return ClassifierPlugin(name=family, **spec)
    return None
