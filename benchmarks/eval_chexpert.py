"""Label accuracy on the CheXpert-convention OpenI gold (corpora/openi/chexpert, 240 reports).

    python benchmarks/eval_chexpert.py [--pred labels.csv] [--out DIR] [--agreement-only]

Parses the 240 gold reports (findings + impression, from corpora/openi/reports.csv) with the default
`chexpert` schema, then scores them as the CheXpert labeler's paper does, per observation and
micro-averaged over the 12 pathologies (No Finding and Support Devices shown, not averaged):

* positive F1 (1 vs the rest), negation F1 (0), uncertainty F1 (-1), mention F1 (any non-blank);

on two splits, as for the OpenI ChestX-ray14 gold:

* tune (report number not divisible by 5): reports whose errors may be read while writing rules;
* held-out (report number divisible by 5): scored in aggregate only; the figure to quote.

It also prints the inter-annotator agreement of the two independent annotations (before
adjudication): cell agreement, Cohen's kappa per observation and overall (values 1 / 0 / -1 / blank),
and positive F1 of annotator 2 against annotator 1. ``--pred`` scores an existing labels.csv instead of
parsing (e.g. one written by an older commit).
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from pathlib import Path

from radtool.evaluate import evaluate_kinds
from radtool.io.labels import read_labels, write_labels

ROOT = Path(__file__).resolve().parents[1]
GOLD_DIR = ROOT / "corpora" / "openi" / "chexpert"
NOT_AVERAGED = ("No Finding", "Support Devices")


def held_out(report_id: str) -> bool:
    return int(report_id[3:]) % 5 == 0


def cohen_kappa(a: list, b: list) -> float:
    """Cohen's kappa of two equally long label sequences (any hashable values, blank included)."""
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb[k] for k in set(ca) | set(cb)) / (n * n)
    return 1.0 if expected == 1 else (observed - expected) / (1 - expected)


def agreement(path_1: Path, path_2: Path) -> dict:
    """Agreement of two annotation files over the same ids and columns."""
    t1, t2 = read_labels(path_1, what="annotation"), read_labels(path_2, what="annotation")
    if t1.ids != t2.ids or t1.columns != t2.columns:
        raise SystemExit(f"{path_1} and {path_2} differ in ids or columns")
    cols = t1.columns
    per = {}
    for c in cols:
        a, b = [r[c] for r in t1.rows], [r[c] for r in t2.rows]
        tp = sum(x == 1 and y == 1 for x, y in zip(a, b))
        n1, n2 = sum(x == 1 for x in a), sum(y == 1 for y in b)
        per[c] = {
            "agree": sum(x == y for x, y in zip(a, b)) / len(a),
            "kappa": cohen_kappa(a, b),
            "pos_f1": 2 * tp / (n1 + n2) if n1 + n2 else 1.0,
            "disagree": sum(x != y for x, y in zip(a, b)),
        }
    all_a = [r[c] for r in t1.rows for c in cols]
    all_b = [r[c] for r in t2.rows for c in cols]
    pathologies = [c for c in cols if c not in NOT_AVERAGED]
    tp = sum(r1[c] == 1 and r2[c] == 1 for r1, r2 in zip(t1.rows, t2.rows) for c in pathologies)
    n1 = sum(r[c] == 1 for r in t1.rows for c in pathologies)
    n2 = sum(r[c] == 1 for r in t2.rows for c in pathologies)
    return {
        "reports": len(t1.ids),
        "cells": len(all_a),
        "disagree": sum(x != y for x, y in zip(all_a, all_b)),
        "agree": sum(x == y for x, y in zip(all_a, all_b)) / len(all_a),
        "kappa": cohen_kappa(all_a, all_b),
        "pos_f1_12": 2 * tp / (n1 + n2),
        "per": per,
    }


def parse_gold_reports(reports_csv: Path, ids: list[str], out: Path) -> Path:
    """labels.csv for the gold's reports, parsed with the default chexpert schema."""
    from radtool import parse_reports
    from radtool.io.readers import read_reports
    from radtool.schemas import load_schema

    reports, _id_name = read_reports(reports_csv)
    wanted = set(ids)
    chosen = [r for r in reports if r.id in wanted]
    missing = wanted - {r.id for r in chosen}
    if missing:
        raise SystemExit(f"{len(missing)} gold ids not in {reports_csv}: {sorted(missing)[:5]}")
    records = parse_reports(chosen, schema="chexpert")
    columns = load_schema("chexpert").columns
    out.mkdir(parents=True, exist_ok=True)
    path = out / "labels.csv"
    write_labels(path, "report_id", columns, ((rec["id"], [rec["labels"][c] for c in columns]) for rec in records))
    return path


def print_scores(name: str, scores: dict) -> None:
    pos = scores["positive"]
    print(f"\n== {name}: {pos['reports']} reports (F1; gold count in brackets)")
    print(f"{'observation':28s} " + " ".join(f"{k:>16s}" for k in scores))
    for obs in pos["observations"]:
        cells = []
        for kind in scores:
            s = scores[kind]["observations"][obs]
            cells.append(f"{s['f1']:.3f} [{s['support']:3d}]" if s["support"] else f"  -   [{0:3d}]")
        print(f"{obs:28s} " + " ".join(f"{c:>16s}" for c in cells))
    print(f"{'micro (12 pathologies)':28s} " + " ".join(f"{scores[k]['micro']['f1']:16.3f}" for k in scores))
    print(f"{'macro (12 pathologies)':28s} " + " ".join(f"{scores[k]['macro']['f1']:16.3f}" for k in scores))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gold-dir", type=Path, default=GOLD_DIR)
    ap.add_argument("--reports", type=Path, default=ROOT / "corpora" / "openi" / "reports.csv")
    ap.add_argument("--pred", type=Path, default=None, help="score this labels.csv instead of parsing")
    ap.add_argument("--out", type=Path, default=None, help="keep the parse output here")
    ap.add_argument("--agreement-only", action="store_true")
    args = ap.parse_args()
    gold = args.gold_dir / "gold.csv"

    agr = agreement(args.gold_dir / "annotator_1.csv", args.gold_dir / "annotator_2.csv")
    print(f"inter-annotator agreement ({agr['reports']} reports, {agr['cells']} cells, before adjudication):")
    print(f"  cells agreeing {agr['agree']:.4f} ({agr['disagree']} disagree); Cohen's kappa overall {agr['kappa']:.3f}; "
          f"positive F1 (a2 vs a1, micro over 12 pathologies) {agr['pos_f1_12']:.3f}")
    print(f"  {'observation':28s} {'agree':>6s} {'kappa':>6s} {'posF1':>6s} {'diff':>5s}")
    for c, s in agr["per"].items():
        print(f"  {c:28s} {s['agree']:6.3f} {s['kappa']:6.3f} {s['pos_f1']:6.3f} {s['disagree']:5d}")
    if args.agreement_only:
        return

    ids = read_labels(gold, what="gold").ids
    if args.pred is None:
        out = args.out or Path(tempfile.mkdtemp(prefix="radtool-chexpert-"))
        pred = parse_gold_reports(args.reports, ids, out)
        print(f"\nparsed {len(ids)} reports -> {pred}")
    else:
        pred = args.pred
    exclude = set(NOT_AVERAGED)
    for name, split in (("tune", {i for i in ids if not held_out(i)}), ("held-out", {i for i in ids if held_out(i)}), ("all", None)):
        scores = evaluate_kinds(pred, gold, ids=split)
        for res in scores.values():  # averages over the 12 pathologies, as in the CheXpert paper
            _reaverage(res, exclude)
        print_scores(name, scores)


def _reaverage(res: dict, exclude: set[str]) -> None:
    per = {k: v for k, v in res["observations"].items() if k not in exclude and v["support"] > 0}
    tp, fp, fn = (sum(v[k] for v in per.values()) for k in ("tp", "fp", "fn"))
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    res["micro"] = {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "support": tp + fn}
    res["macro"] = {"f1": sum(v["f1"] for v in per.values()) / max(len(per), 1)}


if __name__ == "__main__":
    main()
