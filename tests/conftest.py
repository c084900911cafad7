"""Shared fixtures: one pipeline per schema for the whole session, and small corpora on disk."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import radtool

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def nlp():
    return radtool.load(schema="chexpert")


@pytest.fixture(scope="session")
def nlp14():
    return radtool.load(schema="chestxray14")


@pytest.fixture
def small_csv(tmp_path: Path) -> Path:
    path = tmp_path / "reports.csv"
    rows = [
        {"report_id": "r1", "findings": "Heart size is normal. No pleural effusion or pneumothorax.", "impression": "No acute cardiopulmonary disease."},
        {"report_id": "r2", "findings": "Small left pleural effusion. The heart is enlarged.", "impression": "Pneumonia cannot be excluded."},
        {"report_id": "r3", "findings": "", "impression": "Right lower lobe consolidation has resolved."},
    ]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["report_id", "findings", "impression"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
