"""Readers for report corpora (CSV, JSONL, folders of .txt), the labels.csv format, and atomic writers."""

from .labels import ID_COLUMNS, LabelTable, parse_value, read_labels, write_labels
from .readers import Report, ReportStream, iter_reports, read_reports
from .writers import atomic_dir, atomic_path, atomic_write, check_output_dir, prepare_dir, write_csv, write_json, write_jsonl

__all__ = [
    "ID_COLUMNS",
    "LabelTable",
    "Report",
    "ReportStream",
    "atomic_dir",
    "atomic_path",
    "atomic_write",
    "check_output_dir",
    "iter_reports",
    "parse_value",
    "prepare_dir",
    "read_labels",
    "read_reports",
    "write_csv",
    "write_json",
    "write_jsonl",
    "write_labels",
]
