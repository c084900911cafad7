"""``radtool show``: one report as an HTML page (entity spans, relation arcs) and a PNG of its graph."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import UserError
from ..io import atomic_write
from ._common import console, handle_errors


def show(out: Path, text: str | None = None, report_id: str | None = None, parse_dir: Path | None = None,
         schema: str = "chexpert") -> dict:
    """Write ``report.html`` and ``graph.png`` for ``text`` (parsed now) or for report ``report_id`` of
    ``parse_dir``. Returns the report record."""
    from ..analysis.show import plot_graph, render_html

    if (text is None) == (report_id is None):
        raise UserError("give either --text \"...\" or --id ID with --parse-dir DIR")
    if text is not None:
        if not text.strip():
            raise UserError("--text is empty")
        from ..io.readers import Report
        from ..parse import ReportParser

        record = ReportParser(schema=schema).parse([Report(id="text", row=1, sections=[(None, text)])])[0]
    else:
        if parse_dir is None:
            raise UserError("--id needs --parse-dir DIR (a radtool parse output folder)")
        from ..analysis.corpus import load_parse_dir

        corpus = load_parse_dir(parse_dir)
        matches = [r for r in corpus.records if r["id"] == report_id]
        if not matches:
            raise UserError(f"report id {report_id!r} not found in {parse_dir}/graphs.jsonl")
        record = matches[0]
    with atomic_write(out / "report.html") as fh:
        fh.write(render_html(record))
    plot_graph(record, out / "graph.png")
    return record


def register(app: typer.Typer) -> None:
    @app.command("show")
    @handle_errors
    def show_cli(
        text: Optional[str] = typer.Option(None, "--text", help="Report text to parse and draw."),
        report_id: Optional[str] = typer.Option(None, "--id", help="Id of a report in --parse-dir."),
        parse_dir: Optional[Path] = typer.Option(None, "--parse-dir", help="A radtool parse output folder."),
        out: Path = typer.Option(Path("radtool-show"), "--out", "-o", help="Output folder for report.html and graph.png."),
        schema: str = typer.Option("chexpert", "--schema", help="Label schema for --text."),
    ) -> None:
        """Draw one report: entity spans and relation arcs (report.html) and its graph (graph.png)."""
        record = show(out, text=text, report_id=report_id, parse_dir=parse_dir, schema=schema)
        n_rel = sum(len(e["relations"]) for e in record["entities"].values())
        console.print(f"report {record['id']}: {len(record['entities'])} entities, {n_rel} relations → {out / 'report.html'}, {out / 'graph.png'}")
