"""``radtool merge``: combine the outputs of ``radtool parse --shard I/N`` (one per shard) into one run.

A shard holds partitions I, I+N, I+2N, ... of the input (partitions of consecutive reports), so the
merged labels.csv and graphs.jsonl deal the partitions back in turn: the result is byte for byte what
one ``radtool parse`` of the whole input writes. The summary is recomputed from the merged records.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from ..errors import UserError, shown
from ..io import write_json
from ..io.writers import atomic_dir, check_replaceable
from ..parse import Partition, records_partition
from ._common import console, handle_errors
from .options import OutOpt, QuietOpt


def _shard_info(folder: Path) -> dict:
    summary_path = folder / "summary.json"
    if not summary_path.is_file() or not (folder / "graphs.jsonl").is_file() or not (folder / "labels.csv").is_file():
        raise UserError(f"{shown(folder)} is not a radtool parse output (labels.csv, graphs.jsonl, summary.json)")
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UserError(f"{shown(summary_path)} is not JSON: {exc}") from exc
    if not isinstance(summary, dict) or not isinstance(summary.get("shard"), dict):
        raise UserError(f"{shown(folder)} is not a shard: parse it with --shard I/N")
    return summary


def _partitions(folder: Path, size: int, columns: list[str]) -> Iterator[Partition]:
    """The shard's partitions in order: ``size`` records each (the last may be shorter)."""
    with (folder / "labels.csv").open(encoding="utf-8", newline="") as lf, (folder / "graphs.jsonl").open(encoding="utf-8") as gf:
        header = next(csv.reader(lf), None)
        if header is None or header[1:] != columns:
            raise UserError(f"{shown(folder / 'labels.csv')}: columns differ from the other shards")
        while True:
            lines = []
            for line in gf:
                lines.append(line)
                if len(lines) == size:
                    break
            if not lines:
                return
            records = [json.loads(line) for line in lines]
            part = records_partition(0, records, columns)
            part.graphs = "".join(lines)  # the shard's own bytes; labels come from the records, as parse writes them
            yield part


def merge(out: Path, shards: list[Path]) -> dict:
    """Write the combined run of ``shards`` (the N outputs of ``parse --shard I/N``) to ``out``."""
    from .parse import OUTPUTS, RunTotals, write_run

    if not shards:
        raise UserError("give the shard folders to merge")
    infos = [(_shard_info(Path(s)), Path(s)) for s in shards]
    count = infos[0][0]["shard"]["count"]
    keys = {(i["shard"]["count"], i["shard"]["partition"], i["shard"]["input"], i["schema"], i.get("memo", {}).get("numbers"),
             tuple(i.get("label_sections") or ())) for i, _f in infos}
    if len(keys) > 1:
        raise UserError("the shards come from different runs (input, schema, shard count, partition size, --section or "
                        "--exact-numbers differ)")
    by_index = {i["shard"]["index"]: f for i, f in infos}
    missing = sorted(set(range(count)) - set(by_index))
    if missing or len(by_index) != len(infos):
        what = f"shards {missing} of {count} are missing" if missing else "a shard is given twice"
        raise UserError(f"cannot merge: {what}")
    size = infos[0][0]["shard"]["partition"]
    with (by_index[0] / "labels.csv").open(encoding="utf-8", newline="") as fh:
        header = next(csv.reader(fh))
    id_name, columns = header[0], header[1:]
    check_replaceable(out, OUTPUTS)

    def dealt() -> Iterator[Partition]:
        streams = [_partitions(by_index[i], size, columns) for i in range(count)]
        turn = 0
        while True:
            part = next(streams[turn % count], None)
            if part is None:
                if any(next(s, None) is not None for s in streams):
                    raise UserError("the shards do not fit together (one has more partitions than its turn allows)")
                return
            yield part
            turn += 1

    totals = RunTotals(columns)
    totals.distinct_known = False  # distinct sentences are counted per shard; their union is not kept
    with atomic_dir(out, OUTPUTS) as tmp:
        write_run(tmp, id_name, columns, dealt(), totals)
        first = infos[0][0]
        problems = totals.all_problems()
        summary = {
            "input": first["shard"]["input"], "schema": first["schema"], "backend": first.get("backend", "spacy"),
            "label_sections": first.get("label_sections"),
            "reports": totals.reports, "empty_reports": totals.empty,
            "rows_with_problems": len({p["row"] for p in problems}), "problems": problems,
            "warnings": sorted({w for i, _f in infos for w in i.get("warnings", [])}),
            "sentences": sum(i.get("sentences") or 0 for i, _f in infos),
            "distinct_sentences": None,
            "parsed_sentences": sum(i.get("parsed_sentences") or 0 for i, _f in infos),
            "seconds": {"shards_total": round(sum(i["seconds"]["total"] for i, _f in infos), 3)},
            "prevalence": {c: {k: totals.prevalence[c][k] for k in ("1", "0", "-1", "blank") if totals.prevalence[c].get(k)} for c in columns},
            "merged_shards": count,
            "outputs": OUTPUTS,
        }
        write_json(tmp / "summary.json", summary)
    return summary


@handle_errors
def merge_cli(
    shards: Annotated[list[Path], typer.Argument(help="The output folders of radtool parse --shard I/N, all N of them (any order).", show_default=False)],
    out: OutOpt = Path("radtool-out"),
    quiet: QuietOpt = False,
) -> None:
    """Combine the outputs of parse --shard I/N into one run, the same bytes as one parse of the whole input.

    Example (a SLURM array of 16): radtool parse big.csv --shard $SLURM_ARRAY_TASK_ID/16 --out shards/$SLURM_ARRAY_TASK_ID,
    then radtool merge shards/* --out out/
    """
    summary = merge(out, list(shards))
    if not quiet:
        console.print(f"{summary['reports']} reports from {summary['merged_shards']} shards → {out}", markup=False, highlight=False)


__all__ = ["merge", "merge_cli"]
