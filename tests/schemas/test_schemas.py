import json
import subprocess
import sys

import pytest

from radtool.errors import UserError
from radtool.schemas import load_schema


@pytest.mark.parametrize("name,n", [("chexpert", 13), ("chestxray14", 14)])
def test_shipped_schemas_load_from_package(name, n):
    schema = load_schema(name)
    assert len(schema.observations) == n
    assert "No Finding" in schema.columns


def test_chexpert_column_order():
    cols = load_schema("chexpert").columns
    assert cols[0] == "No Finding" and cols[-1] == "Support Devices"


def test_user_schema_without_code(tmp_path, nlp):
    import radtool

    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"name": "mine", "observations": {"Granuloma": {"mentions": ["granuloma", "calcified granuloma"]}}}))
    nlp_mine = radtool.load(schema=str(path))
    labels = nlp_mine("Calcified granuloma in the right upper lobe.")._.labels
    assert labels["Granuloma"] == 1


@pytest.mark.parametrize(
    "content,message",
    [("{", "not valid JSON"), ('{"observations": {}}', "non-empty"), ('{"observations": {"A": {"mentions": [1]}}}', "list of non-empty strings")],
)
def test_bad_schema_is_a_user_error(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        load_schema(str(path))


def test_lexicon_and_rules_are_package_data():
    from radtool.resources import context_rules, lexicon, section_rules

    assert "pleura" in lexicon()["anatomy"]
    assert any(r["literal"] == "cannot be excluded" for r in context_rules())
    assert "IMPRESSION" in section_rules()["sections"]


def test_factories_registered_as_entry_points():
    # a fresh interpreter that never imports radtool can still add the components by name
    code = (
        "import spacy; nlp = spacy.blank('en'); nlp.add_pipe('radtool_sections'); "
        "doc = nlp('FINDINGS: No effusion. IMPRESSION: Normal.'); print(len(list(doc.sents)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "4"  # each title is a sentence of its own
