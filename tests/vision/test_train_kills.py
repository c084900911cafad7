"""Kill -9 around every checkpoint write of ``classify train``, then ``--resume``: the run files always agree.

Issue 9, item 3: best.pt, metrics.json and config.json must describe the same epoch after a kill at
any point. The training job runs in a subprocess through a small driver (below) that counts the
file-system operations made inside the run folder (``os.replace``/``rename``/``link``/``symlink``/
``unlink``, ``shutil.rmtree``, ``torch.save``, the folder exchange of ``radtool.io.writers``) and
SIGKILLs its own process right before the N-th one. No product code knows about the test: the
driver wraps the real functions in the child process only. A first, uninterrupted run lists every
operation; the test then kills at chosen ones (each kind of write, in an improving and a
non-improving epoch, and in the exchange-less fallback swap), checks the folder as the kill left
it, resumes (or restarts a run killed before its first checkpoint) and checks that the finished run
equals the uninterrupted one.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from synthetic import RUN_CLASSES, make_dataset

pytestmark = pytest.mark.slow

DRIVER = textwrap.dedent('''
    import os, shutil, signal, sys
    import torch
    import radtool.io.writers as writers

    kill_at, log_path, run_dir = int(sys.argv[1]), sys.argv[2], os.path.abspath(sys.argv[3])
    count = [0]
    log = open(log_path, "a", buffering=1)

    def inside(args):
        for a in args:
            if isinstance(a, (str, os.PathLike)) and os.path.abspath(os.fspath(a)).startswith(run_dir):
                return os.path.relpath(os.path.abspath(os.fspath(a)), run_dir)
        return None

    def wrap(owner, name):
        real = getattr(owner, name)

        def op(*args, **kwargs):
            where = inside(args)
            if where is not None:
                count[0] += 1
                log.write(f"{count[0]} {name} {where}\\n")
                if count[0] == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)
        setattr(owner, name, op)

    for name in ("replace", "rename", "link", "symlink", "unlink"):
        wrap(os, name)
    wrap(shutil, "rmtree")
    wrap(torch, "save")
    if os.environ.get("KILLTEST_NO_EXCHANGE"):  # a file system without renameat2: the fallback swap
        writers._renameat2_exchange = lambda a, b: False
    wrap(writers, "_renameat2_exchange")

    from radtool_vision.cli import app
    app(sys.argv[4:], prog_name="radtool classify")
''')

EPOCHS = 3


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("kills")
    data = make_dataset(root / "data", 40, size=32, seed=3)
    driver = root / "driver.py"
    driver.write_text(DRIVER)
    return root, data, driver


def train_args(data, run, resume=False):
    return ["train", "--plugin", "resnet", "--arch", "test_resnet", "--data", str(data.csv),
            "--image-root", str(data.root), "--out", str(run), "--classes", ",".join(RUN_CLASSES),
            "--image-size", "32", "--epochs", str(EPOCHS), "--batch-size", "16", "--lr", "3e-2",
            "--no-pretrained", "--device", "cpu", "--workers", "1", "--quiet", *(["--resume"] if resume else [])]


def run_driver(driver, run, args, kill_at=0, log=None, no_exchange=False):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("KILLTEST_NO_EXCHANGE", None)
    if no_exchange:
        env["KILLTEST_NO_EXCHANGE"] = "1"
    log = log or run.parent / f"{run.name}.ops"
    proc = subprocess.run([sys.executable, str(driver), str(kill_at), str(log), str(run), *args],
                          capture_output=True, text=True, env=env, timeout=300)
    return proc, [line.split(" ", 2) for line in log.read_text().splitlines()] if log.is_file() else []


def load_json(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def run_files(run: Path) -> dict:
    """What a reader sees in the run folder, as radtool's readers open it (RUN/state restored first)."""
    from radtool_vision.checkpoint import open_run_state

    open_run_state(run)
    best = torch.load(run / "best.pt", weights_only=True) if (run / "best.pt").is_file() else None
    last = torch.load(run / "last.pt", weights_only=True) if (run / "last.pt").is_file() else None
    history = list(csv.DictReader(open(run / "history.csv"))) if (run / "history.csv").is_file() else None
    return {"best": best, "last": last, "metrics": load_json(run / "metrics.json"),
            "config": load_json(run / "config.json"), "history": history}


def assert_consistent(run: Path) -> dict:
    """best.pt, metrics.json, config.json (and last.pt, history.csv) describe the same epoch."""
    f = run_files(run)
    best, last, metrics, config = f["best"], f["last"], f["metrics"], f["config"]
    if best is None:
        assert metrics is None, "metrics.json without best.pt"
        assert last is None, "last.pt without best.pt"
        assert config is None or config["best_epoch"] == 0, config and config["best_epoch"]
        return f
    epoch = int(best["epoch"])
    thresholds = dict(zip(best["classes"], best["thresholds"]))
    assert metrics is not None and config is not None
    assert metrics["epoch"] == epoch == config["best_epoch"], (metrics["epoch"], epoch, config["best_epoch"])
    assert metrics["val_loss"] == best["val_loss"] == config["best_val_loss"]
    assert config["thresholds"] == thresholds
    assert {c: v["threshold"] for c, v in metrics["at_val_best"]["classes"].items()} == thresholds
    assert metrics == best["report"]
    # last.pt (what --resume continues) never believes in another best epoch
    assert last is not None and last["loop"]["best_epoch"] == epoch
    assert last["loop"]["thresholds"] == best["thresholds"]
    assert [int(r["epoch"]) for r in f["history"]] == [r["epoch"] for r in last["loop"]["history"]]
    return f


def summary(f: dict) -> dict:
    return {"best_epoch": int(f["best"]["epoch"]), "thresholds": f["best"]["thresholds"],
            "losses": [(r["epoch"], r["train_loss"], r["val_loss"]) for r in f["last"]["loop"]["history"]],
            "weights": {k: v.clone() for k, v in f["best"]["model"].items()}}


@pytest.fixture(scope="module")
def reference(setup):
    root, data, driver = setup
    run = root / "reference"
    proc, ops = run_driver(driver, run, train_args(data, run))
    assert proc.returncode == 0, proc.stderr
    f = assert_consistent(run)
    return summary(f), ops


def choose_kill_points(ops: list[list[str]]) -> list[int]:
    """In each RUN/state write: best.pt's save and rename, the first link made at the top, the carry of
    an unchanged best.pt (hard link), the swap of the folder and the removal of the old one."""
    chosen, unit, seen = [], 0, set()
    for n, name, path in ops:
        kind = ("save best" if name == "save" and "best.pt" in path else
                "rename best" if name == "replace" and "/.best.pt" in path else
                "carry" if name == "link" else
                "link" if name == "symlink" else
                "swap" if name == "_renameat2_exchange" or (name == "replace" and "/" not in path and path.startswith(".state")) else
                "cleanup" if name == "rmtree" else None)
        if kind and (unit, kind) not in seen:
            seen.add((unit, kind))
            chosen.append(int(n))
        if kind in ("swap", "cleanup") and name == "rmtree" or (kind == "swap" and name == "replace"):
            unit += 1
    return chosen


def test_kill_around_checkpoint_writes_then_resume(setup, reference, tmp_path):
    root, data, driver = setup
    ref, ops = reference
    points = choose_kill_points(ops)
    assert len(points) >= 8, ops
    outcomes = []
    for k in points:
        run = tmp_path / f"kill{k}"
        proc, seen = run_driver(driver, run, train_args(data, run), kill_at=k)
        assert proc.returncode == -9, (k, proc.returncode, proc.stderr[-2000:])
        f = assert_consistent(run)
        state = "no checkpoint" if f["best"] is None else f"epoch {f['last']['loop']['epoch']}, best {f['best']['epoch']}"
        resumable = f["last"] is not None
        proc, _ = run_driver(driver, run, train_args(data, run, resume=resumable), log=tmp_path / f"resume{k}.ops")
        assert proc.returncode == 0, (k, proc.stderr[-2000:])
        final = summary(assert_consistent(run))
        assert final["best_epoch"] == ref["best_epoch"] and final["thresholds"] == ref["thresholds"]
        assert final["losses"] == ref["losses"], k
        assert all(torch.equal(final["weights"][n], ref["weights"][n]) for n in ref["weights"])
        assert not [p.name for p in run.iterdir() if p.name.startswith(".")], k  # no temporary leftovers
        outcomes.append((k, seen[-1][1], seen[-1][2], state, "resumed" if resumable else "restarted"))
    print(f"\n{len(outcomes)} kill points of {len(ops)} run-folder operations:")
    for row in outcomes:
        print("  kill at op %d (%s %s): %s -> %s, consistent, equal to the uninterrupted run" % row)


def test_kill_in_fallback_swap_then_resume(setup, reference, tmp_path):
    """Without renameat2 the swap renames state/ aside first: a kill in that window leaves no state/
    (the links dangle), and the next reader restores it before reading."""
    root, data, driver = setup
    ref, _ = reference
    probe = tmp_path / "probe"
    proc, ops = run_driver(driver, probe, train_args(data, probe), no_exchange=True)
    assert proc.returncode == 0, proc.stderr
    assert summary(assert_consistent(probe))["losses"] == ref["losses"]
    # the window: after `state` is renamed to .state.radtool-old-*, before the new folder is renamed in
    windows = [int(n) + 1 for n, name, path in ops if name == "rename" and path == "state"]
    assert len(windows) >= EPOCHS
    for k in windows[1:2]:
        run = tmp_path / f"fallback{k}"
        proc, _ = run_driver(driver, run, train_args(data, run), kill_at=k, no_exchange=True)
        assert proc.returncode == -9
        assert not (run / "state").exists() and not (run / "best.pt").exists()  # what the kill left
        assert_consistent(run)  # restored from .state.radtool-old-* on open, then consistent
        assert (run / "best.pt").is_file()
        proc, _ = run_driver(driver, run, train_args(data, run, resume=True), log=tmp_path / f"r{k}.ops",
                             no_exchange=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert summary(assert_consistent(run))["losses"] == ref["losses"]
