"""Two versions of `radtool parse` (and bare spaCy) back to back, whole process, on one corpus.

    python benchmarks/ab_parse.py CORPUS LABEL=SRC_DIR [LABEL=SRC_DIR ...] [bare]

Each LABEL=SRC_DIR runs ``radtool parse CORPUS`` with SRC_DIR (a checkout's ``src``, e.g. from
``git archive <commit> src | tar -x -C /tmp/old``) first on ``sys.path``; ``bare`` runs bare spaCy's
``nlp.pipe`` over the same texts as ``benchmarks/bench_scale.py`` does. Times, CPU and peak RSS come from
``bench_scale.measure``. On a shared machine whose speed drifts, compare versions only within one run.
"""

from __future__ import annotations

import filecmp
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale import _BARE, measure  # noqa: E402


def main() -> None:
    corpus, runs = sys.argv[1], sys.argv[2:]
    work = Path(tempfile.mkdtemp(prefix="radtool-ab-"))
    outs = []
    for run in runs:
        if run == "bare":
            m = measure([sys.executable, "-c", _BARE, corpus])
        else:
            label, src = run.split("=", 1)
            out = work / label
            outs.append(out)
            code = f"import sys; sys.path.insert(0, {str(Path(src).resolve())!r}); sys.argv[0] = 'radtool'; from radtool.cli import main; sys.exit(main())"
            m = measure([sys.executable, "-c", code, "parse", corpus, "--out", str(out), "-q"])
        print(f"{run}: {m['seconds']:.1f} s, CPU {m['cpu']:.1f} s, peak RSS {m['rss_kb'] / 2**20:.3f} GB, rc {m['rc']}", flush=True)
        if m["rc"]:
            print(m["stderr"])
    for a, b in zip(outs, outs[1:]):
        same = all(filecmp.cmp(a / f, b / f, shallow=False) for f in ("labels.csv", "graphs.jsonl"))
        print(f"{a.name} and {b.name}: labels.csv and graphs.jsonl {'the same bytes' if same else 'DIFFER'}")
    print("load average:", " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
