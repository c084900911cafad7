"""Every ``radtool classify`` subcommand through typer's CliRunner, including bad input."""

import csv
import json

import pytest
import torch
from typer.testing import CliRunner

from radtool_vision.cli import app
from synthetic import RUN_CLASSES

runner = CliRunner()
TINY_TRAIN = ["--image-size", "32", "--epochs", "1", "--batch-size", "16", "--no-pretrained",
              "--device", "cpu", "--workers", "1", "--quiet"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_user_error(result, fragment):
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.output


def test_plugins_lists_entry_points():
    result = invoke("plugins")
    assert result.exit_code == 0
    for name in ("convnext", "densenet", "resnet", "mobilenet", "vgg", "efficientnet", "fusion"):
        assert name in result.output


def test_train_writes_run_and_resumes(synthetic_set, tmp_path):
    run = tmp_path / "run"
    base = ["train", "--plugin", "efficientnet", "--arch", "test_efficientnet", "--data", synthetic_set.csv,
            "--image-root", synthetic_set.root, "--out", run, "--classes", ",".join(RUN_CLASSES), *TINY_TRAIN]
    result = invoke(*base)
    assert result.exit_code == 0, result.output
    for name in ("config.json", "best.pt", "last.pt", "history.csv", "metrics.json", "loss.png", "metrics.png"):
        assert (run / name).is_file(), name
    assert list((run / "cache").glob("images-32px-*.u8"))
    assert not list(run.glob(".*tmp*"))
    best = torch.load(run / "best.pt", weights_only=True)
    assert best["classes"] == list(RUN_CLASSES) and best["plugin"] == "efficientnet"
    assert len(best["thresholds"]) == len(RUN_CLASSES)
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"at_0.5", "at_val_best", "threshold_source"} <= set(metrics)
    config = json.loads((run / "config.json").read_text())
    assert config["data_config"]["image_size"] == 32 and config["n_train"] > config["n_val"] > 0

    assert_user_error(invoke(*base), "--resume")
    result = invoke(*[a if a != "1" else "2" for a in base], "--resume")
    assert result.exit_code == 0, result.output
    history = list(csv.DictReader(open(run / "history.csv")))
    assert [int(r["epoch"]) for r in history] == [1, 2]


def test_train_balancing_options_and_frozen_backbone(synthetic_set, tmp_path):
    result = invoke(
        "train", "--plugin", "mobilenet", "--arch", "mobilenetv3_small_050", "--data", synthetic_set.csv,
        "--image-root", synthetic_set.root, "--out", tmp_path / "a", "--classes", ",".join(RUN_CLASSES),
        "--balance", "sampler", "--undersample", "No Finding=0.5", "--freeze-backbone", "--uncertain", "ones",
        "--views", "all", *TINY_TRAIN,
    )
    assert result.exit_code == 0, result.output
    result = invoke(
        "train", "--plugin", "resnet", "--arch", "test_resnet", "--data", synthetic_set.csv,
        "--image-root", synthetic_set.root, "--out", tmp_path / "b", "--classes", "Pneumonia,Cardiomegaly",
        "--balance", "pos-weight", *TINY_TRAIN,
    )
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert len(config["pos_weight"]) == 2 and all(w > 1 for w in config["pos_weight"])


def test_train_from_radtool_labels_and_image_index(synthetic_set, tmp_path):
    """A radtool labels.csv (report id first) joined with an image index mapping Path -> report id."""
    rows = list(csv.DictReader(open(synthetic_set.csv)))
    labels, index = tmp_path / "labels.csv", tmp_path / "index.csv"
    with open(labels, "w", newline="") as fl, open(index, "w", newline="") as fi:
        wl, wi = csv.writer(fl), csv.writer(fi)
        wl.writerow(["report_id", *RUN_CLASSES])
        wi.writerow(["Path", "report_id", "ViewPosition"])
        for i, row in enumerate(rows):
            wl.writerow([f"r{i}", *(row[c] for c in RUN_CLASSES)])
            wi.writerow([row["Path"], f"r{i}", "PA" if row["Frontal/Lateral"] == "Frontal" else "LATERAL"])
    result = invoke("train", "--plugin", "resnet", "--arch", "test_resnet", "--data", labels,
                    "--image-index", index, "--image-root", synthetic_set.root, "--out", tmp_path / "run",
                    "--classes", ",".join(RUN_CLASSES), *TINY_TRAIN)
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    n_frontal = sum(r["Frontal/Lateral"] == "Frontal" for r in rows)
    assert config["n_train"] + config["n_val"] == n_frontal


def test_evaluate_predict_explain(trained_run, synthetic_set, tmp_path):
    result = invoke("evaluate", "--run", trained_run, "--data", synthetic_set.csv, "--image-root",
                    synthetic_set.root, "--out", tmp_path / "eval", "--device", "cpu", "--workers", "0")
    assert result.exit_code == 0, result.output
    assert "macro" in result.output and "Pneumonia" in result.output
    assert (tmp_path / "eval" / "roc.png").is_file()

    result = invoke("predict", "--run", trained_run, "--data", synthetic_set.csv, "--image-root",
                    synthetic_set.root, "--out", tmp_path / "preds.csv", "--device", "cpu", "--workers", "0", "--quiet")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(open(tmp_path / "preds.csv")))
    assert len(rows) == len(synthetic_set.rel_paths)
    assert list(rows[0]) == ["Path", *RUN_CLASSES, "error"]

    image = synthetic_set.root / synthetic_set.rel_paths[0]
    result = invoke("explain", "--run", trained_run, "--image", image, "--out", tmp_path / "cam",
                    "--classes", "Pneumonia,Cardiomegaly", "--device", "cpu", "--quiet")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "cam").glob("*.png")) == [
        "view1_frontal__cardiomegaly.png", "view1_frontal__pneumonia.png"]

    # several files after one --image, as in `explain --image FILE...`
    second = synthetic_set.root / synthetic_set.rel_paths[1]
    result = invoke("explain", "--run", trained_run, "--image", image, second, "--out", tmp_path / "cam2",
                    "--classes", "Pneumonia", "--device", "cpu", "--quiet")
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "cam2").glob("*.png"))) == 2


@pytest.mark.parametrize(
    "extra,fragment",
    [
        (["--plugin", "nope"], "unknown classifier plugin 'nope'"),
        (["--plugin", "resnet", "--arch", "convnext_atto"], "not in the resnet family"),
        (["--plugin", "resnet", "--classes", "Edema"], "column 'Edema' not found"),
        (["--plugin", "resnet", "--uncertain", "maybe"], "--uncertain must be one of"),
        (["--plugin", "resnet", "--balance", "smote"], "--balance must be one of"),
        (["--plugin", "resnet", "--views", "oblique"], "--views must be one of"),
        (["--plugin", "resnet", "--device", "tpu"], "--device must be one of"),
        (["--plugin", "resnet", "--undersample", "No Finding=2"], "--undersample expects"),
        (["--plugin", "resnet", "--undersample", "Edema=0.5"], "not in --classes"),
        (["--plugin", "resnet", "--epochs", "0"], "--epochs must be at least 1"),
        (["--plugin", "resnet", "--val-fraction", "1.5"], "--val-fraction"),
        (["--plugin", "resnet", "--weights", "missing.pt"], "weights file not found"),
    ],
)
def test_train_bad_input_is_one_line_exit_2(synthetic_set, tmp_path, extra, fragment):
    options = {"--arch": "test_resnet", "--classes": ",".join(RUN_CLASSES), "--device": "cpu",
               **dict(zip(extra[::2], extra[1::2]))}
    args = ["train", "--data", synthetic_set.csv, "--image-root", synthetic_set.root, "--out", tmp_path / "r",
            "--no-pretrained", "--quiet"]
    for key, value in options.items():
        args += [key, value]
    assert_user_error(invoke(*args), fragment)
    assert not (tmp_path / "r" / "best.pt").exists()


def test_train_missing_files_are_user_errors(synthetic_set, tmp_path):
    assert_user_error(invoke("train", "--plugin", "resnet", "--data", tmp_path / "none.csv", "--out", tmp_path / "r"),
                      "label file not found")
    assert_user_error(invoke("train", "--plugin", "resnet", "--data", synthetic_set.csv, "--image-root",
                             tmp_path / "nowhere", "--out", tmp_path / "r", "--classes", "Pneumonia"),
                      "image root folder not found")


def test_use_commands_bad_input(trained_run, synthetic_set, tmp_path):
    assert_user_error(invoke("evaluate", "--run", tmp_path, "--data", synthetic_set.csv, "--out", tmp_path / "e"),
                      "no trained model")
    no_class = tmp_path / "no_class.csv"
    no_class.write_text("Path,Pneumonia\nx.png,1\n")
    assert_user_error(invoke("evaluate", "--run", trained_run, "--data", no_class, "--out", tmp_path / "e",
                             "--device", "cpu"), "column 'No Finding' not found")
    assert_user_error(invoke("predict", "--run", trained_run, "--data", tmp_path / "missing", "--out",
                             tmp_path / "p.csv"), "not found")
    assert_user_error(invoke("explain", "--run", trained_run, "--image", tmp_path / "missing.png", "--out",
                             tmp_path / "c"), "image not found")
    assert_user_error(invoke("explain", "--run", trained_run, "--out", tmp_path / "c"), "no image given")
    image = synthetic_set.root / synthetic_set.rel_paths[0]
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert_user_error(invoke("explain", "--run", trained_run, "--image", image, "--out", a_file, "--device", "cpu"),
                      "is a file")
    assert_user_error(invoke("explain", "--run", trained_run, "--image", image, "--out", tmp_path / "c",
                             "--classes", "Edema", "--device", "cpu"), "not one of the run's classes")


def test_offline_pretrained_stops_before_any_work_and_leaves_nothing(synthetic_set, tmp_path, monkeypatch):
    import time

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    run = tmp_path / "run"
    t0 = time.perf_counter()
    result = invoke("train", "--plugin", "convnext", "--data", synthetic_set.csv, "--image-root", synthetic_set.root,
                    "--out", run, "--classes", ",".join(RUN_CLASSES), "--device", "cpu", "--quiet")
    assert_user_error(result, "--no-pretrained")
    assert "--weights" in result.stderr and "HF_HUB_OFFLINE" in result.stderr
    assert time.perf_counter() - t0 < 20  # no cache built, no hub retries
    assert not run.exists()


@pytest.mark.parametrize("failure", ["unreadable", "interrupt"])
def test_failed_run_leaves_no_run_folder(synthetic_set, tmp_path, monkeypatch, failure):
    args = ["train", "--plugin", "resnet", "--arch", "test_resnet", "--image-root", synthetic_set.root,
            "--classes", ",".join(RUN_CLASSES), *TINY_TRAIN]
    run = tmp_path / "nested" / "run"
    if failure == "unreadable":  # fails after the cache was built: every image is garbage
        bad = tmp_path / "bad.csv"
        rows = list(csv.DictReader(open(synthetic_set.csv)))
        for r in rows[:30]:
            (tmp_path / "junk" / r["Path"]).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / "junk" / r["Path"]).write_bytes(b"\x89PNG not really")
        with open(bad, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows[:30])
        args[args.index("--image-root") + 1] = tmp_path / "junk"
        result = invoke(*args, "--data", bad, "--out", run)
        assert_user_error(result, "could be read")
    else:  # Ctrl-C in the first epoch
        import radtool_vision.training as training

        def interrupted(*a, **k):
            raise KeyboardInterrupt

        monkeypatch.setattr(training, "train_one_epoch", interrupted)
        result = invoke(*args, "--data", synthetic_set.csv, "--out", run)
        assert result.exit_code == 130, result.output
    assert not run.exists()


def test_module_help_names_itself_and_uses_the_core_options():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "radtool_vision", "train", "--help"], capture_output=True,
                          text=True, timeout=120, env={"COLUMNS": "200", "PATH": ""})
    assert proc.returncode == 0, proc.stderr
    assert "Usage: python -m radtool_vision train" in proc.stdout and "radtool classify" not in proc.stdout
    for option in ("--out", "-o", "--quiet", "-q", "--id-col", "--compile"):
        assert option in proc.stdout, option
    assert "--id-column" not in proc.stdout  # hidden, deprecated alias
