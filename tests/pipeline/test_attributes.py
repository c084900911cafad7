"""The fast attribute-ruler matcher gives exactly the model's matches, so POS, morphology and lemmas are unchanged."""

import pytest

from radtool.pipeline.attributes import FastAttributeMatch
from radtool.pipeline.tokenizer import customize_tokenizer

SENTENCES = [
    "There is no evidence of pneumothorax.",
    "The heart is not enlarged and there aren't any effusions.",
    "Pleural effusion cannot be excluded, although it is likely atelectasis.",
    "1. Stable cardiomegaly. 2. s/p CABG with sternotomy wires.",
    "The lungs are clear bilaterally; no focal consolidation is seen that would suggest pneumonia.",
    "Compared to prior, there has been interval removal of the right IJ catheter, which was in the SVC.",
    "It is what it is, isn't it? Gonna check y'all later, let's see.",
    "Heart size normal. No pneumothorax.",  # no token can start a multi-token pattern: the Matcher is skipped
    "Ain't nothin' there; c'mon, we got ta go.",
    "Lungs are hyperinflated suggesting underlying emphysema; calcified granulomas in the left upper lobes.",
]


@pytest.fixture(scope="module")
def base():
    from radtool.pipeline import load_base_model

    nlp = load_base_model()
    customize_tokenizer(nlp)
    return nlp


def test_same_matches_and_attributes(base):
    ruler = base.get_pipe("attribute_ruler")
    fast = FastAttributeMatch(ruler)
    with base.select_pipes(disable=["attribute_ruler", "lemmatizer"]):
        docs = list(base.pipe(SENTENCES))
    for doc in docs:
        assert fast(doc) == ruler.match(doc)
    slow_docs = [ruler(d.copy()) for d in docs]
    fast_docs = []
    for d in docs:
        d2 = d.copy()
        ruler.set_annotations(d2, fast(d2))
        fast_docs.append(d2)
    for a, b in zip(slow_docs, fast_docs):
        assert [(t.pos_, str(t.morph)) for t in a] == [(t.pos_, str(t.morph)) for t in b]


def test_pipeline_uses_fast_matcher(nlp):
    assert isinstance(nlp.get_pipe("attribute_ruler").match, FastAttributeMatch)


def test_lemmatizer_cache_gives_the_same_lemmas(base):
    """Every sentence twice (the second time from the cache), against the uncached lemmatizer."""
    from radtool.pipeline.attributes import speed_up_lemmatizer

    with base.select_pipes(disable=["lemmatizer"]):
        docs = list(base.pipe(SENTENCES + SENTENCES))
    lemmatizer = base.get_pipe("lemmatizer")
    expected = [[lemmatizer.rule_lemmatize(t)[0] for t in d] for d in docs]
    cached = base.get_pipe("lemmatizer")
    speed_up_lemmatizer(base)
    assert cached.lemmatize is not cached.rule_lemmatize
    got = [[cached.lemmatize(t)[0] for t in d] for d in docs]
    assert got == expected
    assert any(t.pos_ == "VERB" for d in docs for t in d) and ["be" in lemmas for lemmas in got].count(True) >= 4


def test_fast_set_annotations_sets_what_the_ruler_sets(base):
    from radtool.pipeline.attributes import FastSetAnnotations

    ruler = base.get_pipe("attribute_ruler")
    fast_set = FastSetAnnotations(ruler)
    with base.select_pipes(disable=["attribute_ruler", "lemmatizer"]):
        docs = list(base.pipe(SENTENCES))
    n_matches = 0
    for doc in docs:
        slow, fast = doc.copy(), doc.copy()
        matches = ruler.match(doc)
        n_matches += len(matches)
        type(ruler).set_annotations(ruler, slow, matches)
        fast_set(fast, matches)
        assert [(t.pos_, str(t.morph), t.lemma_, t.tag_) for t in slow] == [(t.pos_, str(t.morph), t.lemma_, t.tag_) for t in fast]
        assert any(t.pos_ for t in fast)
    assert n_matches > 50
