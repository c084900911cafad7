"""The corpus parser takes sentences through the pipeline one component at a time over a stage of
sentences (``radtool.parse._parse_texts``): the records must be those of ``nlp.pipe`` sentence by
sentence, whatever the stage and batch sizes, on real report sentences."""

from __future__ import annotations

from pathlib import Path

import pytest

import radtool.parse as corpus_parse
from radtool.io import read_reports
from radtool.parse import _parse_texts, _sentence_key, report_sentences
from radtool.pipeline.graph import span_record

CORPUS = Path(__file__).resolve().parents[2] / "corpora" / "openi" / "reports.csv"


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    reports, _ = read_reports(CORPUS)
    out: dict[str, None] = {}
    for report in reports[:60]:
        for _section, text in report_sentences(report):
            text = _sentence_key(text)
            if text:
                out[text] = None
    texts = list(out)
    assert len(texts) > 150
    return texts


def reference(nlp, texts: list[str], batch_size: int) -> list[dict]:
    with nlp.select_pipes(disable=["radtool_labels"]):
        return [span_record(doc, token_index=True) for doc in nlp.pipe(texts, batch_size=batch_size)]


@pytest.mark.parametrize(("stage", "batch_size"), [(16, 8), (20, 8), (1024, 256), (3, 1)])
def test_staged_records_are_those_of_nlp_pipe(nlp, sentences, monkeypatch, stage, batch_size):
    monkeypatch.setattr(corpus_parse, "STAGE", stage)
    texts = sentences
    done = []
    got = _parse_texts(nlp, texts, batch_size=batch_size, progress=done.append)
    want = reference(nlp, texts, batch_size)
    assert len(got) == len(texts) == sum(done)
    for text, a, b in zip(texts, got, want):
        # token_index is asked for the sentences with digits only
        if "verb_ix" in a:
            assert a == b, text
        else:
            assert a == {k: v for k, v in b.items() if k not in ("verb_ix", "noun_phrase_ix")}, text


def test_tokenized_docs_and_strings_mix(nlp, sentences, monkeypatch):
    monkeypatch.setattr(corpus_parse, "STAGE", 8)
    texts = sentences[:40]
    mixed = [nlp.make_doc(t) if i % 3 == 0 else t for i, t in enumerate(texts)]
    assert _parse_texts(nlp, mixed, batch_size=4) == _parse_texts(nlp, texts, batch_size=4)
