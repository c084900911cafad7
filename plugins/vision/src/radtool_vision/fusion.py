"""The ``fusion`` family: several timm backbones side by side, their pre-logits features under one head.

Each branch runs ``forward_features`` then ``forward_head(x, pre_logits=True)``, so every branch
keeps its own pooling and head norm (ConvNeXt's LayerNorm, VGG's fully connected ``pre_logits``),
exactly as it was pretrained; the features are concatenated and one dropout + linear layer gives
the logits. Each branch gets the input renormalised to its own mean/std, so mixed families work.
"""

from __future__ import annotations

from dataclasses import dataclass

from .data_config import resolve_data_config
from .errors import UserError
from .families import ClassifierPlugin, family_of
from .models import TORCHVISION_PREFIX, check_pretrained, create_timm, feature_module


def _fusion_net_class():
    import torch
    import torch.nn as nn

    class FusionNet(nn.Module):
        def __init__(self, archs: list[str], num_classes: int, pretrained: bool, drop_rate: float = 0.2,
                     weights_files: list[str | None] | None = None):
            super().__init__()
            self.archs = list(archs)
            self.branches = nn.ModuleList()
            dims: list[int] = []
            means, stds = [], []
            files = weights_files or [None] * len(archs)
            for arch, local in zip(archs, files):
                branch = create_timm(arch, 0, pretrained, local)
                dims.append(int(getattr(branch, "head_hidden_size", None) or branch.num_features))
                cfg = resolve_data_config(branch, 64)
                means.append(cfg.mean)
                stds.append(cfg.std)
                self.branches.append(branch)
            self.pretrained_cfg = dict(getattr(self.branches[0], "pretrained_cfg", {}) or {})
            # the input arrives normalised for branch 0; branch i needs x * scale[i] + shift[i].
            # 2-D buffers: model.to(memory_format=channels_last) converts 4-D tensors and refuses 5-D ones
            mean, std = torch.tensor(means), torch.tensor(stds)
            self.register_buffer("branch_scale", std[0] / std, persistent=False)
            self.register_buffer("branch_shift", (mean[0] - mean) / std, persistent=False)
            self.num_features = self.head_hidden_size = sum(dims)
            self.head_drop = nn.Dropout(drop_rate)
            self.head = nn.Linear(self.num_features, num_classes)

        def forward_features(self, x: torch.Tensor) -> torch.Tensor:
            """Concatenated pre-logits features of every branch, (B, sum of branch widths)."""
            feats = []
            for i, branch in enumerate(self.branches):
                xi = x if i == 0 else x * self.branch_scale[i].view(1, -1, 1, 1) + self.branch_shift[i].view(1, -1, 1, 1)
                f = branch.forward_head(branch.forward_features(xi), pre_logits=True)
                feats.append(f.flatten(1) if f.dim() == 2 else f.float().mean(dim=tuple(range(2, f.dim()))).to(f.dtype))
            return torch.cat(feats, dim=1)

        def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
            x = self.head_drop(x)
            return x if pre_logits else self.head(x)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.forward_head(self.forward_features(x))

        def get_classifier(self) -> nn.Module:
            return self.head

    return FusionNet


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

    def check_pretrained(self, arch: str | None = None) -> list[str | None]:
        return [check_pretrained(a) for a in self.check_arch(arch).split(",")]

    def create_model(self, arch=None, num_classes=4, pretrained=False, weights=None):  # type: ignore[override]
        from .checkpoint import load_weights

        archs = self.check_arch(arch).split(",")
        if num_classes < 1:
            raise UserError("at least one class is needed")
        use_library_weights = pretrained and weights is None
        files = [check_pretrained(a) for a in archs] if use_library_weights else None
        model = _fusion_net_class()(archs, num_classes, use_library_weights, weights_files=files)
        if weights is not None:
            load_weights(model, weights)
        return model

    def gradcam_target_layers(self, model):  # type: ignore[override]
        layers = []
        for branch in model.branches:
            family = family_of(branch)
            layers.extend(family.gradcam_target_layers(branch) if family else [feature_module(branch)])
        return layers

    def data_config(self, model, image_size=320):  # type: ignore[override]
        return resolve_data_config(model.branches[0], image_size)
