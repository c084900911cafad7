"""Sections and sentences of a report, and the ``radtool_sections`` component.

The splitting is plain Python over the text so that the corpus path (:mod:`radtool.parse`) can cut
reports into sentences before any model runs and memoize per sentence; the spaCy component uses the
same functions to set ``doc._.radtool_sections`` and the sentences (``doc.spans["radtool_sentences"]``,
and sentence starts when it runs before the parser).
"""


import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache

import numpy
from spacy.attrs import SENT_START
from spacy.language import Language
from spacy.tokens import Doc, Span

from ..labeling import UNSECTIONED, label_sections
from ..resources import section_rules
from ._data import SavesData

_ABBREVIATIONS = {"dr", "vs", "approx", "e.g", "i.e", "etc", "mr", "mrs", "ms", "no", "fig", "st", "cf", "resp", "incl"}


@dataclass(frozen=True)
class Section:
    name: str
    start: int  # first character of the section's body (after its title)
    end: int
    title_start: int | None = None  # where the title starts, if the text had one


def compile_titles(sections: dict[str, list[str]]) -> tuple[re.Pattern, dict[str, str]]:
    """The title regex and title → section name lookup for section rules (``{"FINDINGS": ["findings", ...]}``)."""
    lookup: dict[str, str] = {}
    for name, titles in sections.items():
        for title in titles:
            lookup[title.lower()] = name
    alternatives = "|".join(re.escape(t) for t in sorted(lookup, key=len, reverse=True))
    # A title sits at the start of the text, of a line, or after a sentence end, and ends with a colon.
    pattern = re.compile(rf"(?:^|(?<=\n)|(?<=[.!?]\s)|(?<=[.!?]\s\s))[ \t]*({alternatives})[ \t]*:", re.IGNORECASE)
    return pattern, lookup


@lru_cache(maxsize=1)
def _title_regex() -> tuple[re.Pattern, dict[str, str]]:
    return compile_titles(section_rules()["sections"])


def split_sections(text: str, titles: tuple[re.Pattern, dict[str, str]] | None = None) -> list[Section]:
    """Cut ``text`` at section titles (``FINDINGS:``, ``Impression:``...). Text before the first title is UNSECTIONED.

    ``titles`` is :func:`compile_titles` of other section rules; the shipped rules by default."""
    pattern, lookup = titles or _title_regex()
    sections: list[Section] = []
    matches = list(pattern.finditer(text))
    first = matches[0].start(1) if matches else len(text)
    if text[:first].strip():
        sections.append(Section(UNSECTIONED, 0, first))
    for i, m in enumerate(matches):
        end = matches[i + 1].start(1) if i + 1 < len(matches) else len(text)
        sections.append(Section(lookup[m.group(1).lower()], m.end(), end, m.start(1)))
    return sections


_SENT_END = re.compile(
    r"[.!?]+(?=\s+[\[(\"']?[A-Z0-9])"  # period, then space, then a capital or a digit
    r"|(?<=[a-z\]\)])\.(?=[A-Z][a-z])"  # "apex.There": missing space after the period
    r"|\n[ \t]*\n"  # blank line
    r"|(?<=\S)\s+(?=\d{1,2}[.)]\s+[A-Z])"  # before a numbered item: "... disease 2. Small ..."
    r"|;\s*(?=\d{1,2}[.)]\s)"
)
_NUMBER_MARK = re.compile(r"\s*\d{1,2}[.)]?\s*$")


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence spans ``(start, end)`` in character offsets of ``text`` within ``[start, end)``, stripped."""
    end = len(text) if end is None else end
    body = text[start:end]
    spans: list[tuple[int, int]] = []
    cursor = 0
    for m in _SENT_END.finditer(body):
        cut = m.end() if m.group(0).strip(".!?") == "" and m.group(0)[:1] in ".!?" else m.start() if m.group(0)[:1].isspace() else m.end()
        piece = body[cursor:cut]
        if m.group(0)[:1] in ".!?":
            # "1." opening a numbered item, or an abbreviation, is not a sentence end.
            if _NUMBER_MARK.fullmatch(piece):
                continue
            last_word = re.findall(r"([A-Za-z.]+)\.+$", piece)
            if last_word and last_word[0].lower().rstrip(".") in _ABBREVIATIONS and not piece.rstrip().endswith(" no."):
                continue
        if piece.strip():
            spans.append(_strip(body, cursor, cut, start))
            cursor = cut
    if body[cursor:].strip():
        spans.append(_strip(body, cursor, len(body), start))
    return spans


def _strip(body: str, s: int, e: int, offset: int) -> tuple[int, int]:
    while s < e and body[s].isspace():
        s += 1
    while e > s and body[e - 1].isspace():
        e -= 1
    return s + offset, e + offset


def segment(text: str) -> list[tuple[str, int, int]]:
    """``(section, start, end)`` for every sentence of a report, in order."""
    out = []
    for section in split_sections(text):
        for s, e in split_sentences(text, section.start, section.end):
            out.append((section.name, s, e))
    return out


SENTENCES = "radtool_sentences"  # the span group holding report sentences, labelled by section


def section_of(doc: Doc, char: int) -> str:
    """The section holding character ``char`` of a Doc processed by ``radtool_sections``."""
    sections = doc._.radtool_sections
    if not sections:
        return UNSECTIONED
    starts = [s["title_start"] if s["title_start"] is not None else s["start"] for s in sections]
    i = bisect_right(starts, char) - 1
    return sections[i]["name"] if i >= 0 else UNSECTIONED


def _span_section(span: Span) -> str:
    return section_of(span.doc, span.start_char)


def report_sentences(doc: Doc) -> list[Span]:
    """The report's sentences: those ``radtool_sections`` found (``doc.spans["radtool_sentences"]``),
    else the Doc's own sentence boundaries (a parser, senter or sentencizer), else the whole Doc."""
    if SENTENCES in doc.spans:
        return list(doc.spans[SENTENCES])
    if doc.has_annotation("SENT_START"):
        return list(doc.sents)
    return [doc[:]] if len(doc) else []


def install_extensions() -> None:
    """``doc._.radtool_sections`` and ``span._.radtool_section``: names of radtool's own, so that
    medspaCy's sectionizer (``doc._.sections``, ``doc._.section_titles``...) keeps working beside them."""
    if not Doc.has_extension("radtool_sections"):
        Doc.set_extension("radtool_sections", default=None)
    if not Span.has_extension("radtool_section"):
        Span.set_extension("radtool_section", getter=_span_section)


class ReportSections(SavesData):
    """Finds sections (``doc._.radtool_sections``) and report sentences (``doc.spans["radtool_sentences"]``).

    Works anywhere in a pipeline. Before the parser (``radtool.load()`` puts it first) it also sets the
    sentence starts, so the parser parses report sentences; on a Doc that is already parsed spaCy
    refuses sentence starts ([E043]), and the later radtool components read the span group instead.
    """

    def __init__(self, nlp: Language, name: str = "radtool_sections") -> None:
        self.name = name
        self.rules: dict = section_rules()  # shared, cached; replaced by from_disk
        self._titles: tuple[re.Pattern, dict[str, str]] | None = None
        install_extensions()

    @property
    def titles(self) -> tuple[re.Pattern, dict[str, str]]:
        if self._titles is None:
            self._titles = _title_regex() if self.rules is section_rules() else compile_titles(self.rules["sections"])
        return self._titles

    def __call__(self, doc: Doc) -> Doc:
        text = doc.text
        sections = split_sections(text, self.titles)
        doc._.radtool_sections = [
            {"name": s.name, "start": s.start, "end": s.end, "title_start": s.title_start} for s in sections
        ]
        starts = set()
        for section in sections:
            if section.title_start is not None:
                starts.add(section.title_start)
            for s, _e in split_sentences(text, section.start, section.end):
                starts.add(s)
        ordered = sorted(starts)
        flags = [False] * len(doc)
        j = 0
        for token in doc:
            while j < len(ordered) and ordered[j] < token.idx:
                j += 1
            if token.i == 0:
                flags[0] = True
            elif j < len(ordered) and ordered[j] <= token.idx < ordered[j] + max(len(token), 1):
                flags[token.i] = True
                j += 1
        first = [i for i, f in enumerate(flags) if f]
        spans = []
        for k, start in enumerate(first):
            end = first[k + 1] if k + 1 < len(first) else len(doc)
            spans.append(Span(doc, start, end, label=section_of(doc, doc[start].idx)))
        doc.spans[SENTENCES] = spans
        if not doc.has_annotation("DEP") and len(doc):
            # one array call: setting token.is_sent_start token by token re-checks the whole Doc each
            # time (quadratic on long reports, e.g. thousands of symbols separated by spaces)
            starts_array = numpy.asarray([1 if f else -1 for f in flags], dtype="int64").astype("uint64").reshape(-1, 1)
            doc.from_array([SENT_START], starts_array)
        return doc

    # ------------------------------------------------------------ serialization

    def _data(self) -> dict:
        return {"section_rules": self.rules}

    def _set_data(self, data: dict) -> "ReportSections":
        if "section_rules" in data:
            self.rules, self._titles = data["section_rules"], None
        install_extensions()
        return self


@Language.factory(
    "radtool_sections",
    assigns=["doc._.radtool_sections", "doc.spans", "token.is_sent_start"],
)
def make_sections(nlp: Language, name: str) -> ReportSections:
    return ReportSections(nlp, name)
