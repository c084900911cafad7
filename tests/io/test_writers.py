"""Atomic writers: umask-following modes, atomic_dir's whole-folder swap (kill -9 at random points),
truthful Ctrl-C notes."""

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from radtool.errors import UserError


def _umask_run(tmp_path, umask: int) -> dict:
    code = textwrap.dedent(f"""
        import json, os, sys
        os.umask({umask:#o})
        from radtool.io.writers import atomic_dir, write_csv, write_json
        out = sys.argv[1]
        write_csv(out + "/single.csv", ["a"], [[1]])
        with atomic_dir(out + "/folder") as tmp:
            write_json(tmp / "x.json", {{}})
            (tmp / "sub").mkdir()
        modes = {{p: oct(os.stat(os.path.join(out, p)).st_mode & 0o777) for p in ("single.csv", "folder", "folder/x.json", "folder/.radtool-complete.json")}}
        print(json.dumps(modes))
    """)
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


@pytest.mark.parametrize("umask,file_mode,dir_mode", [(0o022, "0o644", "0o755"), (0o002, "0o664", "0o775"), (0o077, "0o600", "0o700")])
def test_outputs_follow_the_umask(tmp_path, umask, file_mode, dir_mode):
    # issue 7 item 5: temp file + rename gave 0600 whatever the umask
    modes = _umask_run(tmp_path, umask)
    assert modes == {"single.csv": file_mode, "folder": dir_mode, "folder/x.json": file_mode, "folder/.radtool-complete.json": file_mode}


def test_atomic_dir_replaces_the_folder_as_a_whole(tmp_path):
    from radtool.io.writers import MARKER, atomic_dir, check_output_dir, write_csv

    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        assert tmp.parent == tmp_path and not out.exists()
        write_csv(tmp / "a.csv", ["x"], [[1]])
        (tmp / "old_only.txt").write_text("1")
    assert sorted(os.listdir(out)) == [MARKER, "a.csv", "old_only.txt"] and check_output_dir(out) is None
    with atomic_dir(out) as tmp:
        write_csv(tmp / "a.csv", ["x"], [[2]])
    assert sorted(os.listdir(out)) == [MARKER, "a.csv"]  # nothing of the old folder is left behind
    assert sorted(os.listdir(tmp_path)) == ["out"]  # no temporary folders either
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as tmp:
            write_csv(tmp / "a.csv", ["x"], [[3]])
            raise RuntimeError("boom")
    assert (out / "a.csv").read_bytes() == b"x\r\n2\r\n" and sorted(os.listdir(tmp_path)) == ["out"]


def test_atomic_dir_refuses_folders_it_did_not_write(tmp_path):
    from radtool.io.writers import atomic_dir

    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("years of work")
    with pytest.raises(UserError, match="thesis.tex"):
        with atomic_dir(home):
            pass
    assert (home / "thesis.tex").read_text() == "years of work"
    legacy = tmp_path / "legacy"  # an older radtool's parse folder: only its output names
    legacy.mkdir()
    (legacy / "labels.csv").write_text("old")
    with atomic_dir(legacy, outputs=("labels.csv", "graphs.jsonl", "summary.json")) as tmp:
        (tmp / "labels.csv").write_text("new")
    assert (legacy / "labels.csv").read_text() == "new"
    empty = tmp_path / "empty"
    empty.mkdir()
    os.chdir(empty)  # --out . in an empty folder: replaced through its absolute path
    try:
        with atomic_dir(".") as tmp:
            (tmp / "a.txt").write_text("here")
    finally:
        os.chdir(tmp_path)
    assert (empty / "a.txt").read_text() == "here"
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        with atomic_dir(tmp_path / "file"):
            pass


def test_check_output_dir_detects_changed_and_unmarked_folders(tmp_path):
    from radtool.io.writers import MARKER, atomic_dir, check_output_dir

    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("complete")
        (tmp / "b.txt").write_text("complete")
    assert check_output_dir(out) is None
    (out / "b.txt").write_text("half")  # as if a copy or an old writer stopped half way
    assert "b.txt" in check_output_dir(out)
    (out / MARKER).unlink()
    assert "no completion marker" in check_output_dir(out)


def test_fallback_swap_window_is_recovered(tmp_path, monkeypatch):
    from radtool.io import writers

    out = tmp_path / "out"
    with writers.atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("old")
    # what a kill between the fallback's two renames leaves: no out, the old folder beside it
    os.rename(out, tmp_path / ".out.radtool-old-999999999-x")
    assert "rename that back" in writers.check_output_dir(out)
    assert "restored" in writers.recover(out)
    assert (out / "a.txt").read_text() == "old" and writers.check_output_dir(out) is None
    monkeypatch.setattr(writers, "_renameat2_exchange", lambda a, b: False)  # a file system without RENAME_EXCHANGE
    with writers.atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("new")
    assert (out / "a.txt").read_text() == "new" and sorted(os.listdir(tmp_path)) == ["out"]


CHILD = textwrap.dedent("""
    import os, sys
    from radtool.io import writers
    if sys.argv[2] == "fallback":
        writers._renameat2_exchange = lambda a, b: False
    out, generation = sys.argv[1], int(sys.argv[3])
    print("ready", flush=True)
    while True:  # write generation after generation, so that a kill lands anywhere, the swap included
        generation += 1
        with writers.atomic_dir(out) as tmp:
            for name in ("labels.csv", "graphs.jsonl", "summary.json"):
                writers.write_csv(tmp / name, ["generation"], [[generation]] * 2000)
""")


def _generation(out) -> int:
    from radtool.io.writers import check_output_dir, recover

    recover(out)  # the fallback's window: restore the old folder, as the next run would
    assert check_output_dir(out) is None, check_output_dir(out)
    seen = {(out / name).read_text().splitlines()[1] for name in ("labels.csv", "graphs.jsonl", "summary.json")}
    assert len(seen) == 1, f"outputs of different runs side by side: {seen}"
    return int(seen.pop())


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["exchange", "fallback"])
def test_kill_9_at_random_points_leaves_a_complete_folder(tmp_path, mode):
    out = tmp_path / "out"
    rng = random.Random(9)
    generation, kills = 0, 0
    for _ in range(15):
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(out), mode, str(generation * 1000)], stdout=subprocess.PIPE)
        assert proc.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0.0, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        if out.exists() or any(p.name.startswith(".out.radtool-old-") for p in tmp_path.iterdir()):
            generation = max(generation, _generation(out) // 1000 + 1)
    assert kills == 15 and out.exists()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "out"]
    from radtool.io.writers import atomic_dir

    with atomic_dir(out):  # the next run removes what dead runs left beside out
        pass
    assert [p.name for p in tmp_path.iterdir()] == ["out"], leftovers


def test_interruption_notes_say_what_is_on_disk(tmp_path):
    from radtool.io.writers import atomic_dir, journal, write_json

    journal.reset()
    assert journal.interruption_note() == "nothing was written"
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(tmp_path / "out") as tmp:
            write_json(tmp / "a.json", {})  # inside the temporary folder: not visible, not "written"
            raise KeyboardInterrupt
    assert journal.interruption_note().endswith("out left as it was (outputs are swapped in only when all are written)")
    journal.reset()
    write_json(tmp_path / "scores.json", {})
    note = journal.interruption_note()
    assert note.startswith("1 output was already replaced, each complete") and "scores.json" in note
