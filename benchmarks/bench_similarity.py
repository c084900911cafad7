"""Top-10 neighbours on the real OpenI reports and on a 100,000-report synthetic corpus: time and peak memory.

The large corpus is built from the parsed OpenI reports: each synthetic report takes the feature sets
(noun phrases, verbs, entities) of one real report, keeps each feature with probability 0.75 and adds
each feature of a second random report with probability 0.25, so the vocabulary and set sizes are
those of real reports and exact copies are rare.

    .venv/bin/python benchmarks/bench_similarity.py                  # parses corpora/openi/reports.csv (or reuses out/openi)
    .venv/bin/python benchmarks/bench_similarity.py out/openi-cx14 --n 20000
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "corpora" / "openi" / "reports.csv"
REUSE = ROOT / "out" / "openi"


def synthetic_sets(records: list[dict], n: int, seed: int = 0) -> dict[str, list[set[str]]]:
    from radtool.analysis.features import FAMILIES, feature_sets

    rng = random.Random(seed)
    real = {f: [sorted(feature_sets(r, f)) for r in records] for f in FAMILIES}
    out: dict[str, list[set[str]]] = {f: [] for f in FAMILIES}
    for _ in range(n):
        a, b = rng.randrange(len(records)), rng.randrange(len(records))
        for f in FAMILIES:
            base, other = real[f][a], real[f][b]
            keep = [x for x in base if rng.random() < 0.75]
            mix = [x for x in other if rng.random() < 0.25]
            out[f].append(set(keep) | set(mix))
    return out


def load_records(parse_dir: Path | None) -> tuple[list[dict], str]:
    from radtool.analysis.corpus import is_parse_dir, load_parse_dir

    if parse_dir is not None:
        return load_parse_dir(parse_dir).records, str(parse_dir)
    if is_parse_dir(REUSE):
        return load_parse_dir(REUSE).records, f"{REUSE.relative_to(ROOT)} (reused)"
    from radtool.cli.parse import parse

    with tempfile.TemporaryDirectory(prefix="bench-sim-") as tmp:
        t = time.perf_counter()
        parse(REPORTS, Path(tmp), schema="chexpert")
        print(f"parsed {REPORTS.relative_to(ROOT)} in {time.perf_counter() - t:.1f} s", flush=True)
        return load_parse_dir(Path(tmp)).records, f"{REPORTS.relative_to(ROOT)} (parsed now)"


def run(ids: list[str], sets: dict[str, list[set[str]]], k: int, memory_mb: float, workers: int | None, trace: bool) -> dict:
    from radtool.analysis.similarity import SimilarityIndex, top_k_neighbors

    if trace:
        tracemalloc.start()
    t1 = time.perf_counter()
    index = SimilarityIndex(ids, sets)
    t2 = time.perf_counter()
    result = top_k_neighbors(index, k, dup_threshold=0.9, memory_mb=memory_mb, workers=workers)
    t3 = time.perf_counter()
    traced = tracemalloc.get_traced_memory()[1] / 2**20 if trace else float("nan")
    if trace:
        tracemalloc.stop()
    return {"index": index, "result": result, "index_s": t2 - t1, "topk_s": t3 - t2, "traced": traced,
            "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # KiB on Linux


def report(label: str, n: int, r: dict, k: int, memory_mb: float) -> None:
    index, result = r["index"], r["result"]
    print(f"== {label}: {n:,} reports")
    print(f"vocabulary         {({f: len(fam.vocab) for f, fam in index.families.items()})}; "
          f"dense columns {({f: fam.dense.shape[1] for f, fam in index.families.items()})}")
    print(f"index              {r['index_s']:.2f} s")
    print(f"top-{k} neighbours   {r['topk_s']:.2f} s ({r['topk_s'] / 60:.1f} min; tiles of {index.tile_size(memory_mb)})")
    print(f"peak memory        {r['traced']:,.0f} MiB traced (tracemalloc, index + scoring); {r['rss']:,.0f} MiB max RSS of the process so far")
    print(f"mean top-1         {float(result.combined[:, 0].mean()):.3f}; near-duplicate pairs ≥ 0.9: {result.duplicate_pairs:,}; "
          f"mean pairwise {result.mean_pairwise['combined']:.3f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("parse_dir", type=Path, nargs="?", default=None,
                    help="radtool parse output of the OpenI reports (default: parse corpora/openi/reports.csv, or reuse out/openi)")
    ap.add_argument("--n", type=int, default=100_000, help="synthetic reports (0: the real reports only)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--memory-mb", type=float, default=256, help="score memory budget")
    ap.add_argument("--workers", type=int, default=None, help="threads (default: the CPUs)")
    ap.add_argument("--no-tracemalloc", action="store_true", help="skip tracemalloc (it slows allocation a little)")
    args = ap.parse_args()

    from radtool.analysis.features import FAMILIES, feature_sets

    records, source = load_records(args.parse_dir)
    print(f"source             {source}; {len(records):,} reports; python {sys.version.split()[0]}", flush=True)
    real = {f: [feature_sets(r, f) for r in records] for f in FAMILIES}
    r = run([rec["id"] for rec in records], real, args.k, args.memory_mb, args.workers, not args.no_tracemalloc)
    report("real reports", len(records), r, args.k, args.memory_mb)
    del r
    if args.n > 0:
        t0 = time.perf_counter()
        sets = synthetic_sets(records, args.n)
        print(f"synthetic corpus   {args.n:,} reports built in {time.perf_counter() - t0:.1f} s", flush=True)
        r = run([f"s{i}" for i in range(args.n)], sets, args.k, args.memory_mb, args.workers, not args.no_tracemalloc)
        report("synthetic", args.n, r, args.k, args.memory_mb)


if __name__ == "__main__":
    main()
