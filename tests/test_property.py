"""Arbitrary text never crashes parsing, and labels stay in {1, 0, -1, blank}."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from radtool.io.readers import Report

WORDS = st.sampled_from(
    ["no", "pneumothorax", "effusion", "cannot", "be", "excluded", "FINDINGS:", "IMPRESSION:", "1.", "2.", "x-ray", "s/p", "XXXX",
     "versus", "has", "resolved", ".", ",", "\n", "heart", "enlarged", "possible", "left", "lung", "1.2cm", "?", ":", ""]
)
TEXT = st.one_of(st.text(max_size=300), st.lists(WORDS, max_size=60).map(" ".join))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(texts=st.lists(TEXT, min_size=1, max_size=4))
def test_arbitrary_text_never_crashes(parser, texts):
    reports = [Report(id=str(i), row=i, sections=[(None, t)]) for i, t in enumerate(texts, start=1)]
    records = parser.parse(reports)
    assert [r["id"] for r in records] == [str(i) for i in range(1, len(texts) + 1)]
    for record in records:
        assert set(record["labels"].values()) <= {1, 0, -1, None}
        n_tokens = len(record["text"].split(" ")) if record["text"] else 0
        for ent in record["entities"].values():
            assert 0 <= ent["start_ix"] <= ent["end_ix"] < n_tokens


import pytest  # noqa: E402


@pytest.fixture(scope="module")
def parser():
    from radtool.parse import ReportParser

    return ReportParser(schema="chexpert")
