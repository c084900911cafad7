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
    label_sections,
    sentence_mentions,
)
from ..schemas import Schema, load_schema
from ._data import SavesData, schema_from_data, schema_to_dict
from .graph import assemble, install_extensions as install_graph_extensions, span_record
from .sections import report_sentences


def install_extensions() -> None:
    """``doc._.labels``, ``doc._.radgraph`` and ``doc._.graph`` (set up by the factory, so a pipeline
    loaded with plain ``spacy.load`` has them)."""
    if not Doc.has_extension("labels"):
        Doc.set_extension("labels", default=None)
    install_graph_extensions()


class ReportLabels(SavesData):
    """Labels a report once: stores its RadGraph record on ``doc._.radgraph`` and its labels on
    ``doc._.labels``; ``doc._.graph`` is read from the stored record.

    The schema is read on first use (then kept on the component); ``to_disk`` saves it, so a pipeline
    built with a schema file loads where that file does not exist.
    """

    def __init__(self, nlp: Language, name: str = "radtool_labels", schema: str | Schema = "chexpert", sections: list[str] | None = None) -> None:
        self.name = name
        self.schema_ref = schema
        self._schema: Schema | None = schema if isinstance(schema, Schema) else None
        self.sections = frozenset(sections) if sections else label_sections()
        install_extensions()

    @property
    def schema(self) -> Schema:
        if self._schema is None:
            self._schema = load_schema(self.schema_ref)
        return self._schema

    def __call__(self, doc: Doc) -> Doc:
        rows = [(sent._.radtool_section, span_record(sent)) for sent in report_sentences(doc)]
        record = assemble("", rows, self.schema, self.sections)
        doc._.radgraph = record
        doc._.labels = record["labels"]
        return doc

    # ------------------------------------------------------------ serialization

    def _data(self) -> dict:
        return {"schema": schema_to_dict(self.schema)}

    def _set_data(self, data: dict) -> "ReportLabels":
        if "schema" in data:
            self._schema = schema_from_data(data["schema"])
        install_extensions()
        return self



@Language.factory(
    "radtool_labels",
    default_config={"label_schema": "chexpert", "sections": None},
    assigns=["doc._.labels", "doc._.radgraph"],
    requires=["doc.ents", "span._.certainty", "doc._.relations", "doc._.radtool_sections"],
)
def make_labels(nlp: Language, name: str, label_schema: str, sections: list[str] | None) -> ReportLabels:
    return ReportLabels(nlp, name, label_schema, sections)
