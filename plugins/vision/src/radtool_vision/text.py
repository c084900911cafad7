"""Report text as a fixed-size vector, from radtool's own parse output (``PARSE_DIR/graphs.jsonl``).

X_text for the joint model X = [X_text, X_image] (:mod:`radtool_vision.textfusion`). No hub download,
no vocabulary to fit: each report becomes a bag of named features taken from the sections the user
chose, hashed into ``dim`` signed buckets (the hashing trick, with a stable hash: the same report gives
the same vector in every process and on every machine), counts damped with ``log1p`` and the vector
scaled to unit length. The features of a report, from its chosen sections only:

* ``sec:INDICATION``                        the section is there (a flag)
* ``ent:observation:uncertain:effusion``    an entity: type, certainty, normalised tokens
* ``con:Pleural Effusion:uncertain``        a schema observation the entity maps to, with its certainty
* ``rel:located_at:effusion:left``          a relation triple (head and tail tokens)
* ``w:cough`` / ``b:rule_out``              words and word pairs (letters only; OpenI's ``XXXX`` skipped)

**The leakage trap.** Labels are extracted from FINDINGS / IMPRESSION (and unsectioned text): a model
that reads those sections reads the answer. The default sections are the *request*: what a reader has
before the image is reported (INDICATION, HISTORY, CLINICAL INFORMATION, COMPARISON). Label sections
need ``allow_label_sections=True`` and come with a warning (:func:`check_sections`).

Plain Python and numpy: no torch, no spaCy.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from .errors import UserError, missing_file

GRAPHS_FILE = "graphs.jsonl"
REQUEST_SECTIONS = ("INDICATION", "HISTORY", "CLINICAL INFORMATION", "COMPARISON")
FEATURE_KINDS = ("section", "entity", "concept", "relation", "word", "bigram")
DEFAULT_DIM = 2**12
_WORD = re.compile(r"[a-z][a-z'-]*[a-z]|[a-z]")
_ANONYMISED = {"xxxx"}  # OpenI's de-identification mask


def normalize_section(name: str | None) -> str:
    """``clinical_information`` / ``Clinical Information`` -> ``CLINICAL INFORMATION`` (as --text-col names become)."""
    return re.sub(r"[\s_]+", " ", str(name or "")).strip().upper()


def label_sections(parse_dir: str | Path | None = None) -> frozenset[str]:
    """Sections the labels were extracted from: the parse's own record if it has one, else radtool's rules."""
    if parse_dir is not None:
        summary = Path(parse_dir) / "summary.json"
        try:
            recorded = json.loads(summary.read_text()).get("label_sections")
        except (OSError, ValueError, AttributeError):
            recorded = None
        if isinstance(recorded, list) and recorded:
            return frozenset(normalize_section(s) for s in recorded)
    from radtool.labeling import label_sections as core_label_sections

    return frozenset(normalize_section(s) for s in core_label_sections())


def parse_sections_option(text: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"indication,history"`` (or a list) -> ``("INDICATION", "HISTORY")``; None -> the request sections."""
    if text is None:
        return REQUEST_SECTIONS
    parts = text.split(",") if isinstance(text, str) else [p for item in text for p in str(item).split(",")]
    names = tuple(dict.fromkeys(normalize_section(p) for p in parts if p.strip()))
    if not names:
        raise UserError("--text-sections names no section; e.g. --text-sections INDICATION,HISTORY")
    return names


def leaky_sections(sections: Iterable[str], parse_dir: str | Path | None = None) -> list[str]:
    """The chosen sections that labels come from (FINDINGS, IMPRESSION, UNSECTIONED by default)."""
    labelled = label_sections(parse_dir)
    return [s for s in sections if s in labelled]


def check_sections(sections: Iterable[str], allow_label_sections: bool,
                   parse_dir: str | Path | None = None) -> str | None:
    """Refuse label sections unless allowed; return the one-line warning to print when they are used."""
    leaky = leaky_sections(sections, parse_dir)
    if not leaky:
        return None
    names = ", ".join(leaky)
    if not allow_label_sections:
        raise UserError(
            f"--text-sections {names}: the labels are extracted from {names}, so a model reading them reads "
            "the answer; use the request sections (the default) or pass --allow-label-sections to do it anyway"
        )
    return (f"warning: text features come from {names}, the section(s) the labels were extracted from: "
            "scores will be optimistic and mean nothing where the report does not exist yet")


@dataclass(frozen=True)
class TextEncoderConfig:
    """Everything that fixes the vector of a report (recorded in config.json and the checkpoint)."""

    sections: tuple[str, ...] = REQUEST_SECTIONS
    dim: int = DEFAULT_DIM
    features: tuple[str, ...] = FEATURE_KINDS
    label_sections_used: tuple[str, ...] = field(default=())  # chosen sections the labels come from

    def __post_init__(self) -> None:
        if self.dim < 2:
            raise UserError(f"--text-dim must be at least 2, not {self.dim}")
        unknown = [f for f in self.features if f not in FEATURE_KINDS]
        if unknown:
            raise UserError(f"unknown text feature kind {unknown[0]!r}; kinds are {', '.join(FEATURE_KINDS)}")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TextEncoderConfig":
        return cls(sections=tuple(data["sections"]), dim=int(data["dim"]), features=tuple(data["features"]),
                   label_sections_used=tuple(data.get("label_sections_used", ())))


@lru_cache(maxsize=2**18)
def _hash(name: str) -> int:
    """64-bit stable hash (blake2b): identical in every process, unlike Python's salted ``hash()``."""
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "little")


def _norm_tokens(text: str) -> str:
    return " ".join(w for w in _WORD.findall(str(text).lower()) if w not in _ANONYMISED)


class TextEncoder:
    """Report record (one line of graphs.jsonl) -> named features -> hashed, signed, unit-length vector."""

    def __init__(self, config: TextEncoderConfig | None = None):
        self.config = config or TextEncoderConfig()
        self._sections = frozenset(self.config.sections)
        self._kinds = frozenset(self.config.features)

    def bucket(self, name: str) -> tuple[int, float]:
        """The feature's index and sign."""
        h = _hash(name)
        return h % self.config.dim, (1.0 if (h >> 63) == 0 else -1.0)

    def features(self, record: dict[str, Any]) -> Counter:
        """Named feature counts of one report, from its chosen sections only."""
        out: Counter = Counter()
        kinds, chosen = self._kinds, self._sections
        tokens = str(record.get("text") or "").split(" ")
        for sec in record.get("sections") or ():
            name = normalize_section(sec.get("name"))
            if name not in chosen:
                continue
            start, end = int(sec.get("start_ix", 0)), int(sec.get("end_ix", -1))
            words = [w for t in tokens[max(start, 0):end + 1] for w in _WORD.findall(t.lower()) if w not in _ANONYMISED]
            if "section" in kinds and words:
                out[f"sec:{name}"] = 1
            if "word" in kinds:
                out.update(f"w:{w}" for w in words)
            if "bigram" in kinds:
                out.update(f"b:{a}_{b}" for a, b in zip(words, words[1:]))
        entities = record.get("entities") or {}
        for ent in entities.values():
            if normalize_section(ent.get("section")) not in chosen:
                continue
            etype, _, certainty = str(ent.get("label", "")).partition("::")
            text = _norm_tokens(ent.get("tokens", ""))
            if not text:
                continue
            if "entity" in kinds:
                out[f"ent:{etype.lower()}:{certainty}:{text}"] += 1
            if "concept" in kinds:
                out.update(f"con:{c}:{certainty}" for c in ent.get("concepts") or ())
            if "relation" in kinds:
                for rel, tail_id in ent.get("relations") or ():
                    tail = entities.get(str(tail_id))
                    if tail is not None and normalize_section(tail.get("section")) in chosen:
                        out[f"rel:{rel}:{text}:{_norm_tokens(tail.get('tokens', ''))}"] += 1
        return out

    def vectorize(self, feats: Counter) -> tuple[np.ndarray, np.ndarray]:
        """Sparse (indices, values) of the unit-length vector for named feature counts."""
        acc: dict[int, float] = {}
        for name, count in feats.items():
            idx, sign = self.bucket(name)
            acc[idx] = acc.get(idx, 0.0) + sign * math.log1p(count)
        idx = np.fromiter(sorted(acc), dtype=np.int32, count=len(acc))
        val = np.array([acc[i] for i in idx], dtype=np.float32)
        norm = float(np.sqrt((val.astype(np.float64) ** 2).sum()))
        if norm > 0:
            val /= norm
        keep = val != 0
        return idx[keep], val[keep]

    def encode(self, record: dict[str, Any] | None) -> np.ndarray:
        """Dense (dim,) float32 vector; zeros for a missing record or one without the chosen sections."""
        out = np.zeros(self.config.dim, dtype=np.float32)
        if record:
            idx, val = self.vectorize(self.features(record))
            out[idx] = val
        return out


@dataclass
class TextRows:
    """Text vectors of a table's rows, stored sparse (CSR): row i is images' report i, zeros when missing."""

    dim: int
    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    found: np.ndarray  # (N,) bool: the row's report id had a parsed report

    def __len__(self) -> int:
        return len(self.found)

    def subset(self, rows: np.ndarray) -> "TextRows":
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.indptr[rows + 1] - self.indptr[rows]
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        take = np.concatenate([np.arange(self.indptr[r], self.indptr[r + 1]) for r in rows]) if len(rows) else np.array([], dtype=np.int64)
        return TextRows(self.dim, indptr, self.indices[take.astype(np.int64)], self.values[take.astype(np.int64)], self.found[rows])

    def dense(self, rows: np.ndarray, drop: np.ndarray | None = None) -> np.ndarray:
        """(len(rows), dim) float32; rows where ``drop`` is True are all zeros (text dropout)."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros((len(rows), self.dim), dtype=np.float32)
        for k, r in enumerate(rows):
            if drop is not None and drop[k]:
                continue
            s, e = self.indptr[r], self.indptr[r + 1]
            out[k, self.indices[s:e]] = self.values[s:e]
        return out

    def nonempty(self) -> int:
        return int((np.diff(self.indptr) > 0).sum())


def iter_records(parse_dir: str | Path) -> Iterator[dict[str, Any]]:
    """Records of ``PARSE_DIR/graphs.jsonl`` (a ``graphs.jsonl`` file may be given directly)."""
    path = Path(parse_dir)
    path = path / GRAPHS_FILE if path.is_dir() else path
    if not path.is_file():
        raise missing_file(path, f"--text parse output ({GRAPHS_FILE} of `radtool parse`)")
    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                raise UserError(f"{path} line {line_no} is not JSON; --text expects the folder `radtool parse` wrote") from None
            if not isinstance(record, dict) or "id" not in record:
                raise UserError(f"{path} line {line_no} has no report id; --text expects the folder `radtool parse` wrote")
            yield record


def encode_parse_dir(parse_dir: str | Path, encoder: TextEncoder, ids: Iterable[str]) -> TextRows:
    """One sparse text vector per id in ``ids`` (repeats allowed: one report, several images)."""
    ids = [str(i) for i in ids]
    wanted = set(ids)
    by_id: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for record in iter_records(parse_dir):
        rid = str(record["id"])
        if rid in wanted and rid not in by_id:
            by_id[rid] = encoder.vectorize(encoder.features(record))
    empty = (np.zeros(0, np.int32), np.zeros(0, np.float32))
    parts = [by_id.get(i, empty) for i in ids]
    lengths = np.array([len(p[0]) for p in parts], dtype=np.int64)
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    indices = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int32)
    values = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.float32)
    found = np.array([i in by_id for i in ids], dtype=bool)
    return TextRows(encoder.config.dim, indptr, indices.astype(np.int32), values.astype(np.float32), found)


def find_record(parse_dir: str | Path, report_id: str) -> dict[str, Any] | None:
    for record in iter_records(parse_dir):
        if str(record["id"]) == str(report_id):
            return record
    return None
