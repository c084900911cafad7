"""The ``radtool_labels`` component: per-observation labels (1 / 0 / -1 / blank) on ``doc._.labels``.

The rules themselves (``better``, ``sentence_mentions``, ``aggregate``, ``VALUES``) are plain data in
:mod:`radtool.labeling`; they are re-exported here under their old names.
"""

from spacy.language import Language
from spacy.tokens import Doc

from ..labeling import (  # noqa: F401  (old import path)
    RANK,
    VALUES,
    _abnormal_modifiers,
    _explained,
    _RANK,
    abnormal_modifiers,
    aggregate,
    better,
    sentence_mentions,
)
from ..schemas import load_schema
from .graph import span_record
from .sections import UNSECTIONED, label_sections


def install_extensions() -> None:
    if not Doc.has_extension("labels"):
        Doc.set_extension("labels", default=None)


class ReportLabels:
    def __init__(self, nlp: Language, name: str = "radtool_labels", schema: str = "chexpert", sections: list[str] | None = None) -> None:
        self.name = name
        self.schema_ref = schema
        self.schema = load_schema(schema)
        self.sections = frozenset(sections) if sections else label_sections()
        install_extensions()

    def __call__(self, doc: Doc) -> Doc:
        doc.user_data["radtool_schema"] = self.schema_ref
        rows = []
        for sent in doc.sents:
            record = span_record(sent)
            values, abnormal = sentence_mentions(record["entities"], record["relations"], self.schema)
            rows.append((sent._.section if doc._.sections is not None else UNSECTIONED, values, abnormal))
        doc._.labels = aggregate(rows, self.schema, self.sections)
        return doc


@Language.factory(
    "radtool_labels",
    default_config={"label_schema": "chexpert", "sections": None},
    assigns=["doc._.labels"],
    requires=["doc.ents", "doc._.relations"],
)
def make_labels(nlp: Language, name: str, label_schema: str, sections: list[str] | None) -> ReportLabels:
    return ReportLabels(nlp, name, label_schema, sections)
