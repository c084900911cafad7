"""``radtool evaluate``: precision, recall, F1 and support per observation against a gold file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from ..errors import UserError, shown
from ..evaluate import evaluate, evaluate_kinds
from ..io import write_json
from ..io.text import read_text
from ._common import console, handle_errors
from .options import IdColOpt, OptionalOutOpt, QuietOpt


def _positive(value: str) -> frozenset[int]:
    try:
        out = frozenset(int(v) for v in value.split(",") if v.strip())
    except ValueError as exc:
        raise UserError(f"--positive must list label values such as 1 or 1,-1, not {value!r}") from exc
    if not out or not out <= {1, 0, -1}:
        raise UserError(f"--positive must list values among 1, 0, -1, not {value!r}")
    return out


def _ids(path: Path | None) -> set[str] | None:
    if path is None:
        return None
    if not path.is_file():
        raise UserError(f"ids file not found: {shown(path)}")
    return {line.strip() for line in read_text(path, "ids file", strict=True).splitlines() if line.strip()}


@handle_errors
def evaluate_cli(
    pred: Annotated[Path, typer.Option("--pred", help="Predicted labels.csv (radtool parse output or CheXpert layout).", show_default=False)],
    gold: Annotated[Path, typer.Option("--gold", help="Gold labels CSV.", show_default=False)],
    positive: Annotated[str, typer.Option("--positive", help="Label values counted as positive: 1, or 1,-1 to count uncertain as positive.")] = "1",
    id_col: IdColOpt = None,
    ids: Annotated[Optional[Path], typer.Option("--ids", help="Evaluate only the ids listed in this file (one per line).")] = None,
    include_empty: Annotated[bool, typer.Option("--include-empty", help="Keep observations with no gold positives in the micro/macro averages.")] = False,
    kinds: Annotated[bool, typer.Option("--kinds", help="Also F1 per observation for positive (1), negation (0), uncertainty (-1) and mention (any value), the CheXpert labeler's evaluation.")] = False,
    out: OptionalOutOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Per-observation precision, recall, F1 and support, micro and macro averaged.

    Rows match by id (the --id-col of both files), columns by name with the usual aliases
    (Effusion ~ Pleural Effusion, normal ~ No Finding).
    """
    wanted = _ids(ids)
    result = evaluate(pred, gold, positive=_positive(positive), id_col=id_col, ids=wanted, include_empty=include_empty)
    by_kind = evaluate_kinds(pred, gold, id_col=id_col, ids=wanted, include_empty=include_empty) if kinds else None
    if by_kind:
        result["kinds"] = {k: {key: v[key] for key in ("observations", "micro", "macro", "not_averaged")} for k, v in by_kind.items()}
    if out:
        write_json(out, result)
    if quiet:
        return
    table = Table(title=f"{result['reports']} reports, positive = {','.join(map(str, result['positive']))}")
    for col in ("observation", "precision", "recall", "F1", "support", "FP", "FN"):
        table.add_column(col, justify="left" if col == "observation" else "right")
    for name, s in result["observations"].items():
        note = " (no gold positives; not averaged)" if name in result["not_averaged"] else ""
        table.add_row(Text(shown(name) + note), f"{s['precision']:.3f}", f"{s['recall']:.3f}", f"{s['f1']:.3f}", str(s["support"]), str(s["fp"]), str(s["fn"]))
    for avg in ("micro", "macro"):
        s = result[avg]
        table.add_row(f"[bold]{avg}[/]", f"{s['precision']:.3f}", f"{s['recall']:.3f}", f"[bold]{s['f1']:.3f}[/]", str(s.get("support", "")), "", "")
    console.print(table)
    if by_kind:
        console.print(_kinds_table(by_kind))


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_cli)


def _kinds_table(by_kind: dict[str, dict]) -> Table:
    """F1 per observation and kind, with the gold count of that kind in brackets."""
    table = Table(title="F1 by kind (gold count): positive = 1, negation = 0, uncertainty = -1, mention = any value")
    table.add_column("observation")
    for kind in by_kind:
        table.add_column(kind, justify="right")
    first = next(iter(by_kind.values()))
    for name in first["observations"]:
        cells = []
        for res in by_kind.values():
            s = res["observations"][name]
            cells.append(f"{s['f1']:.3f} ({s['support']})" if s["support"] else f"- ({s['fp']} FP)")
        table.add_row(Text(shown(name)), *cells)
    for avg in ("micro", "macro"):
        table.add_row(f"[bold]{avg}[/]", *(f"[bold]{res[avg]['f1']:.3f}[/]" for res in by_kind.values()))
    return table
