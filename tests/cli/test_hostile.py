"""The command line under hostile input: one line per error (usage errors included), exit 2, nothing
raw from the user's files on the terminal, truthful interruption messages, every row accounted for."""

import contextlib
import csv
import io
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from radtool.cli import app
from tests import hostile

runner = CliRunner()


def _run(args):
    """``radtool ARGS`` through the console script's entry point (usage errors included), in process."""
    from radtool.cli import run

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run([str(a) for a in args])
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def _one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "\x1b" not in lines[0] and "Traceback" not in lines[0]
    return lines[0]


# ---------------------------------------------------------------- item 1: silent row loss


def test_parse_refuses_an_unterminated_quote_instead_of_losing_rows(tmp_path):
    src = hostile.csv_unterminated_quote(tmp_path, n=1000, bad_row=10)
    result = runner.invoke(app, ["parse", str(src), "--out", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 2  # main: exit 0, 10 rows, problems: []
    assert "quote opened on line 11" in _one_line(result.output)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- items 6, 9, 15, 16: JSONL end to end


def test_parse_keeps_every_jsonl_record_surrogates_bom_and_gaps_included(tmp_path):
    lines = ['{"id": "a", "text": "No pleural effusion."}', "", '{"id": "b\\ud800", "text": "Mild \\udfff cardiomegaly."}',
             "not json", "", '{"id": " c ", "text": "Small right pneumothorax."}', '{"id": "=1+1"}']
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode() + b"\n")
    result = runner.invoke(app, ["parse", str(src), "--out", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 0, result.output
    with (tmp_path / "out" / "labels.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["id"] for r in rows] == ["a", "b\ufffd", "3", "c", "=1+1"]
    assert rows[0]["Pleural Effusion"] == "0" and rows[1]["Cardiomegaly"] == "1" and rows[3]["Pneumothorax"] == "1"
    import json

    problems = json.loads((tmp_path / "out" / "summary.json").read_text())["problems"]
    text = " | ".join(f"{p['row']}: {p['problem']}" for p in problems)
    assert "3: line 4 is not valid JSON" in text  # the file's own line number (blank lines counted)
    assert "stripped to 'c'" in text and "spreadsheet may run it as a formula" in text and "lone surrogates" in text
    assert "5: line 7 has no 'text' field" in text


# ---------------------------------------------------------------- item 8: evaluate


@pytest.mark.parametrize("gold_bytes,message", [
    (b"report_id,Pneumothorax\nr1,1\nr2,0\nr1,0\n", "duplicate id 'r1' on lines 2 and 4"),
    (b"report_id,Pneumothorax\nr1,2\nr2,0\n", "value '2' is not 1, 0, -1 or blank"),
    (b"report_id,Pneumothorax\nr1,0.7\nr2,0\n", "value '0.7'"),
    (b"report_id,Pneumothorax\nr1,1.9\nr2,0\n", "value '1.9'"),
    (b"report_id,Pneumothorax\nr1,-3\nr2,0\n", "value '-3'"),
    (b"report_id,Pneumothorax\nr1,inf\nr2,0\n", "value 'inf'"),
    (b"report_id,Pneumothorax\nr\xe9,1\nr2,0\n", "not UTF-8"),
    (bytes(range(256)) * 8, "binary"),
])
def test_evaluate_refuses_bad_gold_files_in_one_line(tmp_path, gold_bytes, message):
    pred = hostile.write_bytes(tmp_path, "pred.csv", b"report_id,Pneumothorax\nr1,1\nr2,0\n")
    gold = hostile.write_bytes(tmp_path, "gold.csv", gold_bytes)
    result = runner.invoke(app, ["evaluate", "--pred", str(pred), "--gold", str(gold)])
    assert result.exit_code == 2, result.output
    assert message in _one_line(result.output)


def test_evaluate_shows_markup_like_column_names_as_they_are(tmp_path):
    header = b"report_id,[/]Pneumothorax,[bold]x\n"
    pred = hostile.write_bytes(tmp_path, "pred.csv", header + b"r1,1,0\nr2,0,1\n")
    gold = hostile.write_bytes(tmp_path, "gold.csv", header + b"r1,1,1\nr2,0,1\n")
    result = runner.invoke(app, ["evaluate", "--pred", str(pred), "--gold", str(gold)])
    assert result.exit_code == 0, result.output
    assert "[/]Pneumothorax" in result.output and "[bold]x" in result.output


def test_evaluate_quiet(tmp_path):
    # issue 7 item 7: evaluate had no -q
    pred = hostile.write_bytes(tmp_path, "pred.csv", b"report_id,Pneumothorax\nr1,1\nr2,0\n")
    result = runner.invoke(app, ["evaluate", "--pred", str(pred), "--gold", str(pred), "-q", "-o", str(tmp_path / "s.json")])
    assert result.exit_code == 0 and result.output == "" and (tmp_path / "s.json").is_file()


# ---------------------------------------------------------------- item 13: terminal escapes


def test_escape_bytes_in_a_header_are_not_echoed_raw(tmp_path):
    src = hostile.csv_control_characters(tmp_path)
    result = runner.invoke(app, ["parse", str(src), "--text-col", "nosuch", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    line = _one_line(result.output)
    assert "nosuch" in line and "\x07" not in line


def test_escape_bytes_in_file_names_are_not_echoed_raw(tmp_path):
    result = runner.invoke(app, ["evaluate", "--pred", str(tmp_path / "\x1b[2Jgone.csv"), "--gold", str(tmp_path / "g.csv")])
    assert result.exit_code == 2
    assert "\\x1b[2Jgone.csv" in _one_line(result.output)


# ---------------------------------------------------------------- item 14: every error one line


@pytest.mark.parametrize("args,message", [
    (["parse"], "Missing argument"),
    (["parse", "x.csv", "-n", "0"], "'--n-process' / '-n'"),
    (["evaluate", "--pred"], "requires an argument"),
    (["parse", "x.csv", "--no-such-flag"], "No such option"),
    (["no-such-command"], "No such command"),
])
def test_usage_errors_are_one_line_exit_2(args, message):
    result = _run(args)
    assert result.returncode == 2, result.stderr
    assert message in _one_line(result.stderr) and result.stdout == ""


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_input_is_one_line(tmp_path):
    src = hostile.reports_csv(tmp_path)
    src.chmod(0)
    result = _run(["parse", src, "--out", tmp_path / "out"])
    assert result.returncode == 2 and "permission denied" in _one_line(result.stderr).lower()


def test_ctrl_c_while_starting_is_one_line():
    # the console script (argv[0] "radtool") installs its handler before its imports; Ctrl-C lands during them
    code = textwrap.dedent("""
        import os, signal, sys, time
        sys.argv[0] = "radtool"
        import radtool
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 130
    assert _one_line(proc.stderr) == "interrupted while starting; nothing was written"


def test_importing_radtool_elsewhere_leaves_ctrl_c_alone():
    # compared with what the interpreter started with: a job started in the background by a shell without job
    # control starts with Ctrl-C ignored, and radtool must leave that as it is too
    code = ("import signal; before = signal.getsignal(signal.SIGINT); import radtool, radtool.cli; "
            "print(signal.getsignal(signal.SIGINT) is before, before in (signal.default_int_handler, signal.SIG_IGN))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout.split()
    assert out == ["True", "True"]


def test_ctrl_c_message_says_what_is_on_disk(tmp_path, capsys):
    import typer

    from radtool.cli._common import handle_errors
    from radtool.io.writers import atomic_dir, write_json

    def interrupted_inside_atomic_dir():
        with atomic_dir(tmp_path / "out") as tmp:
            write_json(tmp / "a.json", {})
            raise KeyboardInterrupt

    def interrupted_after_a_file():
        write_json(tmp_path / "scores.json", {})
        raise KeyboardInterrupt

    notes = []
    for func in (interrupted_inside_atomic_dir, interrupted_after_a_file):
        with pytest.raises(typer.Exit) as exc:
            handle_errors(func)()
        assert exc.value.exit_code == 130
        notes.append(_one_line(capsys.readouterr().err))
    assert notes[0].endswith("out left as it was (outputs are swapped in only when all are written)")
    assert "1 output was already replaced, each complete" in notes[1] and "no partial output" not in notes[1]
