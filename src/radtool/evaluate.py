"""Compare predicted labels with gold labels: per-observation precision, recall, F1 and support.

Columns match by name, case- and punctuation-insensitively, with the usual aliases
(``Effusion`` ~ ``Pleural Effusion``, ``normal`` ~ ``No Finding``, ``Pleural_Thickening`` ~
``Pleural Thickening``). Rows match by id. ``positive`` says which predicted values count as
positive (``{1}`` by default, ``{1, -1}`` to count uncertain as positive); gold values are read the same way.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import UserError, shown
from .io.labels import read_labels

ALIASES = {
    "effusion": "pleuraleffusion",
    "normal": "nofinding",
    "nofindings": "nofinding",
    "pleuralthickening": "pleuralthickening",
    "cardiomegally": "cardiomegaly",
    "supportdevice": "supportdevices",
    "lunglesion": "lunglesion",
}


def canonical(name: str) -> str:
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    return ALIASES.get(key, key)


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
    p_table = read_labels(pred, id_col, "predictions")
    g_table = read_labels(gold, id_col, "gold")
    g_by: dict[str, str] = {}
    for c in g_table.columns:
        g_by.setdefault(canonical(c), c)
    pairs = [(pc, g_by[canonical(pc)]) for pc in p_table.columns if canonical(pc) in g_by]
    if not pairs:
        raise UserError(
            f"no label columns in common between {shown(pred)} ({', '.join(map(repr, p_table.columns))}) "
            f"and {shown(gold)} ({', '.join(map(repr, g_table.columns))})"
        )
    p_rows, g_rows = p_table.by_id(), g_table.by_id()
    common = [i for i in g_table.ids if i in p_rows and (ids is None or i in ids) and not (exclude and i in exclude)]
    if not common:
        raise UserError(f"no report ids in common between {shown(pred)} and {shown(gold)}")
    per = {}
    for pc, gc in pairs:
        tp = fp = fn = tn = 0
        for i in common:
            pv = p_rows[i][pc] in positive
            gv = g_rows[i][gc] in positive
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


# The CheXpert labeler's evaluation (Irvin et al. 2019): each label value scored as its own class.
KINDS = {
    "positive": frozenset({1}),
    "negation": frozenset({0}),
    "uncertainty": frozenset({-1}),
    "mention": frozenset({1, 0, -1}),  # any non-blank value: the observation is mentioned
}


def evaluate_kinds(pred: str | Path, gold: str | Path, id_col: str | None = None, ids: set[str] | None = None,
                   exclude: set[str] | None = None, include_empty: bool = False) -> dict[str, dict]:
    """Positive, negation, uncertainty and mention F1 per observation, as the CheXpert labeler reports
    them: ``{kind: evaluate(...) result}`` where a kind's values (``KINDS``) count as that class in both
    files. An observation with no gold value of a kind is left out of that kind's averages (``not_averaged``)."""
    return {
        kind: evaluate(pred, gold, positive=values, id_col=id_col, ids=ids, exclude=exclude, include_empty=include_empty)
        for kind, values in KINDS.items()
    }
