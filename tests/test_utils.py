"""chainrule.utils: the one atomic writer, the one seed helper, the one pickle-free serialiser."""

from __future__ import annotations

import errno
import os
import stat

import numpy as np
import pytest

from chainrule.utils import atomic, seeding, serial


def test_atomic_write_replaces_the_file_and_fsyncs_file_and_folder(tmp_path, monkeypatch):
    target = tmp_path / "a.json"
    target.write_text("old")
    synced = []
    real = os.fsync
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    atomic.atomic_write_json(target, {"x": 1})
    assert target.read_text() == '{\n  "x": 1\n}\n'
    assert len(synced) == 2  # the temporary file, then the folder
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temporary file left


def test_a_failed_write_keeps_the_old_file_removes_the_temp_and_names_the_file(tmp_path, monkeypatch):
    target = tmp_path / "summary.json"
    target.write_text("old")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(OSError, match=f"cannot write {target}: No space left on device") as info:
        atomic.atomic_write_text(target, "new")
    assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["summary.json"]
    with pytest.raises(ZeroDivisionError):  # not an OSError: propagates as it is, the temp file is removed
        with atomic.atomic_open(target, "w") as f:
            f.write("half")
            1 / 0
    assert target.read_text() == "old" and len(list(tmp_path.iterdir())) == 1
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        atomic.atomic_write_json(target, {"x": float("nan")})  # refused before anything is opened
    with pytest.raises(FileNotFoundError, match="cannot write"):
        atomic.atomic_write_text(tmp_path / "missing" / "x.txt", "x")
    atomic.atomic_write_text(tmp_path / "made" / "x.txt", "x", mkdir=True)
    with pytest.raises(ValueError, match="mode must be 'w' or 'wb'"):
        with atomic.atomic_open(target, "a"):
            pass


def test_stale_temp_files_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    dead = tmp_path / ".x.npz.999999999.ab12.tmp"
    live = tmp_path / f".x.npz.{os.getpid()}.cd34.tmp"
    other = tmp_path / ".y.json.999999999.ef56.tmp"
    for p in (dead, live, other):
        p.write_bytes(b"half")
    assert atomic.remove_stale_temp_files(tmp_path, "*.npz") == [dead]
    assert live.exists() and other.exists()


def test_as_generator_is_the_one_seed_rule():
    g = np.random.default_rng(1)
    assert seeding.as_generator(g) is g
    assert seeding.as_generator(3).integers(0, 1000) == np.random.default_rng(3).integers(0, 1000)
    assert isinstance(seeding.as_generator(None), np.random.Generator)
    assert isinstance(seeding.as_generator(np.random.RandomState(0)), np.random.Generator)
    with pytest.raises(TypeError, match="rng must be a numpy Generator or an int seed, got None"):
        seeding.as_generator(None, name="rng", allow_none=False)
    with pytest.raises(ValueError, match="random_state must be a non-negative int, got -1"):
        seeding.as_generator(-1, name="random_state")
    with pytest.raises(TypeError, match="got True"):
        seeding.as_generator(True)


def test_save_tree_round_trips_nested_state_exactly(tmp_path):
    tree = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "meta": {"sizes": (3, 2), "lr": 0.1, "name": "x",
            "none": None, "rng": [2**64 - 1, 5]}, "list": [np.ones(2), {"deep": np.zeros((0, 4))}]}
    path = serial.save_tree(tmp_path / "t.npz", tree, header={"format": "test"}, format_version=3)
    header, back = serial.load_tree(path, max_version=3)
    assert header == {"format": "test", "format_version": 3}
    assert back["meta"] == tree["meta"] and isinstance(back["meta"]["sizes"], tuple)
    np.testing.assert_array_equal(back["w"], tree["w"])
    assert back["w"].dtype == np.float32 and back["list"][1]["deep"].shape == (0, 4)
    with pytest.raises(serial.FileFormatError, match="format version 3, newer than this chainrule reads"):
        serial.load_tree(path, max_version=2)
    with pytest.raises(TypeError, match="object arrays cannot be stored without pickle"):
        serial.save_tree(tmp_path / "o.npz", {"o": np.array([object()])})
    assert not (tmp_path / "o.npz").exists()


FULL_DISK = """
import resource, sys, warnings
from pathlib import Path
import numpy as np
from chainrule.train.history import write_json
from chainrule.train.runfolder import write_toml
from chainrule.utils.atomic import atomic_write_bytes, atomic_write_text
from chainrule.data._cache import ArrayCache
root = Path(sys.argv[1])
for name in ("s.json", "c.toml", "m.npz", "report.html"):
    (root / name).write_text("old")
resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.RLIM_INFINITY))
big = "x" * 5000
writes = [("s.json", lambda p: write_json(p, {"a": big})), ("c.toml", lambda p: write_toml(p, {"a": big})),
          ("m.npz", lambda p: atomic_write_bytes(p, big.encode())),
          ("report.html", lambda p: atomic_write_text(p, big))]
for name, write in writes:
    try:
        write(root / name)
    except OSError as e:
        print(name, "|", e)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    ok = ArrayCache("images", "src", {"k": 1}, root=root / "cache").save({"x": np.zeros(5000)})
print("cache", "|", ok, [str(w.message) for w in caught])
"""


def test_a_full_disk_names_the_file_and_leaves_no_temp_file(tmp_path):
    """Every writer (JSON, TOML, bytes, text, the decode cache) under `ulimit -f` in a real process: the error
    names the file, the old file is intact, no temp file or folder is left."""
    import subprocess
    import sys

    from conftest import ROOT

    r = subprocess.run([sys.executable, "-c", FULL_DISK, str(tmp_path)], capture_output=True, text=True,
                       cwd=tmp_path, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = dict(line.split(" | ", 1) for line in r.stdout.strip().splitlines())
    for name in ("s.json", "c.toml", "m.npz", "report.html"):
        assert f"cannot write {tmp_path / name}: File too large" in lines[name], lines
        assert (tmp_path / name).read_text() == "old"
    assert lines["cache"].startswith("False") and "could not write cache" in lines["cache"], lines
    left = [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp") or ".tmp" in p.name]
    assert not left, left
