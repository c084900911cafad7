"""Small generators of hostile input files (the adversarial cases of issue 9), for the tests.

Each function writes one file under ``folder`` and returns its path. They are plain functions so
that a test can say exactly which hostile file it feeds to which reader or command.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

SENTENCES = ("No pleural effusion.", "Mild cardiomegaly.", "Small right pneumothorax.", "Lungs are clear.")


def reports_csv(folder: Path, n: int = 20, name: str = "reports.csv") -> Path:
    """A well-formed reports CSV: ``report_id``, ``report``."""
    path = folder / name
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["report_id", "report"])
        for i in range(1, n + 1):
            w.writerow([f"r{i}", SENTENCES[i % len(SENTENCES)]])
    return path


def csv_unterminated_quote(folder: Path, n: int = 1000, bad_row: int = 10) -> Path:
    """``n`` rows; row ``bad_row`` opens a quote it never closes (it would swallow the rest of the file)."""
    path = folder / "bad_quote.csv"
    lines = ["report_id,report"]
    for i in range(1, n + 1):
        lines.append(f'r{i},"{SENTENCES[i % 4]} opened, never closed' if i == bad_row else f"r{i},{SENTENCES[i % 4]}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def csv_stray_quote_pairs_later(folder: Path, bad_row: int = 10, n: int = 50) -> Path:
    """Row ``bad_row`` opens a quote; a later row's legitimate quoted field closes it in the wrong place."""
    path = folder / "stray_quote.csv"
    lines = ["report_id,report"]
    for i in range(1, n + 1):
        if i == bad_row:
            lines.append(f'r{i},"Heart normal. No effusion')
        elif i == n - 5:
            lines.append(f'r{i},"Quoted, as it should be."')
        else:
            lines.append(f"r{i},{SENTENCES[i % 4]}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def long_symbol_run(folder: Path, n: int = 60_000, symbol: str = "\U0001f600", fmt: str = "csv") -> Path:
    """One report holding a whitespace-free run of ``n`` symbols (emoji by default) between two sentences."""
    text = "Heart size is normal. " + symbol * n + " No pleural effusion."
    if fmt == "jsonl":
        path = folder / "symbols.jsonl"
        path.write_text(json.dumps({"id": "s1", "text": text}, ensure_ascii=False) + "\n", encoding="utf-8")
        return path
    path = folder / "symbols.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["report_id", "report"])
        w.writerow(["s1", text])
        w.writerow(["s2", "Small left pleural effusion."])
    return path


def jsonl_lone_surrogates(folder: Path) -> Path:
    """Three records; the second has a lone surrogate escape in its text, the third in its id."""
    path = folder / "surrogates.jsonl"
    path.write_text(
        '{"id": "a", "text": "No pleural effusion."}\n'
        '{"id": "b", "text": "Mild cardiomegaly \\ud800 here."}\n'
        '{"id": "c\\udfff", "text": "Lungs are clear."}\n',
        encoding="utf-8",
    )
    return path


def jsonl_with_bom(folder: Path) -> Path:
    path = folder / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"id": "a", "text": "Small right pneumothorax."}\n{"id": "b", "text": "Lungs are clear."}\n')
    return path


def jsonl_blank_lines_and_bad_record(folder: Path) -> Path:
    """Records on lines 1, 4 and 7 (blank lines between); line 4 is not JSON."""
    path = folder / "gaps.jsonl"
    path.write_text('{"id": "a", "text": "No effusion."}\n\n\n{"id": "b", "text": \n\n\n{"id": "c", "text": "Clear."}\n', encoding="utf-8")
    return path


def jsonl_first_record_without_text(folder: Path) -> Path:
    path = folder / "first_no_text.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b", "text": "Mild cardiomegaly."}\n{"id": "c"}\n', encoding="utf-8")
    return path


def csv_control_characters(folder: Path) -> Path:
    """Escape bytes and NULs inside report text, and a terminal escape sequence in a header name."""
    path = folder / "controls.csv"
    path.write_text('report_id,report,\x1b[31mred\x1b[0m\nr1,"Mild\x1b[2J cardio\x07megaly.",x\nr2,"No\x00 effusion.",y\n', encoding="utf-8")
    return path


def csv_odd_ids(folder: Path) -> Path:
    """Ids with spaces around them and ids a spreadsheet would run as formulas."""
    path = folder / "odd_ids.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["report_id", "report"])
        w.writerows([["  r1 ", "No effusion."], ["=HYPERLINK(\"http://x\")", "Clear."], ["+1+1", "Clear."],
                     ["@SUM(A1)", "Clear."], ["-5", "Clear."], ["-cmd|' /C calc'!A0", "Clear."]])
    return path


def labels_csv(folder: Path, rows: list[list[str]], header: list[str] | None = None, name: str = "labels.csv") -> Path:
    path = folder / name
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header or ["report_id", "Pleural Effusion", "Pneumothorax"])
        w.writerows(rows)
    return path


def write_bytes(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path
