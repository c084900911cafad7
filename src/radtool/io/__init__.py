"""Readers for report corpora (CSV, JSONL, folders of .txt) and atomic writers."""

from .readers import Report, read_reports
from .writers import atomic_path, atomic_write, prepare_dir, write_csv, write_json, write_jsonl

__all__ = ["Report", "read_reports", "atomic_path", "atomic_write", "prepare_dir", "write_csv", "write_json", "write_jsonl"]
