"""Throughput of `radtool parse` against a bare spaCy parser over the same report texts, in one run.

    python benchmarks/bench_parse.py [--reports corpora/openi/reports.csv] [--repeat 2]

Prints reports/s for: bare `spacy.load(model).pipe(texts)` (the model's full pipeline), radtool's
corpus parser (sections, entities, ConText, relations, labels, per-sentence memo), and radtool with
2 processes. Load times are excluded from all three; the ratio is what `make bench` reports.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import spacy

from radtool.io import read_reports
from radtool.parse import ReportParser
from radtool.pipeline import DEFAULT_MODELS

ROOT = Path(__file__).resolve().parents[1]


def bare_model():
    warnings.filterwarnings("ignore", message=r".*\[W095\].*")
    for name in DEFAULT_MODELS:
        try:
            return name, spacy.load(name)
        except OSError:
            continue
    raise SystemExit("no spaCy English model installed")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reports", type=Path, default=ROOT / "corpora/openi/reports.csv")
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs for each contender (single runs swing widely on a shared machine)")
    ap.add_argument("--profile", action="store_true", help="also print seconds per pipeline component over the distinct sentences")
    args = ap.parse_args()

    reports, _ = read_reports(args.reports)
    texts = [r.text for r in reports]
    n = len(texts)
    name, nlp = bare_model()
    nlp("warm up")

    def best(fn) -> float:
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times)

    bare = best(lambda: sum(1 for _ in nlp.pipe(texts, batch_size=64)))

    parser = ReportParser(schema="chexpert")
    parser.nlp  # noqa: B018  load outside the timing

    def run_radtool():
        parser.memo.clear()  # cold memo each run: only repetition *within* the corpus helps
        parser.parse(reports)

    ours = best(run_radtool)
    stats = dict(parser.stats)

    def run_two():
        p2 = ReportParser(schema="chexpert", n_process=2)
        p2.parse(reports)

    two = best(run_two)  # includes the workers' pipeline load (~2 s each, in parallel)

    print(f"corpus: {args.reports} ({n} reports, {stats['sentences']} sentences, {stats['distinct_sentences']} distinct)")
    print(f"bare spaCy {name} .pipe (full pipeline): {n / bare:8.1f} reports/s  ({bare:.2f} s)")
    print(f"radtool parse, 1 process:               {n / ours:8.1f} reports/s  ({ours:.2f} s)")
    print(f"radtool parse, 2 processes (incl. load): {n / two:8.1f} reports/s  ({two:.2f} s)")
    print(f"throughput ratio radtool / bare spaCy:   {bare / ours:8.2f}x")
    if args.profile:
        profile(parser, reports)


def profile(parser: ReportParser, reports) -> None:
    """Seconds per component over the distinct sentences, components run one after another."""
    from radtool.parse import _sentence_key, report_sentences
    from radtool.pipeline.graph import span_record

    texts = list(dict.fromkeys(_sentence_key(t) for r in reports for _s, t in report_sentences(r)))
    nlp = parser.nlp
    times = {}
    t = time.perf_counter()
    docs = [nlp.make_doc(text) for text in texts]
    times["tokenizer"] = time.perf_counter() - t
    for name, proc in nlp.pipeline:
        if name == "radtool_labels":
            continue
        t = time.perf_counter()
        docs = list(proc.pipe(docs, batch_size=256)) if hasattr(proc, "pipe") else [proc(d) for d in docs]
        times[name] = time.perf_counter() - t
    t = time.perf_counter()
    for doc in docs:
        span_record(doc)
    times["records"] = time.perf_counter() - t
    total = sum(times.values())
    print(f"per component over {len(texts)} distinct sentences ({total:.2f} s):")
    for name, sec in times.items():
        print(f"  {name:18s} {sec:6.2f} s  {100 * sec / total:5.1f} %")


if __name__ == "__main__":
    main()
