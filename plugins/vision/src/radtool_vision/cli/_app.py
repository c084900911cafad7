"""The ``classify`` typer app object, in a module of its own that imports nothing from radtool.

Importing ``radtool.cli`` mounts the plugins' apps; this package is one of them, so ``app`` must
exist before this package imports the core's CLI helpers (``_util``), or the import is circular.
"""

import typer

app = typer.Typer(
    name="classify",
    help="Train, evaluate and explain chest X-ray image classifiers on radtool labels.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
