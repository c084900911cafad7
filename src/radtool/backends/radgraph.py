"""``--backend radgraph``: run the radgraph package's neural model and map its output into radtool records.

The radgraph package is optional (``pip install radtool[radgraph]``) and fetches its model from a
model hub unless given a local model directory; radtool only imports it when this backend is chosen.
:func:`map_radgraph_report` is the mapping from the package's documented JSON output::

    {"0": {"text": "...", "entities": {"1": {"tokens": "effusion", "label": "Observation::definitely absent",
                                             "start_ix": 5, "end_ix": 5, "relations": [["located_at", "2"]]}},
           "data_source": null, "data_split": "inference"}}

Older radgraph releases write labels as ``OBS-DP``/``OBS-U``/``OBS-DA``/``ANAT-DP``; both forms map.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..errors import UserError
from ..io.readers import Report
from ..labeling import ANATOMY, LONG_LABELS, PRESENT, UNSECTIONED, aggregate, normalize, sentence_mentions
from ..pipeline.entities import EntityTerms, entity_terms
from ..schemas import Schema

# Short labels of older radgraph releases → the long form (radtool.labeling holds RadGraph's vocabulary)
SHORT_LABELS = {**LONG_LABELS, "ANAT": f"{ANATOMY}::{PRESENT}"}


def _full_label(label: str) -> str:
    label = SHORT_LABELS.get(label, label)
    if "::" not in label:
        raise ValueError(f"unknown RadGraph entity label {label!r}")
    return label


def map_radgraph_report(report_id: str, output: dict, schema: Schema, terms: EntityTerms | None = None) -> dict:
    """One radtool report record from one radgraph output entry (the value under "0", "1", ...)."""
    terms = terms or entity_terms(schema)
    keys = list(output.get("entities", {}))
    index = {k: i for i, k in enumerate(keys)}
    plain, entities = [], {}
    for key in keys:
        ent = output["entities"][key]
        label = _full_label(ent["label"])
        etype, _, certainty = label.partition("::")
        text = normalize(ent["tokens"])
        kind = terms.kind.get(text, "anatomy" if etype == ANATOMY else "finding")
        plain.append({"tokens": ent["tokens"], "type": etype, "kind": kind, "certainty": certainty,
                      "concepts": sorted(terms.concepts.get(text, ()))})
        entities[key] = {
            "tokens": ent["tokens"], "label": label, "start_ix": int(ent["start_ix"]), "end_ix": int(ent["end_ix"]),
            "relations": [[rel, str(t)] for rel, t in ent.get("relations", [])], "section": UNSECTIONED,
            "concepts": plain[-1]["concepts"],
        }
    relations = [
        (rel, index[key], index[str(target)])
        for key in keys
        for rel, target in output["entities"][key].get("relations", [])
        if str(target) in index
    ]
    values, abnormal = sentence_mentions(plain, relations, schema)
    return {
        "id": report_id,
        "text": output.get("text", ""),
        "sections": [],
        "entities": entities,
        "labels": aggregate([(UNSECTIONED, values, abnormal)] if output.get("text", "").strip() else [], schema),
        "verbs": [],
        "noun_phrases": [],
        "data_source": output.get("data_source"),
        "data_split": output.get("data_split", "inference"),
    }


MODEL_TYPES = ("radgraph", "radgraph-xl", "modern-radgraph-xl", "echograph")


def resolve_model_dir(model: str | None) -> tuple[str, str]:
    """``(model_cache_dir, model_type)`` for the radgraph package from ``--radgraph-model``.

    Accepts the unpacked model folder itself (``.../radgraph-xl`` holding ``config.json``) or the cache
    folder above it. radtool never lets the package download: a missing model is a user error.
    """
    if not model:
        raise UserError("--backend radgraph needs --radgraph-model DIR (the unpacked RadGraph model folder); radtool does not download models")
    path = os.path.abspath(model)
    if os.path.isfile(os.path.join(path, "config.json")):
        model_type = os.path.basename(path).lower()
        if model_type not in MODEL_TYPES:
            raise UserError(f"RadGraph model folder must be named one of {', '.join(MODEL_TYPES)}, not {model_type!r}")
        return os.path.dirname(path), model_type
    for model_type in MODEL_TYPES:
        candidate = os.path.join(path, model_type)
        if os.path.isfile(os.path.join(candidate, "config.json")):
            return path, model_type
    raise UserError(f"no RadGraph model (a folder with config.json named {' / '.join(MODEL_TYPES)}) found in {model}")


class RadGraphBackend:
    def __init__(self, model: str | None, schema: Schema) -> None:
        cache_dir, model_type = resolve_model_dir(model)
        try:
            from radgraph import RadGraph  # type: ignore[import-not-found]
        except ImportError as exc:
            raise UserError("--backend radgraph needs the radgraph package: pip install 'radtool[radgraph]'") from exc
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the BERT tokenizer must come from the local cache
        try:
            self.model = RadGraph(model_type=model_type, model_cache_dir=cache_dir)
        except Exception as exc:  # the package raises many kinds when files are missing
            raise UserError(f"could not load the RadGraph model {model_type} from {cache_dir}: {exc}") from exc
        self.schema = schema
        self.terms = entity_terms(schema)

    def parse(self, reports: Sequence[Report]) -> list[dict]:
        texts = [r.text for r in reports]
        output = self.model(texts)
        records = []
        for i, report in enumerate(reports):
            record = map_radgraph_report(report.id, output.get(str(i), {"text": "", "entities": {}}), self.schema, self.terms)
            record["row"] = report.row
            records.append(record)
        return records
