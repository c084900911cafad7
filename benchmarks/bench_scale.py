"""Corpus scale: time, reports/s and peak RSS of `radtool parse`, `stats` and `similarity` on archive-like
corpora (benchmarks/gen_corpus.py), whole process, plus bare spaCy over the same texts in the same run.

    python benchmarks/bench_scale.py [--sizes 4000 40000 200000] [--bare-sizes 4000 40000]
                                     [--exact-sizes 40000] [--dask-size 40000] [--work /tmp/radtool-bench-scale]

Every command runs in a fresh child process started through a small wrapper process, and the peak RSS
is that wrapper's ``getrusage(RUSAGE_CHILDREN).ru_maxrss``: the largest resident set of the command's
processes (the parent or one worker), from interpreter start to exit. Times are wall clock of the
whole process (start-up, imports, model load, reading, writing); CPU time is user + system time of
all the command's processes (less sensitive than wall time to other work on the machine). "bare spaCy" loads the same model
(`spacy.load`, full pipeline) and runs `nlp.pipe` over the same report texts in its own process; the
ratio is bare time / radtool time (> 1: radtool is faster), on wall and on CPU time. At the
``--exact-sizes`` the corpus is parsed again with ``--exact-numbers`` (no number-blind memo), with the
label cells that differ. The last lines give peak RSS at the largest size over the smallest. The load average is printed before and
after each size: the figures mean little on a machine that other work keeps busy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from gen_corpus import generate  # noqa: E402

RADTOOL = str(Path(sys.executable).with_name("radtool"))
_WRAPPER = (
    "import json, resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)\n"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(json.dumps({'seconds': time.perf_counter() - t, 'rss_kb': u.ru_maxrss, 'cpu': u.ru_utime + u.ru_stime,"
    " 'rc': r.returncode, 'stderr': r.stderr[-2000:]}))\n"
)
_BARE = (
    "import sys, warnings\n"
    "warnings.filterwarnings('ignore')\n"
    "import spacy\n"
    "from radtool.io import read_reports\n"
    "from radtool.pipeline import DEFAULT_MODELS\n"
    "reports, _ = read_reports(sys.argv[1])\n"
    "texts = [r.text for r in reports]\n"
    "del reports\n"
    "for name in DEFAULT_MODELS:\n"
    "    try:\n"
    "        nlp = spacy.load(name)\n"
    "        break\n"
    "    except OSError:\n"
    "        pass\n"
    "n = sum(1 for _ in nlp.pipe(texts, batch_size=64))\n"
)


def measure(cmd: list[str]) -> dict:
    """Run ``cmd`` in a fresh process (through a wrapper) and return its wall time and peak RSS."""
    out = subprocess.run([sys.executable, "-c", _WRAPPER, *cmd], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["rc"] != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({result['rc']}): {result['stderr']}")
    return result


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def row(what: str, n: int, m: dict, extra: str = "") -> None:
    print(f"{what:<34} {n:>8,} {m['seconds']:9.1f} s {n / m['seconds']:9.1f}/s {m['rss_kb'] / 2**20:7.2f} GB "
          f"{m['cpu']:9.1f} s  {extra}", flush=True)


def synthetic_parse_dir(source: Path, out: Path, n: int, seed: int = 0) -> None:
    """A parse folder of ``n`` report records recombined from the records of ``source`` (a parse folder):
    each record is one source record with the second half of its noun phrases, verbs and entities taken
    from another, so feature sets are new, as in an archive; for stats and similarity at sizes that
    could not be parsed in the time at hand (the records are not parser output, the counts are)."""
    import csv
    import random

    rng = random.Random(seed)
    base = [json.loads(line) for line in (source / "graphs.jsonl").open(encoding="utf-8")]
    with (source / "labels.csv").open(encoding="utf-8", newline="") as fh:
        header = next(csv.reader(fh))
    out.mkdir(parents=True, exist_ok=True)
    with (out / "graphs.jsonl").open("w", encoding="utf-8") as g, (out / "labels.csv").open("w", encoding="utf-8", newline="") as lf:
        w = csv.writer(lf)
        w.writerow(header)
        for i in range(1, n + 1):
            a, b = rng.choice(base), rng.choice(base)
            r = dict(a, id=f"SYN{i:07d}", row=i)
            for fam in ("noun_phrases", "verbs"):
                r[fam] = a[fam][: len(a[fam]) // 2] + b[fam][len(b[fam]) // 2:]
            ents = list(a["entities"].values())[: len(a["entities"]) // 2] + list(b["entities"].values())[len(b["entities"]) // 2:]
            r["entities"] = {str(k): dict(e, relations=[]) for k, e in enumerate(ents, start=1)}
            g.write(json.dumps(r, ensure_ascii=False) + "\n")
            w.writerow([r["id"], *("" if r["labels"].get(c) is None else r["labels"][c] for c in header[1:])])


def _differences(a: Path, b: Path) -> tuple[int, int, int]:
    """Label cells and rows, and graphs.jsonl lines, that differ between two parse folders of one input."""
    import csv

    with (a / "labels.csv").open(encoding="utf-8", newline="") as fa, (b / "labels.csv").open(encoding="utf-8", newline="") as fb:
        cells = rows = 0
        for ra, rb in zip(csv.reader(fa), csv.reader(fb)):
            d = sum(x != y for x, y in zip(ra, rb))
            cells += d
            rows += d > 0
    with (a / "graphs.jsonl").open(encoding="utf-8") as ga, (b / "graphs.jsonl").open(encoding="utf-8") as gb:
        records = sum(x != y for x, y in zip(ga, gb))
    return cells, rows, records


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[4000, 40000, 200000])
    ap.add_argument("--bare-sizes", type=int, nargs="*", default=[4000, 40000],
                    help="sizes at which bare spaCy runs too (it takes ~1/160 s per report on this machine)")
    ap.add_argument("--exact-sizes", type=int, nargs="*", default=[40000],
                    help="sizes parsed also with --exact-numbers (every distinct sentence parsed as written), "
                         "with the label cells and records that differ from the default run")
    ap.add_argument("--dask-size", type=int, default=40000, help="size parsed also with -n 2 and on a 2-worker LocalCluster (0: skip)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/radtool-bench-scale"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", action="store_true", help="keep the corpora and outputs in --work")
    ap.add_argument("--analysis-only", type=int, nargs="*", default=[], metavar="N",
                    help="also run stats and similarity on N recombined records built from the parse of the last size")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"{'command':<34} {'reports':>8} {'time':>11} {'reports/s':>11} {'peak RSS':>10} {'CPU time':>11}", flush=True)
    peaks: dict[str, dict[int, float]] = {}
    for n in args.sizes:
        corpus = args.work / f"archive{n}.csv"
        if not corpus.exists():
            info = generate(corpus, n, seed=args.seed)
            print(f"corpus {corpus}: {n:,} reports, {info['sentences']:,} sentences, distinct fraction {info['distinct_fraction']:.3f}", flush=True)
        print(f"-- {n:,} reports; load average before: {load()}", flush=True)
        parsed = args.work / f"parse{n}"
        m = measure([RADTOOL, "parse", str(corpus), "--out", str(parsed), "-q"])
        summary = json.loads((parsed / "summary.json").read_text())
        row("radtool parse", n, m, f"({summary['distinct_sentences']:,} distinct sentences, {summary['parsed_sentences']:,} parsed, "
                                   f"memo hit rate {summary['memo']['hit_rate']:.2f})")
        peaks.setdefault("parse", {})[n] = m["rss_kb"]
        if n in args.bare_sizes:
            bare = measure([sys.executable, "-c", _BARE, str(corpus)])
            row("bare spaCy nlp.pipe (own process)", n, bare, f"throughput radtool/bare: {bare['seconds'] / m['seconds']:.2f}x wall, "
                                                              f"{bare['cpu'] / m['cpu']:.2f}x CPU")
        if n in args.exact_sizes:
            exact = args.work / f"parse{n}exact"
            m2 = measure([RADTOOL, "parse", str(corpus), "--out", str(exact), "-q", "--exact-numbers"])
            cells, rows_, records = _differences(parsed, exact)
            row("radtool parse --exact-numbers", n, m2, f"{json.loads((exact / 'summary.json').read_text())['parsed_sentences']:,} parsed; "
                                                        f"vs default: {cells:,} label cells in {rows_:,} rows differ, {records:,} graphs records")
            if n in args.bare_sizes:
                print(f"{'':<34} throughput radtool --exact-numbers/bare: {bare['seconds'] / m2['seconds']:.2f}x wall, "
                      f"{bare['cpu'] / m2['cpu']:.2f}x CPU", flush=True)
            shutil.rmtree(exact, ignore_errors=True)
        if n == args.dask_size:
            for label, extra in (("radtool parse -n 2", ["-n", "2"]), ("radtool parse --scheduler local:2", ["--scheduler", "local:2"])):
                other = args.work / "parse_other"
                m2 = measure([RADTOOL, "parse", str(corpus), "--out", str(other), "-q", *extra])
                same = all((parsed / f).read_bytes() == (other / f).read_bytes() for f in ("labels.csv", "graphs.jsonl"))
                row(label, n, m2, f"speed-up {m['seconds'] / m2['seconds']:.2f}x; outputs {'identical' if same else 'DIFFER'}")
                if same:
                    shutil.rmtree(other, ignore_errors=True)
                else:  # keep both for a look
                    other.rename(args.work / f"parse{n}{extra[0].strip('-')}")
                    args.keep = True
        m = measure([RADTOOL, "stats", str(parsed), "--out", str(args.work / f"stats{n}"), "-q"])
        row("radtool stats", n, m)
        peaks.setdefault("stats", {})[n] = m["rss_kb"]
        m = measure([RADTOOL, "similarity", str(parsed), "--top-k", "10", "--out", str(args.work / f"sim{n}"), "-q"])
        row("radtool similarity --top-k 10", n, m)
        peaks.setdefault("similarity", {})[n] = m["rss_kb"]
        print(f"   load average after: {load()}", flush=True)
        for big in args.analysis_only if n == args.sizes[-1] else []:
            syn = args.work / f"synthetic{big}"
            synthetic_parse_dir(parsed, syn, big, args.seed)
            print(f"-- {big:,} recombined records from the {n:,}-report parse; load average before: {load()}", flush=True)
            m = measure([RADTOOL, "stats", str(syn), "--out", str(args.work / f"stats{big}"), "-q"])
            row("radtool stats (recombined records)", big, m)
            m = measure([RADTOOL, "similarity", str(syn), "--top-k", "10", "--out", str(args.work / f"sim{big}"), "-q"])
            row("radtool similarity (recombined)", big, m)
            print(f"   load average after: {load()}", flush=True)
        if not args.keep:
            for p in (parsed, args.work / f"stats{n}", args.work / f"sim{n}"):
                shutil.rmtree(p, ignore_errors=True)
    small, big = min(args.sizes), max(args.sizes)
    if small != big:
        for command, by_size in peaks.items():
            if small in by_size and big in by_size:
                print(f"peak RSS {command}: {big:,} / {small:,} reports = {by_size[big] / by_size[small]:.2f}x "
                      f"({by_size[big] / 2**20:.2f} / {by_size[small] / 2**20:.2f} GB)", flush=True)


if __name__ == "__main__":
    main()
