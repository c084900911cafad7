"""The corpus path: parse many reports fast.

Radiology sentences repeat ("No pneumothorax." appears in thousands of reports), so each report is
cut into sections and sentences first, every *distinct* sentence is run through the spaCy pipeline
once, and reports are assembled from the memoized sentence records. The records are plain data, so
``n_process`` workers can each hold a pipeline and parse a share of the distinct sentences.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor

from .io.readers import Report
from .pipeline.graph import assemble, span_record
from .pipeline.labels import sentence_mentions
from .pipeline.sections import UNSECTIONED, label_sections, segment, split_sentences
from .schemas import Schema, load_schema

_WORKER_NLP = None
SENTENCE_COMPONENTS_OFF = ("radtool_labels",)


def report_sentences(report: Report) -> list[tuple[str, str]]:
    """``(section, sentence text)`` for each sentence of a report."""
    out: list[tuple[str, str]] = []
    for name, text in report.sections:
        if not text or not text.strip():
            continue
        if name is None:
            out.extend((sec, text[s:e]) for sec, s, e in segment(text))
        else:
            out.extend((name, text[s:e]) for s, e in split_sentences(text))
    return out


def _sentence_key(text: str) -> str:
    return " ".join(text.split())


def _load_pipeline(model: str | None, schema: str):
    from .pipeline import load

    nlp = load(model=model, schema=schema)
    return nlp


def _worker_init(model: str | None, schema: str) -> None:
    global _WORKER_NLP
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _WORKER_NLP = _load_pipeline(model, schema)


def _worker_parse(texts: list[str]) -> list[dict]:
    return _parse_texts(_WORKER_NLP, texts)


def _parse_texts(nlp, texts: Sequence[str], batch_size: int = 256, progress: Callable[[int], None] | None = None) -> list[dict]:
    out = []
    with nlp.select_pipes(disable=[p for p in SENTENCE_COMPONENTS_OFF if p in nlp.pipe_names]):
        for doc in nlp.pipe(texts, batch_size=batch_size):
            out.append(span_record(doc))
            if progress:
                progress(1)
    return out


class ReportParser:
    """Holds a pipeline and the sentence memo; ``parse(reports)`` yields report records in order."""

    def __init__(self, model: str | None = None, schema: str = "chexpert", sections: Iterable[str] | None = None, n_process: int = 1) -> None:
        self.model = model
        self.schema_name = str(schema)
        self.schema: Schema = load_schema(schema)
        self.sections = frozenset(sections) if sections else label_sections()
        self.n_process = max(1, int(n_process))
        self.memo: dict[str, dict] = {}
        self._nlp = None
        self.stats = {"sentences": 0, "distinct_sentences": 0, "parse_seconds": 0.0}

    @property
    def nlp(self):
        if self._nlp is None:
            self._nlp = _load_pipeline(self.model, self.schema_name)
        return self._nlp

    def _parse_new(self, texts: list[str], progress: Callable[[int], None] | None) -> None:
        if not texts:
            return
        start = time.perf_counter()
        if self.n_process == 1 or len(texts) < 200:
            records = _parse_texts(self.nlp, texts, progress=progress)
        else:
            size = max(50, len(texts) // (self.n_process * 8))
            chunks = [texts[i : i + size] for i in range(0, len(texts), size)]
            records = []
            with ProcessPoolExecutor(self.n_process, initializer=_worker_init, initargs=(self.model, self.schema_name)) as pool:
                for chunk_records in pool.map(_worker_parse, chunks):
                    records.extend(chunk_records)
                    if progress:
                        progress(len(chunk_records))
        for text, record in zip(texts, records):
            # label mentions depend only on the sentence: compute them once, not per occurrence
            record["mentions"] = sentence_mentions(record["entities"], record["relations"], self.schema)
            self.memo[text] = record
        self.stats["parse_seconds"] += time.perf_counter() - start

    def parse(self, reports: Sequence[Report], progress: Callable[[int], None] | None = None, on_start: Callable[[int], None] | None = None) -> list[dict]:
        segmented = []
        new: dict[str, None] = {}
        for report in reports:
            sentences = [] if report.error else [(sec, _sentence_key(t)) for sec, t in report_sentences(report)]
            sentences = [(sec, t) for sec, t in sentences if t]
            segmented.append(sentences)
            for _sec, text in sentences:
                self.stats["sentences"] += 1
                if text not in self.memo:
                    new[text] = None
        self.stats["distinct_sentences"] = len(self.memo) + len(new)
        if on_start:
            on_start(len(new))
        self._parse_new(list(new), progress)
        records = []
        for report, sentences in zip(reports, segmented):
            record = assemble(report.id, [(sec, self.memo[text]) for sec, text in sentences], self.schema, self.sections)
            record["row"] = report.row
            if report.error:
                record["error"] = report.error
            if report.warnings:
                record["warnings"] = list(report.warnings)
            records.append(record)
        return records


def parse_reports(reports: Sequence[Report] | Sequence[str], model: str | None = None, schema: str = "chexpert", n_process: int = 1, sections: Iterable[str] | None = None) -> list[dict]:
    """Parse reports (``Report`` objects or plain strings) into report records, in order."""
    items = [
        r if isinstance(r, Report) else Report(id=str(i), row=i, sections=[(None, str(r))])
        for i, r in enumerate(reports, start=1)
    ]
    return ReportParser(model=model, schema=schema, sections=sections, n_process=n_process).parse(items)


__all__ = ["ReportParser", "parse_reports", "report_sentences", "UNSECTIONED"]
