"""Classifier plugins: one small typed object per model family, found through entry points.

A plugin knows its default architecture, which architectures belong to its family, how to
build a model (timm's ``create_model`` or a torchvision builder for ``tv:NAME``), which layers
Grad-CAM should look at, and the preprocessing the model expects (from timm's
``resolve_model_data_config``, never hard-coded). The entry-point group is
``radtool_classifiers``; each name maps to a zero-argument factory defined at the bottom.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    import torch.nn as nn

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "radtool_classifiers"
TORCHVISION_PREFIX = "tv:"


@dataclass(frozen=True)
class DataConfig:
    """Preprocessing a model expects: square input size and per-channel mean/std.

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


def _resolve_data_config(model: "nn.Module", image_size: int) -> DataConfig:
    from timm.data import resolve_model_data_config

    cfg = resolve_model_data_config(model)
    mean = tuple(float(v) for v in cfg["mean"])
    std = tuple(float(v) for v in cfg["std"])
    if len(mean) == 1:  # single-channel configs: we always feed 3 replicated channels
        mean, std = mean * 3, std * 3
    return DataConfig(image_size, mean, std, str(cfg.get("interpolation", "bilinear")))  # type: ignore[arg-type]


def _last_module(model: "nn.Module", kinds: tuple[type, ...]) -> "nn.Module":
    last = None
    for module in model.modules():
        if isinstance(module, kinds):
            last = module
    if last is None:
        raise UserError(f"cannot find a layer for Grad-CAM in {type(model).__name__}")
    return last


def _feature_module(model: "nn.Module") -> "nn.Module":
    """The module that produces the last feature map, as timm's feature_info names it."""
    import torch.nn as nn

    info = getattr(model, "feature_info", None)
    if info:
        name = info[-1]["module"] if isinstance(info, list) else info.module_name()[-1]
        try:
            return model.get_submodule(name)
        except AttributeError:
            pass
    return _last_module(model, (nn.Conv2d,))


def _target_convnext(model: "nn.Module") -> list["nn.Module"]:
    if hasattr(model, "stages"):  # timm
        return [model.stages[-1]]
    return [model.features[-1]]  # torchvision


def _target_densenet(model: "nn.Module") -> list["nn.Module"]:
    features = model.features
    return [getattr(features, "norm5", features[-1])]


def _target_resnet(model: "nn.Module") -> list["nn.Module"]:
    return [model.layer4[-1]]


def _target_blocks(model: "nn.Module") -> list["nn.Module"]:
    if hasattr(model, "blocks"):  # timm MobileNetV3 / EfficientNet: last stage, before 1x1 head
        return [model.blocks[-1]]
    return [model.features[-1]]  # torchvision


def _target_vgg(model: "nn.Module") -> list["nn.Module"]:
    import torch.nn as nn

    # the last ReLU of the conv trunk: after it comes max-pooling and the (fully connected) head
    return [_last_module(model.features, (nn.ReLU,))]


@dataclass(frozen=True)
class ClassifierPlugin:
    """The plugin contract: a family of image classifiers the ``classify`` commands can train."""

    name: str
    default_arch: str
    description: str
    timm_modules: tuple[str, ...] = ()
    torchvision_prefixes: tuple[str, ...] = ()
    example_archs: tuple[str, ...] = ()
    target_layers: Callable[["nn.Module"], list["nn.Module"]] | None = field(default=None, repr=False)

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
        family = set()
        for module in self.timm_modules:
            family.update(timm.list_models(module=module))
        if base not in family:
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

    # -- models -------------------------------------------------------------------------
    def create_model(
        self,
        arch: str | None = None,
        num_classes: int = 4,
        pretrained: bool = False,
        weights: str | Path | None = None,
    ) -> "nn.Module":
        """Build a classifier with ``num_classes`` logits.

        ``pretrained`` uses the library's own weight loading (timm's cache, or torchvision's
        hub cache for ``tv:`` names); ``weights`` loads a local checkpoint instead (a radtool
        ``best.pt``, a timm/torchvision state dict or a ``.safetensors`` file).
        """
        arch = self.check_arch(arch)
        if num_classes < 1:
            raise UserError("at least one class is needed")
        use_library_weights = pretrained and weights is None
        if arch.startswith(TORCHVISION_PREFIX):
            model = _create_torchvision(arch[len(TORCHVISION_PREFIX):], num_classes, use_library_weights)
        else:
            model = _create_timm(arch, num_classes, use_library_weights)
        if weights is not None:
            load_weights(model, weights)
        return model

    def gradcam_target_layers(self, model: "nn.Module") -> list["nn.Module"]:
        if self.target_layers is not None:
            try:
                return self.target_layers(model)
            except (AttributeError, IndexError, TypeError):
                logger.debug("family rule found no Grad-CAM layer; using timm feature_info")
        return [_feature_module(model)]

    def data_config(self, model: "nn.Module", image_size: int = 320) -> DataConfig:
        return _resolve_data_config(model, image_size)


def _create_timm(arch: str, num_classes: int, pretrained: bool) -> "nn.Module":
    import timm

    try:
        return timm.create_model(arch, pretrained=pretrained, num_classes=num_classes)
    except Exception as exc:  # noqa: BLE001 - any failure to fetch weights is a user-fixable problem
        if not pretrained:
            raise
        raise UserError(
            f"could not load pretrained weights for {arch} ({type(exc).__name__}); they must already be in "
            "the local timm/Hugging Face cache: pass --weights FILE for a local checkpoint or --no-pretrained"
        ) from exc


def _create_torchvision(name: str, num_classes: int, pretrained: bool) -> "nn.Module":
    import torchvision

    if not pretrained:
        return torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    try:
        model = torchvision.models.get_model(name, weights="DEFAULT")
    except Exception as exc:  # noqa: BLE001
        raise UserError(
            f"could not load pretrained torchvision weights for {name} ({type(exc).__name__}); "
            "pass --weights FILE for a local checkpoint or --no-pretrained"
        ) from exc
    _replace_torchvision_head(model, num_classes)
    return model


def _replace_torchvision_head(model: "nn.Module", num_classes: int) -> None:
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


def read_state_dict(path: str | Path) -> dict[str, Any]:
    """Read tensors from a checkpoint without unpickling arbitrary objects."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise UserError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return dict(load_file(str(path)))
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"cannot read weights file {path}: {type(exc).__name__}") from exc
    for key in ("model", "state_dict", "model_state_dict", "state_dict_ema"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        raise UserError(f"weights file {path} does not hold a state dict")
    return {k.removeprefix("module."): v for k, v in obj.items() if isinstance(k, str)}


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


# -- fusion -------------------------------------------------------------------------------


def _fusion_net_class():
    import torch
    import torch.nn as nn

    class FusionNet(nn.Module):
        """Several timm backbones side by side; their pooled features are concatenated under one head.

        Each branch gets the input renormalised to its own mean/std, so mixed families work.
        """

        def __init__(self, archs: list[str], num_classes: int, pretrained: bool, drop_rate: float = 0.2):
            super().__init__()
            self.archs = list(archs)
            self.branches = nn.ModuleList()
            dims: list[int] = []
            means, stds = [], []
            for arch in archs:
                branch = _create_timm(arch, 0, pretrained)
                dims.append(_prune_unused_head(branch))
                cfg = _resolve_data_config(branch, 64)
                means.append(cfg.mean)
                stds.append(cfg.std)
                self.branches.append(branch)
            self.pretrained_cfg = dict(getattr(self.branches[0], "pretrained_cfg", {}) or {})
            self.register_buffer("branch_mean", torch.tensor(means).view(len(archs), 1, 3, 1, 1), persistent=False)
            self.register_buffer("branch_std", torch.tensor(stds).view(len(archs), 1, 3, 1, 1), persistent=False)
            self.num_features = sum(dims)
            self.head_drop = nn.Dropout(drop_rate)
            self.head = nn.Linear(self.num_features, num_classes)

        def forward_features(self, x: torch.Tensor) -> torch.Tensor:
            raw = x * self.branch_std[0] + self.branch_mean[0]  # input is normalised for branch 0
            pooled = []
            for i, branch in enumerate(self.branches):
                xi = x if i == 0 else (raw - self.branch_mean[i]) / self.branch_std[i]
                fmap = branch.forward_features(xi)
                pooled.append(fmap.float().mean(dim=(2, 3)).to(fmap.dtype))
            return torch.cat(pooled, dim=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.head_drop(self.forward_features(x)))

        def get_classifier(self) -> nn.Module:
            return self.head

    return FusionNet


def _prune_unused_head(branch: "nn.Module") -> int:
    """Replace top-level children that ``forward_features`` never uses by Identity.

    DDP refuses parameters that get no gradient, and VGG's fully connected ``pre_logits``
    alone holds ~100M of them. Returns the channel count of the feature map.
    """
    import torch
    import torch.nn as nn

    was_training = branch.training
    branch.eval()
    x = torch.zeros(1, 3, 64, 64)
    out = branch.forward_features(x)
    out.float().sum().backward()
    for name, child in list(branch.named_children()):
        params = list(child.parameters())
        if params and all(p.grad is None for p in params):
            setattr(branch, name, nn.Identity())
    branch.zero_grad(set_to_none=True)
    branch.train(was_training)
    return int(out.shape[1])


@dataclass(frozen=True)
class FusionPlugin(ClassifierPlugin):
    """VGG16 + ResNet50 + ConvNeXt (or any comma-separated timm archs) concatenated under one head."""

    def check_arch(self, arch: str | None) -> str:
        import timm

        names = [a.strip() for a in (arch or self.default_arch).replace("+", ",").split(",") if a.strip()]
        if len(names) < 2:
            raise UserError(f"fusion needs at least two comma-separated architectures, got {arch!r}")
        for name in names:
            if name.startswith(TORCHVISION_PREFIX):
                raise UserError("fusion branches must be timm architectures (no tv: names)")
            if not timm.is_model(name.split(".")[0]):
                raise UserError(f"unknown architecture {name!r} in fusion --arch {arch!r}")
        return ",".join(names)

    def list_archs(self) -> list[str]:
        return [self.default_arch]

    def create_model(self, arch=None, num_classes=4, pretrained=False, weights=None):  # type: ignore[override]
        archs = self.check_arch(arch).split(",")
        if num_classes < 1:
            raise UserError("at least one class is needed")
        model = _fusion_net_class()(archs, num_classes, pretrained and weights is None)
        if weights is not None:
            load_weights(model, weights)
        return model

    def gradcam_target_layers(self, model):  # type: ignore[override]
        layers = []
        for branch in model.branches:
            family = _family_of(branch)
            layers.extend(family.gradcam_target_layers(branch) if family else [_feature_module(branch)])
        return layers

    def data_config(self, model, image_size=320):  # type: ignore[override]
        return _resolve_data_config(model.branches[0], image_size)


def _family_of(model: "nn.Module") -> ClassifierPlugin | None:
    name = type(model).__name__.lower()
    for factory in (convnext, densenet, resnet, mobilenet, vgg, efficientnet):
        plugin = factory()
        if plugin.name in name:  # ConvNeXt, DenseNet, ResNet, MobileNetV3, VGG, EfficientNet
            return plugin
    return None


# -- entry-point factories ----------------------------------------------------------------


def convnext() -> ClassifierPlugin:
    return ClassifierPlugin(
        name="convnext",
        default_arch="convnext_tiny",
        description="ConvNeXt (timm); e.g. convnext_atto ... convnext_large, convnextv2_*",
        timm_modules=("convnext",),
        torchvision_prefixes=("convnext",),
        example_archs=("convnext_tiny", "convnext_small", "convnext_large", "convnext_atto"),
        target_layers=_target_convnext,
    )


def densenet() -> ClassifierPlugin:
    return ClassifierPlugin(
        name="densenet",
        default_arch="densenet121",
        description="DenseNet (CheXNet-style); densenet121/169/201",
        timm_modules=("densenet",),
        torchvision_prefixes=("densenet",),
        example_archs=("densenet121", "densenet169", "densenet201"),
        target_layers=_target_densenet,
    )


def resnet() -> ClassifierPlugin:
    return ClassifierPlugin(
        name="resnet",
        default_arch="resnet50",
        description="ResNet and variants (timm resnet module); resnet18 ... resnet152, resnet10t",
        timm_modules=("resnet",),
        torchvision_prefixes=("resnet", "wide_resnet", "resnext"),
        example_archs=("resnet18", "resnet34", "resnet50", "resnet10t"),
        target_layers=_target_resnet,
    )


def mobilenet() -> ClassifierPlugin:
    return ClassifierPlugin(
        name="mobilenet",
        default_arch="mobilenetv3_large_100",
        description="MobileNetV3/V4 (timm); small and fast",
        timm_modules=("mobilenetv3",),
        torchvision_prefixes=("mobilenet",),
        example_archs=("mobilenetv3_large_100", "mobilenetv3_small_050", "mobilenetv4_conv_small"),
        target_layers=_target_blocks,
    )


def vgg() -> ClassifierPlugin:
    return ClassifierPlugin(
        name="vgg",
        default_arch="vgg16_bn",
        description="VGG (timm); vgg11 ... vgg19_bn",
        timm_modules=("vgg",),
        torchvision_prefixes=("vgg",),
        example_archs=("vgg16_bn", "vgg16", "vgg19_bn", "vgg11"),
        target_layers=_target_vgg,
    )


def efficientnet() -> ClassifierPlugin:
    return ClassifierPlugin(
        name="efficientnet",
        default_arch="efficientnet_b0",
        description="EfficientNet (timm efficientnet module); efficientnet_b0 ... b4, tf_efficientnetv2_*",
        timm_modules=("efficientnet",),
        torchvision_prefixes=("efficientnet",),
        example_archs=("efficientnet_b0", "efficientnet_b3", "tf_efficientnetv2_s"),
        target_layers=_target_blocks,
    )


def fusion() -> ClassifierPlugin:
    return FusionPlugin(
        name="fusion",
        default_arch="vgg16,resnet50,convnext_tiny",
        description="VGG16 + ResNet50 + ConvNeXt features concatenated under one head (--arch a,b,c)",
        example_archs=("vgg16,resnet50,convnext_tiny",),
    )


BUILTIN_FACTORIES: dict[str, Callable[[], ClassifierPlugin]] = {
    "convnext": convnext,
    "densenet": densenet,
    "resnet": resnet,
    "mobilenet": mobilenet,
    "vgg": vgg,
    "efficientnet": efficientnet,
    "fusion": fusion,
}


def available_plugins() -> dict[str, str]:
    """Installed plugins as ``{name: "module:factory"}``, read from the entry points.

    When this distribution is not installed (running from a source tree), the built-in
    plugins are reported so the commands still work.
    """
    found = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if not found:
        found = {name: f"{__name__}:{f.__name__}" for name, f in BUILTIN_FACTORIES.items()}
    return dict(sorted(found.items()))


def load_plugin(name: str) -> ClassifierPlugin:
    """Load the plugin registered under ``name``, or raise a UserError listing what exists."""
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            plugin = ep.load()()
            break
    else:
        if name in BUILTIN_FACTORIES and not entry_points(group=ENTRY_POINT_GROUP):
            plugin = BUILTIN_FACTORIES[name]()
        else:
            names = ", ".join(available_plugins()) or "(none)"
            raise UserError(f"unknown classifier plugin {name!r}; installed plugins are: {names}")
    if not hasattr(plugin, "create_model") or not hasattr(plugin, "gradcam_target_layers"):
        raise UserError(f"plugin {name!r} does not provide create_model and gradcam_target_layers")
    return plugin
