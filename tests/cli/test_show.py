import pytest
from typer.testing import CliRunner

from radtool.cli import app

from ._corpus import parse_folder

runner = CliRunner()


@pytest.fixture(scope="module")
def parsed(tmp_path_factory):
    return parse_folder(tmp_path_factory.mktemp("show"))


def test_show_text_writes_html_and_png(tmp_path):
    result = runner.invoke(app, ["show", "--text", "Small left pleural effusion. Possible right lower lobe pneumonia.", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "report.html").read_text()
    assert "effusion" in page and "OBS-U" in page and "located_at" in page
    assert (tmp_path / "graph.png").read_bytes()[:4] == b"\x89PNG"


def test_show_id_from_parse_folder(parsed, tmp_path):
    result = runner.invoke(app, ["show", "--id", "r5", "--parse-dir", str(parsed), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "consolidation" in (tmp_path / "report.html").read_text()


@pytest.mark.parametrize("args,needle", [([], "--text"), (["--id", "r1"], "--parse-dir"), (["--text", "x", "--id", "r1"], "either")])
def test_show_needs_exactly_one_source(tmp_path, args, needle):
    result = runner.invoke(app, ["show", *args, "--out", str(tmp_path)])
    assert result.exit_code == 2 and needle in result.output


def test_show_unknown_id_is_a_user_error(parsed, tmp_path):
    result = runner.invoke(app, ["show", "--id", "nope", "--parse-dir", str(parsed), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "nope" in result.output
