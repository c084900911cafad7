"""A tiny reports CSV (with a duplicate and an uncertain finding) and its parse folder, for the analysis CLI tests."""

from __future__ import annotations

import csv
from pathlib import Path

ROWS = [
    ("r1", "Heart size is normal. No pleural effusion or pneumothorax.", "No acute cardiopulmonary disease."),
    ("r2", "Small left pleural effusion. The heart is enlarged.", "Pneumonia cannot be excluded."),
    ("r3", "Heart size is normal. No pleural effusion or pneumothorax.", "No acute cardiopulmonary disease."),
    ("r4", "Right lower lobe opacity, possibly pneumonia. Small right pleural effusion.", "Possible pneumonia."),
    ("r5", "Large right pleural effusion with right lower lobe consolidation.", "Right lower lobe pneumonia."),
    ("r6", "The lungs are clear. No pneumothorax.", "Normal chest."),
]


def write_reports(folder: Path) -> Path:
    path = folder / "reports.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["report_id", "findings", "impression"])
        writer.writerows(ROWS)
    return path


def parse_folder(folder: Path, schema: str = "chestxray14") -> Path:
    from radtool.cli.parse import parse

    out = folder / "parsed"
    parse(write_reports(folder), out, schema=schema)
    return out
