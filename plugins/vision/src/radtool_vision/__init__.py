"""radtool-vision: chest X-ray image classifiers trained on radtool labels.

Importing this package is cheap: torch and timm are imported only when a model is built,
so the core can list plugins and mount the ``classify`` command without loading torch.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .plugins import ClassifierPlugin, DataConfig, available_plugins, load_plugin

__all__ = ["ClassifierPlugin", "DataConfig", "available_plugins", "load_plugin", "__version__"]
