"""Label accuracy on the OpenI development reports against the NegBio gold (ChestX-ray14 findings).

    python benchmarks/eval_openi.py [--corpus corpora/openi] [--positive 1]

Everything it reads is in the repository: `corpora/openi/reports.csv` (3,184 OpenI reports) and
`corpora/openi/gold_negbio.csv` (NegBio's MeSH-derived gold for 3,080 of them, public domain).
Parses the reports (findings + impression, schema chestxray14) with `radtool parse`, then
scores with `radtool evaluate` on three splits of the 3,080 gold reports:

* tune (report number not divisible by 5): the reports whose errors were read while writing the rules;
* held-out (report number divisible by 5): never looked at report by report; the figure to quote;
* all.

Observations with no gold positive in a split (Hernia: the gold never marks it) are shown but left out
of micro/macro; the line "incl. empty" gives micro-F1 with them counted.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

from radtool.cli.parse import parse
from radtool.evaluate import evaluate

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=ROOT / "corpora" / "openi", help="folder with reports.csv and gold_negbio.csv")
    ap.add_argument("--positive", default="1", help="1, or 1,-1 to count uncertain as positive")
    ap.add_argument("--out", type=Path, default=None, help="keep the parse output here")
    ap.add_argument("--schema", default="chestxray14", help="chestxray14 (default); chexpert scores the 7 observations it shares with the gold")
    args = ap.parse_args()
    data = args.corpus
    positive = frozenset(int(v) for v in args.positive.split(","))
    out = args.out or Path(tempfile.mkdtemp(prefix="radtool-openi-"))
    summary = parse(data / "reports.csv", out, schema=args.schema)
    print(f"parsed {summary['reports']} reports -> {out}")
    with (data / "gold_negbio.csv").open(newline="") as fh:
        gold_ids = [row["report_id"] for row in csv.DictReader(fh)]
    held = {i for i in gold_ids if int(i[3:]) % 5 == 0}
    tune = set(gold_ids) - held
    pred, gold = out / "labels.csv", data / "gold_negbio.csv"
    for name, ids in (("tune", tune), ("held-out", held), ("all", None)):
        res = evaluate(pred, gold, positive=positive, ids=ids)
        incl = evaluate(pred, gold, positive=positive, ids=ids, include_empty=True)
        print(f"\n== {name}: {res['reports']} reports, positive = {args.positive}")
        print(f"{'observation':22s} {'P':>6s} {'R':>6s} {'F1':>6s} {'n':>5s} {'FP':>4s} {'FN':>4s}")
        for obs, s in res["observations"].items():
            flag = "  (no gold positives; not averaged)" if obs in res["not_averaged"] else ""
            print(f"{obs:22s} {s['precision']:6.3f} {s['recall']:6.3f} {s['f1']:6.3f} {s['support']:5d} {s['fp']:4d} {s['fn']:4d}{flag}")
        m = res["micro"]
        print(f"{'micro':22s} {m['precision']:6.3f} {m['recall']:6.3f} {m['f1']:6.3f} {m['support']:5d}")
        print(f"{'macro':22s} {res['macro']['precision']:6.3f} {res['macro']['recall']:6.3f} {res['macro']['f1']:6.3f}")
        print(f"micro-F1 incl. empty observations: {incl['micro']['f1']:.3f}; No Finding F1: {res['observations']['No Finding']['f1']:.3f}")


if __name__ == "__main__":
    main()
