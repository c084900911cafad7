"""The radgraph backend's mapping, on a saved sample of the package's documented JSON output."""

import json
import sys
from pathlib import Path

from radtool.backends.radgraph import map_radgraph_report
from radtool.pipeline.graph import to_networkx
from radtool.schemas import load_schema

SAMPLE = json.loads((Path(__file__).resolve().parents[1] / "data" / "radgraph_sample.json").read_text())


def test_maps_entities_relations_and_labels():
    record = map_radgraph_report("r0", SAMPLE["0"], load_schema("chexpert"))
    labels = record["labels"]
    assert labels["Pleural Effusion"] == 0
    assert labels["Cardiomegaly"] == 1
    assert labels["Pneumonia"] == -1
    assert labels["Lung Opacity"] == 1
    assert labels["No Finding"] is None
    graph = to_networkx(record)
    assert graph.edges["5", "9"]["relation"] == "suggestive_of"
    assert graph.nodes["2"]["certainty"] == "definitely absent"


def test_maps_short_labels():
    record = map_radgraph_report("r1", SAMPLE["1"], load_schema("chestxray14"))
    assert record["labels"]["Pneumothorax"] == 1
    assert record["entities"]["3"]["label"] == "Observation::definitely present"


def test_default_pipeline_never_imports_radgraph(small_csv, tmp_path):
    from typer.testing import CliRunner

    from radtool.cli import app

    result = CliRunner().invoke(app, ["parse", str(small_csv), "--out", str(tmp_path / "o"), "--quiet"])
    assert result.exit_code == 0
    assert "radgraph" not in sys.modules


def test_backend_needs_a_local_model(small_csv, tmp_path):
    from typer.testing import CliRunner

    from radtool.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["parse", str(small_csv), "--out", str(tmp_path / "o"), "--backend", "radgraph"])
    assert result.exit_code == 2 and "--radgraph-model" in result.output
    result = runner.invoke(app, ["parse", str(small_csv), "--out", str(tmp_path / "o"), "--backend", "radgraph", "--radgraph-model", str(tmp_path)])
    assert result.exit_code == 2 and "no RadGraph model" in result.output
    assert not (tmp_path / "o" / "labels.csv").exists()


def test_model_folder_resolution(tmp_path):
    from radtool.backends.radgraph import resolve_model_dir

    model = tmp_path / "radgraph-xl"
    model.mkdir()
    (model / "config.json").write_text("{}")
    assert resolve_model_dir(str(model)) == (str(tmp_path), "radgraph-xl")
    assert resolve_model_dir(str(tmp_path)) == (str(tmp_path), "radgraph-xl")
