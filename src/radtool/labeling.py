"""Label rules over plain records: no spaCy here.

The spaCy components (:mod:`radtool.pipeline`), the corpus parser (:mod:`radtool.parse`) and other
backends (:mod:`radtool.backends.radgraph`) all describe a sentence the same way, as plain dicts, and
share these rules without importing each other.

A sentence mentions an observation when one of its Observation entities maps to it (schema mention
phrase) or when a schema combination holds (a finding term related by ``located_at``/``modify`` to an
anatomy term: "the heart is enlarged" → Cardiomegaly). The mention's certainty gives its value:
present 1, uncertain -1, absent 0. A combination whose finding is a *normal* term of the lexicon
("normal", "unremarkable", "within normal limits") negates: "Heart size normal" → Cardiomegaly 0, as
in the CheXpert labeler. A combination holds for the anatomy a finding is related to and for anatomy
listed with it ("heart size and mediastinal contours are normal"). Over a report, 1 beats -1 beats 0;
unmentioned is blank.
No Finding is 1 when no finding other than those ignored by the schema (Support Devices) is present
or uncertain in the labelled sections, else blank.

This module is also the one home of the RadGraph entity vocabulary: entity types, certainties and
the labels built from them (``Observation::definitely absent``; short form ``OBS-DA``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from .resources import lexicon, section_rules
from .schemas import Schema

# ---------------------------------------------------------------- RadGraph vocabulary

ANATOMY = "Anatomy"
OBSERVATION = "Observation"
ENTITY_TYPES = (ANATOMY, OBSERVATION)

PRESENT = "definitely present"
UNCERTAIN = "uncertain"
ABSENT = "definitely absent"
CERTAINTIES = (PRESENT, UNCERTAIN, ABSENT)

# RadGraph's four entity labels, long form (as in its JSON) → short form (as in its paper).
# There is no uncertain or absent anatomy in RadGraph.
SHORT_LABELS = {
    f"{ANATOMY}::{PRESENT}": "ANAT-DP",
    f"{OBSERVATION}::{PRESENT}": "OBS-DP",
    f"{OBSERVATION}::{UNCERTAIN}": "OBS-U",
    f"{OBSERVATION}::{ABSENT}": "OBS-DA",
}
ENTITY_LABELS = tuple(SHORT_LABELS)
LONG_LABELS = {short: long for long, short in SHORT_LABELS.items()}


def entity_label(entity_type: str, certainty: str | None) -> str:
    """The RadGraph label of an entity: ``Observation::uncertain``. Anatomy is always definitely present."""
    return f"{entity_type}::{PRESENT if entity_type == ANATOMY or not certainty else certainty}"


def short_label(label: str) -> str:
    """``Observation::definitely absent`` → ``OBS-DA``; labels outside RadGraph's four are returned as given."""
    return SHORT_LABELS.get(label, label)


def long_label(label: str) -> str:
    """``OBS-DA`` (or ``Observation::definitely absent``) → ``Observation::definitely absent``."""
    return LONG_LABELS.get(label, label)


# ---------------------------------------------------------------- text and sections

UNSECTIONED = "UNSECTIONED"
_SPACES = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Lower case, single spaces: how lexicon and schema terms are compared."""
    return _SPACES.sub(" ", text.lower().strip())


def label_sections() -> frozenset[str]:
    """Sections whose sentences count for labels (shipped section rules)."""
    return frozenset(section_rules().get("label_sections", ["FINDINGS", "IMPRESSION", UNSECTIONED]))


# ---------------------------------------------------------------- label rules

VALUES = {PRESENT: 1, UNCERTAIN: -1, ABSENT: 0}
RANK = {1: 3, -1: 2, 0: 1}
_RANK = RANK  # old name


def better(a: int | None, b: int | None) -> int | None:
    """CheXpert aggregation: positive beats uncertain beats negative beats unmentioned."""
    if a is None:
        return b
    if b is None:
        return a
    return a if RANK[a] >= RANK[b] else b


@lru_cache(maxsize=1)
def abnormal_modifiers() -> frozenset[str]:
    """Modifiers that assert something abnormal on their own ("enlarged", "widened")."""
    return frozenset(normalize(t) for t in lexicon().get("abnormal_modifiers", []))


_abnormal_modifiers = abnormal_modifiers  # old name


def _explained(schema: Schema, concept: str, explanations: set[str]) -> bool:
    for obs in schema.observations:
        if obs.name == concept and obs.explained_by:
            return any(term in text for text in explanations for term in obs.explained_by)
    return False


def _listed_with(entities: list[dict], anchors: Iterable[int]) -> set[int]:
    """The anchors and the Anatomy entities listed with them ("heart size, mediastinal contour and
    pulmonary vascularity"): neighbours at most two tokens apart ("and", ", and"), nothing else between."""
    order = sorted((i for i, e in enumerate(entities) if e.get("start_ix") is not None), key=lambda i: entities[i]["start_ix"])
    where = {i: n for n, i in enumerate(order)}
    out = set(anchors)
    for anchor in anchors:
        if anchor not in where:
            continue
        for step in (-1, 1):
            n = where[anchor]
            while 0 <= n + step < len(order):
                left, right = entities[order[min(n, n + step)]], entities[order[max(n, n + step)]]
                if entities[order[n + step]]["type"] != ANATOMY or right["start_ix"] - left["end_ix"] - 1 > 2:
                    break
                n += step
                out.add(order[n])
    return out


def _next_to(entities: list[dict], i: int, max_gap: int = 1) -> list[int]:
    """Anatomy entities right before or after entity ``i`` ("normal heart size", "heart size is normal")."""
    ent = entities[i]
    if ent.get("start_ix") is None:
        return []
    out = []
    before = [j for j, e in enumerate(entities) if e.get("end_ix") is not None and e["end_ix"] < ent["start_ix"]]
    after = [j for j, e in enumerate(entities) if e.get("start_ix") is not None and e["start_ix"] > ent["end_ix"]]
    if before:
        j = max(before, key=lambda j: entities[j]["end_ix"])
        if entities[j]["type"] == ANATOMY and ent["start_ix"] - entities[j]["end_ix"] - 1 <= max_gap:
            out.append(j)
    if after:
        j = min(after, key=lambda j: entities[j]["start_ix"])
        if entities[j]["type"] == ANATOMY and entities[j]["start_ix"] - ent["end_ix"] - 1 <= max_gap:
            out.append(j)
    return out


def sentence_mentions(entities: list[dict], relations: Iterable, schema: Schema) -> tuple[dict[str, int], bool]:
    """Observation values and whether anything abnormal is asserted, for one sentence.

    ``entities`` are dicts with ``tokens``, ``type``, ``kind``, ``certainty``, ``concepts``;
    ``relations`` are ``(type, head, tail)`` with indices into ``entities``.
    """
    values: dict[str, int] = {}
    abnormal = False
    linked: dict[int, set[int]] = {}
    modified: set[int] = set()
    suggests: dict[int, set[str]] = {}
    for rel, head, tail in relations:
        if rel == "suggestive_of":
            suggests.setdefault(head, set()).add(normalize(entities[tail]["tokens"]))
        linked.setdefault(head, set()).add(tail)
        linked.setdefault(tail, set()).add(head)
        if rel == "modify":
            modified.add(head)
    for i, ent in enumerate(entities):
        if ent["type"] != OBSERVATION:
            continue
        value = VALUES[ent["certainty"]]
        for concept in ent["concepts"]:
            if i in suggests and _explained(schema, concept, suggests[i]):
                continue  # "nodular densities consistent with granulomatous disease"
            values[concept] = better(values.get(concept), value)
        if ent["kind"] == "finding" and value != 0:
            abnormal = True
        text = normalize(ent["tokens"])
        if ent["kind"] == "modifier" and value != 0 and i not in modified and text in abnormal_modifiers():
            abnormal = True
        anatomy = [j for j in linked.get(i, ()) if entities[j]["type"] == ANATOMY]
        if ent["kind"] == "normal":
            if value == 0:
                continue  # "not normal": no statement about the observation
            value = 0  # "heart size normal", "cardiomediastinal silhouette unremarkable"
            # the parser links "normal" to the wrong one of two anatomy phrases now and then
            # ("a normal cardiac silhouette and clear lungs"): the anatomy right next to it counts too
            anatomy += _next_to(entities, i)
        if not anatomy:
            continue
        anatomy_texts = {normalize(entities[j]["tokens"]) for j in _listed_with(entities, anatomy)}
        for obs in schema.observations:
            for finding_terms, anatomy_terms in obs.combinations:
                if text in finding_terms and anatomy_texts & anatomy_terms:
                    values[obs.name] = better(values.get(obs.name), value)
                    if value != 0 and obs.name not in schema.ignore_for_no_finding:
                        abnormal = True
    for name, value in values.items():
        if value != 0 and name not in schema.ignore_for_no_finding:
            abnormal = True
    return values, abnormal


def aggregate(sentences: Iterable[tuple[str, dict[str, int], bool]], schema: Schema, sections: frozenset[str] | None = None) -> dict[str, int | None]:
    """Report labels from ``(section, values, abnormal)`` per sentence; only ``sections`` count."""
    sections = label_sections() if sections is None else sections
    labels: dict[str, int | None] = {o.name: None for o in schema.observations}
    any_abnormal = False
    any_sentence = False
    for section, values, abnormal in sentences:
        if section not in sections:
            continue
        any_sentence = True
        any_abnormal = any_abnormal or abnormal
        for name, value in values.items():
            if name in labels:
                labels[name] = better(labels[name], value)
    if schema.no_finding:
        labels[schema.no_finding] = 1 if any_sentence and not any_abnormal else None
    return {c: labels[c] for c in schema.columns}


__all__ = [
    "ABSENT", "ANATOMY", "CERTAINTIES", "ENTITY_LABELS", "ENTITY_TYPES", "OBSERVATION", "PRESENT", "RANK",
    "SHORT_LABELS", "UNCERTAIN", "UNSECTIONED", "VALUES", "abnormal_modifiers", "aggregate", "better",
    "entity_label", "label_sections", "long_label", "normalize", "sentence_mentions", "short_label",
]
