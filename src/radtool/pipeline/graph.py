"""Plain-data records of parsed sentences and reports, in the RadGraph JSON layout, and their graphs.

A *sentence record* is what the corpus path memoizes per distinct sentence; a *report record* is
what ``graphs.jsonl`` holds per report::

    {"id": "CXR1", "text": "...tokens joined by spaces...",
     "sections": [{"name": "FINDINGS", "start_ix": 0, "end_ix": 41}],
     "entities": {"1": {"tokens": "effusion", "label": "Observation::definitely absent",
                        "start_ix": 7, "end_ix": 7, "relations": [["located_at", "2"]]}},
     "labels": {"Pleural Effusion": 0, ...}, "verbs": [...], "noun_phrases": [...]}

``start_ix``/``end_ix`` are inclusive token indices into ``text.split(" ")``, as in RadGraph.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from spacy.tokens import Doc, Span

from ..labeling import aggregate, entity_label, sentence_mentions
from ..schemas import Schema

if TYPE_CHECKING:  # networkx is imported when a graph is asked for, not with the pipeline
    import networkx as nx

_DETERMINERS = {"the", "a", "an", "this", "that", "these", "those", "any", "no", "some"}


def _token_table(doc: Doc) -> tuple[list[str], list[list[int]]]:
    """The words of a Doc and, per token, its POS, DEP, LEMMA, LOWER, IS_PUNCT and LIKE_NUM ids: read
    in one call instead of one Token object per attribute look-up (``span_record`` runs once per
    distinct sentence of a corpus)."""
    from spacy.attrs import DEP, IS_PUNCT, LEMMA, LIKE_NUM, LOWER, POS

    return [t.text for t in doc], doc.to_array([POS, DEP, LEMMA, LOWER, IS_PUNCT, LIKE_NUM]).tolist()


def span_record(span: Span | Doc, token_index: bool = False) -> dict:
    """Entities, relations, verbs and noun phrases of one sentence (or any span), indices local to it.

    ``token_index``: also the token indices of each noun phrase's words (``noun_phrase_ix``) and of
    each verb (``verb_ix``), for the corpus parser to put a sentence's own numbers back into them."""
    from spacy.symbols import VERB

    doc = span.doc if isinstance(span, Span) else span
    start, end = (span.start, span.end) if isinstance(span, Span) else (0, len(doc))
    ents = list(doc.ents)
    index = {}
    entities = []
    in_entity: set[int] = set()
    for i, ent in enumerate(ents):
        if ent.start >= start and ent.end <= end:
            index[i] = len(entities)
            in_entity.update(range(ent.start, ent.end))
            ext = ent._
            entities.append(
                {
                    "tokens": ent.text,
                    "type": ent.label_,
                    "kind": ext.kind,
                    "certainty": ext.certainty or "definitely present",
                    "concepts": list(ext.concepts),
                    "start_ix": ent.start - start,
                    "end_ix": ent.end - 1 - start,
                }
            )
    relations = [
        [rel, index[h], index[t]] for rel, h, t in (doc._.relations or []) if h in index and t in index
    ]
    words, table = _token_table(doc)
    strings = doc.vocab.strings
    not_verb_deps = {strings[d] for d in ("amod", "compound", "nmod") if d in strings}
    # Verbs of the prose: not participles used as adjectives ("calcified granuloma") and not lexicon
    # terms the small model mis-tags in telegraphic text ("Left lower lobe opacity." → leave).
    verb_ix = [
        i for i in range(start, end) if table[i][0] == VERB and table[i][1] not in not_verb_deps and i not in in_entity
    ]
    verbs = [strings[table[i][2]].lower() for i in verb_ix]
    noun_phrases = []
    phrase_ix = []
    if doc.has_annotation("DEP"):
        for chunk in doc.noun_chunks:
            if chunk.start >= start and chunk.end <= end:
                ix = [
                    i for i in range(chunk.start, chunk.end)
                    if not table[i][4] and not table[i][5] and strings[table[i][3]] not in _DETERMINERS
                    and strings[table[i][3]] != "xxxx"
                ]
                if ix:
                    noun_phrases.append(" ".join(strings[table[i][3]] for i in ix))
                    phrase_ix.append([i - start for i in ix])
    record = {"tokens": words[start:end], "entities": entities, "relations": relations, "verbs": verbs, "noun_phrases": noun_phrases}
    if token_index:
        record["verb_ix"] = [i - start for i in verb_ix]
        record["noun_phrase_ix"] = phrase_ix
    return record


def radgraph_label(entity: dict) -> str:
    return entity_label(entity["type"], entity["certainty"])


def assemble(report_id: str, sentences: Iterable[tuple[str, dict]], schema: Schema, sections: frozenset[str] | None = None) -> dict:
    """One report record from ``(section, sentence_record)`` pairs in order."""
    tokens: list[str] = []
    entities: dict[str, dict] = {}
    section_spans: list[dict] = []
    label_rows = []
    verbs: list[str] = []
    noun_phrases: list[str] = []
    for section, record in sentences:
        offset = len(tokens)
        if record["tokens"]:
            if section_spans and section_spans[-1]["name"] == section:
                section_spans[-1]["end_ix"] = offset + len(record["tokens"]) - 1
            else:
                section_spans.append({"name": section, "start_ix": offset, "end_ix": offset + len(record["tokens"]) - 1})
        tokens.extend(t.replace(" ", "_") for t in record["tokens"])
        ids = []
        for ent in record["entities"]:
            key = str(len(entities) + 1)
            ids.append(key)
            entities[key] = {
                # RadGraph's tokens: the words of ``text`` the indices point at ("Well - expanded"), so
                # that ``" ".join(text.split(" ")[start_ix:end_ix + 1]) == tokens`` always holds
                "tokens": " ".join(tokens[ent["start_ix"] + offset : ent["end_ix"] + offset + 1]),
                "label": radgraph_label(ent),
                "start_ix": ent["start_ix"] + offset,
                "end_ix": ent["end_ix"] + offset,
                "relations": [],
                "section": section,
                "concepts": ent["concepts"],
            }
        for rel, head, tail in record["relations"]:
            entities[ids[head]]["relations"].append([rel, ids[tail]])
        if "mentions" in record:  # memoized by the corpus parser
            values, abnormal = record["mentions"]
        else:
            values, abnormal = sentence_mentions(record["entities"], record["relations"], schema)
        label_rows.append((section, values, abnormal))
        verbs.extend(record["verbs"])
        noun_phrases.extend(record["noun_phrases"])
    return {
        "id": report_id,
        "text": " ".join(tokens),
        "sections": section_spans,
        "entities": entities,
        "labels": aggregate(label_rows, schema, sections),
        "verbs": verbs,
        "noun_phrases": noun_phrases,
        "data_source": None,
        "data_split": "inference",
    }


def to_networkx(record: dict) -> nx.DiGraph:
    """A report record as a DiGraph: a node per entity, an edge per relation (attribute ``relation``)."""
    import networkx as nx

    graph = nx.DiGraph(id=record.get("id"))
    for key, ent in record["entities"].items():
        kind, _, certainty = ent["label"].partition("::")
        graph.add_node(
            key, tokens=ent["tokens"], label=ent["label"], type=kind, certainty=certainty,
            start_ix=ent["start_ix"], end_ix=ent["end_ix"], section=ent.get("section", ""),
        )
    for key, ent in record["entities"].items():
        for rel, target in ent["relations"]:
            graph.add_edge(key, target, relation=rel)
    return graph


def doc_record(doc: Doc, schema: Schema, report_id: str = "", sections: frozenset[str] | None = None) -> dict:
    """The report record of a Doc processed by radtool's components up to ``radtool_relations``."""
    from .sections import report_sentences

    rows = [(sent._.radtool_section, span_record(sent)) for sent in report_sentences(doc)]
    return assemble(report_id, rows, schema, sections)


def _doc_graph(doc: Doc) -> nx.DiGraph | None:
    return None if doc._.radgraph is None else to_networkx(doc._.radgraph)


def install_extensions() -> None:
    """``doc._.radgraph``: the report record ``radtool_labels`` stored (read, never recomputed);
    ``doc._.graph``: that record as a networkx graph."""
    if not Doc.has_extension("radgraph"):
        Doc.set_extension("radgraph", default=None)
    if not Doc.has_extension("graph"):
        Doc.set_extension("graph", getter=_doc_graph)
