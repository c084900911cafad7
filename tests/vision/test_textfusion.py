"""Report + image fusion (``classify train --text PARSE_DIR``): text features, the leakage guard,
empty-text inference, the checkpoint round trip and DDP parity.

Reports are parsed by the real ``radtool parse`` (once per session); images are the synthetic
radiographs of ``synthetic.py``; models are tiny timm archs at 48 px on CPU.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from synthetic import radiograph

from radtool_vision.errors import UserError
from radtool_vision.text import (
    REQUEST_SECTIONS,
    TextEncoder,
    TextEncoderConfig,
    check_sections,
    encode_parse_dir,
    iter_records,
    parse_sections_option,
)

CLASSES = ["Pleural Effusion", "Pneumothorax"]
REQUEST = {"Pleural Effusion": "Eval pleural effusion.", "Pneumothorax": "Rule out pneumothorax."}
FOUND = {"Pleural Effusion": ("Small left pleural effusion.", "No pleural effusion."),
         "Pneumothorax": ("Right apical pneumothorax.", "No pneumothorax.")}


def _radtool() -> str:
    return str(Path(sys.executable).parent / "radtool")


@pytest.fixture(scope="session")
def fusion_data(tmp_path_factory):
    """60 reports (indication/findings/impression) parsed by radtool, one 48 px image each, an image index."""
    from PIL import Image

    root = tmp_path_factory.mktemp("fusion")
    rng = np.random.default_rng(0)
    rows, index = [], []
    for i in range(60):
        present = {c: bool(rng.random() < 0.4) for c in CLASSES}
        request = " ".join(REQUEST[c] for c in CLASSES if present[c] and rng.random() < 0.7) or "Chest pain."
        if i % 10 == 0:
            request = ""  # no request at all: the text vector is empty
        findings = " ".join(FOUND[c][0 if present[c] else 1] for c in CLASSES)
        impression = " ".join(c + "." for c in CLASSES if present[c]) or "No acute disease."
        rid = f"R{i:03d}"
        rows.append([rid, request, findings, impression])
        rel = f"img/{rid}.png"
        (root / rel).parent.mkdir(exist_ok=True)
        Image.fromarray(radiograph(present, 48, rng)).save(root / rel)
        index.append([rel, rid, rid])
    with open(root / "reports.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["report_id", "indication", "findings", "impression"], *rows])
    with open(root / "index.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["Path", "report_id", "patient_id"], *index])
    proc = subprocess.run([_radtool(), "parse", str(root / "reports.csv"), "--text-col", "indication",
                           "--text-col", "findings", "--text-col", "impression", "--out", str(root / "parsed"), "-q"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return root


def _train_args(root: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--plugin", "convnext", "--arch", "test_convnext", "--data", str(root / "parsed" / "labels.csv"),
            "--image-index", str(root / "index.csv"), "--image-root", str(root), "--classes", ",".join(CLASSES),
            "--image-size", "48", "--epochs", "2", "--batch-size", "16", "--lr", "3e-3", "--no-pretrained",
            "--device", "cpu", "--workers", "1", "--text", str(root / "parsed"), "--out", str(out), *extra]


@pytest.fixture(scope="session")
def fusion_run(fusion_data, tmp_path_factory):
    from radtool_vision.cli import app

    out = tmp_path_factory.mktemp("fusion_runs") / "run"
    result = CliRunner().invoke(app, [*_train_args(fusion_data, out), "--quiet"])
    assert result.exit_code == 0, result.output
    return out


# -- text features ----------------------------------------------------------------------------


def _record(fusion_data, rid="R001"):
    return next(r for r in iter_records(fusion_data / "parsed") if r["id"] == rid)


def test_default_sections_are_the_request():
    assert parse_sections_option(None) == REQUEST_SECTIONS
    assert parse_sections_option("indication, clinical_information") == ("INDICATION", "CLINICAL INFORMATION")
    assert TextEncoderConfig().sections == REQUEST_SECTIONS


def test_features_come_only_from_the_chosen_sections(fusion_data):
    records = list(iter_records(fusion_data / "parsed"))
    request, findings = TextEncoder(), TextEncoder(TextEncoderConfig(sections=("FINDINGS",)))
    for record in records:
        req = request.features(record)
        # every finding sentence names its finding ("No pneumothorax."); the request only sometimes
        assert "sec:FINDINGS" not in req and "sec:IMPRESSION" not in req
        assert not any(k.startswith("ent:") and "definitely absent" in k for k in req), req
        assert any("pneumothorax" in k for k in findings.features(record))
    empty = next(r for r in records if r["id"] == "R000")  # no indication at all
    assert not request.features(empty)
    assert not request.encode(empty).any()
    with_request = [r for r in records if "eval" in r["text"].lower()]
    assert with_request and all("con:Pleural Effusion:definitely present" in request.features(r) or
                                "w:effusion" in request.features(r) for r in with_request)


def test_vectors_are_unit_length_and_identical_in_another_process(fusion_data):
    enc = TextEncoder()
    rows = encode_parse_dir(fusion_data / "parsed", enc, ["R001", "R002", "missing", "R001"])
    dense = rows.dense(np.arange(4))
    assert rows.found.tolist() == [True, True, False, True]
    assert np.allclose(dense[0], dense[3]) and not dense[2].any()
    assert np.linalg.norm(dense[0]) == pytest.approx(1.0, abs=1e-5)
    code = ("import sys, numpy as np; from radtool_vision.text import TextEncoder, encode_parse_dir; "
            f"r = encode_parse_dir({str(fusion_data / 'parsed')!r}, TextEncoder(), ['R001', 'R002']); "
            "np.save(sys.argv[1], r.dense(np.arange(2)))")
    target = fusion_data / "other_process.npy"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # Python's own hash() would differ; ours must not
    subprocess.run([sys.executable, "-c", code, str(target)], check=True, env=env, timeout=120)
    assert np.array_equal(np.load(target), dense[:2])


def test_label_sections_refused_without_the_flag_and_warned_with_it():
    assert check_sections(REQUEST_SECTIONS, allow_label_sections=False) is None
    with pytest.raises(UserError, match="allow-label-sections"):
        check_sections(("INDICATION", "FINDINGS"), allow_label_sections=False)
    warning = check_sections(("IMPRESSION",), allow_label_sections=True)
    assert warning.startswith("warning:") and "IMPRESSION" in warning and "\n" not in warning


# -- the joint model ------------------------------------------------------------------------


def test_model_without_text_equals_zero_text_and_text_moves_it():
    import timm
    import torch

    from radtool_vision.textfusion import TextFusionModel

    torch.manual_seed(0)
    model = TextFusionModel(timm.create_model("test_convnext", num_classes=3), 64, 2, hidden=8).eval()
    x, text = torch.randn(2, 3, 48, 48), torch.randn(2, 64)
    with torch.no_grad():
        assert torch.equal(model(x), model(x, torch.zeros(2, 64)))
        assert not torch.allclose(model(x), model(x, text))
    assert not any("fc" in n for n, _ in model.image_model.named_parameters() if "head.fc" in n)


def test_cli_refuses_findings_without_flag(fusion_data, tmp_path):
    from radtool_vision.cli import app

    result = CliRunner().invoke(app, [*_train_args(fusion_data, tmp_path / "r"), "--text-sections", "FINDINGS"])
    assert result.exit_code == 2
    assert "--allow-label-sections" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_cli_warns_and_records_label_sections(fusion_data, tmp_path):
    from radtool_vision.cli import app

    out = tmp_path / "leaky"
    result = CliRunner().invoke(app, [*_train_args(fusion_data, out), "--text-sections", "FINDINGS",
                                      "--allow-label-sections", "--quiet", "--epochs", "1"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "FINDINGS" in warnings[0]
    text = json.loads((out / "config.json").read_text())["text"]
    assert text["encoder"]["sections"] == ["FINDINGS"]
    assert text["encoder"]["label_sections_used"] == ["FINDINGS"]


def test_fusion_run_records_the_safe_default(fusion_run):
    config = json.loads((fusion_run / "config.json").read_text())
    assert config["text"]["encoder"]["sections"] == list(REQUEST_SECTIONS)
    assert config["text"]["encoder"]["label_sections_used"] == []
    assert config["text"]["label_section_warning"] is None
    assert config["text"]["n_with_text"]["train"] > 0


def test_checkpoint_round_trip_of_a_fusion_run(fusion_run, fusion_data):
    import torch

    from radtool_vision.checkpoint import load_checkpoint
    from radtool_vision.inference import load_run
    from radtool_vision.textfusion import TextFusionModel, TextFusionSpec

    loaded = load_run(fusion_run, "cpu")
    assert isinstance(loaded.model, TextFusionModel)
    config = json.loads((fusion_run / "config.json").read_text())
    assert loaded.meta["text"] == {k: config["text"][k] for k in loaded.meta["text"]}
    spec = TextFusionSpec.from_dict(loaded.meta["text"])
    assert spec.encoder.sections == REQUEST_SECTIONS and spec.id_column == "report_id"
    state = load_checkpoint(fusion_run / "best.pt")
    own = loaded.model.state_dict()
    assert set(own) == set(state["model"]) and all(torch.equal(own[k], state["model"][k]) for k in own)
    # the text branch is in the weights and used: a report's vector changes the output
    enc_rows = encode_parse_dir(fusion_data / "parsed", TextEncoder(spec.encoder), ["R001"])
    x = torch.randn(1, 3, 48, 48)
    with torch.no_grad():
        assert not torch.allclose(loaded.model(x), loaded.model(x, torch.from_numpy(enc_rows.dense([0]))))


def test_predict_with_images_alone_and_with_text(fusion_run, fusion_data, tmp_path):
    from radtool_vision.cli import app

    runner = CliRunner()
    alone = runner.invoke(app, ["predict", "--run", str(fusion_run), "--data", str(fusion_data / "img"),
                                "--out", str(tmp_path / "alone.csv"), "--device", "cpu", "--workers", "0", "--quiet"])
    assert alone.exit_code == 0, alone.output
    with_text = runner.invoke(app, ["predict", "--run", str(fusion_run), "--data", str(fusion_data / "index.csv"),
                                    "--text", str(fusion_data / "parsed"), "--out", str(tmp_path / "text.csv"),
                                    "--device", "cpu", "--workers", "0", "--quiet"])
    assert with_text.exit_code == 0, with_text.output
    a = {r["Path"].split("/")[-1]: r for r in csv.DictReader(open(tmp_path / "alone.csv"))}
    t = {r["Path"].split("/")[-1]: r for r in csv.DictReader(open(tmp_path / "text.csv"))}
    assert len(a) == len(t) == 60
    assert all(r["error"] == "" and r[CLASSES[0]] != "" for r in a.values())
    # R000 has no request: same probability with or without --text; reports with a request differ
    assert float(a["R000.png"][CLASSES[0]]) == pytest.approx(float(t["R000.png"][CLASSES[0]]), abs=1e-6)
    assert any(abs(float(a[k][CLASSES[0]]) - float(t[k][CLASSES[0]])) > 1e-4 for k in a)


def test_evaluate_and_explain_a_fusion_run(fusion_run, fusion_data, tmp_path):
    from radtool_vision.cli import app

    runner = CliRunner()
    ev = runner.invoke(app, ["evaluate", "--run", str(fusion_run), "--data", str(fusion_data / "parsed" / "labels.csv"),
                             "--image-index", str(fusion_data / "index.csv"), "--image-root", str(fusion_data),
                             "--text", str(fusion_data / "parsed"), "--out", str(tmp_path / "ev"),
                             "--device", "cpu", "--workers", "0", "--quiet"])
    assert ev.exit_code == 0, ev.output
    report = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert report["n_images"] == 60 and report["text"]["n_with_text"] == 60 and report["text"]["n_nonempty"] == 54
    ex = runner.invoke(app, ["explain", "--run", str(fusion_run), "--image", str(fusion_data / "img" / "R001.png"),
                             "--text", str(fusion_data / "parsed"), "--report-id", "R001",
                             "--out", str(tmp_path / "cams"), "--device", "cpu", "--quiet"])
    assert ex.exit_code == 0, ex.output
    assert len(list((tmp_path / "cams").glob("R001__*.png"))) == len(CLASSES)
    rows = list(csv.DictReader(open(tmp_path / "cams" / "text_features.csv")))
    assert {r["class"] for r in rows} == set(CLASSES)
    assert any(r["feature"].startswith(("w:", "ent:", "con:", "b:", "sec:")) for r in rows)


@pytest.mark.slow
def test_ddp_fusion_matches_single_process(fusion_data, tmp_path):
    """Two gloo processes give the fusion run the same validation metrics as one (text dropout included)."""
    args = [a for a in _train_args(fusion_data, tmp_path / "x") if a not in ("--out", str(tmp_path / "x"))]
    args += ["--quiet", "--uncertain", "zeros", "--text-dropout", "0.3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}

    def run(cmd):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    run([sys.executable, "-m", "radtool_vision", *args, "--out", str(tmp_path / "single")])
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
                "--master_port", str(29700 + os.getpid() % 1000)]
    run([*torchrun, "-m", "radtool_vision", *args, "--out", str(tmp_path / "ddp")])
    single = json.loads((tmp_path / "single" / "metrics.json").read_text())
    ddp = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert json.loads((tmp_path / "ddp" / "config.json").read_text())["world_size"] == 2
    assert ddp["val_loss"] == pytest.approx(single["val_loss"], rel=1e-5)
    for name, s in single["at_0.5"]["classes"].items():
        d = ddp["at_0.5"]["classes"][name]
        assert (d["tp"], d["fp"], d["tn"], d["fn"]) == (s["tp"], s["fp"], s["tn"], s["fn"]), name
