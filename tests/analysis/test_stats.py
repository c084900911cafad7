from radtool.analysis.stats import corpus_stats

from .records import ABSENT, ANATOMY, PRESENT, record

RECORDS = [
    record("a", nps=["pleural effusion", "lungs"], verbs=["be", "see", "be"], entities=[("Effusion", ABSENT), ("lungs", ANATOMY)],
           labels={"Pleural Effusion": 0, "Pneumonia": None}),
    record("b", nps=["pleural effusion"], verbs=["see"], entities=[("effusion", PRESENT), ("effusion ", PRESENT)],
           labels={"Pleural Effusion": 1, "Pneumonia": -1}),
    record("c", nps=[], verbs=[], entities=[], labels={"Pleural Effusion": None, "Pneumonia": None}),
]


def test_counts_on_tiny_corpus():
    s = corpus_stats(RECORDS, ["Pleural Effusion", "Pneumonia"])
    verbs = {r["verb"]: r for r in s.verbs}
    assert verbs["be"]["count"] == 2 and verbs["be"]["reports"] == 1
    assert verbs["see"]["count"] == 2 and verbs["see"]["reports"] == 2
    assert verbs["see"]["share_of_reports"] == round(2 / 3, 4)
    assert s.verbs[0]["verb"] == "see"  # a tie on mentions goes to the verb in more reports
    ents = {(r["entity"], r["certainty"]): r for r in s.entities}
    assert ents[("effusion", "definitely present")]["count"] == 2  # normalized: case and spaces
    assert ents[("effusion", "definitely present")]["reports"] == 1
    assert ents[("effusion", "definitely absent")]["type"] == "Observation"
    assert {r["noun_phrase"]: r["count"] for r in s.noun_phrases} == {"pleural effusion": 2, "lungs": 1}


def test_prevalence_counts_every_report_once():
    s = corpus_stats(RECORDS, ["Pleural Effusion", "Pneumonia"])
    prev = {r["observation"]: r for r in s.prevalence}
    assert prev["Pleural Effusion"] == {"observation": "Pleural Effusion", "present": 1, "absent": 1, "uncertain": 0, "not_mentioned": 1}
    assert prev["Pneumonia"]["uncertain"] == 1 and prev["Pneumonia"]["not_mentioned"] == 2


def test_counts_from_a_stream_equal_counts_from_a_list_and_read_one_record_at_a_time():
    consumed = []

    def stream():
        for r in RECORDS * 3:
            consumed.append(r["id"])
            yield r

    s = corpus_stats(stream(), ["Pleural Effusion", "Pneumonia"])
    listed = corpus_stats(RECORDS * 3, ["Pleural Effusion", "Pneumonia"])
    assert s == listed and s.reports == 9 and len(consumed) == 9


def test_normalize_is_the_regular_expression_form():
    """normalize joins str.split()'s words: the same as re.sub(r"\\s+", " ", ...) for every whitespace
    character Python knows (Unicode ones included), before the edge punctuation is stripped."""
    import random
    import re
    import sys

    from radtool.analysis.features import _EDGE_PUNCT, normalize

    def by_regex(text: str) -> str:
        return re.sub(r"\s+", " ", text.replace("_", " ").lower()).strip(_EDGE_PUNCT)

    spaces = [chr(c) for c in range(sys.maxunicode + 1) if re.fullmatch(r"\s", chr(c))]
    assert len(spaces) > 20 and "\u00a0" in spaces and "\x1c" in spaces
    rng = random.Random(0)
    alphabet = list("abcAB xyz.-_()[],;:'\"éİßΣ") + spaces
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(50_000)]
    assert [normalize(t) for t in texts] == [by_regex(t) for t in texts]
