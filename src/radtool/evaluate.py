"""Compare predicted labels with gold labels: per-observation precision, recall, F1 and support.

Columns match by name, case- and punctuation-insensitively, with the usual aliases
(``Effusion`` ~ ``Pleural Effusion``, ``normal`` ~ ``No Finding``, ``Pleural_Thickening`` ~
``Pleural Thickening``). Rows match by id. ``positive`` says which predicted values count as
positive (``{1}`` by default, ``{1, -1}`` to count uncertain as positive); gold values are read the same way.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError, missing_file

ALIASES = {
    "effusion": "pleuraleffusion",
    "normal": "nofinding",
    "nofindings": "nofinding",
    "pleuralthickening": "pleuralthickening",
    "cardiomegally": "cardiomegaly",
    "supportdevice": "supportdevices",
    "lunglesion": "lunglesion",
}
ID_NAMES = ("report_id", "id", "study_id", "Reports", "Path", "path", "study")


def canonical(name: str) -> str:
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    return ALIASES.get(key, key)


@dataclass
class Table:
    id_col: str
    columns: list[str]
    rows: dict[str, dict[str, str]]


def _read(path: str | Path, id_col: str | None, what: str) -> Table:
    path = Path(path)
    if not path.is_file():
        raise missing_file(path, what)
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        columns = list(reader.fieldnames or [])
        if id_col is None:
            id_col = next((c for c in ID_NAMES if c in columns), columns[0] if columns else None)
        if id_col not in columns:
            raise UserError(f"id column {id_col!r} not found in {what} {path}; columns are: {', '.join(columns)}")
        rows = {}
        for row in reader:
            rows[str(row[id_col]).strip()] = row
    return Table(id_col, [c for c in columns if c != id_col], rows)


def _value(raw: str | None) -> int | None:
    if raw is None:
        return None
    raw = raw.strip()
    if raw == "":
        return None
    try:
        return int(float(raw))
    except ValueError as exc:
        raise UserError(f"label value {raw!r} is not 1, 0, -1 or blank") from exc


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def evaluate(pred: str | Path, gold: str | Path, positive: set[int] | frozenset[int] = frozenset({1}), id_col: str | None = None,
             ids: set[str] | None = None, exclude: set[str] | None = None, include_empty: bool = False) -> dict:
    """Scores per observation that both files share, plus micro and macro averages over the findings.

    No Finding is scored but left out of the averages. So is an observation with no gold positive
    among the evaluated reports (the gold standard does not annotate it), unless ``include_empty``;
    ``not_averaged`` lists them."""
    p_table = _read(pred, id_col, "predictions")
    g_table = _read(gold, id_col, "gold")
    g_by = {canonical(c): c for c in g_table.columns}
    pairs = [(pc, g_by[canonical(pc)]) for pc in p_table.columns if canonical(pc) in g_by]
    if not pairs:
        raise UserError(
            f"no label columns in common between {pred} ({', '.join(p_table.columns)}) and {gold} ({', '.join(g_table.columns)})"
        )
    common = [i for i in g_table.rows if i in p_table.rows and (ids is None or i in ids) and not (exclude and i in exclude)]
    if not common:
        raise UserError(f"no report ids in common between {pred} and {gold}")
    per = {}
    for pc, gc in pairs:
        tp = fp = fn = tn = 0
        for i in common:
            pv = _value(p_table.rows[i].get(pc)) in positive
            gv = _value(g_table.rows[i].get(gc)) in positive
            tp += pv and gv
            fp += pv and not gv
            fn += gv and not pv
            tn += not pv and not gv
        p, r, f = _prf(tp, fp, fn)
        per[pc] = {"precision": p, "recall": r, "f1": f, "support": tp + fn, "tp": tp, "fp": fp, "fn": fn, "tn": tn}
    not_averaged = [k for k, v in per.items() if canonical(k) != "nofinding" and v["support"] == 0 and not include_empty]
    findings = {k: v for k, v in per.items() if canonical(k) != "nofinding" and k not in not_averaged}
    tp = sum(v["tp"] for v in findings.values())
    fp = sum(v["fp"] for v in findings.values())
    fn = sum(v["fn"] for v in findings.values())
    mp, mr, mf = _prf(tp, fp, fn)
    n = max(len(findings), 1)
    return {
        "reports": len(common),
        "positive": sorted(positive),
        "observations": per,
        "micro": {"precision": mp, "recall": mr, "f1": mf, "support": tp + fn},
        "macro": {
            "precision": sum(v["precision"] for v in findings.values()) / n,
            "recall": sum(v["recall"] for v in findings.values()) / n,
            "f1": sum(v["f1"] for v in findings.values()) / n,
        },
        "not_averaged": not_averaged,
        "unmatched_pred_columns": [c for c in p_table.columns if canonical(c) not in g_by],
        "unmatched_gold_columns": [c for c in g_table.columns if canonical(c) not in {canonical(x) for x in p_table.columns}],
    }
