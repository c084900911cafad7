"""Entities in the RadGraph schema: ``Anatomy`` and ``Observation`` spans from the shipped lexicon.

Every schema mention phrase is an Observation term too, mapped to its schema observation(s)
(``span._.concepts``). Exclusion phrases (``pericardial effusion``) are matched as entities of their
own that map to nothing, so the longest match keeps them from counting as ``effusion``.
"""


from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Span

from ..labeling import ANATOMY, OBSERVATION, normalize
from ..resources import lexicon
from ..schemas import Schema, load_schema

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

    def __init__(self, schema: Schema) -> None:
        self.kind: dict[str, str] = {}
        self.concepts: dict[str, set[str]] = {}
        lex = lexicon()
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


class ReportEntities:
    """Matches lexicon terms and sets ``doc.ents`` (labels ``Anatomy``/``Observation``) with kinds and concepts."""

    def __init__(self, nlp: Language, name: str = "radtool_entities", schema: str = "chexpert") -> None:
        self.name = name
        self.schema = load_schema(schema)
        install_extensions()
        self.terms = EntityTerms(self.schema)
        self.matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
        by_kind: dict[str, list[str]] = {}
        for form, kind in self.terms.kind.items():
            by_kind.setdefault(kind, []).append(form)
        for kind, forms in by_kind.items():
            self.matcher.add(kind, list(nlp.tokenizer.pipe(forms)))

    def __call__(self, doc: Doc) -> Doc:
        vocab = doc.vocab
        candidates = []
        for match_id, start, end in self.matcher(doc):
            kind = vocab.strings[match_id]
            candidates.append((-(end - start), KINDS[kind][1], start, end, kind))
        candidates.sort()
        taken = [False] * len(doc)
        ents = []
        for _neg_len, _prio, start, end, kind in candidates:
            if any(taken[start:end]):
                continue
            # an entity never crosses a sentence boundary
            if any(doc[i].is_sent_start for i in range(start + 1, end)):
                continue
            for i in range(start, end):
                taken[i] = True
            span = Span(doc, start, end, label=KINDS[kind][0])
            text = normalize(span.text)
            span._.kind = self.terms.kind.get(text, kind)
            span._.concepts = tuple(sorted(self.terms.concepts.get(text, ())))
            ents.append(span)
        doc.ents = sorted(ents, key=lambda s: s.start)
        return doc


@Language.factory(
    "radtool_entities",
    default_config={"label_schema": "chexpert"},
    assigns=["doc.ents", "span._.kind", "span._.concepts"],
)
def make_entities(nlp: Language, name: str, label_schema: str) -> ReportEntities:
    return ReportEntities(nlp, name, label_schema)
