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

from loguru import logger
from spacy.language import Language
from spacy.tokens import Doc, Span

from ..labeling import ABSENT, ANATOMY, CERTAINTIES, OBSERVATION, PRESENT, UNCERTAIN
from ..resources import context_rules
from .entities import install_extensions
_ABSENT_CATEGORIES = {"NEGATED_EXISTENCE", "RESOLVED"}
_UNCERTAIN_CATEGORIES = {"POSSIBLE_EXISTENCE", "HYPOTHETICAL"}


def silence_pyrush() -> None:
    """medspaCy's PyRuSH sentence splitter logs one DEBUG line per sentence through loguru."""
    for name in ("PyRuSH", "medspacy"):
        logger.disable(name)


def build_context(nlp: Language, name: str = "radtool_context"):
    silence_pyrush()
    # ConText's pattern matcher is empty (all our rules are literals); spaCy warns on every call
    warnings.filterwarnings("ignore", message=r".*\[W036\].*")
    from .._lazy import import_medspacy_context  # medspacy.context without QuickUMLS/nltk/sklearn

    _context = import_medspacy_context()
    ConText, ConTextRule = _context.ConText, _context.ConTextRule

    context = ConText(
        nlp,
        name=name,
        rules=None,
        allowed_types={OBSERVATION.upper()},
        span_attrs=None,
        prune_on_modifier_overlap=True,
    )
    rules = []
    for spec in context_rules():
        rules.append(
            ConTextRule(
                literal=spec["literal"],
                category=spec["category"],
                pattern=spec.get("pattern"),
                direction=spec.get("direction", "BIDIRECTIONAL"),
                max_scope=spec.get("max_scope"),
                max_targets=spec.get("max_targets"),
                terminated_by=set(spec["terminated_by"]) if spec.get("terminated_by") else None,
            )
        )
    context.add(rules)
    return context


def _distance(target: Span, modifier_span: tuple[int, int]) -> int:
    start, end = modifier_span
    if end <= target.start:
        return target.start - end
    if start >= target.end:
        return start - target.end
    return 0


def certainty_of(span: Span) -> str:
    if span.label_ != OBSERVATION:
        return PRESENT
    best: tuple[int, str] | None = None
    for modifier in getattr(span._, "modifiers", ()) or ():
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


class ReportAssertion:
    """Runs ConText over ``doc.ents`` and sets ``span._.certainty``."""

    def __init__(self, nlp: Language, name: str = "radtool_assertion") -> None:
        self.name = name
        install_extensions()
        self.context = build_context(nlp)

    def __call__(self, doc: Doc) -> Doc:
        if doc.ents:
            self.context(doc)
        for span in doc.ents:
            span._.certainty = certainty_of(span) if span.label_ == OBSERVATION else PRESENT
        return doc


@Language.factory("radtool_assertion", assigns=["span._.certainty"], requires=["doc.ents"])
def make_assertion(nlp: Language, name: str) -> ReportAssertion:
    return ReportAssertion(nlp, name)


__all__ = ["ANATOMY", "OBSERVATION", "PRESENT", "UNCERTAIN", "ABSENT", "CERTAINTIES", "make_assertion"]
