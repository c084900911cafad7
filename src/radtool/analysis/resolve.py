"""Resolve uncertain labels (-1): keep them, turn them into 1 (U-Ones) or 0 (U-Zeros), or take the
similarity-weighted vote of the k most similar reports in which that observation is certain.

The vote for report i and observation c is v = Σ w_j·y_j / Σ w_j over the k most similar other
reports j with y_j ∈ {1, 0} for c and similarity w_j > 0; the label becomes 1 if v ≥ 0.5, else 0.
Where no report qualifies the label stays -1 and the provenance says so.

That plain vote ignores base rates: reports that mention a finding with certainty are mostly positive
for some findings, so v leans positive. The ``calibrated`` policy compares the vote with the finding's
positive rate p among all reports certain about it (a likelihood ratio): with the vote shrunk towards
p by one pseudo-neighbour, v' = (Σ w·y + p) / (Σ w + 1), LR = odds(v') / odds(p); the label becomes 1
if LR ≥ ``lr``, 0 if LR ≤ 1 / ``lr``, and ``fallback`` (0 by default, as U-Zeros) otherwise or where no
report qualifies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .similarity import SimilarityIndex

POLICIES = ("keep", "u_ones", "u_zeros", "similarity", "calibrated")
POLICY_ALIASES = {"u-ones": "u_ones", "uones": "u_ones", "ones": "u_ones", "u-zeros": "u_zeros", "uzeros": "u_zeros",
                  "zeros": "u_zeros", "sim": "similarity", "knn": "similarity", "lr": "calibrated", "similarity_lr": "calibrated",
                  "similarity-lr": "calibrated"}
DEFAULT_LR = 16.0  # tuned on the TUNE split of the OpenI gold: the best TUNE micro-F1 (docs/analysis.md)


@dataclass
class Resolution:
    row: int  # position of the report
    column: str
    old: int
    new: int
    vote: float | None  # weighted share of positive neighbours (similarity policy)
    neighbors: list[int]  # positions of the voting reports, most similar first
    weights: list[float]


def policy_name(value: str) -> str:
    from ..errors import UserError

    name = POLICY_ALIASES.get(value.strip().lower(), value.strip().lower())
    if name not in POLICIES:
        raise UserError(f"unknown policy {value!r}: use keep, u_ones, u_zeros, similarity or calibrated")
    return name


def label_matrix(rows: Sequence[dict], columns: Sequence[str]) -> np.ndarray:
    """Reports × columns as float: 1, 0, -1, NaN for blank (cells as read by :func:`radtool.io.labels.parse_value`)."""
    from ..io.labels import parse_value

    out = np.full((len(rows), len(columns)), np.nan)
    for i, row in enumerate(rows):
        for j, col in enumerate(columns):
            value = parse_value(row.get(col))
            if value is not None:
                out[i, j] = value
    return out


def resolve_similarity(index: SimilarityIndex, labels: np.ndarray, columns: Sequence[str], k: int = 10,
                       memory_mb: float = 256) -> list[Resolution]:
    """Similarity-weighted votes for every -1 in ``labels`` (reports × columns, aligned with ``index``)."""
    uncertain_rows = np.flatnonzero((labels == -1).any(axis=1))
    certain = (labels == 0) | (labels == 1)
    out: list[Resolution] = []
    for rows, combined, _per in index.blocks(uncertain_rows, memory_mb=memory_mb, per_family=False):
        combined[np.arange(len(rows)), rows] = -np.inf  # a report does not vote on itself
        for local, i in enumerate(rows.tolist()):
            scores = combined[local]
            for c in np.flatnonzero(labels[i] == -1).tolist():
                candidates = np.flatnonzero(certain[:, c] & (scores > 0))
                if len(candidates) == 0:
                    out.append(Resolution(i, columns[c], -1, -1, None, [], []))
                    continue
                cand_scores = scores[candidates]
                take = min(k, len(candidates))
                best = np.argpartition(-cand_scores, take - 1)[:take] if take < len(candidates) else np.arange(len(candidates))
                best = best[np.lexsort((candidates[best], -cand_scores[best]))]
                chosen, weights = candidates[best], cand_scores[best].astype(np.float64)
                vote = float((weights * labels[chosen, c]).sum() / weights.sum())
                out.append(Resolution(i, columns[c], -1, 1 if vote >= 0.5 else 0, vote, chosen.tolist(), weights.tolist()))
    out.sort(key=lambda r: (r.row, list(columns).index(r.column)))
    return out


def positive_rates(labels: np.ndarray) -> np.ndarray:
    """Per column: the share of 1 among the reports certain about it (1 or 0); NaN if none is."""
    certain = (labels == 0) | (labels == 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (labels == 1).sum(axis=0) / certain.sum(axis=0)


def likelihood_ratio(resolution: Resolution, prior: float) -> float | None:
    """odds(v') / odds(p) for the vote shrunk towards the prior p by one pseudo-neighbour; None without a vote."""
    if resolution.vote is None or not resolution.weights or not 0 < prior < 1:
        return None
    total = float(sum(resolution.weights))
    shrunk = (resolution.vote * total + prior) / (total + 1.0)
    return (shrunk / (1 - shrunk)) / (prior / (1 - prior)) if shrunk < 1 else float("inf")


def calibrate(resolutions: list[Resolution], labels: np.ndarray, columns: Sequence[str], lr: float = DEFAULT_LR,
              fallback: int = 0) -> list[Resolution]:
    """The ``calibrated`` policy: 1 where the likelihood ratio of the vote is at least ``lr``, 0 where it is at
    most 1 / ``lr``, ``fallback`` where the vote is not that confident or there is none."""
    if lr < 1:
        raise ValueError("lr must be at least 1")
    priors = dict(zip(columns, positive_rates(labels).tolist()))
    out = []
    for r in resolutions:
        ratio = likelihood_ratio(r, priors[r.column])
        new = fallback if ratio is None else 1 if ratio >= lr else 0 if ratio <= 1 / lr else fallback
        out.append(Resolution(r.row, r.column, r.old, new, r.vote, r.neighbors, r.weights))
    return out


def apply_policy(labels: np.ndarray, policy: str, columns: Sequence[str], resolutions: list[Resolution] | None = None) -> np.ndarray:
    out = labels.copy()
    if policy == "keep":
        return out
    if policy == "u_ones":
        out[out == -1] = 1
    elif policy == "u_zeros":
        out[out == -1] = 0
    elif policy in ("similarity", "calibrated"):  # resolutions of that policy
        col = {c: j for j, c in enumerate(columns)}
        for r in resolutions or []:
            out[r.row, col[r.column]] = r.new
    else:
        raise ValueError(policy)
    return out
