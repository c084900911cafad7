"""``radtool parse``: reports in, labels.csv + graphs.jsonl + summary.json out, streaming.

The input is read as a stream (``radtool.io.iter_reports``), counted first for the progress bar (which
also checks a whole CSV before any work), and reports are parsed in partitions of consecutive reports
(:data:`radtool.parse.PARTITION`) and written as they come back, in input order, into a temporary
folder beside ``--out`` that replaces it as a whole at the end (``radtool.io.writers.atomic_dir``):
memory holds a few partitions and the sentence memo, not the corpus, and an interrupted run leaves the
old outputs as they were. Partitions run in process, in ``-n`` worker processes, on a Dask cluster
(``--scheduler``), or one shard of them (``--shard I/N``, combined afterwards with ``radtool merge``);
every path writes the same bytes.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer
from rich.table import Table

from ..errors import UserError
from ..io import iter_reports, write_json
from ..io.labels import write_labels
from ..io.writers import atomic_dir, atomic_write, check_replaceable, prepare_dir
from ..parse import MEMO_BYTES, MEMO_SIZE, PARTITION, Partition, partitions
from ._common import console, err_console, handle_errors, progress_bar
from .options import IdColOpt, ModelOpt, NProcessOpt, OutOpt, QuietOpt, SchemaOpt, SectionOpt, TextColOpt

OUTPUTS = ["labels.csv", "graphs.jsonl", "summary.json"]


def process_seconds() -> float | None:
    """Seconds since this process started (interpreter start-up and imports included)."""
    try:
        import psutil

        return time.time() - psutil.Process().create_time()
    except ImportError:
        pass
    try:  # Linux without psutil: start time in clock ticks after boot
        with open("/proc/self/stat") as fh:
            start_ticks = int(fh.read().rpartition(")")[2].split()[19])
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def parse_shard(value: str | None) -> tuple[int, int] | None:
    """``"2/8"`` → ``(2, 8)``: shard 2 of 8, counted from 0 (as SLURM_ARRAY_TASK_ID is)."""
    if value is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", value)
    if not m or not 0 <= int(m.group(1)) < int(m.group(2)):
        raise UserError(f"--shard must be I/N with 0 <= I < N (e.g. 0/4), not {value!r}")
    return int(m.group(1)), int(m.group(2))


class RunTotals:
    """Counters of a run, added up partition by partition (in input order)."""

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns
        self.reports = self.empty = self.labeled = self.sentences = self.label_sentences = self.parsed = 0
        self.sections: Counter = Counter()
        self.prevalence = {c: Counter() for c in columns}
        self.problems: list[dict] = []
        self.dups: dict[str, list[int]] = {}
        # every id seen, as a sorted 128-bit digest and the row it first came on (24 bytes an id, where a dict of
        # the ids cost ~110): only the duplicates are kept as text
        self._id_keys = np.zeros(0, dtype="S16")
        self._id_rows = np.zeros(0, dtype=np.int64)
        self._hashes = np.zeros(0, dtype=np.uint64)  # the distinct sentences' 64-bit hashes, sorted: 8 bytes each
        self._pending: list[np.ndarray] = []
        self.distinct_known = True

    def add(self, part: Partition) -> None:
        self.reports += len(part.ids)
        self.empty += part.empty_reports
        self.labeled += part.labeled_reports
        self.sentences += part.sentences
        self.label_sentences += part.label_sentences
        self.parsed += part.parsed_sentences
        self.sections.update(part.sections)
        for c in self.columns:
            self.prevalence[c].update(part.prevalence.get(c, {}))
        self.problems.extend(part.problems)
        self._add_ids(part.ids, part.rows)
        self._pending.append(part.hashes)
        if len(self._pending) >= 32:
            self._flush()

    def _add_ids(self, ids: list[str], rows: list[int]) -> None:
        keys = np.array([_id_key(rid) for rid in ids], dtype="S16")
        at = np.searchsorted(self._id_keys, keys)
        seen = _found(self._id_keys, keys, at)
        new: dict[bytes, int] = {}  # this partition's first ids
        for rid, key, row, i, earlier in zip(ids, keys.tolist(), rows, at.tolist(), seen.tolist()):
            if earlier:
                first = int(self._id_rows[i])
            elif key in new:
                first = new[key]
            else:
                new[key] = row
                continue
            if first != row:
                self.dups.setdefault(rid, [first]).append(row)
        if new:
            keys = np.array(list(new), dtype="S16")
            order = np.argsort(keys)
            at = np.searchsorted(self._id_keys, keys[order])
            self._id_keys = np.insert(self._id_keys, at, keys[order])
            self._id_rows = np.insert(self._id_rows, at, np.fromiter(new.values(), dtype=np.int64, count=len(new))[order])

    def _flush(self) -> None:
        if self._pending:
            new = np.unique(np.concatenate(self._pending))
            at = np.searchsorted(self._hashes, new)
            new_only = ~_found(self._hashes, new, at)
            self._hashes = np.insert(self._hashes, at[new_only], new[new_only])  # one copy, no sort of the whole
            self._pending = []

    @property
    def distinct_sentences(self) -> int | None:
        self._flush()
        return len(self._hashes) if self.distinct_known else None

    def all_problems(self) -> list[dict]:
        out = list(self.problems)
        for rid, rows in self.dups.items():
            out.append({"row": rows[0], "id": rid, "problem": f"duplicate id in rows {rows} (all kept, in order)"})
        return out

    def warnings(self, label_sections: Iterable[str]) -> list[str]:
        """Why a run set no label at all, when the cause is the columns or sections chosen (issue 9, item 10)."""
        if not self.reports or self.labeled:
            return []
        wanted = ", ".join(sorted(label_sections))
        if not self.sentences:
            return ["no label was set: no report has any text in the column(s) read; name the report text with --text-col"]
        if not self.label_sentences:
            found = ", ".join(f"{name} ({n})" for name, n in self.sections.most_common(8))
            return [f"no label was set: none of the {self.sentences} sentences is in a section that feeds the labels "
                    f"({wanted}); sections found: {found}; choose them with --section, or other columns with --text-col"]
        return []


def _id_key(rid: str) -> bytes:
    return hashlib.blake2b(rid.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _found(sorted_keys: np.ndarray, keys: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Which of ``keys`` are in ``sorted_keys`` (``at``: their ``searchsorted`` positions)."""
    if not len(sorted_keys):
        return np.zeros(len(keys), dtype=bool)
    return (at < len(sorted_keys)) & (sorted_keys[np.minimum(at, len(sorted_keys) - 1)] == keys)


def _cell_counts(counter: Counter) -> dict[str, int]:
    return {k: counter[k] for k in ("1", "0", "-1", "blank") if counter.get(k)}


# ---------------------------------------------------------------- where partitions are parsed


def _local_partitions(parser, chunks: Iterable[list], advance: Callable[[int], None]) -> Iterator[Partition]:
    for index, chunk in chunks:
        part = parser.parse_partition(chunk, index)
        advance(len(chunk))
        yield part


def _in_order(submit: Callable[[int, list], object], chunks: Iterable[tuple[int, list]], slots: int, advance,
              window: deque) -> Iterator[Partition]:
    """Submit partitions as futures, at most ``slots`` in flight, and yield their results in input order.
    ``window`` holds the pending ``(size, future)`` pairs, so the caller can cancel them on error."""
    for index, chunk in chunks:
        window.append((len(chunk), submit(index, chunk)))
        while len(window) >= slots:
            n, fut = window.popleft()
            yield fut.result()
            advance(n)
    while window:
        n, fut = window.popleft()
        yield fut.result()
        advance(n)


def _pool_partitions(n_process: int, config: tuple, chunks: Iterable[tuple[int, list]], advance) -> Iterator[Partition]:
    from concurrent.futures import ProcessPoolExecutor

    from ..parse import _pool_init, parse_partition_task

    pool = ProcessPoolExecutor(n_process, initializer=_pool_init, initargs=(os.getpid(), *config))
    finished = False
    try:
        yield from _in_order(lambda index, chunk: pool.submit(parse_partition_task, chunk, index, *config),
                             chunks, 2 * n_process, advance, deque())
        finished = True
    finally:
        if finished:
            pool.shutdown(wait=True)
        else:  # error or Ctrl-C: stop the workers now, not after the queued partitions
            pool.shutdown(wait=False, cancel_futures=True)
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.terminate()


def dask_client(address: str, n_workers: int):
    """A Dask client: ``local`` / ``local:N`` starts a LocalCluster of N one-thread worker processes here."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise UserError("--scheduler needs Dask: pip install 'radtool[dask]' (dask[distributed])") from exc
    m = re.fullmatch(r"local(?::(\d+))?", address)
    if m:
        n = int(m.group(1) or n_workers)
        cluster = LocalCluster(n_workers=max(1, n), threads_per_worker=1, processes=True, dashboard_address=None)
        return Client(cluster), cluster
    try:
        return Client(address, timeout="20s"), None
    except (OSError, TimeoutError) as exc:
        raise UserError(f"cannot reach the Dask scheduler at {address}: {exc}") from exc


def close_dask(client, cluster) -> None:
    """Close what :func:`dask_client` opened (either may be None)."""
    if client is not None:
        client.close()
    if cluster is not None:
        cluster.close()


def _dask_partitions(client, config: tuple, chunks: Iterable[tuple[int, list]], advance) -> Iterator[Partition]:
    from ..parse import parse_partition_task

    slots = max(2, 2 * sum(client.nthreads().values()))
    window: deque = deque()
    try:
        yield from _in_order(lambda index, chunk: client.submit(parse_partition_task, chunk, index, *config, pure=False),
                             chunks, slots, advance, window)
    finally:
        for _n, fut in window:
            fut.cancel()


# ---------------------------------------------------------------- the command


def write_run(tmp: Path, id_name: str, columns: list[str], parts: Iterable[Partition], totals: RunTotals,
              graphml: Path | None = None) -> None:
    """labels.csv and graphs.jsonl of ``parts`` (in order) into the folder ``tmp``, counting into ``totals``."""
    import json

    with atomic_write(tmp / "graphs.jsonl") as graphs:

        def rows():
            for part in parts:
                graphs.write(part.graphs)
                totals.add(part)
                if graphml is not None:
                    write_graphml((json.loads(line) for line in part.graphs.splitlines()), graphml, first=totals.reports - len(part.ids) + 1)
                yield from zip(part.ids, part.values)

        write_labels(tmp / "labels.csv", id_name, columns, rows())


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
    scheduler: str | None = None,
    shard: tuple[int, int] | None = None,
    memo_size: int = MEMO_SIZE,
    numbers: bool = True,
    partition: int = PARTITION,
    started: float | None = None,
) -> dict:
    """Parse a corpus and write ``labels.csv``, ``graphs.jsonl`` and ``summary.json`` to ``out`` (all three
    replace the old ones together). Returns the summary. ``started`` is the ``time.perf_counter()`` the
    run counts from (the CLI passes the process start, so ``seconds.total`` includes start-up and loading)."""
    from ..parse import ReportParser, freeze_heap, records_partition, thaw_heap
    from ..pipeline.sections import label_sections
    from ..schemas import load_schema

    call_start = time.perf_counter()
    started = call_start if started is None else started
    if n_process < 1:
        raise UserError(f"-n/--n-process must be at least 1, not {n_process}")
    if partition < 1:
        raise UserError(f"partition size must be at least 1, not {partition}")
    if backend not in ("spacy", "radgraph"):
        raise UserError(f"unknown backend {backend!r}: use spacy or radgraph")
    if backend == "radgraph" and (scheduler or shard):
        raise UserError("--scheduler and --shard work with the spacy backend only")
    schema_obj = load_schema(schema)
    columns = list(schema_obj.columns)
    reports = iter_reports(input_path, id_col, text_cols)  # read in chunks as partitions are taken
    id_name = reports.id_column
    n_reports = len(reports)  # counted without building reports (a CSV is checked whole here, before any work)
    check_replaceable(out, OUTPUTS)  # before any long work
    if graphml:
        prepare_dir(graphml, "GraphML folder")
    label_secs = frozenset(sections) if sections else label_sections()
    config = (model, str(schema), tuple(sorted(label_secs)), memo_size, numbers)

    chunks: Iterable[tuple[int, list]] = enumerate(partitions(reports, partition))
    if shard:
        i, n = shard
        chunks = ((p, c) for p, c in chunks if p % n == i)
        n_reports = sum(min(partition, n_reports - p * partition) for p in range(i, -(-n_reports // partition), n))

    parser = None
    client = cluster = None
    load_start = time.perf_counter()
    if backend == "radgraph":
        from ..backends.radgraph import RadGraphBackend

        rg = RadGraphBackend(radgraph_model, schema_obj)
    elif scheduler:
        client, cluster = dask_client(scheduler, n_process)
    elif n_process == 1:
        parser = ReportParser(model=model, schema=schema, sections=sections, memo_size=memo_size, numbers=numbers)
        parser.nlp  # noqa: B018  load the pipeline now, so parse time is parse time
        freeze_heap()
    load_seconds = time.perf_counter() - load_start

    totals = RunTotals(columns)
    parse_start = time.perf_counter()
    try:
        with progress_bar() if show_progress else _NoBar() as bar:
            task = bar.add_task("parsing reports", total=n_reports)

            def advance(k: int) -> None:
                bar.advance(task, k)

            if backend == "radgraph":
                parts = (records_partition(p, _radgraph_rows(rg, c), columns) for p, c in chunks)
                parts = _advancing(parts, advance)
            elif client is not None:
                parts = _dask_partitions(client, config, chunks, advance)
            elif n_process > 1:
                parts = _pool_partitions(n_process, config, chunks, advance)
            else:
                parts = _local_partitions(parser, chunks, advance)
            with atomic_dir(out, OUTPUTS) as tmp:
                write_run(tmp, id_name, columns, parts, totals, graphml)
                parse_seconds = time.perf_counter() - parse_start
                total = time.perf_counter() - started
                summary = _summary(input_path, schema_obj.name, backend, totals, label_secs, load_seconds, parse_seconds, total,
                                   started is not call_start)
                if backend == "spacy":
                    memo = parser.memo if parser is not None else None
                    summary["memo"] = {"size": memo_size, "hit_rate": round(1 - totals.parsed / totals.sentences, 4) if totals.sentences else None,
                                       "evictions": memo.evictions if memo is not None else None,
                                       "numbers": "blind" if numbers else "exact"}
                    summary["workers"] = {"scheduler": scheduler, "processes": None if scheduler else n_process}
                if shard:
                    summary["shard"] = {"index": shard[0], "count": shard[1], "partition": partition, "input": str(input_path)}
                write_json(tmp / "summary.json", summary)
    finally:
        close_dask(client, cluster)
        if parser is not None:
            thaw_heap()
    return summary


def _radgraph_rows(rg, chunk: list) -> list[dict]:
    records = rg.parse(chunk)
    for record, report in zip(records, chunk):
        record.setdefault("row", report.row)
    return records


def _advancing(parts: Iterable[Partition], advance) -> Iterator[Partition]:
    for part in parts:
        yield part
        advance(len(part.ids))


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add_task(self, *args, **kwargs) -> int:
        return 0

    def advance(self, *args) -> None:
        pass


def _summary(input_path, schema_name: str, backend: str, totals: RunTotals, label_secs, load_seconds: float,
             parse_seconds: float, total: float, from_process_start: bool) -> dict:
    problems = totals.all_problems()
    summary = {
        "input": str(input_path),
        "schema": schema_name,
        "backend": backend,
        "label_sections": sorted(label_secs),  # the sections whose sentences gave the labels (radtool_vision's leakage guard reads it)
        "reports": totals.reports,
        "empty_reports": totals.empty,
        "rows_with_problems": len({p["row"] for p in problems}),
        "problems": problems,
        "warnings": totals.warnings(label_secs),
    }
    if backend == "spacy":
        summary.update(sentences=totals.sentences, distinct_sentences=totals.distinct_sentences, parsed_sentences=totals.parsed)
    summary.update({
        # total: wall time of the whole process (start-up, imports, reading, loading, parsing, writing) when run
        # from the command line; of this call when parse() is called from Python
        "seconds": {"total": round(total, 3), "load": round(load_seconds, 3), "parse": round(parse_seconds, 3),
                    "total_counts_from": "process start" if from_process_start else "call"},
        "reports_per_second": round(totals.reports / total, 1) if total > 0 else None,
        "prevalence": {c: _cell_counts(totals.prevalence[c]) for c in totals.columns},
        "outputs": OUTPUTS,
    })
    return summary


def write_graphml(records: Iterable[dict], folder: Path, first: int = 1) -> None:
    import networkx as nx

    from ..pipeline.graph import to_networkx

    folder.mkdir(parents=True, exist_ok=True)
    for i, record in enumerate(records, start=first):
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in record["id"]) or f"row{i}"
        with atomic_write(folder / f"{i:06d}_{safe}.graphml", mode="wb") as fh:
            nx.write_graphml(to_networkx(record), fh)


def print_summary(summary: dict, out: Path) -> None:
    table = Table(title=f"radtool parse: {summary['reports']} reports → {out}", show_lines=False)
    table.add_column("observation")
    for key in ("1", "0", "-1", "blank"):
        table.add_column(key, justify="right")
    for obs, counts in summary["prevalence"].items():
        table.add_row(obs, *(str(counts.get(k, 0)) for k in ("1", "0", "-1", "blank")))
    console.print(table)
    line = f"{summary['reports']} reports"
    if summary.get("sentences") is not None:
        distinct = summary.get("distinct_sentences")
        line += f", {summary['sentences']} sentences" + (f" ({distinct} distinct)" if distinct is not None else "")
        if summary.get("memo", {}).get("hit_rate") is not None:
            line += f", memo hit rate {summary['memo']['hit_rate']:.0%}"
    s = summary["seconds"]
    rps = summary["reports_per_second"]
    line += f"; {s['total']:.1f} s in all (load {s['load']:.1f} s, parse and write {s['parse']:.1f} s)" + (f", {rps:.0f} reports/s" if rps else "")
    console.print(line, markup=False, highlight=False)


def print_problems(summary: dict, warnings_only: bool = False) -> None:
    for w in summary.get("warnings", []):
        err_console.print(f"warning: {w}", markup=False, highlight=False)
    if summary["problems"] and not warnings_only:
        err_console.print(f"{summary['rows_with_problems']} rows with problems (processed; see summary.json):")
        for p in summary["problems"][:10]:
            err_console.print(f"  row {p['row']} ({p['id']}): {p['problem']}", markup=False, highlight=False)


@handle_errors
def parse_cli(
    input_path: Annotated[Path, typer.Argument(help="Reports: a CSV/TSV file, a JSONL file, or a folder of .txt files.", show_default=False)],
    out: OutOpt = Path("radtool-out"),
    id_col: IdColOpt = None,
    text_col: TextColOpt = None,
    schema: SchemaOpt = "chexpert",
    n_process: NProcessOpt = 1,
    model: ModelOpt = None,
    section: SectionOpt = None,
    backend: Annotated[str, typer.Option("--backend", help="spacy (default) or radgraph (needs the radgraph package and model).")] = "spacy",
    radgraph_model: Annotated[Optional[str], typer.Option("--radgraph-model", help="For --backend radgraph: the unpacked model folder (radgraph-xl/ with config.json) or the folder above it; nothing is downloaded.")] = None,
    graphml: Annotated[Optional[Path], typer.Option("--graphml", help="Also write each report's graph as GraphML into this folder.")] = None,
    scheduler: Annotated[Optional[str], typer.Option("--scheduler", metavar="ADDRESS", help="Parse on a Dask cluster: its scheduler address (tcp://host:8786), or local:N for N worker processes here. Needs radtool[dask].")] = None,
    shard: Annotated[Optional[str], typer.Option("--shard", metavar="I/N", help="Parse only shard I of N (0 <= I < N; partitions dealt in turn); combine the N outputs with radtool merge.")] = None,
    memo_size: Annotated[int, typer.Option("--memo-size", min=0, help=f"Distinct sentences kept in the sentence memo (LRU), per process; it also stops at {MEMO_BYTES // 2**20} MiB.")] = MEMO_SIZE,
    exact_numbers: Annotated[bool, typer.Option("--exact-numbers", help="Parse every distinct sentence as written. By default sentences that differ only in stand-alone numbers (sizes, dates, times) share one parse, with their own numbers put back: fewer sentences to parse on archives (docs/scale.md).")] = False,
    partition: Annotated[int, typer.Option("--partition", min=1, help="Reports per partition: the unit of work of workers, Dask tasks and shards (the shards of one run must share it).")] = PARTITION,
    quiet: QuietOpt = False,
) -> None:
    """Label reports (1 / 0 / -1 / blank per observation) and extract RadGraph-style entities and relations.

    Writes OUT/labels.csv (CheXpert layout), OUT/graphs.jsonl (RadGraph JSON layout) and OUT/summary.json,
    all three together (an interrupted run leaves OUT as it was).

    Examples: radtool parse reports.csv --out out/ · radtool parse mimic/files --out out/ --schema chestxray14 -n 2
    · radtool parse big.csv --out out/ --scheduler tcp://10.0.0.5:8786 · radtool parse big.csv --shard 3/16 --out shards/3
    """
    since = process_seconds()
    summary = parse(
        input_path, out, id_col=id_col, text_cols=text_col, schema=schema, n_process=n_process, model=model,
        sections=[s.upper() for s in section] if section else None, backend=backend, radgraph_model=radgraph_model,
        graphml=graphml, show_progress=not quiet, scheduler=scheduler, shard=parse_shard(shard), memo_size=memo_size, numbers=not exact_numbers, partition=partition,
        started=time.perf_counter() - since if since is not None else None,
    )
    if not quiet:
        print_summary(summary, out)
    print_problems(summary, warnings_only=quiet)


def register(app: typer.Typer) -> None:
    from .merge import merge_cli

    app.command("parse")(parse_cli)
    app.command("merge")(merge_cli)  # combines the shard outputs of parse --shard


__all__ = ["parse", "parse_cli", "parse_shard", "process_seconds", "register", "RunTotals", "write_run"]
