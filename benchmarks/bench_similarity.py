"""Top-10 neighbours on a large synthetic corpus: time and peak memory.

The corpus is built from the parsed OpenI development reports: each synthetic report takes the
feature sets (noun phrases, verbs, entities) of one real report and swaps in a random part of a second
one, so the vocabulary and set sizes are those of real reports and exact copies are rare.

    .venv/bin/radtool parse ../shared/data/openi/reports.csv --out out/openi-cx14 --schema chestxray14 -q
    .venv/bin/python benchmarks/bench_similarity.py out/openi-cx14 --n 100000
"""

from __future__ import annotations

import argparse
import random
import resource
import time
import tracemalloc
from pathlib import Path


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("parse_dir", type=Path, help="radtool parse output of the OpenI development reports")
    ap.add_argument("--n", type=int, default=100_000, help="synthetic reports")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--memory-mb", type=float, default=256, help="score block budget")
    ap.add_argument("--query-rows", type=int, default=None,
                    help="score only this many reports against all n and extrapolate the full time (n / query-rows)")
    ap.add_argument("--no-tracemalloc", action="store_true", help="skip tracemalloc (it slows allocation a little)")
    args = ap.parse_args()

    from radtool.analysis.corpus import load_parse_dir
    from radtool.analysis.similarity import SimilarityIndex, top_k_neighbors

    records = load_parse_dir(args.parse_dir).records
    t0 = time.perf_counter()
    sets = synthetic_sets(records, args.n)
    build = time.perf_counter() - t0
    if not args.no_tracemalloc:
        tracemalloc.start()
    t1 = time.perf_counter()
    index = SimilarityIndex([f"s{i}" for i in range(args.n)], sets)
    t2 = time.perf_counter()
    partial = args.query_rows is not None and args.query_rows < args.n
    if partial:
        import numpy as np

        from radtool.analysis.similarity import _top_k

        for rows, combined, _per in index.blocks(np.arange(args.query_rows), memory_mb=args.memory_mb):
            combined[np.arange(len(rows)), rows] = -np.inf
            _top_k(combined, args.k)
    else:
        result = top_k_neighbors(index, args.k, dup_threshold=0.9, memory_mb=args.memory_mb)
    t3 = time.perf_counter()
    traced = tracemalloc.get_traced_memory()[1] / 2**20 if not args.no_tracemalloc else float("nan")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    vocab = {f: len(fam.vocab) for f, fam in index.families.items()}
    print(f"reports            {args.n:,} (synthetic, from {len(records):,} parsed OpenI reports; built in {build:.1f} s)")
    print(f"vocabulary         {vocab}")
    print(f"index              {t2 - t1:.2f} s")
    block = f"block of {index.block_size(args.memory_mb)} rows, --memory-mb {args.memory_mb:g}"
    if partial:
        full = (t3 - t2) * args.n / args.query_rows
        print(f"top-{args.k} neighbours   {t3 - t2:.2f} s for {args.query_rows:,} query reports against all {args.n:,}; "
              f"extrapolated to all {args.n:,}: {full:.0f} s ({full / 60:.1f} min)  ({block})")
    else:
        print(f"top-{args.k} neighbours   {t3 - t2:.2f} s  ({block})")
    print(f"peak memory        {traced:,.0f} MiB traced (tracemalloc, index + scoring); {rss:,.0f} MiB max RSS of the process")
    if not partial:
        print(f"mean top-1         {float(result.combined[:, 0].mean()):.3f}; near-duplicate pairs ≥ 0.9: {result.duplicate_pairs:,}")


if __name__ == "__main__":
    main()
