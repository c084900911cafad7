"""Classifier plugins, found through the ``radtool_classifiers`` entry-point group.

A plugin is a zero-argument factory returning an object with the small contract of
:class:`~radtool_vision.families.ClassifierPlugin` (``check_arch``, ``create_model``,
``gradcam_target_layers``, ``data_config``, ``list_archs``). The built-in factories named in
this package's entry points (``radtool_vision.plugins:convnext`` ...) are thin names generated
from the family table in :mod:`radtool_vision.families`; there is no second list of them.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Callable

from .data_config import DataConfig
from .errors import UserError
from .families import FAMILIES, ClassifierPlugin
from .fusion import FusionPlugin

ENTRY_POINT_GROUP = "radtool_classifiers"
PLUGIN_CLASSES: dict[str, type[ClassifierPlugin]] = {"single": ClassifierPlugin, "fusion": FusionPlugin}


def create_plugin(name: str) -> ClassifierPlugin:
    """The built-in plugin ``name``, built from its row of :data:`FAMILIES`."""
    spec = dict(FAMILIES[name])
    return PLUGIN_CLASSES[spec.get("kind", "single")](name=name, **spec)


def _factory(name: str) -> Callable[[], ClassifierPlugin]:
    def factory() -> ClassifierPlugin:
        return create_plugin(name)

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = f"Entry point of the built-in {name!r} family."
    return factory


# the entry-point targets radtool_vision.plugins:<family>, one per row of the table
globals().update({name: _factory(name) for name in FAMILIES})


def available_plugins() -> dict[str, str]:
    """Installed plugins as ``{name: "module:factory"}``, read from the entry points.

    When this distribution is not installed (running from a source tree), the built-in
    families are reported so the commands still work.
    """
    found = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if not found:
        found = {name: f"{__name__}:{name}" for name in FAMILIES}
    return dict(sorted(found.items()))


def load_plugin(name: str) -> ClassifierPlugin:
    """Load the plugin registered under ``name``, or raise a UserError listing what exists."""
    eps = entry_points(group=ENTRY_POINT_GROUP)
    for ep in eps:
        if ep.name == name:
            plugin = ep.load()()
            break
    else:
        if name in FAMILIES and not eps:
            plugin = create_plugin(name)
        else:
            names = ", ".join(available_plugins()) or "(none)"
            raise UserError(f"unknown classifier plugin {name!r}; installed plugins are: {names}")
    if not hasattr(plugin, "create_model") or not hasattr(plugin, "gradcam_target_layers"):
        raise UserError(f"plugin {name!r} does not provide create_model and gradcam_target_layers")
    return plugin


__all__ = ["ENTRY_POINT_GROUP", "ClassifierPlugin", "DataConfig", "FusionPlugin", "available_plugins",
           "create_plugin", "load_plugin", *FAMILIES]
