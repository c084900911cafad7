"""``radtool similarity``: how alike reports are over noun phrases, verbs and entities; top-k neighbours,
an all-pairs matrix for small corpora, near-duplicates, and a histogram of top-1 similarities."""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer
from rich.table import Table

from ..errors import UserError
from ..io import write_csv, write_json
from ..io.writers import atomic_dir, check_replaceable
from ._common import console, err_console, handle_errors, progress_bar
from .options import IdColOpt, OutOpt, QuietOpt, SchemaOpt, TextColOpt

MATRIX_LIMIT = 5000
ROWS_PER_WRITE = 2048  # reports whose neighbour rows are formatted at a time
OUTPUTS = ["neighbors.csv", "matrix.csv", "near_duplicates.csv", "top1_similarity.png", "similarity.json"]


def _fmt(value: float) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


_FOUR_PLACES = np.array([f"{i / 10000:.4f}" for i in range(10001)], dtype=object)


def _fmt_scores(values: np.ndarray) -> list[str]:
    """``[_fmt(v) for v in values]`` for float32 scores, by table: a float32 times 10⁴ is exact in float64,
    so rounding it half to even (``rint``) gives the place that ``f"{v:.4f}"`` rounds to. Anything else
    (another dtype, a value outside 0 … 1) is formatted one at a time."""
    if values.dtype != np.float32:
        return [_fmt(float(v)) for v in values]
    scaled = np.rint(values.astype(np.float64) * 10000)
    nan = np.isnan(scaled)
    known = scaled[~nan]
    if not ((known >= 0) & (known <= 10000)).all():
        return [_fmt(float(v)) for v in values]
    out = _FOUR_PLACES[np.where(nan, 0, scaled).astype(np.int64)]
    out[nan] = ""
    return out.tolist()


def _fuzzy_threshold(value: float | None) -> float | None:
    if value is None:
        return None
    if 0 < value <= 1:
        value *= 100  # accept 0.9 as 90
    if not 0 < value <= 100:
        raise UserError(f"--fuzzy must be a rapidfuzz ratio between 1 and 100 (e.g. 90), not {value}")
    return value


def similarity(input_path: Path, out: Path, features: list[str] | None = None, top_k: int | None = 10, matrix: bool = False,
               fuzzy: float | None = None, dup_threshold: float = 0.9, id_col: str | None = None, text_cols: list[str] | None = None,
               schema: str = "chexpert", memory_mb: float = 256, show_progress: bool = False, scheduler: str | None = None) -> dict:
    """Write ``neighbors.csv`` (top-k), ``matrix.csv`` (if ``matrix``), ``near_duplicates.csv``,
    ``top1_similarity.png`` and ``similarity.json`` (the summary, also returned) to ``out``. With
    ``scheduler`` (a Dask scheduler address, or ``local:N``) the row tiles are scored on Dask workers; the
    outputs are the same bytes as a local run (similarity.json's ``seconds`` aside)."""
    from ..analysis.corpus import open_corpus
    from ..analysis.features import parse_families
    from ..analysis.featurestore import FeatureStore, fix_heap_thresholds
    from ..analysis.similarity import SimilarityIndex

    fix_heap_thresholds()  # worker threads' heaps give their free tops back (this process is ours)
    families = parse_families(features)
    fuzzy = _fuzzy_threshold(fuzzy)
    if top_k is not None and top_k < 1:
        raise UserError(f"--top-k must be at least 1, not {top_k}")
    if not 0 <= dup_threshold <= 1:
        raise UserError(f"--dup-threshold must be between 0 and 1, not {dup_threshold}")
    check_replaceable(out, OUTPUTS)
    corpus = open_corpus(input_path, id_col, text_cols, schema)
    for warning in corpus.warnings:
        err_console.print(f"warning: {warning}", markup=False, highlight=False)
    started = time.perf_counter()
    # one pass over the records, never held. --top-k scores from a feature store on disk (the rows of the
    # tasks in flight are read back as needed); --matrix and a threshold of 0 score every pair, in memory
    in_memory = matrix or dup_threshold <= 0
    if in_memory:
        index = SimilarityIndex.from_records(corpus.records(), families, fuzzy=fuzzy)
    else:
        # a parse folder's records are read in child processes, parts of graphs.jsonl at once: what
        # reading leaves in the heap leaves with them
        split = None
        if corpus.source == "parse-dir":
            from functools import partial

            from ..analysis.corpus import iter_records_part

            split = partial(iter_records_part, Path(corpus.parse_dir) / "graphs.jsonl")
        index = FeatureStore.build(corpus.records(), families, fuzzy=fuzzy, isolated=split is not None, split=split,
                                   readers=min(4, _local_workers()))
    try:
        return _score_and_write(index, input_path, out, corpus, families, top_k, matrix, fuzzy, dup_threshold, memory_mb,
                                show_progress, scheduler, time.perf_counter() - started)
    finally:
        if not in_memory:
            index.close()


def _score_and_write(index, input_path: Path, out: Path, corpus, families, top_k: int | None, matrix: bool, fuzzy: float | None,
                     dup_threshold: float, memory_mb: float, show_progress: bool, scheduler: str | None, index_seconds: float) -> dict:
    from ..analysis.similarity import top_k_neighbors

    n = index.n
    if n < 2:
        raise UserError(f"{input_path} has {n} report(s); similarity needs at least 2")
    if matrix and n > MATRIX_LIMIT:
        raise UserError(f"--matrix is for corpora up to {MATRIX_LIMIT:,} reports ({n:,} here); use --top-k K without --matrix")
    full = np.zeros((n, n), dtype=np.float32) if matrix else None
    k = top_k or 10
    from .parse import close_dask, dask_client

    client = cluster = None
    if scheduler:
        client, cluster = dask_client(scheduler, _local_workers())
    try:
        options = dict(memory_mb=memory_mb, matrix=full, client=client, per_family=False)
        if show_progress:
            with progress_bar(transient=True) as bar:
                task = bar.add_task("scoring reports", total=n)
                result = top_k_neighbors(index, k, dup_threshold, progress=lambda m: bar.advance(task, m), **options)
        else:
            result = top_k_neighbors(index, k, dup_threshold, **options)
    finally:
        close_dask(client, cluster)
    try:
        return _write(result, index, input_path, out, corpus, families, top_k, full, fuzzy, dup_threshold, index_seconds)
    finally:
        result.close()


def _write(result, index, input_path: Path, out: Path, corpus, families, top_k: int | None, full: np.ndarray | None,
           fuzzy: float | None, dup_threshold: float, index_seconds: float) -> dict:
    from ..analysis.featurestore import Forked
    from ..analysis.similarity import pair_family_scores

    n, k = index.n, top_k or 10
    ids = corpus.id_col
    outputs = []
    top1 = np.full(n, np.nan, dtype=np.float32)
    top1_family = {f: np.full(n, np.nan, dtype=np.float32) for f in families}

    def neighbour_rows(start: int, stop: int):  # a block of reports at a time: their tables, ids and per-family scores are read as needed
        for r0 in range(start, stop, ROWS_PER_WRITE):
            r1 = min(stop, r0 + ROWS_PER_WRITE)
            nbr, comb = result.rows(r0, r1)
            top1[r0:r1] = comb[:, 0]
            have = nbr >= 0
            row_of, rank_of = np.nonzero(have)  # the pairs, row by row
            left, right = row_of + r0, nbr[have].astype(np.int64)
            per = pair_family_scores(index, left, right)
            counts = have.sum(axis=1)
            first, starts = counts > 0, np.cumsum(counts) - counts  # where each report's rank 1 is among the pairs
            for f in families:
                top1_family[f][r0:r1][first] = per[f][starts[first]]
            names = index.ids_of(np.arange(r0, r1))
            yield from zip([names[r] for r in row_of.tolist()], index.ids_of(right), (rank_of + 1).tolist(),
                           _fmt_scores(comb[have]), *(_fmt_scores(per[f]) for f in families))

    def write_neighbours(path: Path) -> None:
        header = [ids, "neighbor_id", "rank", "similarity", *families]
        half = _second_half(n)
        if half is None:
            write_csv(path, header, neighbour_rows(0, n))
            return
        # the second half's rows are formatted by a forked child at the same time, into a file of their own
        part = path.with_name(path.name + ".part")

        def second() -> tuple[np.ndarray, dict[str, np.ndarray]]:
            write_csv(part, None, neighbour_rows(half, n))  # no header: appended to the first half
            return top1[half:], {f: v[half:] for f, v in top1_family.items()}

        child = Forked(second)
        try:
            write_csv(path, header, neighbour_rows(0, half))
        except BaseException:
            child.kill()
            raise
        top1[half:], rest = child.result()
        for f, v in rest.items():
            top1_family[f][half:] = v
        with path.open("ab") as fh, part.open("rb") as src:
            shutil.copyfileobj(src, fh, 1 << 20)
        part.unlink()

    with atomic_dir(out, OUTPUTS) as tmp:  # all outputs replace the old ones together
        if top_k is not None:
            write_neighbours(tmp / "neighbors.csv")
            outputs.append("neighbors.csv")
        else:
            top1[:] = result.combined[:, 0]
            have = result.index[:, 0] >= 0
            for f, v in pair_family_scores(index, np.flatnonzero(have), result.index[have, 0]).items():
                top1_family[f][have] = v
        if full is not None:
            all_ids = index.ids_of(np.arange(n))
            write_csv(tmp / "matrix.csv", [ids, *all_ids], ([all_ids[i], *(f"{v:.4f}" for v in full[i].tolist())] for i in range(n)))
            outputs.append("matrix.csv")
        dup_ids = iter(index.ids_of([x for i, j, _s in result.duplicates for x in (i, j)]))
        write_csv(tmp / "near_duplicates.csv", [ids, "duplicate_id", "similarity"],
                  ([next(dup_ids), next(dup_ids), f"{s:.4f}"] for _i, _j, s in result.duplicates))
        outputs.append("near_duplicates.csv")
        result.index = result.combined = None  # the top-k tables are written: the histogram's plotting may have their memory
        _histogram(top1[~np.isnan(top1)], tmp / "top1_similarity.png", families, dup_threshold)
        outputs.append("top1_similarity.png")
        summary = {
            "input": str(input_path),
            "source": corpus.source,
            "reports": n,
            "families": list(families),
            "fuzzy": fuzzy,
            "vocabulary": dict(index.vocab_sizes),
            "merged_by_fuzzy": dict(index.merged),
            "top_k": k,
            "mean_pairwise_similarity": result.mean_pairwise,
            "mean_top1_similarity": {"combined": float(np.nanmean(top1)),
                                     **{f: float(np.nanmean(top1_family[f])) for f in families}},
            "near_duplicate_threshold": dup_threshold,
            "near_duplicate_pairs": result.duplicate_pairs,
            "near_duplicate_pairs_written": len(result.duplicates),
            "reports_in_near_duplicates": len({i for i, _j, _s in result.duplicates} | {j for _i, j, _s in result.duplicates}),
            "seconds": {"index": round(index_seconds, 3), "neighbors": round(result.seconds, 3)},
            "outputs": [*outputs, "similarity.json"],
        }
        write_json(tmp / "similarity.json", summary)
    return summary


SPLIT_WRITE_FROM = 20_000  # reports from which the rows of neighbors.csv are formatted by two processes


def _second_half(n: int) -> int | None:
    """Where the second process's share of neighbors.csv starts (a multiple of ROWS_PER_WRITE), or None
    where one process writes it all: a small corpus, one CPU, no fork (not Linux) or other threads running
    (a fork copies only the calling thread)."""
    from ..analysis.featurestore import can_fork

    if n < SPLIT_WRITE_FROM or _local_workers() < 2 or not can_fork():
        return None
    return max(ROWS_PER_WRITE, n // 2 // ROWS_PER_WRITE * ROWS_PER_WRITE)


def _local_workers() -> int:
    from ..analysis.similarity import _workers

    return _workers(None)


def _histogram(values: np.ndarray, path: Path, families, dup_threshold: float) -> None:
    from ..analysis.stats import _pyplot, _save

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(values, bins=np.linspace(0, 1, 41), color="#4c72b0", edgecolor="white")
    ax.axvline(dup_threshold, color="#d62728", linestyle="--", linewidth=1, label=f"near-duplicate threshold {dup_threshold:g}")
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"similarity to the most similar other report ({' + '.join(families)})")
    ax.set_ylabel("reports")
    ax.set_title(f"Top-1 neighbour similarity ({len(values):,} reports)")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)
    plt.close(fig)


@handle_errors
def similarity_cli(
    input_path: Annotated[Path, typer.Argument(help="A radtool parse folder (graphs.jsonl is reused) or reports: CSV/TSV, JSONL, or a folder of .txt files.", show_default=False)],
    out: OutOpt = Path("radtool-similarity"),
    features: Annotated[Optional[list[str]], typer.Option("--features", help="Feature families: noun_phrases, verbs, entities (comma-separated or repeated; default all three).")] = None,
    top_k: Annotated[Optional[int], typer.Option("--top-k", "-k", help="Write the K most similar reports of each report to neighbors.csv (default 10 unless --matrix); only reports that share a feature.")] = None,
    matrix: Annotated[bool, typer.Option("--matrix", help=f"Write the all-pairs matrix.csv (corpora up to {MATRIX_LIMIT:,} reports).")] = False,
    fuzzy: Annotated[Optional[float], typer.Option("--fuzzy", help="Merge near-identical feature strings first (rapidfuzz ratio ≥ THRESHOLD, 0-100; 90 is a good start).")] = None,
    dup_threshold: Annotated[float, typer.Option("--dup-threshold", help="Combined similarity at or above which a pair goes to near_duplicates.csv.")] = 0.9,
    id_col: IdColOpt = None,
    text_col: TextColOpt = None,
    schema: SchemaOpt = "chexpert",
    memory_mb: Annotated[float, typer.Option("--memory-mb", help="Memory for one block of scores; lower it on small machines.")] = 256,
    scheduler: Annotated[Optional[str], typer.Option("--scheduler", metavar="ADDRESS", help="Score row blocks on a Dask cluster: its scheduler address (tcp://host:8786), or local:N for N worker processes here. Needs radtool[dask]; same outputs as a local run.")] = None,
    quiet: QuietOpt = False,
) -> None:
    """Report similarity |A ∩ B| / max(|A|, |B|) over noun phrases, verbs and entities: neighbours, matrix, near-duplicates."""
    if top_k is None and not matrix:
        top_k = 10
    summary = similarity(input_path, out, features=features, top_k=top_k, matrix=matrix, fuzzy=fuzzy, dup_threshold=dup_threshold,
                         id_col=id_col, text_cols=text_col, schema=schema, memory_mb=memory_mb, show_progress=not quiet,
                         scheduler=scheduler)
    if quiet:
        return
    table = Table(title=f"consistency: {summary['reports']:,} reports", title_justify="left")
    for col in ("family", "vocabulary", "mean pairwise", "mean top-1"):
        table.add_column(col, justify="left" if col == "family" else "right")
    for fam in [*summary["families"], "combined"]:
        vocab = summary["vocabulary"].get(fam)
        merged = summary["merged_by_fuzzy"].get(fam)
        table.add_row(fam, "" if vocab is None else f"{vocab:,}" + (f" ({merged:,} merged)" if merged else ""),
                      f"{summary['mean_pairwise_similarity'][fam]:.3f}", f"{summary['mean_top1_similarity'][fam]:.3f}")
    console.print(table)
    s = summary["seconds"]
    console.print(f"{summary['near_duplicate_pairs']:,} near-duplicate pairs (≥ {summary['near_duplicate_threshold']:g}) "
                  f"among {summary['reports_in_near_duplicates']:,} reports; neighbours in {s['neighbors']:.2f} s "
                  f"(index {s['index']:.2f} s) → {out}")


def register(app: typer.Typer) -> None:
    app.command("similarity")(similarity_cli)
