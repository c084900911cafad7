"""``radtool stats``: verb, entity and noun-phrase counts, label prevalence, and bar charts of them."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..errors import UserError
from ..io import write_csv, write_json
from ._common import console, handle_errors, progress_bar

OUTPUTS = ("verbs.csv", "entities.csv", "noun_phrases.csv", "prevalence.csv", "top_verbs.png", "top_entities.png", "prevalence.png")


def _write_table(path: Path, rows: list[dict], header: list[str]) -> None:
    write_csv(path, header, ([r[h] for h in header] for r in rows))


def stats(input_path: Path, out: Path, id_col: str | None = None, text_cols: list[str] | None = None, schema: str = "chexpert",
          top: int = 20, show_progress: bool = False):
    """Count verbs, entities and noun phrases, tabulate label prevalence and draw the charts into ``out``.
    ``input_path`` is a parse folder (its graphs.jsonl is reused) or reports to parse. Returns the stats."""
    from ..analysis.corpus import load_corpus
    from ..analysis.stats import corpus_stats, plot_entities, plot_prevalence, plot_verbs

    if top < 1:
        raise UserError(f"--top must be at least 1, not {top}")
    if show_progress:
        with progress_bar(transient=True) as bar:
            task = bar.add_task("parsing distinct sentences", total=None)
            corpus = load_corpus(input_path, id_col, text_cols, schema, progress=lambda n: bar.advance(task, n))
    else:
        corpus = load_corpus(input_path, id_col, text_cols, schema)
    if not corpus.records:
        raise UserError(f"no reports in {input_path}")
    result = corpus_stats(corpus.records, corpus.columns)
    _write_table(out / "verbs.csv", result.verbs, ["verb", "count", "reports", "share_of_reports"])
    _write_table(out / "entities.csv", result.entities, ["entity", "type", "certainty", "count", "reports", "share_of_reports"])
    _write_table(out / "noun_phrases.csv", result.noun_phrases, ["noun_phrase", "count", "reports", "share_of_reports"])
    _write_table(out / "prevalence.csv", result.prevalence, ["observation", "present", "absent", "uncertain", "not_mentioned"])
    plot_verbs(result, out / "top_verbs.png", top)
    plot_entities(result, out / "top_entities.png", top)
    plot_prevalence(result, out / "prevalence.png")
    write_json(out / "stats.json", {"input": str(input_path), "source": corpus.source, "reports": result.reports,
                                    "distinct": {"verbs": len(result.verbs), "entities": len(result.entities),
                                                 "noun_phrases": len(result.noun_phrases)},
                                    "outputs": [*OUTPUTS, "stats.json"]})
    return result


def _print_top(title: str, rows: list[dict], columns: list[str], n: int) -> None:
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col, justify="right" if col in ("count", "reports", "share_of_reports", "present", "absent", "uncertain", "not_mentioned") else "left")
    for row in rows[:n]:
        table.add_row(*(f"{row[c]:.1%}" if c == "share_of_reports" else str(row[c]) for c in columns))
    console.print(table)


def register(app: typer.Typer) -> None:
    @app.command("stats")
    @handle_errors
    def stats_cli(
        input_path: Path = typer.Argument(..., help="A radtool parse folder (graphs.jsonl is reused) or reports: CSV/TSV, JSONL, or a folder of .txt files.", show_default=False),
        out: Path = typer.Option(Path("radtool-stats"), "--out", "-o", help="Output folder."),
        id_col: Optional[str] = typer.Option(None, "--id-col", help="Id column when parsing reports."),
        text_col: Optional[list[str]] = typer.Option(None, "--text-col", help="Text column when parsing reports; repeatable (default: findings + impression, else report/text)."),
        schema: str = typer.Option("chexpert", "--schema", help="Label schema when parsing reports: chexpert, chestxray14, or a schema JSON path."),
        top: int = typer.Option(20, "--top", help="Bars in the top-verbs and top-entities charts."),
        rows: int = typer.Option(10, "--rows", help="Rows of each table printed in the terminal."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or tables."),
    ) -> None:
        """Corpus statistics: verbs, entities, noun phrases, label prevalence (CSV) and bar charts (PNG)."""
        result = stats(input_path, out, id_col=id_col, text_cols=text_col, schema=schema, top=top, show_progress=not quiet)
        if quiet:
            return
        _print_top(f"verbs ({len(result.verbs)} distinct)", result.verbs, ["verb", "count", "reports", "share_of_reports"], rows)
        _print_top(f"entities ({len(result.entities)} distinct)", result.entities, ["entity", "type", "certainty", "count", "reports"], rows)
        _print_top(f"noun phrases ({len(result.noun_phrases)} distinct)", result.noun_phrases, ["noun_phrase", "count", "reports", "share_of_reports"], rows)
        _print_top(f"label prevalence ({result.reports} reports)", result.prevalence, ["observation", "present", "absent", "uncertain", "not_mentioned"], len(result.prevalence))
        console.print(f"{result.reports} reports → {out} ({', '.join(OUTPUTS)})")
