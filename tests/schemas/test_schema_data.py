"""Shipped schema data is consistent with the lexicon: a combination term the entity matcher can never
produce is dead data, and a negating combination must use the lexicon's normal terms."""

import pytest

from radtool.pipeline.entities import inflections
from radtool.resources import lexicon
from radtool.schemas import load_schema


def _forms(*keys: str) -> set[str]:
    lex = lexicon()
    return {form for key in keys for term in lex[key] for form in inflections(term.lower())}


@pytest.mark.parametrize("name", ["chexpert", "chestxray14"])
def test_combination_terms_are_entities(name):
    schema = load_schema(name)
    anatomy = _forms("anatomy", "anatomy_modifiers")
    observation = _forms("findings", "finding_modifiers", "normal_findings", "devices")
    observation |= {f for o in schema.observations for t in o.mentions for f in inflections(t)}
    for obs in schema.observations:
        for findings, places in obs.combinations:
            assert places <= anatomy, f"{name} {obs.name}: anatomy terms the lexicon lacks: {sorted(places - anatomy)}"
            assert findings <= observation, f"{name} {obs.name}: finding terms the lexicon lacks: {sorted(findings - observation)}"


def test_size_observations_are_negated_by_normal_terms():
    schema = load_schema("chexpert")
    normal = _forms("normal_findings")
    for name, place in (("Cardiomegaly", "heart size"), ("Enlarged Cardiomediastinum", "cardiomediastinal silhouette")):
        obs = next(o for o in schema.observations if o.name == name)
        negating = [f for f, places in obs.combinations if f <= normal and place in places]
        assert negating and {"normal", "unremarkable", "within normal limits", "upper limits of normal"} <= negating[0]
