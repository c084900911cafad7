"""Per-observation labels (1 / 0 / -1 / blank) with CheXpert aggregation, and the ``radtool_labels`` component.

A sentence mentions an observation when one of its Observation entities maps to it (schema mention
phrase) or when a schema combination holds (a finding term related by ``located_at``/``modify`` to an
anatomy term: "the heart is enlarged" → Cardiomegaly). The mention's certainty gives its value:
present 1, uncertain -1, absent 0. Over a report, 1 beats -1 beats 0; unmentioned is blank.
No Finding is 1 when no finding other than those ignored by the schema (Support Devices) is present
or uncertain in the labelled sections, else blank.
"""


from collections.abc import Iterable
from functools import lru_cache

from spacy.language import Language
from spacy.tokens import Doc

from ..resources import lexicon
from ..schemas import Schema, load_schema
from .assertion import ABSENT, PRESENT, UNCERTAIN
from .entities import ANATOMY, OBSERVATION, normalize
from .sections import UNSECTIONED, label_sections

VALUES = {PRESENT: 1, UNCERTAIN: -1, ABSENT: 0}
_RANK = {1: 3, -1: 2, 0: 1}


def better(a: int | None, b: int | None) -> int | None:
    """CheXpert aggregation: positive beats uncertain beats negative beats unmentioned."""
    if a is None:
        return b
    if b is None:
        return a
    return a if _RANK[a] >= _RANK[b] else b


@lru_cache(maxsize=1)
def _abnormal_modifiers() -> frozenset[str]:
    return frozenset(normalize(t) for t in lexicon().get("abnormal_modifiers", []))


def _explained(schema: Schema, concept: str, explanations: set[str]) -> bool:
    for obs in schema.observations:
        if obs.name == concept and obs.explained_by:
            return any(term in text for text in explanations for term in obs.explained_by)
    return False


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
        if ent["kind"] == "modifier" and value != 0 and i not in modified and text in _abnormal_modifiers():
            abnormal = True
        anatomy_texts = {normalize(entities[j]["tokens"]) for j in linked.get(i, ()) if entities[j]["type"] == ANATOMY}
        if not anatomy_texts:
            continue
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


def install_extensions() -> None:
    if not Doc.has_extension("labels"):
        Doc.set_extension("labels", default=None)


class ReportLabels:
    def __init__(self, nlp: Language, name: str = "radtool_labels", schema: str = "chexpert", sections: list[str] | None = None) -> None:
        self.name = name
        self.schema_ref = schema
        self.schema = load_schema(schema)
        self.sections = frozenset(sections) if sections else label_sections()
        install_extensions()

    def __call__(self, doc: Doc) -> Doc:
        doc.user_data["radtool_schema"] = self.schema_ref
        from .graph import span_record  # local: graph imports this module

        rows = []
        for sent in doc.sents:
            record = span_record(sent)
            values, abnormal = sentence_mentions(record["entities"], record["relations"], self.schema)
            rows.append((sent._.section if doc._.sections is not None else UNSECTIONED, values, abnormal))
        doc._.labels = aggregate(rows, self.schema, self.sections)
        return doc


@Language.factory(
    "radtool_labels",
    default_config={"label_schema": "chexpert", "sections": None},
    assigns=["doc._.labels"],
    requires=["doc.ents", "doc._.relations"],
)
def make_labels(nlp: Language, name: str, label_schema: str, sections: list[str] | None) -> ReportLabels:
    return ReportLabels(nlp, name, label_schema, sections)
