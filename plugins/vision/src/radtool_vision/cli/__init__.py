"""``radtool classify``: the typer app the core mounts from the ``radtool_commands`` entry point.

One module per command; each ``<cmd>_cli`` parses options and calls a plain function from the
library. torch is imported only when a command runs, never when the app is mounted.
"""

from ._app import app  # first: the core CLI, imported by _util, mounts this very object
from . import evaluate, explain, plugins, predict, train  # noqa: F401  (registers the commands)

__all__ = ["app"]
