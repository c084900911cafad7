"""radtool: chest X-ray reports into labels and RadGraph-style graphs, fast and offline."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load", "parse_reports"]


def load(*args, **kwargs):
    """Build the spaCy report pipeline (see :func:`radtool.pipeline.load`)."""
    from .pipeline import load as _load

    return _load(*args, **kwargs)


def parse_reports(*args, **kwargs):
    """Parse many reports with per-sentence memoization (see :func:`radtool.parse.parse_reports`)."""
    from .parse import parse_reports as _parse_reports

    return _parse_reports(*args, **kwargs)
