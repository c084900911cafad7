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


def _root_path(heads: list[int], i: int) -> list[int]:
    """Token indices from ``i`` up its heads to the root (or to where a head loops back)."""
    path = [i]
    seen = {i}
    while heads[i] != i and heads[i] not in seen:
        i = heads[i]
        path.append(i)
        seen.add(i)
    return path


def tree_distance(a: Token, b: Token) -> int:
    """Number of arcs between two tokens of one sentence (large if unconnected)."""
    return _Tree(a.doc).distance(a.i, b.i)


BARRIERS = {",", ";", ":"}
BARRIER_COST = 2


def span_distance(a: Span, b: Span) -> int:
    """Arcs between two spans, plus a cost for each comma/semicolon between them in the text: the
    parser often attaches telegraphic fragments ("heart size borderline enlarged, mediastinal
    contours ...") across clause breaks, and a relation rarely crosses one."""
    return _Tree(a.doc).span_distance((a.start, a.end), (b.start, b.end))


class _Tree:
    """A Doc's heads and barrier punctuation as plain integer lists, read once per Doc: the distance
    searches below run on them instead of creating spaCy Token objects at every step (the same
    results; this was the slowest radtool component on short report sentences)."""

    def __init__(self, doc: Doc) -> None:
        from spacy.attrs import HEAD

        # HEAD is stored relative to the token (an unsigned 64-bit array: negative offsets wrap around)
        offsets = doc.to_array([HEAD]).astype("int64").tolist()
        self.heads = [i + off for i, off in enumerate(offsets)]
        self.barriers_before = [0]  # barriers_before[i]: barrier tokens among doc[:i]
        count = 0
        for t in doc:
            count += t.text in BARRIERS
            self.barriers_before.append(count)
        self._paths: dict[int, tuple[list[int], dict[int, int]]] = {}

    def _path(self, i: int) -> tuple[list[int], dict[int, int]]:
        got = self._paths.get(i)
        if got is None:
            path = _root_path(self.heads, i)
            got = self._paths[i] = (path, {t: k for k, t in enumerate(path)})
        return got

    def distance(self, a: int, b: int) -> int:
        where = self._path(a)[1]
        for j, t in enumerate(self._path(b)[0]):
            if t in where:
                return where[t] + j
        return 10_000

    def span_distance(self, a: tuple[int, int], b: tuple[int, int]) -> int:
        tree = min(self.distance(x, y) for x in range(*a) for y in range(*b))
        lo, hi = (a[1], b[0]) if a[1] <= b[0] else (b[1], a[0])
        barriers = self.barriers_before[hi] - self.barriers_before[lo] if hi > lo else 0
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
        if by_sentence:
            tree = _Tree(doc)
            bounds = [(e.start, e.end) for e in ents]
            labels = [e.label_ for e in ents]
            kinds = [e._.kind for e in ents]
            for k, members in by_sentence.items():
                sent = sentences[k]
                relations.extend(self._sentence_relations(tree, bounds, labels, kinds, members, cue_spans, (sent.start, sent.end)))
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


    @staticmethod
    def _nearest(tree: _Tree, bounds: list[tuple[int, int]], source: int, targets: list[int], limit: int) -> int | None:
        best = None
        for t in targets:
            if t == source:
                continue
            d = tree.span_distance(bounds[source], bounds[t])
            # ties go to the closer one in the text
            key = (d, abs(bounds[t][0] - bounds[source][0]))
            if d <= limit and (best is None or key < best[0]):
                best = (key, t)
        return best[1] if best else None

    def _sentence_relations(self, tree, bounds, labels, kinds, members, cue_spans, sent):
        out = []
        nearest = self._nearest
        findings = [i for i in members if labels[i] == OBSERVATION and kinds[i] != "modifier"]
        anatomy = [i for i in members if labels[i] == ANATOMY and kinds[i] == "anatomy"]
        anatomy_mods = [i for i in members if labels[i] == ANATOMY and kinds[i] == "anatomy_modifier"]
        finding_mods = [i for i in members if labels[i] == OBSERVATION and kinds[i] == "modifier"]
        bare_modifiers = []
        for i in finding_mods:
            target = nearest(tree, bounds, i, findings, 2)
            if target is None:
                bare_modifiers.append(i)  # "the heart is enlarged": the modifier is the observation
            else:
                out.append((MODIFY, i, target))
        for i in anatomy_mods:
            target = nearest(tree, bounds, i, anatomy, 2)
            if target is None:
                target = nearest(tree, bounds, i, findings, 2)
            if target is not None:
                out.append((MODIFY, i, target))
        for i in findings + bare_modifiers:
            target = nearest(tree, bounds, i, anatomy, self.max_distance)
            if target is not None:
                out.append((LOCATED_AT, i, target))
        if findings and cue_spans:
            sent_start, sent_end = sent
            for cs, ce in cue_spans:
                if not (sent_start <= cs < sent_end):
                    continue
                before = [i for i in findings if bounds[i][1] <= cs]
                after = [i for i in findings if bounds[i][0] >= ce]
                if before and after:
                    head = before[-1]
                    next_cue = min([s for s, _e in cue_spans if s >= ce] + [sent_end])
                    for t in after:
                        if bounds[t][0] < next_cue:
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
