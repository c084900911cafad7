"""Start-up hygiene for radtool's own processes: pay only for the libraries a command uses.

Two imports dominate a core command's start-up, and radtool uses neither:

* **torch through thinc.** ``thinc.compat`` imports torch whenever it is installed (the vision plugin
  installs it) to offer PyTorch layers; that is 1-4 s and ~0.5 GB per process (and per ``-n`` worker).
  :func:`hide_torch_from_thinc` makes *thinc's* ``import torch`` fail, nothing else's: the radgraph
  backend or the vision plugin can still import torch in the same process. It is switched on by the
  ``radtool`` command line for core commands only, never by ``import radtool`` or ``radtool.load()``,
  so library users who want spaCy's torch layers keep them. ``RADTOOL_THINC_TORCH=1`` turns it off.
* **medspaCy's package ``__init__``**, which imports QuickUMLS, nltk, scipy.stats and scikit-learn
  (~1 s) although radtool only uses ``medspacy.context``. :func:`import_medspacy_context` imports that
  subpackage without running the package ``__init__`` when medspaCy is not imported yet; a later
  ``import medspacy`` by anyone still runs the real ``__init__``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from types import ModuleType

_BLOCKED_FOR = ("thinc",)


class _HideTorchFromThinc:
    """A meta-path finder that refuses ``torch`` to importers inside thinc, and to no one else."""

    def find_spec(self, name, path=None, target=None):  # noqa: D401 - importlib protocol
        if name != "torch" and not name.startswith("torch."):
            return None
        frame = sys._getframe(1)
        while frame is not None:
            module = frame.f_globals.get("__name__", "")
            if not module.startswith(("importlib", "_frozen_importlib")) and module != __name__:
                if module.startswith(_BLOCKED_FOR):
                    raise ModuleNotFoundError(f"torch hidden from {module} by radtool (RADTOOL_THINC_TORCH=1 to allow)", name=name)
                return None
            frame = frame.f_back
        return None


def hide_torch_from_thinc() -> bool:
    """Install the finder unless thinc already imported torch or the user opted out. True if active."""
    if os.environ.get("RADTOOL_THINC_TORCH", "").strip() in ("1", "true", "yes"):
        return False
    if "thinc.compat" in sys.modules:  # too late: thinc made its choice
        return False
    if not any(isinstance(f, _HideTorchFromThinc) for f in sys.meta_path):
        sys.meta_path.insert(0, _HideTorchFromThinc())
    return True


def import_medspacy_context() -> ModuleType:
    """``medspacy.context`` without medspaCy's eager imports (QuickUMLS, nltk, scikit-learn).

    The package ``__init__`` of medspaCy is not run, and ``quickumls.spacy_component`` (imported by
    ``medspacy.util`` at module level) is bound as a lazy module that loads on first use. Both
    placeholders are removed from ``sys.modules`` afterwards, so a later ``import medspacy`` or
    ``import quickumls`` by anyone runs the real packages.
    """
    if "medspacy.context" in sys.modules:
        return sys.modules["medspacy.context"]
    if "medspacy" in sys.modules or "quickumls" in sys.modules:
        return importlib.import_module("medspacy.context")
    spec = importlib.util.find_spec("medspacy")
    if spec is None or not spec.submodule_search_locations:
        return importlib.import_module("medspacy.context")  # let the normal ImportError speak
    placeholders = {"medspacy": importlib.util.module_from_spec(spec)}  # package, __init__ not run
    qspec = importlib.util.find_spec("quickumls")
    if qspec is not None and qspec.submodule_search_locations:
        component = os.path.join(list(qspec.submodule_search_locations)[0], "spacy_component.py")
        cspec = importlib.util.spec_from_file_location("quickumls.spacy_component", component)
        if cspec is not None and cspec.loader is not None and os.path.exists(component):
            cspec.loader = importlib.util.LazyLoader(cspec.loader)
            lazy = importlib.util.module_from_spec(cspec)
            cspec.loader.exec_module(lazy)  # registers the lazy module; runs nothing yet
            quickumls = importlib.util.module_from_spec(qspec)
            quickumls.spacy_component = lazy
            placeholders["quickumls"] = quickumls
    sys.modules.update(placeholders)
    try:
        return importlib.import_module("medspacy.context")
    finally:
        for name, module in placeholders.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
        sys.meta_path.insert(0, _RealMedspacyLater())


class _RealMedspacyLater:
    """One-shot finder: when someone imports ``medspacy`` after :func:`import_medspacy_context`, run
    the real package ``__init__`` with the submodules already imported bound as its attributes."""

    def find_spec(self, name, path=None, target=None):
        if name != "medspacy":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec("medspacy")
        if spec is not None and spec.loader is not None:
            spec.loader = _BindImportedSubmodules(spec.loader)
        return spec


class _BindImportedSubmodules:
    def __init__(self, loader) -> None:
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        for full_name, submodule in list(sys.modules.items()):
            parent, _, child = full_name.rpartition(".")
            if parent == "medspacy" and submodule is not None:
                setattr(module, child, submodule)
        self.loader.exec_module(module)
