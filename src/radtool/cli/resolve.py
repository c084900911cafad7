"""``radtool resolve``: replace uncertain labels (-1) by a policy; keep, U-Ones, U-Zeros, or the
similarity-weighted vote of the most similar reports, with the provenance of every change."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from ..errors import UserError, shown
from ..io import write_csv, write_json
from ..io.labels import LabelTable, format_value, read_labels, write_labels
from ..io.writers import atomic_dir, check_replaceable
from .options import OutOpt, QuietOpt
from ._common import console, handle_errors

OUTPUTS = ("labels.csv", "provenance.csv", "resolve.json", "policies")  # what an older radtool wrote here


def _read_labels(parse_dir: Path) -> LabelTable:
    path = parse_dir / "labels.csv"
    if not path.is_file():
        raise UserError(f"{shown(parse_dir)} has no labels.csv; run radtool parse first")
    table = read_labels(path, id_col=0, allow_duplicates=True)  # parse writes the id first and keeps every row
    if not table.columns:
        raise UserError(f"{shown(path)} has no label columns")
    return table


def _write_labels(path: Path, id_col: str, ids: list[str], columns: list[str], matrix) -> None:
    write_labels(path, id_col, columns, zip(ids, matrix.tolist()))


def split_ids(ids: list[str], every: int) -> dict[str, set[str]]:
    """``tune`` / ``heldout``: a report is held out when the number at the end of its id is divisible by ``every``
    (OpenI ``CXR1234`` → 1234); ids without a number are tuning reports."""
    import re

    held = set()
    for rid in ids:
        m = re.search(r"(\d+)\D*$", rid)
        if m and int(m.group(1)) % every == 0:
            held.add(rid)
    return {"tune": set(ids) - held, "heldout": held}


def _score(path: Path, gold: Path, ids: set[str] | None = None) -> dict:
    from ..evaluate import evaluate

    r = evaluate(path, gold, positive={1}, ids=ids)
    return {"micro_f1": r["micro"]["f1"], "macro_f1": r["macro"]["f1"], "micro_precision": r["micro"]["precision"],
            "micro_recall": r["micro"]["recall"], "macro_precision": r["macro"]["precision"],
            "macro_recall": r["macro"]["recall"], "reports": r["reports"], "not_averaged": r["not_averaged"]}


def resolve(parse_dir: Path, out: Path, policy: str = "similarity", k: int = 10, features: list[str] | None = None,
            gold: Path | None = None, lr: float | None = None, fallback: int = 0, holdout_every: int | None = None) -> dict:
    """Write ``labels.csv`` (resolved by ``policy``) and ``provenance.csv`` to ``out``; with ``gold``, also
    every policy's labels under ``out/policies/`` and their scores against the gold (returned and in resolve.json)."""
    from ..analysis.corpus import load_parse_dir
    from ..analysis.features import parse_families
    from ..analysis.resolve import DEFAULT_LR, POLICIES, apply_policy, calibrate, label_matrix, policy_name, resolve_similarity
    from ..analysis.similarity import SimilarityIndex

    parse_dir = Path(parse_dir)
    policy = policy_name(policy)
    families = parse_families(features)
    if k < 1:
        raise UserError(f"--k must be at least 1, not {k}")
    lr = DEFAULT_LR if lr is None else lr
    if lr < 1:
        raise UserError(f"--lr must be at least 1 (a likelihood ratio), not {lr}")
    if fallback not in (-1, 0, 1):
        raise UserError(f"--fallback must be -1, 0 or 1, not {fallback}")
    if holdout_every is not None and holdout_every < 2:
        raise UserError(f"--holdout-every must be at least 2, not {holdout_every}")
    if gold is not None and not Path(gold).is_file():
        raise UserError(f"gold file not found: {shown(gold)}")
    if Path(out).resolve() == parse_dir.resolve():
        raise UserError(f"--out {shown(out)} is the parse folder itself; give another folder (it is replaced as a whole)")
    check_replaceable(out, OUTPUTS)  # before any long work
    corpus = load_parse_dir(parse_dir)
    table = _read_labels(parse_dir)
    id_col, columns, ids = table.id_col, table.columns, table.ids
    if ids != [r["id"] for r in corpus.records]:
        raise UserError(f"{shown(parse_dir)}: labels.csv and graphs.jsonl list different reports; re-run radtool parse")
    labels = label_matrix(table.rows, columns)
    index = SimilarityIndex.from_records(corpus.records, families)
    resolutions = resolve_similarity(index, labels, columns, k=k)
    calibrated = calibrate(resolutions, labels, columns, lr=lr, fallback=fallback)
    by_policy = {"similarity": resolutions, "calibrated": calibrated}
    results = {p: apply_policy(labels, p, columns, by_policy.get(p)) for p in POLICIES}
    with atomic_dir(out, OUTPUTS) as tmp:  # labels, provenance, scores and resolve.json appear together or not at all
        _write_labels(tmp / "labels.csv", id_col, ids, columns, results[policy])

        header = [id_col, "observation", "old_value", "new_value", "policy", "vote", "neighbor_ids", "weights"]
        col_index = {c: j for j, c in enumerate(columns)}
        if policy in by_policy:
            prov = ([ids[r.row], r.column, r.old, r.new, policy, "" if r.vote is None else f"{r.vote:.4f}",
                     ";".join(ids[j] for j in r.neighbors), ";".join(f"{w:.4f}" for w in r.weights)] for r in by_policy[policy])
        else:
            prov = ([ids[r.row], r.column, -1, format_value(results[policy][r.row, col_index[r.column]]), policy, "", "", ""] for r in resolutions)
        write_csv(tmp / "provenance.csv", header, prov)
        changed = sum(1 for r in resolutions if r.new != -1)
        summary = {
            "parse_dir": str(parse_dir), "policy": policy, "k": k, "families": list(families), "reports": len(ids),
            "uncertain_labels": len(resolutions), "resolved_by_similarity": changed,
            "similarity_to_1": sum(1 for r in resolutions if r.new == 1), "similarity_to_0": sum(1 for r in resolutions if r.new == 0),
            "calibrated": {"lr": lr, "fallback": fallback, "to_1": sum(1 for r in calibrated if r.new == 1),
                           "to_0": sum(1 for r in calibrated if r.new == 0), "to_fallback_or_kept": sum(1 for a, b in zip(resolutions, calibrated)
                                                                                                     if b.new == fallback)},
            "outputs": ["labels.csv", "provenance.csv", "resolve.json"],
        }
        if gold is not None:
            scores = {}
            splits = split_ids(ids, holdout_every) if holdout_every else {}
            split_scores: dict[str, dict] = {name: {} for name in splits}
            for p in POLICIES:
                path = tmp / "policies" / f"labels_{p}.csv"
                _write_labels(path, id_col, ids, columns, results[p])
                scores[p] = _score(path, gold)
                for name, members in splits.items():
                    split_scores[name][p] = _score(path, gold, members)
            summary["gold"] = str(gold)
            summary["scores"] = scores
            if splits:
                summary["holdout_every"] = holdout_every
                summary["split_scores"] = split_scores
            summary["outputs"].append("policies/")
        write_json(tmp / "resolve.json", summary)
    return summary


@handle_errors
def resolve_cli(
    parse_dir: Path = typer.Argument(..., help="A radtool parse output folder (labels.csv + graphs.jsonl).", show_default=False),
    out: OutOpt = Path("radtool-resolved"),
    policy: str = typer.Option("similarity", "--policy", help="keep (-1 stays), u_ones (-1 → 1), u_zeros (-1 → 0), similarity (vote of the k most similar reports), or calibrated (that vote against the finding's base rate)."),
    k: int = typer.Option(10, "--k", help="Reports that vote on each uncertain label (similarity policy)."),
    features: Optional[list[str]] = typer.Option(None, "--features", help="Feature families for the similarity (default noun_phrases, verbs, entities)."),
    gold: Optional[Path] = typer.Option(None, "--gold", help="Gold labels CSV: score every policy side by side (positive = 1; -1 counts as negative)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="calibrated policy: likelihood ratio (vote odds / base-rate odds) needed to resolve to 1, or its inverse to 0 (default 16, tuned on the OpenI TUNE split)."),
    fallback: int = typer.Option(0, "--fallback", help="calibrated policy: value for uncertain labels whose vote is not confident (0, 1 or -1)."),
    holdout_every: Optional[int] = typer.Option(None, "--holdout-every", help="With --gold, also score a TUNE and a HELD-OUT split: held out = reports whose id number is divisible by N (OpenI: 5)."),
    quiet: QuietOpt = False,
) -> None:
    """Resolve uncertain labels (-1) by a policy and record where each resolved value came from."""
    summary = resolve(parse_dir, out, policy=policy, k=k, features=features, gold=gold, lr=lr, fallback=fallback,
                      holdout_every=holdout_every)
    if quiet:
        return
    n, policy_used = summary["uncertain_labels"], summary["policy"]
    line = f"{n} uncertain labels in {summary['reports']} reports; "
    if policy_used == "similarity":
        line += (f"similarity vote: {summary['similarity_to_1']} → 1, {summary['similarity_to_0']} → 0, "
                 f"{n - summary['resolved_by_similarity']} left -1 (no certain neighbour)")
    elif policy_used == "calibrated":
        c = summary["calibrated"]
        line += (f"calibrated vote (LR ≥ {c['lr']:g} → 1, ≤ 1/{c['lr']:g} → 0, else {c['fallback']}): "
                 f"{c['to_1']} → 1, {c['to_0']} → 0, {c['to_fallback_or_kept']} → {c['fallback']}")
    else:
        line += {"keep": "all kept as -1", "u_ones": f"all {n} → 1", "u_zeros": f"all {n} → 0"}[policy_used]
    console.print(Text(f"{line}. labels.csv uses policy {policy_used} → {shown(out)}"))
    if "scores" in summary:
        tables = [("all", summary["scores"])] + list(summary.get("split_scores", {}).items())
        for name, scores in tables:
            what = "" if name == "all" else f" — {name.upper()} split (id number {'not ' if name == 'tune' else ''}divisible by {summary['holdout_every']})"
            table = Table(title=f"policies against {summary['gold']}{what} ({next(iter(scores.values()))['reports']} reports, positive = 1)", title_justify="left")
            for col in ("policy", "micro-F1", "macro-F1", "micro-P", "micro-R", "macro-P", "macro-R"):
                table.add_column(col, justify="left" if col == "policy" else "right")
            for p, s in scores.items():
                table.add_row(p, *(f"{s[key]:.3f}" for key in ("micro_f1", "macro_f1", "micro_precision", "micro_recall", "macro_precision", "macro_recall")))
            console.print(table)


def register(app: typer.Typer) -> None:
    app.command("resolve")(resolve_cli)
