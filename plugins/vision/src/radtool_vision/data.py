"""Label tables for image training: CheXpert-layout CSVs, or radtool labels joined to an image index.

Two inputs are accepted:

* a CheXpert-layout CSV: ``Path`` (relative to the image root), then one column per observation
  holding 1 (present), 0 (absent), -1 (uncertain) or blank (not mentioned);
* a radtool ``parse`` labels.csv (first column the report id, then one column per observation)
  together with an image index CSV that maps ``Path`` to that report id; one report may have
  several images.

Everything here is plain Python/numpy: no torch.
"""

from __future__ import annotations

import csv
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from radtool.io.labels import parse_value

from .errors import UserError, missing_column, missing_file
from .images import pixel_budget

DEFAULT_CLASSES = ("Pleural Effusion", "Pneumothorax", "Pneumonia", "No Finding")
UNCERTAIN_POLICIES = ("ignore", "zeros", "ones")
BALANCE_MODES = ("none", "pos-weight", "sampler")
VIEW_CHOICES = ("frontal", "lateral", "all")
PATH_COLUMN = "Path"
VIEW_COLUMN = "Frontal/Lateral"  # CheXpert
VIEW_POSITION_COLUMN = "ViewPosition"  # MIMIC-CXR metadata
FRONTAL_POSITIONS = {"PA", "AP", "AP AXIAL", "PA LLD", "AP LLD", "AP RLD", "PA RLD"}
LATERAL_POSITIONS = {"LATERAL", "LL", "LAO", "RAO", "LPO", "XTABLE LATERAL"}
PATIENT_COLUMNS = ("subject_id", "patient_id", "Patient ID", "PatientID")
PATIENT_PATTERNS = (
    re.compile(r"(?:^|[/\\])(patient\d+)(?:[/\\]|$)"),  # CheXpert: train/patient00001/study1/...
    re.compile(r"(?:^|[/\\])(p\d{6,})(?:[/\\]|$)"),  # MIMIC-CXR: files/p10/p10000032/s5.../
)


def read_csv(path: str | Path, what: str = "CSV file") -> tuple[list[str], list[dict[str, str]]]:
    path = Path(path)
    if not path.is_file():
        raise missing_file(path, what)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            reader.fieldnames = header
            rows = [{k: (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"cannot read {what} {path}: {exc}") from exc
    if not header:
        raise UserError(f"{what} {path} is empty")
    return header, rows


def parse_classes(text: str | None) -> list[str]:
    if text is None or not text.strip():
        return list(DEFAULT_CLASSES)
    classes = [c.strip() for c in text.split(",") if c.strip()]
    if len(set(classes)) != len(classes):
        raise UserError(f"--classes lists a class twice: {text!r}")
    return classes


def check_choice(value: str, choices: tuple[str, ...], option: str) -> str:
    if value not in choices:
        raise UserError(f"{option} must be one of {', '.join(choices)}, not {value!r}")
    return value


def parse_undersample(text: str | None) -> dict[str, float]:
    """``"No Finding=0.91,Pleural Effusion=0.30"`` -> {"No Finding": 0.91, ...}."""
    spec: dict[str, float] = {}
    if not text:
        return spec
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, value = part.rpartition("=")
        try:
            frac = float(value)
        except ValueError:
            frac = math.nan
        if not sep or not name.strip() or not 0.0 <= frac <= 1.0:
            raise UserError(f"--undersample expects CLASS=FRACTION pairs with 0 <= FRACTION <= 1, got {part.strip()!r}")
        spec[name.strip()] = frac
    return spec


def parse_label(value: str, column: str, row: int, source: object) -> float:
    """1 / 0 / -1, NaN for blank: the cell rules of :func:`radtool.io.labels.parse_value`, with the location."""
    try:
        parsed = parse_value(value)
    except UserError as exc:
        raise UserError(f"{source} line {row}, column {column!r}: {exc.message}") from None
    return math.nan if parsed is None else float(parsed)


@dataclass
class ImageTable:
    """Images with their label columns (raw strings, parsed on demand)."""

    root: Path
    rel_paths: list[str]
    columns: dict[str, list[str]]
    source: str
    line_numbers: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rel_paths)

    @property
    def paths(self) -> list[Path]:
        return [self.root / p for p in self.rel_paths]

    def subset(self, indices) -> "ImageTable":
        idx = [int(i) for i in indices]
        return ImageTable(
            root=self.root,
            rel_paths=[self.rel_paths[i] for i in idx],
            columns={k: [v[i] for i in idx] for k, v in self.columns.items()},
            source=self.source,
            line_numbers=[self.line_numbers[i] for i in idx] if self.line_numbers else [],
        )

    def require(self, names) -> None:
        for name in names:
            if name not in self.columns:
                raise missing_column(name, [c for c in self.columns if c != PATH_COLUMN], self.source)

    def labels(self, classes) -> np.ndarray:
        """(N, C) float32 array of 1 / 0 / -1 with NaN for blank."""
        self.require(classes)
        out = np.full((len(self), len(classes)), np.nan, dtype=np.float32)
        lines = self.line_numbers or list(range(2, len(self) + 2))
        for j, name in enumerate(classes):
            col = self.columns[name]
            for i, value in enumerate(col):
                out[i, j] = parse_label(value, name, lines[i], self.source)
        return out

    def groups(self) -> list[str]:
        """Patient id per image, so a validation split never shares a patient with training."""
        for col in PATIENT_COLUMNS:
            if col in self.columns:
                return [v or p for v, p in zip(self.columns[col], self.rel_paths)]
        out = []
        for rel in self.rel_paths:
            for pattern in PATIENT_PATTERNS:
                match = pattern.search(rel)
                if match:
                    out.append(match.group(1))
                    break
            else:
                out.append(rel)
        return out


OUTSIDE_ROOT = "image path is outside the image root (pass --allow-outside-root to read it)"


def outside_root(root: str | Path, rel: str) -> bool:
    """Whether ``root / rel`` leads outside ``root``, decided from the path text alone.

    No file is touched, so the answer says nothing about what exists. Symbolic links inside the root
    are followed as the user set them up; only the table's own ``..`` and absolute paths are refused.
    """
    base = os.path.normpath(os.path.abspath(root))
    target = os.path.normpath(os.path.join(base, rel))
    return os.path.commonpath([base, target]) != base


def load_image_table(
    data: str | Path,
    image_root: str | Path | None = None,
    image_index: str | Path | None = None,
    id_column: str | None = None,
    views: str = "frontal",
    allow_outside_root: bool = False,
) -> ImageTable:
    """Read a CheXpert-layout CSV, or join a radtool labels.csv with an image index.

    Paths that lead outside the image root (``../``, absolute paths elsewhere) are refused unless
    ``allow_outside_root`` (``--allow-outside-root``): the table is data, the root is the user's choice.
    """
    check_choice(views, VIEW_CHOICES, "--views")
    pixel_budget()  # a bad RADTOOL_MAX_IMAGE_PIXELS fails here, not in every decoder
    data = Path(data)
    header, rows = read_csv(data, "label file")
    lines = list(range(2, len(rows) + 2))
    if image_index is not None:
        header, rows, lines, source = _join_index(data, header, rows, Path(image_index), id_column)
    else:
        source = str(data)
        if PATH_COLUMN not in header:
            raise UserError(
                f"column 'Path' not found in {data}; columns are: {', '.join(header)} "
                "(for a radtool labels.csv pass --image-index CSV mapping Path to report id)"
            )
    root = Path(image_root) if image_root is not None else (Path(image_index) if image_index else data).parent
    if not root.is_dir():
        raise missing_file(root, "image root folder")
    columns = {name: [r.get(name, "") for r in rows] for name in header}
    table = ImageTable(root, columns[PATH_COLUMN], columns, source, lines)
    empty = [i for i, p in enumerate(table.rel_paths) if not p]
    if empty:
        raise UserError(f"{source} line {lines[empty[0]]}: empty Path")
    if not allow_outside_root:
        outside = [i for i, p in enumerate(table.rel_paths) if outside_root(root, p)]
        if outside:
            rel = table.rel_paths[outside[0]]
            raise UserError(f"{source} line {lines[outside[0]]}: {OUTSIDE_ROOT.replace('image path', f'image path {rel!r}')}")
    table = select_views(table, views)
    if len(table) == 0:
        raise UserError(f"no images left in {source} after --views {views}")
    return table


def _join_index(data: Path, header, rows, index: Path, id_column: str | None):
    id_col = id_column or header[0]
    if id_col not in header:
        raise missing_column(id_col, header, data)
    idx_header, idx_rows = read_csv(index, "image index")
    for col in (PATH_COLUMN, id_col):
        if col not in idx_header:
            raise missing_column(col, idx_header, index)
    by_id: dict[str, dict[str, str]] = {}
    for row in rows:
        by_id.setdefault(row[id_col], row)
    merged, lines = [], []
    for line, row in enumerate(idx_rows, start=2):
        labels = by_id.get(row[id_col])
        if labels is None:
            continue
        merged.append({**labels, **row})
        lines.append(line)
    if not merged:
        raise UserError(f"no image in {index} matches a report id in column {id_col!r} of {data}")
    out_header = list(dict.fromkeys(idx_header + header))
    return out_header, merged, lines, f"{data} joined with {index}"


def select_views(table: ImageTable, views: str) -> ImageTable:
    if views == "all":
        return table
    if VIEW_COLUMN in table.columns:
        keep = [i for i, v in enumerate(table.columns[VIEW_COLUMN]) if v.strip().lower() == views]
    elif VIEW_POSITION_COLUMN in table.columns:
        wanted = FRONTAL_POSITIONS if views == "frontal" else LATERAL_POSITIONS
        keep = [i for i, v in enumerate(table.columns[VIEW_POSITION_COLUMN]) if v.strip().upper() in wanted]
    else:
        return table  # no view information: keep every image
    return table.subset(keep)


def to_targets(labels: np.ndarray, uncertain: str) -> np.ndarray:
    """Training targets: blank -> 0 (CheXpert practice); -1 -> NaN (masked), 0 or 1."""
    check_choice(uncertain, UNCERTAIN_POLICIES, "--uncertain")
    out = np.where(np.isnan(labels), 0.0, labels).astype(np.float32)
    fill = {"ignore": np.nan, "zeros": 0.0, "ones": 1.0}[uncertain]
    out[out == -1.0] = fill
    return out


def split_by_group(groups: list[str], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split image indices so that no group (patient) is on both sides."""
    if not 0.0 < fraction < 1.0:
        raise UserError(f"--val-fraction must be between 0 and 1 (exclusive), not {fraction}")
    unique = sorted(set(groups))
    if len(unique) < 2:
        raise UserError("cannot make a validation split from a single patient/file; pass --val-data")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(unique))
    n_val = min(len(unique) - 1, max(1, int(round(fraction * len(unique)))))
    val_groups = {unique[i] for i in order[:n_val]}
    is_val = np.array([g in val_groups for g in groups], dtype=bool)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def undersample(labels: np.ndarray, classes: list[str], spec: dict[str, float], seed: int) -> np.ndarray:
    """Indices kept after dropping ``fraction`` of the rows positive for each named class."""
    keep = np.ones(len(labels), dtype=bool)
    rng = np.random.default_rng(seed + 7919)
    for name, frac in spec.items():
        j = classes.index(name)
        positive = np.flatnonzero(keep & (labels[:, j] == 1.0))
        n_drop = int(round(frac * len(positive)))
        if n_drop:
            keep[rng.choice(positive, size=n_drop, replace=False)] = False
    return np.flatnonzero(keep)


def pos_weight(targets: np.ndarray, max_weight: float = 100.0) -> np.ndarray:
    """Negatives / positives per class over the known targets, clipped to [1/max, max]."""
    known = ~np.isnan(targets)
    pos = np.nansum(targets, axis=0)
    neg = known.sum(axis=0) - pos
    weight = np.where(pos > 0, neg / np.maximum(pos, 1.0), 1.0)
    return np.clip(weight, 1.0 / max_weight, max_weight).astype(np.float32)


def sample_weights(targets: np.ndarray) -> np.ndarray:
    """Per-image sampling weight: the rarest positive class it carries (inverse frequency)."""
    t = np.nan_to_num(targets, nan=0.0)
    freq = np.maximum(t.mean(axis=0), 1.0 / max(len(t), 1))
    none_freq = max(float((t.sum(axis=1) == 0).mean()), 1.0 / max(len(t), 1))
    w = np.where(t > 0, 1.0 / freq, 0.0).max(axis=1)
    w[t.sum(axis=1) == 0] = 1.0 / none_freq
    return (w / w.sum()).astype(np.float64)
