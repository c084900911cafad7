"""Corpus scale: every way of running parse writes the same bytes; bounded memo; shards; Dask; workers
that die with their parent; interruption leaves the old outputs; a warning when nothing is labelled."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from radtool.cli.merge import merge
from radtool.cli.parse import parse

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
from gen_corpus import generate  # noqa: E402

RADTOOL = Path(sys.executable).with_name("radtool")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("scale") / "archive.csv"
    generate(path, 120, seed=3)
    return path


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "out"
    parse(corpus, out, partition=1000)  # one partition, in process
    return out


def same_outputs(a: Path, b: Path) -> bool:
    return all((a / name).read_bytes() == (b / name).read_bytes() for name in ("labels.csv", "graphs.jsonl"))


def test_partitions_and_a_tiny_memo_change_no_byte(corpus, reference, tmp_path):
    summary = parse(corpus, tmp_path / "out", partition=17, memo_size=5)
    assert same_outputs(reference, tmp_path / "out")
    ref = json.loads((reference / "summary.json").read_text())
    assert summary["reports"] == ref["reports"] == 120
    assert summary["distinct_sentences"] == ref["distinct_sentences"]  # exact, whatever the memo keeps
    assert summary["parsed_sentences"] > ref["parsed_sentences"]  # evicted sentences are parsed again
    assert 0 < ref["memo"]["hit_rate"] < 1 and ref["memo"]["hit_rate"] > summary["memo"]["hit_rate"]
    rows = list(csv.reader((tmp_path / "out" / "labels.csv").open(newline="", encoding="utf-8")))
    assert [r[0] for r in rows[1:]] == [f"GEN{i:07d}" for i in range(1, 121)]  # rows in = rows out, in order


def test_memo_is_bounded():
    from radtool.io.readers import Report
    from radtool.parse import ReportParser

    parser = ReportParser(memo_size=3, numbers=False)  # each measurement its own sentence
    reports = [Report(id=str(i), row=i, sections=[(None, f"No pneumothorax. Effusion measuring {i} mm.")]) for i in range(1, 9)]
    records = list(parser.iter_records(reports, partition=2))
    assert len(records) == 8 and len(parser.memo) <= 3 and parser.memo.evictions > 0
    assert [r["labels"]["Pleural Effusion"] for r in records] == [1] * 8


def test_two_processes_write_the_same_bytes(corpus, reference, tmp_path):
    summary = parse(corpus, tmp_path / "out", n_process=2, partition=25)
    assert same_outputs(reference, tmp_path / "out") and summary["reports"] == 120


def test_shards_merge_into_the_same_bytes(corpus, reference, tmp_path):
    shards = []
    for i in range(3):
        shards.append(tmp_path / f"shard{i}")
        s = parse(corpus, shards[-1], shard=(i, 3), partition=30)
        assert s["shard"] == {"index": i, "count": 3, "partition": 30, "input": str(corpus)}
    assert sum(json.loads((d / "summary.json").read_text())["reports"] for d in shards) == 120
    summary = merge(tmp_path / "merged", list(reversed(shards)))
    assert same_outputs(reference, tmp_path / "merged")
    ref = json.loads((reference / "summary.json").read_text())
    assert summary["reports"] == 120 and summary["prevalence"] == ref["prevalence"] and summary["problems"] == ref["problems"]
    from radtool.errors import UserError

    with pytest.raises(UserError, match="missing"):
        merge(tmp_path / "bad", shards[:2])


@pytest.mark.slow
def test_dask_local_cluster_writes_the_same_bytes(corpus, reference, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        summary = parse(corpus, tmp_path / "out", scheduler=cluster.scheduler_address, partition=25)
    assert same_outputs(reference, tmp_path / "out") and summary["reports"] == 120
    assert summary["workers"]["scheduler"] == cluster.scheduler_address


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_with_their_parent_after_kill_9(corpus, tmp_path):
    big = tmp_path / "big.csv"
    generate(big, 3000, seed=4)
    proc = subprocess.Popen([str(RADTOOL), "parse", str(big), "--out", str(tmp_path / "out"), "-q", "-n", "2", "--partition", "50"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    workers: list[int] = []
    while time.time() < deadline and len(workers) < 2:
        time.sleep(0.5)
        workers = _children(proc.pid)
        assert proc.poll() is None, "parse ended before its workers were seen"
    assert len(workers) >= 2
    time.sleep(3)  # let them load and start working
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.2)
    assert not any(_alive(w) for w in workers)
    assert not (tmp_path / "out").exists() or not (tmp_path / "out" / "labels.csv").exists()


@pytest.mark.slow
def test_ctrl_c_leaves_the_old_outputs_and_says_so(corpus, reference, tmp_path):
    out = tmp_path / "out"
    parse(corpus, out, partition=1000)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    big = tmp_path / "big.csv"
    generate(big, 2000, seed=5)
    proc = subprocess.Popen([str(RADTOOL), "parse", str(big), "--out", str(out), "-q", "--partition", "20"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not any(p.name.startswith(".out.radtool-new") and any(p.glob(".graphs.jsonl.*"))
                                             for p in tmp_path.iterdir()):
        time.sleep(0.1)
    time.sleep(0.5)  # graphs.jsonl is being written now
    proc.send_signal(signal.SIGINT)
    _stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "left as it was" in stderr and "Traceback" not in stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def test_warning_when_the_chosen_columns_or_sections_label_nothing(tmp_path, capsys):
    path = tmp_path / "r.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "indication", "findings"])
        w.writerow(["a", "Cough.", "Small left pleural effusion."])
        w.writerow(["b", "Fever.", "No pneumothorax."])
    summary = parse(path, tmp_path / "o1", text_cols=["indication", "findings"], sections=["NOSUCH"])
    assert summary["warnings"] and "none of the 4 sentences" in summary["warnings"][0] and "FINDINGS (2)" in summary["warnings"][0]
    summary = parse(path, tmp_path / "o2", text_cols=["findings"])
    assert summary["warnings"] == []
    from typer.testing import CliRunner

    from radtool.cli import app

    result = CliRunner().invoke(app, ["parse", str(path), "--out", str(tmp_path / "o3"), "-q", "--text-col", "indication",
                                      "--text-col", "findings", "--section", "impression"])
    assert result.exit_code == 0 and "warning: no label was set" in result.output


def test_summary_counts_wall_time_from_process_start(tmp_path, small_csv):
    result = subprocess.run([str(RADTOOL), "parse", str(small_csv), "--out", str(tmp_path / "o"), "-q"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    s = json.loads((tmp_path / "o" / "summary.json").read_text())["seconds"]
    assert s["total_counts_from"] == "process start"
    assert s["total"] > s["load"] + s["parse"]  # start-up, imports and reading are in the total too


def test_run_totals_find_the_duplicate_ids_and_distinct_sentences_a_dict_and_a_set_would():
    # the ids and sentence hashes are kept as sorted numpy arrays (24 and 8 bytes each), not a dict and a set
    import random

    import numpy as np

    from radtool.cli.parse import RunTotals
    from radtool.parse import Partition

    rng = random.Random(5)
    totals, first_row, dups, hashes = RunTotals([]), {}, {}, set()
    row = 0
    for index in range(60):
        part = Partition(index)
        for _ in range(rng.randint(0, 40)):
            row += 1
            rid = rng.choice([f"r{row}", f"r{rng.randint(1, row)}", "", " ", "\ud800", f"x{rng.randint(0, 30)}"])
            part.ids.append(rid)
            part.rows.append(row)
            if first_row.setdefault(rid, row) != row:
                dups.setdefault(rid, [first_row[rid]]).append(row)
        part.hashes = np.unique(np.array([rng.getrandbits(64) if rng.random() < 0.3 else rng.randint(0, 500) for _ in range(50)], dtype=np.uint64))
        hashes.update(part.hashes.tolist())
        totals.add(part)
    assert totals.reports == row and dups and list(totals.dups.items()) == list(dups.items())  # same ids, rows, order
    assert totals.distinct_sentences == len(hashes)
    assert [p["problem"] for p in totals.all_problems()] == [f"duplicate id in rows {rows} (all kept, in order)" for rows in dups.values()]


def test_memo_is_bounded_in_bytes_too():
    import sys

    from radtool.parse import SentenceMemo

    memo = SentenceMemo(max_size=10**6, max_bytes=20_000)
    for i in range(200):
        memo.put(f"Effusion measuring {i} mm" + "." * (i % 50), {"tokens": ["Effusion"] * (i % 30), "i": i})
    assert 0 < len(memo) < 200 and memo.evictions == 200 - len(memo)
    assert memo.nbytes <= 20_000
    assert memo.nbytes == sum(sys.getsizeof(t) + len(b) + SentenceMemo.ENTRY_BYTES for t, b in memo._data.items())
    assert memo.get("Effusion measuring 199 mm" + "." * 49)["i"] == 199 and memo.get("Effusion measuring 0 mm") is None  # LRU
    memo.put("Effusion measuring 199 mm" + "." * 49, {"i": -1})  # replaced, counted once
    assert memo.nbytes == sum(sys.getsizeof(t) + len(b) + SentenceMemo.ENTRY_BYTES for t, b in memo._data.items())


def test_memo_gives_back_the_records_put_before_and_after_its_compression_dictionary():
    from radtool.parse import SentenceMemo

    memo = SentenceMemo(max_size=1000, max_bytes=10**8)
    records = {f"Sentence {i}.": {"tokens": ["Sentence", str(i), "."], "entities": [{"label": "Observation::definitely present", "start_ix": i % 3,
               "end_ix": i % 3, "relations": []}] * (i % 4), "mentions": [("Edema", 1)], "n": i, "x": 1.5 * i} for i in range(300)}
    for i, (text, record) in enumerate(records.items()):
        memo.put(text, record)
        if i == SentenceMemo.DICT_RECORDS - 2:
            assert memo.get("Sentence 0.") == records["Sentence 0."] and memo._packer is None  # stored pickled until then
    assert memo._packer is not None and len(memo) == 300
    assert all(memo.get(text) == record for text, record in records.items())  # those packed afterwards too
    stored = sum(len(b) for b in memo._data.values())
    assert stored * 2 < sum(len(__import__("pickle").dumps(r)) for r in records.values())


def test_a_broken_quote_at_the_end_of_a_big_input_fails_before_any_output(tmp_path):
    # parse streams its input, but counts it first: the whole CSV is checked before a report is parsed
    from radtool.errors import UserError

    path = tmp_path / "late.csv"
    generate(path, 2000, seed=6)
    with path.open("a", encoding="utf-8") as fh:
        fh.write('LATE1,"Heart size is normal. No effusion\n')
    lines = path.read_text(encoding="utf-8").count("\n")
    out = tmp_path / "out"
    with pytest.raises(UserError, match=f"quote opened on line {lines} is not closed"):
        parse(path, out)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]
