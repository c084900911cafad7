import pytest
from typer.testing import CliRunner

from radtool.cli import app
from tests.conftest import read_csv

from ._corpus import parse_folder, write_reports

runner = CliRunner()


@pytest.fixture(scope="module")
def parsed(tmp_path_factory):
    return parse_folder(tmp_path_factory.mktemp("stats"))


_rows = read_csv


def test_stats_on_parse_folder_writes_tables_and_charts(parsed, tmp_path):
    result = runner.invoke(app, ["stats", str(parsed), "--out", str(tmp_path), "--top", "5"])
    assert result.exit_code == 0, result.output
    for name in ("verbs.csv", "entities.csv", "noun_phrases.csv", "prevalence.csv", "top_verbs.png", "top_entities.png", "prevalence.png"):
        assert (tmp_path / name).stat().st_size > 0
    prev = {r["observation"]: r for r in _rows(tmp_path / "prevalence.csv")}
    assert sum(int(prev["Effusion"][k]) for k in ("present", "absent", "uncertain", "not_mentioned")) == 6
    assert int(prev["Effusion"]["present"]) == 3 and int(prev["Effusion"]["absent"]) == 2
    ents = _rows(tmp_path / "entities.csv")
    assert {"entity", "type", "certainty", "count"} <= set(ents[0])
    assert "verbs" in result.output and "label prevalence" in result.output


def test_stats_parses_a_reports_file(tmp_path):
    reports = write_reports(tmp_path)
    result = runner.invoke(app, ["stats", str(reports), "--out", str(tmp_path / "out"), "-q", "--schema", "chestxray14"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "prevalence.csv").exists()


def test_stats_missing_file_is_a_user_error(tmp_path):
    result = runner.invoke(app, ["stats", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    # one message (rich may wrap it at the test terminal's width), no traceback
    assert result.output.strip().startswith("error: input not found") and "Traceback" not in result.output


def test_stats_missing_column_is_a_user_error(tmp_path):
    reports = write_reports(tmp_path)
    result = runner.invoke(app, ["stats", str(reports), "--text-col", "report_text", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "report_text" in result.output and "Traceback" not in result.output


def test_stats_of_a_reports_file_equal_those_of_its_parse_folder(tmp_path):
    """A reports file is parsed as it streams (read again for each pass): the same tables as from the
    parse folder of the same file."""
    reports = write_reports(tmp_path)
    assert runner.invoke(app, ["parse", str(reports), "--out", str(tmp_path / "p"), "-q", "--schema", "chestxray14"]).exit_code == 0
    for src, out in ((reports, "a"), (tmp_path / "p", "b")):
        result = runner.invoke(app, ["stats", str(src), "--out", str(tmp_path / out), "-q", "--schema", "chestxray14"])
        assert result.exit_code == 0, result.output
    for name in ("verbs.csv", "entities.csv", "noun_phrases.csv", "prevalence.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_stats_of_a_csv_with_a_broken_quote_late_fails_before_any_output(tmp_path):
    path = tmp_path / "broken.csv"
    rows = "".join(f"r{i},No pneumothorax number {i}.\n" for i in range(3000))
    path.write_text("report_id,impression\n" + rows + 'r-last,"Effusion, never closed\n', encoding="utf-8")
    result = runner.invoke(app, ["stats", str(path), "--out", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 2 and "quote" in result.output.lower(), result.output
    assert not (tmp_path / "out").exists()
