"""Similarity at scale: the pruned top-k writes the same bytes as scoring every pair, locally and with
its row tiles on a 2-worker Dask LocalCluster."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from radtool.cli.similarity import similarity
from radtool.io import write_csv
from radtool.io.writers import atomic_dir

from ..analysis.records import ABSENT, ANATOMY, PRESENT, record

OUTPUTS = ("neighbors.csv", "near_duplicates.csv", "top1_similarity.png")


@pytest.fixture(scope="module")
def parse_dir(tmp_path_factory) -> Path:
    """A parse folder of 400 report records recombined from 40 bases (as benchmarks/bench_scale.py's
    synthetic_parse_dir does): groups of near neighbours, ties, and a few empty reports."""
    rng = random.Random(11)
    nps = [f"np{i}" for i in range(60)]
    verbs = ["be", "see", "note", "appear", "show"]
    ents = [(f"finding{i}", rng.choice([ABSENT, PRESENT])) for i in range(30)] + [(f"organ{i}", ANATOMY) for i in range(10)]
    bases = [(rng.sample(nps, rng.randint(2, 9)), rng.sample(verbs, rng.randint(0, 3)), rng.sample(ents, rng.randint(1, 8)))
             for _ in range(40)]
    records = []
    for i in range(400):
        a, b = rng.choice(bases), rng.choice(bases)
        parts = [x[: len(x) // 2] + y[len(y) // 2 :] for x, y in zip(a, b)]
        records.append(record(f"R{i:04d}", *parts) if i % 97 else record(f"R{i:04d}"))
    out = tmp_path_factory.mktemp("simscale") / "parsed"
    with atomic_dir(out, ["labels.csv", "graphs.jsonl"]) as tmp:
        with (tmp / "graphs.jsonl").open("w", encoding="utf-8") as fh:
            for r in records:
                fh.write(json.dumps(r) + "\n")
        write_csv(tmp / "labels.csv", ["report_id"], ([r["id"]] for r in records))
    return out


def same_outputs(a: Path, b: Path) -> bool:
    ja, jb = (json.loads((d / "similarity.json").read_text()) for d in (a, b))
    ja.pop("seconds")
    jb.pop("seconds")
    return ja == jb and all((a / name).read_bytes() == (b / name).read_bytes() for name in OUTPUTS)


@pytest.fixture(scope="module")
def all_pairs(parse_dir, tmp_path_factory, request) -> Path:
    """The outputs of scoring every pair (the kernel the pruned path replaces)."""
    import radtool.analysis.similarity as sim

    out = tmp_path_factory.mktemp("allpairs") / "out"
    mp = pytest.MonkeyPatch()
    mp.setattr(sim, "top_k_neighbors", lambda store, k, dup, **kw: sim._all_pairs_top_k(  # the feature store, loaded into memory
        sim.SimilarityIndex.from_store(store), k, dup, memory_mb=kw["memory_mb"], matrix=kw.get("matrix")))
    try:
        similarity(parse_dir, out, top_k=10, memory_mb=0.05)
    finally:
        mp.undo()
    return out


def test_pruned_run_writes_the_all_pairs_bytes(parse_dir, all_pairs, tmp_path):
    summary = similarity(parse_dir, tmp_path / "out", top_k=10, memory_mb=0.05)  # tiles of 40: 10 row tiles
    assert summary["reports"] == 400 and summary["near_duplicate_pairs"] > 0
    assert same_outputs(all_pairs, tmp_path / "out")
    rows = (tmp_path / "out" / "neighbors.csv").read_text().splitlines()
    assert not any(r.startswith("R0097,") for r in rows)  # an empty report has no neighbours


def test_dask_local_cluster_writes_the_same_bytes(parse_dir, all_pairs, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        summary = similarity(parse_dir, tmp_path / "dask", top_k=10, memory_mb=0.05, scheduler=cluster.scheduler_address)
        assert summary["reports"] == 400 and len(cluster.workers) == 2
        computed = {name: prefix.all_durations.get("compute", 0) for name, prefix in cluster.scheduler.task_prefixes.items()}
        assert computed.get("band_tile", 0) > 0 and computed.get("bound_tile", 0) > 0  # the row tiles ran on the workers
    assert same_outputs(all_pairs, tmp_path / "dask")
    from typer.testing import CliRunner

    from radtool.cli import app

    result = CliRunner().invoke(app, ["similarity", str(parse_dir), "--out", str(tmp_path / "local2"), "--top-k", "10",
                                      "--memory-mb", "0.05", "--scheduler", "local:2", "-q"])  # a cluster of its own
    assert result.exit_code == 0, result.output
    assert same_outputs(all_pairs, tmp_path / "local2")
