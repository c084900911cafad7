"""The corpus path: parse many reports fast, in bounded memory.

Radiology sentences repeat ("No pneumothorax." appears in thousands of reports), so each report is
cut into sections and sentences first, every sentence not yet in the memo is run through the spaCy
pipeline once, and reports are assembled from the memoized sentence records. The memo is an LRU of
at most ``memo_size`` sentences, so memory does not grow with the corpus.

Sentences that differ only in stand-alone numbers ("3.2 cm nodule ... since 04/11/2019" and "1.7 cm
nodule ... since 12/01/2020") share one memo entry: the sentence with those digits set to 0 is parsed
once, and each sentence gets its own words back in its tokens, noun phrases and verbs (no lexicon term
holds a number, so entities, relations and labels carry over as they are). A sentence is parsed as
written when the tokenizer would cut it differently from its key, and always with ``numbers=False``
(``radtool parse --exact-numbers``).

Work is done in *partitions* of consecutive reports (:data:`PARTITION` by default). A partition is
parsed by :meth:`ReportParser.parse_partition` into a :class:`Partition`: the labels rows, the
``graphs.jsonl`` lines as text, the problems and the counters the run summary needs. The same
function runs in process (``n_process=1``), in ``n_process`` worker processes, on Dask workers
(:mod:`radtool.cli.parse`) or in one shard of a batch-scheduler array, so every path writes the same
bytes. Workers hold their own pipeline and memo and send back only that text and those counters.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import sys
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from .io.readers import Report
from .labeling import sentence_mentions
from .schemas import Schema, load_schema

# spaCy and the pipeline modules are imported where they are used, so that importing this module (the
# CLI does, for every command) costs no spaCy import

SENTENCE_COMPONENTS_OFF = ("radtool_labels",)
PARTITION = 500  # reports per partition: the unit of work of workers, Dask tasks and shards
MEMO_SIZE = 100_000  # sentences kept in the LRU memo at most; docs/scale.md has the hit rates
# and the memory it may hold (keys, compressed records, table entries: ~0.35 KB a sentence, so ~70,000
# sentences): reached first by default, so the memo weighs the same at every corpus size beyond its fill
MEMO_BYTES = 24 * 2**20


def report_sentences(report: Report) -> list[tuple[str, str]]:
    """``(section, sentence text)`` for each sentence of a report."""
    from .pipeline.sections import segment, split_sentences

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


def sentence_hash(text: str) -> int:
    """A stable 64-bit hash of a sentence (the same in every process, unlike ``hash``)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


# A number that stands alone (a measurement, a date, a time, a list number), not part of a word ("T12",
# "3rd", "3.2cm", "x2"): sentences that differ only in such numbers share one parse (see ``numbers_key``)
_RUN = re.compile(r"[\w.,:/-]+")
_NUMBER = re.compile(r"[.,:/-]*\d+(?:[.,:/-]+\d+)*[.,:/-]*")
_DIGIT = re.compile(r"\d")


def _zero_number(match: re.Match) -> str:
    run = match.group()
    return _DIGIT.sub("0", run) if _NUMBER.fullmatch(run) else run


def numbers_key(text: str) -> str:
    """``text`` with the digits of its stand-alone numbers set to 0: "3.2 cm nodule, stable since
    04/11/2019" → "0.0 cm nodule, stable since 00/00/0000". The memo key of the number-blind corpus
    path, where a sentence is parsed as its key and gets its own numbers back (:func:`with_numbers`)."""
    return _RUN.sub(_zero_number, text) if _DIGIT.search(text) else text


def with_numbers(record: dict, key: str, text: str) -> dict:
    """The record of sentence ``key`` with the words of ``text`` (the same sentence with other
    numbers: same length, same tokens) put back into its tokens, noun phrases and verbs."""
    words = []
    pos = 0
    for token in record["tokens"]:
        at = key.index(token, pos)
        words.append(text[at : at + len(token)])
        pos = at + len(token)
    out = dict(record)
    out["tokens"] = words
    if "noun_phrase_ix" in record:
        out["noun_phrases"] = [" ".join(words[i].lower() for i in ix) for ix in record["noun_phrase_ix"]]
    if "verb_ix" in record:
        out["verbs"] = [words[i].lower() if _DIGIT.search(words[i]) else v for i, v in zip(record["verb_ix"], record["verbs"])]
    return out


def _load_pipeline(model: str | None, schema: str):
    from .pipeline import load

    return load(model=model, schema=schema)


STAGE = 1024  # sentences taken through the pipeline one component at a time (see _parse_texts)


def _parse_texts(nlp, texts: Sequence, batch_size: int = 256, progress: Callable[[int], None] | None = None) -> list[dict]:
    """The sentence records of ``texts`` (strings or tokenized Docs), parsed by ``nlp``.

    Sentences go through the pipeline :data:`STAGE` at a time, one component after the other over all
    of them, where ``nlp.pipe`` would take each sentence through the rule-based components in turn: a
    component's code and tables stay in the CPU caches for a thousand sentences, not one (10-15% less
    time on short report sentences). The trainable components get the same batches of ``batch_size``
    in the same order as from ``nlp.pipe``, and every component sees each Doc once, in pipeline order,
    so the parses are the same."""
    from spacy.tokens import Doc
    from threadpoolctl import threadpool_limits

    from .pipeline.graph import span_record

    stage = max(1, STAGE // batch_size) * batch_size  # so the trainable components' batches are nlp.pipe's
    out = []
    # one BLAS thread in every process (Dask sets the same in its workers): the same float rounding, so
    # the same parses, whether a sentence is parsed here, in a worker process or on a Dask worker
    with threadpool_limits(1):
        components = [(name, proc) for name, proc in nlp.pipeline if name not in SENTENCE_COMPONENTS_OFF]
        for start in range(0, len(texts), stage):
            docs = [t if isinstance(t, Doc) else nlp.make_doc(t) for t in texts[start : start + stage]]
            for _name, proc in components:
                if hasattr(proc, "pipe"):
                    docs = list(proc.pipe(docs, batch_size=batch_size))
                else:
                    docs = [proc(doc) for doc in docs]
            for doc in docs:
                out.append(span_record(doc, token_index=bool(_DIGIT.search(doc.text))))
                # the Doc is done with: break its reference cycles (its span groups, the extension
                # values and medspaCy's ConText graph in user_data), so it is freed now, not by the
                # garbage collector (half the collector's time)
                doc.user_data.clear()
                doc.spans.clear()
            if progress:
                progress(len(docs))
    return out


class SentenceMemo:
    """Sentence text → sentence record, least recently used first out past ``max_size`` entries or
    ``max_bytes`` of memory, whichever comes first, so that a long run holds the same memo at every
    corpus size beyond its fill, whatever the length of its sentences.

    Records are kept pickled and compressed with a dictionary made of the first records put (~0.12 KB
    each, against ~0.56 KB pickled and ~3.5 KB as Python objects); with its key and its table entry a
    sentence costs ~0.35 KB. A hit inflates and unpickles a fresh copy (~30 µs, against ~1 ms to parse)."""

    ENTRY_BYTES = 100  # beside the key text and the stored record: the table's slot and link, the bytes header
    DICT_RECORDS = 64  # the first records put make the compression dictionary (their last DICT_BYTES)
    DICT_BYTES = 16384

    def __init__(self, max_size: int = MEMO_SIZE, max_bytes: int = MEMO_BYTES) -> None:
        self.max_size = max(0, int(max_size))
        self.max_bytes = max(0, int(max_bytes))
        self.nbytes = 0  # what the entries cost, as counted by _cost
        self._data: OrderedDict[str, bytes] = OrderedDict()
        self._packer = self._unpacker = None  # zlib (de)compressors primed with the dictionary, copied per record
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, text: str) -> bool:
        return text in self._data

    @classmethod
    def _cost(cls, text: str, blob: bytes) -> int:
        return sys.getsizeof(text) + len(blob) + cls.ENTRY_BYTES

    def _pack(self, blob: bytes) -> bytes:
        packer = self._packer.copy()
        return packer.compress(blob) + packer.flush()

    def _unpack(self, blob: bytes) -> bytes:
        return self._unpacker.copy().decompress(blob) if self._packer is not None else blob

    def _make_dictionary(self) -> None:
        """Compress every entry from now on with a dictionary of the records seen so far (they share
        their keys and most of their labels), the entries already there included."""
        import zlib

        zdict = b"".join(self._data.values())[-self.DICT_BYTES:]
        self._packer = zlib.compressobj(6, zlib.DEFLATED, 14, 8, zlib.Z_DEFAULT_STRATEGY, zdict)
        self._unpacker = zlib.decompressobj(14, zdict)
        for text, blob in list(self._data.items()):
            self._data[text] = packed = self._pack(blob)
            self.nbytes += len(packed) - len(blob)

    def get(self, text: str) -> dict | None:
        blob = self._data.get(text)
        if blob is None:
            return None
        self._data.move_to_end(text)
        return pickle.loads(self._unpack(blob))

    def put(self, text: str, record: dict) -> None:
        if not self.max_size or not self.max_bytes:
            return
        blob = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
        if self._packer is not None:
            blob = self._pack(blob)
        old = self._data.pop(text, None)
        if old is not None:
            self.nbytes -= self._cost(text, old)
        self._data[text] = blob
        self.nbytes += self._cost(text, blob)
        if self._packer is None and len(self._data) >= self.DICT_RECORDS:
            self._make_dictionary()
        while len(self._data) > self.max_size or self.nbytes > self.max_bytes:
            key, evicted = self._data.popitem(last=False)
            self.nbytes -= self._cost(key, evicted)
            self.evictions += 1

    def clear(self) -> None:
        self._data.clear()
        self.nbytes = 0

    @property
    def hit_rate(self) -> float | None:
        total = self.hits + self.misses
        return self.hits / total if total else None


def _cell_key(value) -> str:
    return "blank" if value is None else str(value)


@dataclass
class Partition:
    """One partition of parsed reports: what the writer needs, and nothing of spaCy."""

    index: int
    ids: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    values: list[list[int | None]] = field(default_factory=list)  # labels, aligned with the schema's columns
    graphs: str = ""  # graphs.jsonl lines, one per report, each ending in "\n"
    problems: list[dict] = field(default_factory=list)
    prevalence: dict[str, Counter] = field(default_factory=dict)
    empty_reports: int = 0
    labeled_reports: int = 0  # reports with at least one label that is not blank
    sentences: int = 0
    label_sentences: int = 0  # sentences in the sections that feed the labels
    sections: Counter = field(default_factory=Counter)  # sentences per section name
    parsed_sentences: int = 0  # run through spaCy (memo misses)
    hashes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))  # distinct sentence hashes


def records_partition(index: int, records: Iterable[dict], columns: Sequence[str]) -> Partition:
    """A :class:`Partition` from report records (``graphs.jsonl`` lines serialized as ``write_jsonl`` does)."""
    part = Partition(index, prevalence={c: Counter() for c in columns})
    lines = []
    for r in records:
        part.ids.append(r["id"])
        part.rows.append(r["row"])
        values = [r["labels"].get(c) for c in columns]
        part.values.append(values)
        for c, v in zip(columns, values):
            part.prevalence[c][_cell_key(v)] += 1
        if any(v is not None for v in values):
            part.labeled_reports += 1
        if not r["entities"] and not r["text"]:
            part.empty_reports += 1
        for w in r.get("warnings", []):
            part.problems.append({"row": r["row"], "id": r["id"], "problem": w})
        if r.get("error"):
            part.problems.append({"row": r["row"], "id": r["id"], "problem": r["error"]})
        lines.append(json.dumps(r, ensure_ascii=False))
        lines.append("\n")
    part.graphs = "".join(lines)
    return part


class ReportParser:
    """Holds a pipeline and the sentence memo. ``parse(reports)`` returns report records in order;
    ``parse_partition(reports)`` returns a :class:`Partition`; ``iter_records`` streams."""

    def __init__(self, model: str | None = None, schema: str = "chexpert", sections: Iterable[str] | None = None,
                 n_process: int = 1, memo_size: int = MEMO_SIZE, numbers: bool = True) -> None:
        self.model = model
        self.schema_name = str(schema)
        self.schema: Schema = load_schema(schema)
        from .pipeline.sections import label_sections

        self.sections = frozenset(sections) if sections else label_sections()
        self.n_process = max(1, int(n_process))  # kept for callers; parallel runs go through radtool.cli.parse
        self.memo = SentenceMemo(memo_size)
        self.numbers = bool(numbers)  # sentences that differ only in stand-alone numbers share one parse
        self._nlp = None
        self.stats = {"sentences": 0, "distinct_sentences": 0, "parsed_sentences": 0, "parse_seconds": 0.0}

    @property
    def nlp(self):
        if self._nlp is None:
            self._nlp = _load_pipeline(self.model, self.schema_name)
        return self._nlp

    def _memo_key(self, text: str, key_docs: dict | None = None) -> str:
        """The sentence the memo parses for ``text``: itself, or with ``numbers`` (the default) its
        :func:`numbers_key` when the tokenizer cuts both into the same tokens (then the two differ only
        in the digits of whole tokens, and the key's parse carries over with the sentence's own words).
        The key's tokenized Doc goes into ``key_docs``, for the pipeline to parse without tokenizing again."""
        if not self.numbers:
            return text
        key = numbers_key(text)
        if key == text:
            return text
        tokenizer = self.nlp.tokenizer
        key_docs = {} if key_docs is None else key_docs
        key_doc = key_docs.get(key)
        if key_doc is None:
            key_doc = tokenizer(key)
        if [len(t) for t in key_doc] != [len(t) for t in tokenizer(text)]:
            return text
        key_docs[key] = key_doc
        return key

    @staticmethod
    def _sentence_record(found: dict[str, dict], key: str, text: str) -> dict:
        record = found[key]
        return record if key == text else with_numbers(record, key, text)

    def _records(self, reports: Sequence[Report], progress: Callable[[int], None] | None = None,
                 on_start: Callable[[int], None] | None = None, counters: Partition | None = None) -> list[dict]:
        from .pipeline.graph import assemble

        counters = Partition(0) if counters is None else counters
        segmented = []
        found: dict[str, dict | None] = {}  # memo key → record from the memo, or None (to parse)
        keys: dict[str, str] = {}  # this batch's distinct sentences → their memo keys
        key_docs: dict = {}  # number-blind keys → their tokenized Docs
        for report in reports:
            sentences = [] if report.error else [(sec, _sentence_key(t)) for sec, t in report_sentences(report)]
            sentences = [(sec, t) for sec, t in sentences if t]
            segmented.append(sentences)
            for sec, text in sentences:
                counters.sections[sec] += 1
                counters.label_sentences += sec in self.sections
                key = keys.get(text)
                if key is None:
                    key = keys[text] = self._memo_key(text, key_docs)
                if key not in found:
                    found[key] = self.memo.get(key)
        new = [t for t, r in found.items() if r is None]
        n_sentences = sum(len(s) for s in segmented)
        self.stats["sentences"] += n_sentences
        self.stats["parsed_sentences"] += len(new)
        self.memo.hits += n_sentences - len(new)  # repeats within the batch count as hits: parsed once
        self.memo.misses += len(new)
        if on_start:
            on_start(len(new))
        if new:
            start = time.perf_counter()
            for text, record in zip(new, _parse_texts(self.nlp, [key_docs.get(t, t) for t in new], progress=progress)):
                # label mentions depend only on the sentence: compute them once, not per occurrence
                record["mentions"] = sentence_mentions(record["entities"], record["relations"], self.schema)
                found[text] = record
                self.memo.put(text, record)
            self.stats["parse_seconds"] += time.perf_counter() - start
        counters.sentences += n_sentences
        counters.parsed_sentences += len(new)
        counters.hashes = np.unique(np.fromiter((sentence_hash(t) for t in keys), dtype=np.uint64, count=len(keys)))
        records = []
        for report, sentences in zip(reports, segmented):
            record = assemble(report.id, [(sec, self._sentence_record(found, keys[text], text)) for sec, text in sentences],
                              self.schema, self.sections)
            record["row"] = report.row
            if report.error:
                record["error"] = report.error
            if report.warnings:
                record["warnings"] = list(report.warnings)
            records.append(record)
        return records

    def parse_partition(self, reports: Sequence[Report], index: int = 0, progress: Callable[[int], None] | None = None) -> Partition:
        """Parse one partition of reports into labels rows, ``graphs.jsonl`` text and counters."""
        counters = Partition(index)
        records = self._records(reports, progress=progress, counters=counters)
        part = records_partition(index, records, self.schema.columns)
        for name in ("sentences", "label_sentences", "sections", "parsed_sentences", "hashes"):
            setattr(part, name, getattr(counters, name))
        return part

    def iter_records(self, reports: Iterable[Report], partition: int = PARTITION,
                     progress: Callable[[int], None] | None = None) -> Iterator[dict]:
        """Report records in input order, ``partition`` reports at a time (memory: one partition + the memo)."""
        seen = np.zeros(0, dtype=np.uint64)
        for chunk in partitions(reports, partition):
            counters = Partition(0)
            records = self._records(chunk, progress=progress, counters=counters)
            seen = np.union1d(seen, counters.hashes)
            self.stats["distinct_sentences"] = len(seen)
            yield from records

    def parse(self, reports: Sequence[Report], progress: Callable[[int], None] | None = None,
              on_start: Callable[[int], None] | None = None) -> list[dict]:
        """All report records of ``reports``, in order (for small corpora; see :meth:`iter_records`)."""
        counters = Partition(0)
        records = self._records(list(reports), progress=progress, on_start=on_start, counters=counters)
        self.stats["distinct_sentences"] = len(counters.hashes)
        return records


def partitions(reports: Iterable[Report], size: int = PARTITION) -> Iterator[list[Report]]:
    """Consecutive lists of ``size`` reports."""
    chunk: list[Report] = []
    for report in reports:
        chunk.append(report)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# ---------------------------------------------------------------- workers (processes and Dask)

_WORKER_PARSERS: dict[tuple, ReportParser] = {}


def worker_parser(model: str | None, schema: str, sections: tuple[str, ...] | None, memo_size: int,
                  numbers: bool = True) -> ReportParser:
    """The parser of this process for a configuration, built once (its pipeline and memo stay warm)."""
    key = (model, schema, sections, memo_size, numbers)
    parser = _WORKER_PARSERS.get(key)
    if parser is None:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        if "thinc" not in sys.modules:  # a Dask worker: skip torch as the radtool CLI does (radtool._lazy)
            from ._lazy import hide_torch_from_thinc

            hide_torch_from_thinc()
        parser = ReportParser(model=model, schema=schema, sections=sections, memo_size=memo_size, numbers=numbers)
        parser.nlp  # noqa: B018
        _WORKER_PARSERS[key] = parser
    return parser


def parse_partition_task(reports: list[Report], index: int, model: str | None, schema: str,
                         sections: tuple[str, ...] | None, memo_size: int = MEMO_SIZE, numbers: bool = True) -> Partition:
    """Parse one partition in a worker (a process-pool worker or a Dask worker)."""
    return worker_parser(model, schema, sections, memo_size, numbers).parse_partition(reports, index)


def die_with_parent(parent_pid: int) -> None:
    """Make this worker process exit when its parent does, even after ``kill -9`` of the parent:
    ``PR_SET_PDEATHSIG`` on Linux, and a thread that watches the parent pid everywhere."""
    import signal
    import sys
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops us
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the watchdog still works
            pass
    if os.getppid() != parent_pid:  # the parent died before we got here
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="radtool-parent-watchdog", daemon=True).start()


def freeze_heap() -> None:
    """Move every object alive now (the loaded pipeline: ~360,000 objects) out of the garbage
    collector's reach. Parsing allocates fast, so the collector runs often, and every full collection
    walked the whole pipeline again: 13% of the parse time, against 3% once the pipeline is frozen
    and each Doc's reference cycles are broken (:func:`_parse_texts`). :func:`thaw_heap` gives the
    objects back; a worker process that parses until it exits never does."""
    import gc

    gc.collect()
    gc.freeze()


def thaw_heap() -> None:
    import gc

    gc.unfreeze()


def _pool_init(parent_pid: int, model: str | None, schema: str, sections: tuple[str, ...] | None, memo_size: int,
               numbers: bool = True) -> None:
    die_with_parent(parent_pid)
    worker_parser(model, schema, sections, memo_size, numbers)
    freeze_heap()


def parse_reports(reports: Sequence[Report] | Sequence[str], model: str | None = None, schema: str = "chexpert", n_process: int = 1, sections: Iterable[str] | None = None) -> list[dict]:
    """Parse reports (``Report`` objects or plain strings) into report records, in order."""
    items = [
        r if isinstance(r, Report) else Report(id=str(i), row=i, sections=[(None, str(r))])
        for i, r in enumerate(reports, start=1)
    ]
    return ReportParser(model=model, schema=schema, sections=sections, n_process=n_process).parse(items)


def __getattr__(name: str):
    if name == "UNSECTIONED":  # re-exported from the pipeline, lazily
        from .pipeline.sections import UNSECTIONED

        return UNSECTIONED
    raise AttributeError(name)


__all__ = ["MEMO_BYTES", "MEMO_SIZE", "PARTITION", "Partition", "ReportParser", "SentenceMemo", "parse_partition_task", "parse_reports",
           "partitions", "report_sentences", "UNSECTIONED"]
