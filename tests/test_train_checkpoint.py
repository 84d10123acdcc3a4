"""Checkpoint files: exact pickle-free round trips, atomic writes, corruption detection, keep-last-N + best."""

import json
import os
import warnings
import zipfile

import numpy as np
import pytest

from chainrule.train.checkpoint import (
    FORMAT_VERSION, CheckpointError, CheckpointManager, CheckpointWarning, load_checkpoint, pack_state,
    save_checkpoint, unpack_state,
)


def _state(seed=0):
    rng = np.random.default_rng(seed)
    gen = np.random.default_rng(123)
    gen.random(5)
    return {
        "model": {"0.weight": rng.standard_normal((3, 4)).astype(np.float32), "0.bias": np.zeros(4, np.float32)},
        "optimizer": {"type": "Adam", "param_groups": [{"lr": 1e-3, "betas": [0.9, 0.999], "params": [0, 1]}],
                      "state": {"0.step": np.asarray(7, dtype=np.int64)}},
        "rng": {"gen": gen.bit_generator.state, "legacy": np.random.RandomState(5).get_state()},
        "counters": {"step": 12, "best": None, "loss": float("nan"), "flag": True, "name": 'a "quoted"\nname'},
        "history": [1.5, np.float32(2.5), np.int64(3)],
    }


def _assert_same(a, b):
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b)
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    elif isinstance(a, float) and a != a:
        assert b != b
    else:
        assert a == b and type(a) is type(b) or (isinstance(a, np.generic) and a.item() == b)


def test_round_trip_is_exact_and_pickle_free(tmp_path):
    state = _state()
    path = save_checkpoint(tmp_path / "c.npz", state)
    back = load_checkpoint(path)
    _assert_same(state["model"], back["model"])
    _assert_same(state["optimizer"], back["optimizer"])
    _assert_same(state["counters"], back["counters"])
    _assert_same(state["rng"]["legacy"], back["rng"]["legacy"])  # a tuple with an array stays a tuple
    assert back["rng"]["gen"] == state["rng"]["gen"]  # 128-bit PCG64 state as exact Python ints
    g = np.random.default_rng()
    g.bit_generator.state = back["rng"]["gen"]
    ref = np.random.default_rng(123)
    ref.random(5)
    assert g.random() == ref.random()
    assert back["history"] == [1.5, 2.5, 3]
    # The archive is plain .npz: readable without pickle, metadata is JSON with the format version.
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(z["__meta__"].tobytes())
        assert meta["format_version"] == FORMAT_VERSION
        assert "model/0.weight" in z.files
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]  # no temp file left behind


def test_pack_refuses_what_needs_pickle():
    with pytest.raises(TypeError, match="object arrays"):
        pack_state({"a": np.array([object()], dtype=object)})
    with pytest.raises(TypeError, match="dict keys must be strings"):
        pack_state({"a": {1: 2}})
    with pytest.raises(TypeError, match="cannot store a set"):
        pack_state({"a": {1, 2}})
    tree, arrays = pack_state({"x": np.arange(3)})
    assert unpack_state(tree, arrays)["x"].tolist() == [0, 1, 2]


def test_truncated_and_garbage_files_raise_checkpoint_error(tmp_path):
    path = save_checkpoint(tmp_path / "c.npz", _state())
    data = path.read_bytes()
    for name, content in [("trunc.npz", data[: len(data) // 2]), ("garbage.npz", b"not a zip at all"),
                          ("empty.npz", b"")]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError, match="corrupt or truncated"):
            load_checkpoint(tmp_path / name)
    # A flipped byte inside an array's data: the zip CRC catches it.
    flipped = bytearray(data)
    start = data.index(b"\x93NUMPY", data.index(b"model/0.weight"))
    header_len = int.from_bytes(data[start + 8:start + 10], "little")
    flipped[start + 10 + header_len + 4] ^= 0xFF  # inside the (3, 4) float32 weight's bytes
    (tmp_path / "flip.npz").write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="CRC"):
        load_checkpoint(tmp_path / "flip.npz")
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        load_checkpoint(tmp_path / "missing.npz")


def test_foreign_npz_and_newer_version_are_refused(tmp_path):
    np.savez(tmp_path / "plain.npz", a=np.zeros(2))
    with pytest.raises(CheckpointError, match="not a chainrule checkpoint"):
        load_checkpoint(tmp_path / "plain.npz")
    meta = json.dumps({"format_version": FORMAT_VERSION + 1, "state": {}}).encode()
    np.savez(tmp_path / "new.npz", __meta__=np.frombuffer(meta, dtype=np.uint8))
    with pytest.raises(CheckpointError, match="newer"):
        load_checkpoint(tmp_path / "new.npz")


def test_manager_keeps_last_n_plus_best(tmp_path):
    m = CheckpointManager(tmp_path, keep_last=2)
    for step in (10, 20, 30, 40):
        m.save({"step": step, "w": np.full(3, step)}, step, is_best=step == 20)
    assert [s for s, _ in m.steps()] == [30, 40]
    assert m.load_best()["step"] == 20  # best survives pruning of its step file
    state, path = m.load_latest()
    assert state["step"] == 40 and path.name == "step-00000040.npz"
    with pytest.raises(ValueError, match="keep_last"):
        CheckpointManager(tmp_path, keep_last=0)


def test_corrupt_latest_falls_back_with_a_warning(tmp_path):
    m = CheckpointManager(tmp_path, keep_last=3)
    for step in (5, 10):
        m.save({"step": step}, step)
    latest = m.step_path(10)
    latest.write_bytes(latest.read_bytes()[:-40])  # truncated (e.g. a disk filled up)
    with pytest.warns(CheckpointWarning, match=r"step-00000010\.npz.*falling back to step-00000005\.npz"):
        state, path = m.load_latest()
    assert state["step"] == 5
    m.step_path(5).write_bytes(b"junk")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CheckpointWarning)
        with pytest.raises(CheckpointError, match="no readable checkpoint"):
            m.load_latest()
    assert CheckpointManager(tmp_path / "none").load_latest() is None


def test_stale_temp_files_of_dead_writers_are_removed(tmp_path):
    m = CheckpointManager(tmp_path)
    stale = tmp_path / ".step-00000001.npz.999999999.x1y2.tmp"  # no such process
    stale.write_bytes(b"half a checkpoint")
    m.save({"x": 1}, 2)
    assert not stale.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["step-00000002.npz"]


def test_save_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "c.npz", {"v": np.ones(2)})
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"v": np.zeros(2)})
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["c.npz"]
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None
