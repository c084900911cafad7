"""Resolve uncertain labels (-1): keep them, turn them into 1 (U-Ones) or 0 (U-Zeros), or take the
similarity-weighted vote of the k most similar reports in which that observation is certain.

The vote for report i and observation c is v = Σ w_j·y_j / Σ w_j over the k most similar other
reports j with y_j ∈ {1, 0} for c and similarity w_j > 0; the label becomes 1 if v ≥ 0.5, else 0.
Where no report qualifies the label stays -1 and the provenance says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .similarity import SimilarityIndex

POLICIES = ("keep", "u_ones", "u_zeros", "similarity")
POLICY_ALIASES = {"u-ones": "u_ones", "uones": "u_ones", "ones": "u_ones", "u-zeros": "u_zeros", "uzeros": "u_zeros",
                  "zeros": "u_zeros", "sim": "similarity", "knn": "similarity"}


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
        raise UserError(f"unknown policy {value!r}: use keep, u_ones, u_zeros or similarity")
    return name


def label_matrix(rows: Sequence[dict], columns: Sequence[str]) -> np.ndarray:
    """Reports × columns as float: 1, 0, -1, NaN for blank."""
    out = np.full((len(rows), len(columns)), np.nan)
    for i, row in enumerate(rows):
        for j, col in enumerate(columns):
            value = row.get(col)
            if value not in (None, ""):
                out[i, j] = float(value)
    return out


def resolve_similarity(index: SimilarityIndex, labels: np.ndarray, columns: Sequence[str], k: int = 10,
                       memory_mb: float = 256) -> list[Resolution]:
    """Similarity-weighted votes for every -1 in ``labels`` (reports × columns, aligned with ``index``)."""
    uncertain_rows = np.flatnonzero((labels == -1).any(axis=1))
    certain = (labels == 0) | (labels == 1)
    out: list[Resolution] = []
    for rows, combined, _per in index.blocks(uncertain_rows, memory_mb=memory_mb):
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


def apply_policy(labels: np.ndarray, policy: str, columns: Sequence[str], resolutions: list[Resolution] | None = None) -> np.ndarray:
    out = labels.copy()
    if policy == "keep":
        return out
    if policy == "u_ones":
        out[out == -1] = 1
    elif policy == "u_zeros":
        out[out == -1] = 0
    elif policy == "similarity":
        col = {c: j for j, c in enumerate(columns)}
        for r in resolutions or []:
            out[r.row, col[r.column]] = r.new
    else:
        raise ValueError(policy)
    return out
