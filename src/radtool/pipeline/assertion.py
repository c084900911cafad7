"""Assertion with scope: medspaCy ConText with radtool's rules, mapped to RadGraph certainty.

Each Observation gets ``span._.certainty`` in ``definitely present | uncertain | definitely absent``.
Anatomy is always ``definitely present`` (as in RadGraph).

How ConText categories map (docs/label-policy.md has an example sentence per rule):

* NEGATED_EXISTENCE (``no``, ``without``, ``free of``, ``has resolved``, ``no longer seen``, ``removal of``) → absent
* POSSIBLE_EXISTENCE (``possible``, ``cannot be excluded``, ``versus``, ``concerning for``) → uncertain
* HYPOTHETICAL (``evaluate for``, ``rule out``) → uncertain
* HISTORICAL, PSEUDO → no change
* When a negation and an uncertainty cue both reach a finding, the nearer one decides
  ("no definite effusion" → absent; "no pneumothorax; effusion cannot be excluded" → uncertain).
"""


import warnings
from bisect import bisect_right
from functools import lru_cache

from loguru import logger
from spacy.language import Language
from spacy.matcher import Matcher
from spacy.tokens import Doc, Span

from ..labeling import ABSENT, ANATOMY, CERTAINTIES, OBSERVATION, PRESENT, UNCERTAIN
from ..resources import context_rules
from ._data import SavesData
from .entities import install_extensions
from .sections import report_sentences
_ABSENT_CATEGORIES = {"NEGATED_EXISTENCE", "RESOLVED"}
_UNCERTAIN_CATEGORIES = {"POSSIBLE_EXISTENCE", "HYPOTHETICAL"}


def silence_pyrush() -> None:
    """medspaCy's PyRuSH sentence splitter logs one DEBUG line per sentence through loguru."""
    for name in ("PyRuSH", "medspacy"):
        logger.disable(name)


def _medspacy_context():
    from .._lazy import import_medspacy_context  # medspacy.context without QuickUMLS/nltk/sklearn

    return import_medspacy_context()


def context_rule_objects(specs: list[dict]) -> list:
    """medspaCy ``ConTextRule`` objects for rule dicts (``literal``, ``category``, ``direction``...)."""
    ConTextRule = _medspacy_context().ConTextRule
    return [
        ConTextRule(
            literal=spec["literal"],
            category=spec["category"],
            pattern=spec.get("pattern"),
            direction=spec.get("direction", "BIDIRECTIONAL"),
            max_scope=spec.get("max_scope"),
            max_targets=spec.get("max_targets"),
            terminated_by=set(spec["terminated_by"]) if spec.get("terminated_by") else None,
        )
        for spec in specs
    ]


@lru_cache(maxsize=1)
def shipped_rule_objects() -> tuple:
    """The shipped ConText rules as ``ConTextRule`` objects, built once per process."""
    return tuple(context_rule_objects(context_rules()))


def build_context(nlp: Language, name: str = "radtool_context", rules: list[dict] | None = None):
    """A medspaCy ConText over Observation entities with radtool's rules (or ``rules``)."""
    silence_pyrush()
    context = _medspacy_context().ConText(
        nlp,
        name=name,
        rules=None,
        allowed_types={OBSERVATION.upper()},
        span_attrs=None,
        prune_on_modifier_overlap=True,
    )
    context.add(list(shipped_rule_objects()) if rules is None else context_rule_objects(rules))
    _skip_empty_token_matcher(context)
    return context


class _NoMatches:
    def __call__(self, doc: Doc) -> list:
        return []

    def __len__(self) -> int:
        return 0


def _skip_empty_token_matcher(context) -> bool:
    """medspaCy runs its token-pattern Matcher on every Doc even when it holds no pattern (radtool's
    ConText rules are all literals, matched by the PhraseMatcher): spaCy then warns ([W036]) at every
    call, and the call and its warning cost as much as the phrase matching. An empty one is replaced by
    a matcher that finds nothing, which is what the empty one finds. Returns whether it was replaced
    (medspaCy versions that keep the matcher elsewhere are left as they are)."""
    inner = _token_matcher(context)
    if not isinstance(inner, Matcher) or len(inner):
        return False
    context._ConText__matcher._MedspacyMatcher__matcher = _NoMatches()
    return True


def _token_matcher(context):
    """The token-pattern Matcher inside medspaCy's ConText (None where a medspaCy version keeps it elsewhere)."""
    return getattr(getattr(context, "_ConText__matcher", None), "_MedspacyMatcher__matcher", None)


def _distance(target: Span, modifier_span: tuple[int, int]) -> int:
    start, end = modifier_span
    if end <= target.start:
        return target.start - end
    if start >= target.end:
        return start - target.end
    return 0


def certainty_of(span: Span, sentence: tuple[int, int] | None = None) -> str:
    """The certainty ConText's modifiers give an Observation; only modifiers inside ``sentence``
    (token bounds of the report sentence) count, when given."""
    if span.label_ != OBSERVATION:
        return PRESENT
    best: tuple[int, str] | None = None
    for modifier in getattr(span._, "modifiers", ()) or ():
        if sentence is not None and not (sentence[0] <= modifier.modifier_span[0] and modifier.modifier_span[1] <= sentence[1]):
            continue  # ConText scopes by doc.sents; a parser's sentence can be longer than the report's
        category = modifier.category.upper()
        if category in _ABSENT_CATEGORIES:
            value = ABSENT
        elif category in _UNCERTAIN_CATEGORIES:
            value = UNCERTAIN
        else:
            continue
        distance = _distance(span, modifier.modifier_span)
        if best is None or distance < best[0] or (distance == best[0] and value == UNCERTAIN):
            best = (distance, value)
    return best[1] if best else PRESENT


def _has_sentences(doc: Doc, sentences: list[Span]) -> bool:
    """Whether the Doc's own sentence boundaries are the report sentences (``radtool_sections`` ran
    before the parser), so that ConText, which scopes by ``doc.sents``, scopes by report sentences."""
    return doc.has_annotation("SENT_START") and [s.start for s in doc.sents] == [s.start for s in sentences]


def _with_sentences(doc: Doc, sentences: list[Span]) -> Doc:
    """A copy of the Doc's words and entities with the report sentences as its sentence boundaries:
    where the components run after a parser, ConText runs on it, so its scopes are the same as when
    ``radtool_sections`` runs first (all radtool ConText rules are literals: words are all it reads)."""
    starts = {s.start for s in sentences}
    copy = Doc(doc.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc],
               sent_starts=[t.i in starts for t in doc])
    copy.ents = [Span(copy, e.start, e.end, label=e.label) for e in doc.ents]
    return copy


class ReportAssertion(SavesData):
    """Runs ConText over ``doc.ents`` and sets ``span._.certainty``.

    ConText is built on first use, from rule objects built once per process. ``to_disk`` saves the
    rules, so a saved pipeline keeps the rules it was built with.
    """

    def __init__(self, nlp: Language, name: str = "radtool_assertion") -> None:
        self.nlp = nlp
        self.name = name
        self.rules: list[dict] | None = None  # None: the shipped rules
        self._context = None
        self._quiet = False
        install_extensions()

    @property
    def context(self):
        if self._context is None:
            self._context = build_context(self.nlp, rules=self.rules)
            # its token Matcher was replaced (nothing to warn about): no warnings filter around each call
            self._quiet = isinstance(_token_matcher(self._context), _NoMatches)
        return self._context

    def __call__(self, doc: Doc) -> Doc:
        report = report_sentences(doc)
        ents = doc.ents  # spaCy builds the Span objects at every ``doc.ents``: once here
        if ents:
            target = doc if _has_sentences(doc, report) else _with_sentences(doc, report)
            context = self.context
            if self._quiet:
                context(target)
            else:
                with warnings.catch_warnings():
                    # ConText's token-pattern matcher is empty (all our rules are literals): spaCy's [W036]
                    warnings.filterwarnings("ignore", message=r".*\[W036\].*")
                    context(target)
            if target is not doc:
                for span, scoped in zip(ents, target.ents):
                    span._.modifiers = scoped._.modifiers
                doc._.context_graph = target._.context_graph
        sentences = [(s.start, s.end) for s in report]
        starts = [s for s, _e in sentences]
        for span in ents:
            if span.label_ != OBSERVATION:
                span._.certainty = PRESENT
                continue
            i = bisect_right(starts, span.start) - 1
            span._.certainty = certainty_of(span, sentences[i] if i >= 0 else None)
        return doc

    # ------------------------------------------------------------ serialization

    def _data(self) -> dict:
        return {"context_rules": list(context_rules() if self.rules is None else self.rules)}

    def _set_data(self, data: dict) -> "ReportAssertion":
        if "context_rules" in data:
            rules = list(data["context_rules"])
            self.rules = None if rules == list(context_rules()) else rules
            self._context = None
        install_extensions()
        return self



@Language.factory(
    "radtool_assertion",
    assigns=["span._.certainty"],
    requires=["doc.ents", "span._.kind"],
)
def make_assertion(nlp: Language, name: str) -> ReportAssertion:
    return ReportAssertion(nlp, name)


__all__ = ["ANATOMY", "OBSERVATION", "PRESENT", "UNCERTAIN", "ABSENT", "CERTAINTIES", "make_assertion"]
