"""``radtool show``: one report as an HTML page (entity spans, relation arcs) and a PNG of its graph."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UserError
from ._common import console, handle_errors
from .options import OutOpt, SchemaOpt

OUTPUTS = ("report.html", "graph.png")


def find_record(parse_dir: Path, report_id: str) -> dict:
    """Report ``report_id`` of a parse folder, reading graphs.jsonl only up to it."""
    from ..analysis.corpus import is_parse_dir, iter_records

    if not parse_dir.exists():
        raise UserError(f"parse folder not found: {parse_dir}")
    if not is_parse_dir(parse_dir):
        raise UserError(f"{parse_dir} is not a radtool parse folder (no graphs.jsonl); run radtool parse first")
    for record in iter_records(parse_dir / "graphs.jsonl"):
        if record["id"] == report_id:
            return record
    raise UserError(f"report id {report_id!r} not found in {parse_dir}/graphs.jsonl")


def show(out: Path, text: str | None = None, report_id: str | None = None, parse_dir: Path | None = None,
         schema: str = "chexpert", short_labels: bool = False) -> dict:
    """Write ``report.html`` and ``graph.png`` for ``text`` (parsed now) or for report ``report_id`` of
    ``parse_dir`` into ``out`` (both replace the old ones together). Entity labels are RadGraph's long
    form (``Observation::uncertain``), or its short form (``OBS-U``) with ``short_labels``.
    Returns the report record."""
    from ..io.writers import atomic_dir, check_replaceable

    if (text is None) == (report_id is None):
        raise UserError("give either --text \"...\" or --id ID with --parse-dir DIR")
    check_replaceable(out, OUTPUTS)
    if text is not None:
        if not text.strip():
            raise UserError("--text is empty")
        from ..io.readers import Report
        from ..parse import ReportParser

        record = ReportParser(schema=schema).parse([Report(id="text", row=1, sections=[(None, text)])])[0]
    else:
        if parse_dir is None:
            raise UserError("--id needs --parse-dir DIR (a radtool parse output folder)")
        record = find_record(Path(parse_dir), report_id)
    from ..analysis.show import plot_graph, render_html

    with atomic_dir(out, OUTPUTS) as tmp:
        (tmp / "report.html").write_text(render_html(record, short_labels=short_labels), encoding="utf-8")
        plot_graph(record, tmp / "graph.png", short_labels=short_labels)
    return record


@handle_errors
def show_cli(
    text: Annotated[Optional[str], typer.Option("--text", help="Report text to parse and draw.")] = None,
    report_id: Annotated[Optional[str], typer.Option("--id", help="Id of a report in --parse-dir.")] = None,
    parse_dir: Annotated[Optional[Path], typer.Option("--parse-dir", help="A radtool parse output folder.")] = None,
    out: OutOpt = Path("radtool-show"),
    schema: SchemaOpt = "chexpert",
    short_labels: Annotated[bool, typer.Option("--short-labels", help="RadGraph's short entity labels (OBS-DA) instead of the long ones (Observation::definitely absent).")] = False,
) -> None:
    """Draw one report: entity spans and relation arcs (report.html) and its graph (graph.png)."""
    record = show(out, text=text, report_id=report_id, parse_dir=parse_dir, schema=schema, short_labels=short_labels)
    n_rel = sum(len(e["relations"]) for e in record["entities"].values())
    console.print(f"report {record['id']}: {len(record['entities'])} entities, {n_rel} relations → {out / 'report.html'}, {out / 'graph.png'}")


def register(app: typer.Typer) -> None:
    app.command("show")(show_cli)
