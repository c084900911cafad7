"""Start-up hygiene, each in a fresh interpreter: a core command imports neither torch (through thinc)
nor medspaCy's QuickUMLS/nltk/scikit-learn; library users and later imports still get the real things."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


def run_python(code: str, env: dict | None = None) -> str:
    import os

    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=full_env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_core_command_does_not_import_torch_or_quickumls(small_csv: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")  # the case that matters: torch installed beside spaCy
    out = run_python(
        f"""
        import sys
        sys.argv = ["radtool", "parse", {str(small_csv)!r}, "--out", {str(tmp_path / "out")!r}, "-q"]
        from radtool.cli import main
        try:
            main()
        except SystemExit as exc:
            assert not exc.code, exc.code
        heavy = sorted(m for m in ("torch", "quickumls", "nltk", "sklearn") if m in sys.modules)
        print("heavy:", heavy)
        """
    )
    assert "heavy: []" in out
    assert (tmp_path / "out" / "labels.csv").is_file()


def test_torch_is_hidden_from_thinc_only() -> None:
    pytest.importorskip("torch")
    out = run_python(
        """
        from radtool._lazy import hide_torch_from_thinc
        assert hide_torch_from_thinc()
        import spacy, sys, thinc.compat
        assert "torch" not in sys.modules and not thinc.compat.has_torch
        import torch  # anyone else still gets torch
        print("torch", torch.__version__)
        """
    )
    assert out.startswith("torch ")


def test_opt_out_and_library_users_keep_thincs_torch() -> None:
    pytest.importorskip("torch")
    code = """
        from radtool._lazy import hide_torch_from_thinc
        active = hide_torch_from_thinc()
        import thinc.compat
        print(active, thinc.compat.has_torch)
        """
    assert run_python(code, env={"RADTOOL_THINC_TORCH": "1"}).split() == ["False", "True"]
    # import radtool / radtool.load() never hide anything
    assert run_python("import radtool, thinc.compat; print(thinc.compat.has_torch)").strip() == "True"


def test_medspacy_context_without_quickumls_then_real_medspacy() -> None:
    out = run_python(
        """
        import sys
        from radtool._lazy import import_medspacy_context
        context = import_medspacy_context()
        import spacy
        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
        ctx = context.ConText(nlp, rules=None)
        ctx.add([context.ConTextRule("no", "NEGATED_EXISTENCE")])
        print("light:", not any(m in sys.modules for m in ("quickumls", "nltk", "sklearn")))
        import medspacy  # the real package __init__ still runs for whoever asks
        print("load:", callable(medspacy.load))
        import medspacy.util
        print("quickumls:", medspacy.util.spacy_component.SpacyQuickUMLS.__name__)
        """
    )
    assert "light: True" in out and "load: True" in out and "quickumls: SpacyQuickUMLS" in out


def test_version_flag() -> None:
    import radtool
    from typer.testing import CliRunner

    from radtool.cli import app

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"radtool {radtool.__version__}"
