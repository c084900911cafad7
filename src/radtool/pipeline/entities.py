"""Entities in the RadGraph schema: ``Anatomy`` and ``Observation`` spans from the shipped lexicon.

Every schema mention phrase is an Observation term too, mapped to its schema observation(s)
(``span._.concepts``). Exclusion phrases (``pericardial effusion``) are matched as entities of their
own that map to nothing, so the longest match keeps them from counting as ``effusion``.
"""


from functools import lru_cache

from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Span

from ..labeling import ANATOMY, OBSERVATION, normalize
from ..resources import lexicon
from ..schemas import Schema, load_schema
from ._data import SavesData, schema_from_data, schema_to_dict
from .sections import report_sentences

# kind -> (RadGraph type, priority among equally long matches; lower wins)
KINDS = {
    "finding": (OBSERVATION, 0),
    "device": (OBSERVATION, 1),
    "normal": (OBSERVATION, 2),
    "modifier": (OBSERVATION, 3),
    "anatomy": (ANATOMY, 4),
    "anatomy_modifier": (ANATOMY, 5),
}
LEXICON_KINDS = {
    "findings": "finding",
    "devices": "device",
    "normal_findings": "normal",
    "finding_modifiers": "modifier",
    "anatomy": "anatomy",
    "anatomy_modifiers": "anatomy_modifier",
}
def inflections(term: str) -> set[str]:
    """The term and simple plural forms of its last word."""
    out = {term}
    head, _, last = term.rpartition(" ")
    prefix = f"{head} " if head else ""
    if last and last[-1].isalpha() and len(last) > 2:
        if last.endswith("y") and last[-2] not in "aeiou":
            out.add(prefix + last[:-1] + "ies")
        elif last.endswith(("s", "x", "z", "ch", "sh")):
            out.add(prefix + last + "es")
        else:
            out.add(prefix + last + "s")
    return out


def install_extensions() -> None:
    for name, default in (("kind", None), ("concepts", ()), ("certainty", None)):
        if not Span.has_extension(name):
            Span.set_extension(name, default=default)


class EntityTerms:
    """Term tables for one schema: kind per term and schema concepts per term."""

    def __init__(self, schema: Schema, lex: dict | None = None) -> None:
        self.kind: dict[str, str] = {}
        self.concepts: dict[str, set[str]] = {}
        lex = lexicon() if lex is None else lex
        for key, kind in LEXICON_KINDS.items():
            for term in lex[key]:
                for form in inflections(normalize(term)):
                    self._add(form, kind)
        for obs in schema.observations:
            kind = "device" if obs.name in schema.ignore_for_no_finding else "finding"
            for term in obs.mentions:
                for form in inflections(normalize(term)):
                    self._add(form, kind, overwrite_weaker=True)
                    self.concepts.setdefault(form, set()).add(obs.name)
            for term in obs.exclusions:
                for form in inflections(normalize(term)):
                    self._add(form, "finding")
                    self.concepts.setdefault(form, set()).discard(obs.name)

    def _add(self, form: str, kind: str, overwrite_weaker: bool = False) -> None:
        current = self.kind.get(form)
        if current is None or (overwrite_weaker and KINDS[kind][1] < KINDS[current][1]) or KINDS[kind][1] < KINDS[current][1]:
            self.kind[form] = kind


@lru_cache(maxsize=8)
def entity_terms(schema: Schema) -> EntityTerms:
    """The term tables of a schema with the shipped lexicon, built once per process."""
    return EntityTerms(schema)


def lexicon_terms(lex: dict) -> dict[str, list[str]]:
    """The part of a lexicon this component uses (what it saves with the pipeline)."""
    return {key: list(lex[key]) for key in LEXICON_KINDS}


class ReportEntities(SavesData):
    """Matches lexicon terms and sets ``doc.ents`` (labels ``Anatomy``/``Observation``) with kinds and concepts.

    The schema is read, and the term tables and phrase patterns built, on first use (then cached):
    adding the component is cheap, and a pipeline loaded from disk tokenizes the patterns with its
    own (loaded) tokenizer. ``to_disk`` saves the schema and lexicon terms, so a pipeline built with a
    schema file loads where that file does not exist.
    """

    def __init__(self, nlp: Language, name: str = "radtool_entities", schema: str | Schema = "chexpert") -> None:
        self.nlp = nlp
        self.name = name
        self.schema_ref = schema
        self._schema: Schema | None = schema if isinstance(schema, Schema) else None
        self._lexicon: dict | None = None  # None: the shipped lexicon
        self._terms: EntityTerms | None = None
        self._matcher: PhraseMatcher | None = None
        install_extensions()

    @property
    def schema(self) -> Schema:
        if self._schema is None:
            self._schema = load_schema(self.schema_ref)
        return self._schema

    @property
    def terms(self) -> EntityTerms:
        if self._terms is None:
            self._terms = entity_terms(self.schema) if self._lexicon is None else EntityTerms(self.schema, self._lexicon)
        return self._terms

    @property
    def matcher(self) -> PhraseMatcher:
        if self._matcher is None:
            matcher = PhraseMatcher(self.nlp.vocab, attr="LOWER")
            by_kind: dict[str, list[str]] = {}
            for form, kind in self.terms.kind.items():
                by_kind.setdefault(kind, []).append(form)
            for kind, forms in by_kind.items():
                matcher.add(kind, list(self.nlp.tokenizer.pipe(forms)))
            self._matcher = matcher
        return self._matcher

    def __call__(self, doc: Doc) -> Doc:
        vocab = doc.vocab
        terms = self.terms
        candidates = []
        for match_id, start, end in self.matcher(doc):
            kind = vocab.strings[match_id]
            candidates.append((-(end - start), KINDS[kind][1], start, end, kind))
        candidates.sort()
        # an entity never crosses a sentence boundary
        sentence_starts = {s.start for s in report_sentences(doc)}
        taken = [False] * len(doc)
        ents = []
        for _neg_len, _prio, start, end, kind in candidates:
            if any(taken[start:end]):
                continue
            if any(i in sentence_starts for i in range(start + 1, end)):
                continue
            for i in range(start, end):
                taken[i] = True
            span = Span(doc, start, end, label=KINDS[kind][0])
            text = normalize(span.text)
            span._.kind = terms.kind.get(text, kind)
            span._.concepts = tuple(sorted(terms.concepts.get(text, ())))
            ents.append(span)
        doc.ents = sorted(ents, key=lambda s: s.start)
        return doc

    # ------------------------------------------------------------ serialization

    def _data(self) -> dict:
        return {"schema": schema_to_dict(self.schema), "lexicon": lexicon_terms(self._lexicon or lexicon())}

    def _set_data(self, data: dict) -> "ReportEntities":
        if "schema" in data:
            self._schema = schema_from_data(data["schema"])
        if "lexicon" in data:
            self._lexicon = None if data["lexicon"] == lexicon_terms(lexicon()) else data["lexicon"]
        self._terms = self._matcher = None
        install_extensions()
        return self



@Language.factory(
    "radtool_entities",
    default_config={"label_schema": "chexpert"},
    assigns=["doc.ents", "span._.kind", "span._.concepts"],
    requires=["doc._.radtool_sections"],
)
def make_entities(nlp: Language, name: str, label_schema: str) -> ReportEntities:
    return ReportEntities(nlp, name, label_schema)
