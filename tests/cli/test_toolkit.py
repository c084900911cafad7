"""One CLI toolkit: every core command is an importable module-level function on the shared options."""

from __future__ import annotations

import importlib
import inspect
import re

import pytest
from typer.testing import CliRunner

from radtool.cli import COMMAND_MODULES, app
from radtool.cli import options

SHARED = {"--out": options.OUT_HELP, "--quiet": None}


@pytest.mark.parametrize("name", COMMAND_MODULES)
def test_command_is_a_module_level_function(name: str) -> None:
    module = importlib.import_module(f"radtool.cli.{name}")
    func = getattr(module, f"{name}_cli")
    assert inspect.isfunction(func) and func.__module__ == module.__name__


@pytest.mark.parametrize("name", COMMAND_MODULES)
def test_help_is_one_toolkit(name: str) -> None:
    result = CliRunner().invoke(app, [name, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    text = result.output
    assert "<bool>" not in text  # flags take no value
    if "--quiet" in text:
        assert re.search(r"--quiet\s+-q\s+No progress bar or tables", text)
    if re.search(r"--out\s+-o", text) is None:
        pytest.fail(f"radtool {name} has no --out/-o")


def test_shared_option_declarations_are_used() -> None:
    """--id-col / --text-col / --schema / --quiet come from radtool.cli.options wherever a command has them."""
    shared = {"id_col": "IdColOpt", "text_col": "TextColOpt", "schema": "SchemaOpt", "quiet": "QuietOpt"}
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"radtool.cli.{name}")
        params = inspect.signature(getattr(module, f"{name}_cli")).parameters
        for param, alias in shared.items():
            if param in params:
                annotation = params[param].annotation
                assert annotation in (alias, getattr(options, alias)), f"radtool {name}: {param} is declared by hand ({annotation!r})"
