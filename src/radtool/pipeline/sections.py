"""Sections and sentences of a report, and the ``radtool_sections`` component.

The splitting is plain Python over the text so that the corpus path (:mod:`radtool.parse`) can cut
reports into sentences before any model runs and memoize per sentence; the spaCy component uses the
same functions to set ``doc._.sections`` and sentence starts before the parser.
"""


import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache

from spacy.language import Language
from spacy.tokens import Doc, Span

from ..labeling import UNSECTIONED, label_sections
from ..resources import section_rules

_ABBREVIATIONS = {"dr", "vs", "approx", "e.g", "i.e", "etc", "mr", "mrs", "ms", "no", "fig", "st", "cf", "resp", "incl"}


@dataclass(frozen=True)
class Section:
    name: str
    start: int  # first character of the section's body (after its title)
    end: int
    title_start: int | None = None  # where the title starts, if the text had one


@lru_cache(maxsize=1)
def _title_regex() -> tuple[re.Pattern, dict[str, str]]:
    rules = section_rules()["sections"]
    lookup: dict[str, str] = {}
    for name, titles in rules.items():
        for title in titles:
            lookup[title.lower()] = name
    alternatives = "|".join(re.escape(t) for t in sorted(lookup, key=len, reverse=True))
    # A title sits at the start of the text, of a line, or after a sentence end, and ends with a colon.
    pattern = re.compile(rf"(?:^|(?<=\n)|(?<=[.!?]\s)|(?<=[.!?]\s\s))[ \t]*({alternatives})[ \t]*:", re.IGNORECASE)
    return pattern, lookup


def split_sections(text: str) -> list[Section]:
    """Cut ``text`` at section titles (``FINDINGS:``, ``Impression:``...). Text before the first title is UNSECTIONED."""
    pattern, lookup = _title_regex()
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


def section_of(doc: Doc, char: int) -> str:
    sections = doc._.sections
    if not sections:
        return UNSECTIONED
    starts = [s["title_start"] if s["title_start"] is not None else s["start"] for s in sections]
    i = bisect_right(starts, char) - 1
    return sections[i]["name"] if i >= 0 else UNSECTIONED


def _span_section(span: Span) -> str:
    return section_of(span.doc, span.start_char)


def install_extensions() -> None:
    if not Doc.has_extension("sections"):
        Doc.set_extension("sections", default=None)
    if not Span.has_extension("section"):
        Span.set_extension("section", getter=_span_section)


class ReportSections:
    """Sets ``doc._.sections`` and sentence starts from section titles and report-aware sentence rules."""

    def __init__(self, nlp: Language, name: str = "radtool_sections") -> None:
        self.name = name
        install_extensions()

    def __call__(self, doc: Doc) -> Doc:
        text = doc.text
        sections = split_sections(text)
        doc._.sections = [
            {"name": s.name, "start": s.start, "end": s.end, "title_start": s.title_start} for s in sections
        ]
        starts = set()
        for section in sections:
            if section.title_start is not None:
                starts.add(section.title_start)
            for s, _e in split_sentences(text, section.start, section.end):
                starts.add(s)
        ordered = sorted(starts)
        j = 0
        for token in doc:
            while j < len(ordered) and ordered[j] < token.idx:
                j += 1
            if token.i == 0:
                token.is_sent_start = True
            elif j < len(ordered) and ordered[j] <= token.idx < ordered[j] + max(len(token), 1):
                token.is_sent_start = True
                j += 1
            else:
                token.is_sent_start = False
        return doc


@Language.factory("radtool_sections", assigns=["doc._.sections", "token.is_sent_start"])
def make_sections(nlp: Language, name: str) -> ReportSections:
    return ReportSections(nlp, name)
