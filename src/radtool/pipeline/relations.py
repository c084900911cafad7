"""Relations between entities in the RadGraph schema, from dependency paths and cue phrases.

* ``modify``: a modifier (``small``, ``left``, ``bilateral``) → the entity it modifies, the nearest
  Observation (for finding modifiers) or Anatomy (for anatomy modifiers) along the dependency tree.
* ``located_at``: Observation → Anatomy, the nearest anatomy along the dependency tree (at most
  ``max_distance`` arcs), in the same sentence.
* ``suggestive_of``: Observation → Observation across a cue (``suggestive of``, ``consistent with``,
  ``may represent``, ``concerning for``...): the last finding before the cue → each finding after it.

``doc._.relations`` is a list of ``(type, head_index, tail_index)`` with indices into ``doc.ents``.
"""


from bisect import bisect_right

from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Span, Token

from ..resources import lexicon
from ..labeling import ANATOMY, OBSERVATION
from ._data import SavesData
from .sections import report_sentences

LOCATED_AT = "located_at"
SUGGESTIVE_OF = "suggestive_of"
MODIFY = "modify"
RELATION_TYPES = (LOCATED_AT, SUGGESTIVE_OF, MODIFY)


def install_extensions() -> None:
    if not Doc.has_extension("relations"):
        Doc.set_extension("relations", default=None)


def _path_to_root(token: Token) -> list[int]:
    path = [token.i]
    seen = {token.i}
    while token.head.i != token.i and token.head.i not in seen:
        token = token.head
        path.append(token.i)
        seen.add(token.i)
    return path


def tree_distance(a: Token, b: Token) -> int:
    """Number of arcs between two tokens of one sentence (large if unconnected)."""
    pa, pb = _path_to_root(a), _path_to_root(b)
    where = {t: i for i, t in enumerate(pa)}
    for j, t in enumerate(pb):
        if t in where:
            return where[t] + j
    return 10_000


BARRIERS = {",", ";", ":"}
BARRIER_COST = 2


def span_distance(a: Span, b: Span) -> int:
    """Arcs between two spans, plus a cost for each comma/semicolon between them in the text: the
    parser often attaches telegraphic fragments ("heart size borderline enlarged, mediastinal
    contours ...") across clause breaks, and a relation rarely crosses one."""
    tree = min(tree_distance(x, y) for x in a for y in b)
    lo, hi = (a.end, b.start) if a.end <= b.start else (b.end, a.start)
    doc = a.doc
    barriers = sum(1 for i in range(lo, hi) if doc[i].text in BARRIERS)
    return tree + BARRIER_COST * barriers


class ReportRelations(SavesData):
    """Sets ``doc._.relations`` per report sentence (``doc.spans["radtool_sentences"]``).

    The cue matcher is built on first use; ``to_disk`` saves the cue phrases."""

    def __init__(self, nlp: Language, name: str = "radtool_relations", max_distance: int = 4) -> None:
        self.nlp = nlp
        self.name = name
        self.max_distance = max_distance
        self.cue_phrases: list[str] | None = None  # None: the shipped lexicon's
        self._cues: PhraseMatcher | None = None
        install_extensions()

    @property
    def cues(self) -> PhraseMatcher:
        if self._cues is None:
            phrases = lexicon()["suggestive_cues"] if self.cue_phrases is None else self.cue_phrases
            self._cues = PhraseMatcher(self.nlp.vocab, attr="LOWER")
            self._cues.add("SUGGESTIVE", list(self.nlp.tokenizer.pipe(phrases)))
        return self._cues

    def __call__(self, doc: Doc) -> Doc:
        ents = list(doc.ents)
        relations: list[tuple[str, int, int]] = []
        sentences = report_sentences(doc)
        starts = [s.start for s in sentences]
        by_sentence: dict[int, list[int]] = {}
        for i, ent in enumerate(ents):
            by_sentence.setdefault(bisect_right(starts, ent.start) - 1, []).append(i)
        cue_spans = [(s, e) for _m, s, e in self.cues(doc)] if ents else []
        for k, members in by_sentence.items():
            relations.extend(self._sentence_relations(ents, members, cue_spans, sentences[k]))
        doc._.relations = relations
        return doc

    # ------------------------------------------------------------ serialization

    def _data(self) -> dict:
        return {"suggestive_cues": list(lexicon()["suggestive_cues"] if self.cue_phrases is None else self.cue_phrases)}

    def _set_data(self, data: dict) -> "ReportRelations":
        if "suggestive_cues" in data:
            cues = list(data["suggestive_cues"])
            self.cue_phrases = None if cues == list(lexicon()["suggestive_cues"]) else cues
            self._cues = None
        install_extensions()
        return self


    def _nearest(self, ents: list[Span], source: int, targets: list[int], limit: int) -> int | None:
        best = None
        for t in targets:
            if t == source:
                continue
            d = span_distance(ents[source], ents[t])
            # ties go to the closer one in the text
            key = (d, abs(ents[t].start - ents[source].start))
            if d <= limit and (best is None or key < best[0]):
                best = (key, t)
        return best[1] if best else None

    def _sentence_relations(self, ents, members, cue_spans, sent):
        out = []
        findings = [i for i in members if ents[i].label_ == OBSERVATION and ents[i]._.kind != "modifier"]
        anatomy = [i for i in members if ents[i].label_ == ANATOMY and ents[i]._.kind == "anatomy"]
        anatomy_mods = [i for i in members if ents[i].label_ == ANATOMY and ents[i]._.kind == "anatomy_modifier"]
        finding_mods = [i for i in members if ents[i].label_ == OBSERVATION and ents[i]._.kind == "modifier"]
        bare_modifiers = []
        for i in finding_mods:
            target = self._nearest(ents, i, findings, 2)
            if target is None:
                bare_modifiers.append(i)  # "the heart is enlarged": the modifier is the observation
            else:
                out.append((MODIFY, i, target))
        for i in anatomy_mods:
            target = self._nearest(ents, i, anatomy, 2)
            if target is None:
                target = self._nearest(ents, i, findings, 2)
            if target is not None:
                out.append((MODIFY, i, target))
        for i in findings + bare_modifiers:
            target = self._nearest(ents, i, anatomy, self.max_distance)
            if target is not None:
                out.append((LOCATED_AT, i, target))
        if findings and cue_spans:
            for cs, ce in cue_spans:
                if not (sent.start <= cs < sent.end):
                    continue
                before = [i for i in findings if ents[i].end <= cs]
                after = [i for i in findings if ents[i].start >= ce]
                if before and after:
                    head = before[-1]
                    next_cue = min([s for s, _e in cue_spans if s >= ce] + [sent.end])
                    for t in after:
                        if ents[t].start < next_cue:
                            out.append((SUGGESTIVE_OF, head, t))
        return list(dict.fromkeys(out))


@Language.factory(
    "radtool_relations",
    default_config={"max_distance": 4},
    assigns=["doc._.relations"],
    requires=["doc.ents", "token.dep", "span._.kind"],
)
def make_relations(nlp: Language, name: str, max_distance: int) -> ReportRelations:
    return ReportRelations(nlp, name, max_distance)
