"""``radtool stats``: verb, entity and noun-phrase counts, label prevalence, and bar charts of them.

Records are counted as they are read (graphs.jsonl line by line): memory holds the counters, not the corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..errors import UserError
from ..io import write_csv, write_json
from ..io.writers import atomic_dir, check_replaceable
from ._common import console, err_console, handle_errors, progress_bar
from .options import IdColOpt, OutOpt, QuietOpt, SchemaOpt, TextColOpt

OUTPUTS = ("verbs.csv", "entities.csv", "noun_phrases.csv", "prevalence.csv", "top_verbs.png", "top_entities.png", "prevalence.png")
ALL_OUTPUTS = [*OUTPUTS, "stats.json"]


def _write_table(path: Path, rows: list[dict], header: list[str]) -> None:
    write_csv(path, header, ([r[h] for h in header] for r in rows))


def stats(input_path: Path, out: Path, id_col: str | None = None, text_cols: list[str] | None = None, schema: str = "chexpert",
          top: int = 20, show_progress: bool = False):
    """Count verbs, entities and noun phrases, tabulate label prevalence and draw the charts into ``out``
    (all outputs replace the old ones together). ``input_path`` is a parse folder (its graphs.jsonl is
    read one record at a time) or reports to parse. Returns the stats."""
    from ..analysis.corpus import open_corpus
    from ..analysis.stats import StatsCounter, plot_entities, plot_prevalence, plot_verbs

    if top < 1:
        raise UserError(f"--top must be at least 1, not {top}")
    check_replaceable(out, ALL_OUTPUTS)
    counter = None
    if show_progress:
        with progress_bar(transient=True) as bar:
            task = bar.add_task("counting reports", total=None)
            corpus = open_corpus(input_path, id_col, text_cols, schema)
            counter = StatsCounter(corpus.columns)
            for record in corpus.records():
                counter.add(record)
                bar.advance(task, 1)
    else:
        corpus = open_corpus(input_path, id_col, text_cols, schema)
        counter = StatsCounter(corpus.columns).update(corpus.records())
    for warning in corpus.warnings:
        err_console.print(f"warning: {warning}", markup=False, highlight=False)
    if not counter.reports:
        raise UserError(f"no reports in {input_path}")
    result = counter.result()
    with atomic_dir(out, ALL_OUTPUTS) as tmp:
        _write_table(tmp / "verbs.csv", result.verbs, ["verb", "count", "reports", "share_of_reports"])
        _write_table(tmp / "entities.csv", result.entities, ["entity", "type", "certainty", "count", "reports", "share_of_reports"])
        _write_table(tmp / "noun_phrases.csv", result.noun_phrases, ["noun_phrase", "count", "reports", "share_of_reports"])
        _write_table(tmp / "prevalence.csv", result.prevalence, ["observation", "present", "absent", "uncertain", "not_mentioned"])
        plot_verbs(result, tmp / "top_verbs.png", top)
        plot_entities(result, tmp / "top_entities.png", top)
        plot_prevalence(result, tmp / "prevalence.png")
        write_json(tmp / "stats.json", {"input": str(input_path), "source": corpus.source, "reports": result.reports,
                                        "distinct": {"verbs": len(result.verbs), "entities": len(result.entities),
                                                     "noun_phrases": len(result.noun_phrases)},
                                        "warnings": corpus.warnings, "outputs": ALL_OUTPUTS})
    return result


def _print_top(title: str, rows: list[dict], columns: list[str], n: int) -> None:
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col, justify="right" if col in ("count", "reports", "share_of_reports", "present", "absent", "uncertain", "not_mentioned") else "left")
    for row in rows[:n]:
        table.add_row(*(f"{row[c]:.1%}" if c == "share_of_reports" else str(row[c]) for c in columns))
    console.print(table)


@handle_errors
def stats_cli(
    input_path: Annotated[Path, typer.Argument(help="A radtool parse folder (graphs.jsonl is reused) or reports: CSV/TSV, JSONL, or a folder of .txt files.", show_default=False)],
    out: OutOpt = Path("radtool-stats"),
    id_col: IdColOpt = None,
    text_col: TextColOpt = None,
    schema: SchemaOpt = "chexpert",
    top: Annotated[int, typer.Option("--top", help="Bars in the top-verbs and top-entities charts.")] = 20,
    rows: Annotated[int, typer.Option("--rows", help="Rows of each table printed in the terminal.")] = 10,
    quiet: QuietOpt = False,
) -> None:
    """Corpus statistics: verbs, entities, noun phrases, label prevalence (CSV) and bar charts (PNG)."""
    result = stats(input_path, out, id_col=id_col, text_cols=text_col, schema=schema, top=top, show_progress=not quiet)
    if quiet:
        return
    _print_top(f"verbs ({len(result.verbs)} distinct)", result.verbs, ["verb", "count", "reports", "share_of_reports"], rows)
    _print_top(f"entities ({len(result.entities)} distinct)", result.entities, ["entity", "type", "certainty", "count", "reports"], rows)
    _print_top(f"noun phrases ({len(result.noun_phrases)} distinct)", result.noun_phrases, ["noun_phrase", "count", "reports", "share_of_reports"], rows)
    _print_top(f"label prevalence ({result.reports} reports)", result.prevalence, ["observation", "present", "absent", "uncertain", "not_mentioned"], len(result.prevalence))
    console.print(f"{result.reports} reports → {out} ({', '.join(OUTPUTS)})", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("stats")(stats_cli)
