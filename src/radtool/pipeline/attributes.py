"""A faster matcher for the spaCy model's ``attribute_ruler``, with identical results.

en_core_web_sm's attribute ruler holds ~180 patterns (tag map, morphology exceptions). spaCy's
Matcher tries every pattern at every token, which made it the second most expensive step of the
pipeline on short report sentences. Almost all patterns are one token with exact ``TAG`` / ``LOWER``
/ ``DEP`` / ``IS_SPACE`` values, so they are looked up by tag and by lower-case form instead; the few
others still go through a spaCy Matcher. The matches (and their order) are the same as the original's,
and the ruler's own ``set_annotations`` applies them, so POS, morphology and lemmas do not change
(``tests/pipeline/test_attributes.py`` checks this on report sentences).
"""

from __future__ import annotations

import re

from spacy.language import Language
from spacy.matcher import Matcher
from spacy.tokens import Doc

_SIMPLE_KEYS = {"TAG", "LOWER", "DEP", "IS_SPACE"}


def _simple(spec: dict) -> bool:
    """One token, exact values or IN / NOT_IN sets on the keys we can read cheaply."""
    if not set(spec) <= _SIMPLE_KEYS:
        return False
    for value in spec.values():
        if isinstance(value, dict):
            if not set(value) <= {"IN", "NOT_IN"}:
                return False
        elif not isinstance(value, (str, bool)):
            return False
    return True


def _keys(value) -> list | None:
    """The exact values a spec accepts, or None when it accepts open-ended values."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict) and set(value) == {"IN"}:
        return list(value["IN"])
    return None


class FastAttributeMatch:
    def __init__(self, ruler) -> None:
        self.ruler = ruler
        vocab = ruler.vocab
        self.by_tag: dict[str, list] = {}
        self.by_lower: dict[str, list] = {}
        self.anywhere: list = []
        self.rest = Matcher(vocab)
        self.n_rest = 0
        self._cache: dict[tuple, tuple] = {}
        self.first_specs: list[dict] = []
        for key in ruler.matcher._patterns:  # match ids are the attr ids as strings
            label = vocab.strings[key]
            attr_id = int(label)
            for pattern in ruler.matcher.get(label)[1]:
                if len(pattern) == 1 and _simple(pattern[0]):
                    spec = pattern[0]
                    entry = (attr_id, key, spec)
                    tags, lowers = _keys(spec.get("TAG")), _keys(spec.get("LOWER"))
                    if tags is not None:
                        for tag in tags:
                            self.by_tag.setdefault(tag, []).append(entry)
                    elif lowers is not None:
                        for lower in lowers:
                            self.by_lower.setdefault(lower, []).append(entry)
                    else:
                        self.anywhere.append(entry)
                else:
                    self.rest.add(label, [pattern])
                    self.n_rest += 1
                    self.first_specs.append(pattern[0])
        # the other patterns can only match where a token satisfies their first token's spec: the spaCy
        # Matcher runs on a Doc only when one does (most report sentences have no "gon na", "let 's"...)
        self.rest_always = any(not set(spec) <= {"TAG", "LOWER", "DEP"} for spec in self.first_specs)

    def _token_matches(self, tag: str, lower: str, dep: str, is_space: bool) -> tuple[tuple, bool]:
        """The (attr_id, key) of the one-token patterns that hold for a token with these values, and
        whether the token could start a match of one of the other patterns."""
        values = {"TAG": tag, "LOWER": lower, "DEP": dep, "IS_SPACE": is_space}
        seen = set()
        out = []
        for entry in (self.by_tag.get(tag, ()), self.by_lower.get(lower, ()), self.anywhere):
            for attr_id, key, spec in entry:
                if attr_id not in seen and self._spec_holds(values, spec):
                    seen.add(attr_id)
                    out.append((attr_id, key))
        return tuple(out), any(self._spec_holds(values, spec) for spec in self.first_specs)

    @staticmethod
    def _spec_holds(values: dict, spec: dict) -> bool:
        for k, v in spec.items():
            actual = values[k]
            if isinstance(v, dict):
                if "IN" in v and actual not in v["IN"]:
                    return False
                if "NOT_IN" in v and actual in v["NOT_IN"]:
                    return False
                if "REGEX" in v and not re.search(v["REGEX"], actual):
                    return False
                if not set(v) <= {"IN", "NOT_IN", "REGEX"}:
                    return True  # a predicate not read here: assume it may hold
            elif actual != v:
                return False
        return True

    def __call__(self, doc: Doc):
        # the one-token patterns read only TAG, LOWER, DEP and IS_SPACE, so their matches are looked up
        # once per distinct combination of the four (a bounded cache), not tried again at every token
        from spacy.attrs import DEP, IS_SPACE, LOWER, TAG

        matches = []
        cache = self._cache
        rest = self.rest_always
        strings = doc.vocab.strings
        # the four values as ids, in one call (the cache is keyed by ids, looked up as strings on a miss)
        for i, ids in enumerate(doc.to_array([TAG, LOWER, DEP, IS_SPACE]).tolist()):
            values = tuple(ids)
            found = cache.get(values)
            if found is None:
                if len(cache) >= 200_000:
                    cache.clear()
                tag, lower, dep, space = values
                found = cache[values] = self._token_matches(strings[tag], strings[lower], strings[dep], bool(space))
            for attr_id, key in found[0]:
                matches.append((attr_id, key, i, i + 1))
            rest = rest or found[1]
        if self.n_rest and rest:
            for m_id, s, e in self.rest(doc, allow_missing=True, as_spans=False):
                matches.append((int(self.ruler.vocab.strings[m_id]), m_id, s, e))
        matches.sort()
        return matches


class FastSetAnnotations:
    """The ruler's ``set_annotations`` without two ``Span`` objects per match: a one-token match whose
    index is 0 or -1 sets its attributes on that token directly (``set_token_attrs``, what the ruler
    itself calls), in the same order; any other match goes through the ruler's own method."""

    def __init__(self, ruler) -> None:
        from spacy.tokens._retokenize import set_token_attrs

        self.ruler = ruler
        self.set_token_attrs = set_token_attrs
        self.original = type(ruler).set_annotations

    def __call__(self, doc: Doc, matches) -> None:
        attrs, indices, set_token_attrs = self.ruler.attrs, self.ruler.indices, self.set_token_attrs
        for match in matches:
            attr_id, _match_id, start, end = match
            if end - start == 1 and indices[attr_id] in (0, -1):
                set_token_attrs(doc[start], attrs[attr_id])
            else:
                self.original(self.ruler, doc, [match])


def speed_up_attribute_ruler(nlp: Language) -> None:
    if "attribute_ruler" in nlp.pipe_names:
        ruler = nlp.get_pipe("attribute_ruler")
        ruler.match = FastAttributeMatch(ruler)
        ruler.set_annotations = FastSetAnnotations(ruler)


def speed_up_lemmatizer(nlp: Language) -> None:
    """Cache the rule lemmatizer's answers per (word, POS, morphology), the three things its rules read.

    spaCy's rule lemmatizer caches only the words that go through its suffix rules and works out the
    rest (base forms, punctuation, words of POS without rules) again at every token; a corpus asks
    for the same few thousand combinations millions of times. Same lemmas, bounded memory."""
    if "lemmatizer" not in nlp.pipe_names:
        return
    lemmatizer = nlp.get_pipe("lemmatizer")
    if getattr(lemmatizer, "mode", None) != "rule" or getattr(lemmatizer, "_radtool_cached", False):
        return
    rule_lemmatize = lemmatizer.rule_lemmatize
    cache: dict[tuple, list[str]] = {}

    def cached(token) -> list[str]:
        key = (token.orth, token.pos, token.morph.key)
        lemmas = cache.get(key)
        if lemmas is None:
            if len(cache) >= 200_000:
                cache.clear()
            lemmas = cache[key] = rule_lemmatize(token)
        return lemmas

    lemmatizer.lemmatize = cached
    lemmatizer._radtool_cached = True
