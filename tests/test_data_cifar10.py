"""CIFAR-10 loading: both official formats (tiny fixtures), the restricted unpickler, download."""
from __future__ import annotations

import dataclasses
import io
import os
import pickle
import re
import struct
import tarfile
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest

from chainrule.data import (ChecksumError, DataError, UnsafePickleError, cifar10, download,
                            get_dataset, load_cifar10)
from chainrule.data._safe_pickle import restricted_loads
from hostile_files import ndarray_call_pickle, reconstruct_pickle, sparse_tar_member, tar_bytes

N_PER_BATCH = 4
OFFICIAL_ROWS = {name: getattr(cifar10, name).rows_per_batch for name in ("PYTHON_RELEASE", "BINARY_RELEASE")}
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


# ----------------------------------------------------------------------------- fixture writers

def _emit(obj, out: bytearray) -> None:
    """Python 2 / NumPy 1.x pickle opcodes, as in the official cifar-10-python batches."""
    if isinstance(obj, dict):
        out += b"}("
        for k, v in obj.items():
            _emit(k, out)
            _emit(v, out)
        out += b"u"
    elif isinstance(obj, list):
        out += b"]("
        for v in obj:
            _emit(v, out)
        out += b"e"
    elif isinstance(obj, (str, bytes)):
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        out += (b"U" + bytes([len(data)]) if len(data) < 256 else b"T" + struct.pack("<I", len(data)))
        out += data
    elif isinstance(obj, int):
        out += b"K" + bytes([obj]) if 0 <= obj < 256 else b"J" + struct.pack("<i", obj)
    elif isinstance(obj, np.ndarray):
        assert obj.dtype == np.uint8
        out += b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R"
        out += b"(K\x01("
        for d in obj.shape:
            out += b"J" + struct.pack("<i", d)
        out += b"tcnumpy\ndtype\nU\x02u1K\x00K\x01\x87R"
        out += b"(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89"
        _emit(obj.tobytes(), out)
        out += b"tb"
    else:
        raise TypeError(type(obj))


def py2_pickle(obj) -> bytes:
    out = bytearray(b"\x80\x02")
    _emit(obj, out)
    return bytes(out + b".")


def make_arrays(seed: int = 0, n: int = N_PER_BATCH):
    """Flat CIFAR rows (6 batches x n, 3072) and labels, plus the expected HWC images."""
    rng = np.random.default_rng(seed)
    flat = rng.integers(0, 256, size=(6, n, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, size=(6, n))
    return flat, labels


def to_hwc(flat: np.ndarray) -> np.ndarray:
    return flat.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def write_python_release(root: Path, flat, labels, dumps=py2_pickle) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for i, name in enumerate(names):
        batch = {"batch_label": f"batch {i}", "labels": [int(v) for v in labels[i]],
                 "data": flat[i], "filenames": [f"img{j}.png" for j in range(flat.shape[1])]}
        (folder / name).write_bytes(dumps(batch))
    meta = {"num_cases_per_batch": flat.shape[1], "label_names": CLASSES, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(dumps(meta))
    (folder / "readme.html").write_text("<html></html>")
    return folder


def write_binary_release(root: Path, flat, labels) -> Path:
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for i, name in enumerate(names):
        records = np.concatenate([labels[i][:, None].astype(np.uint8), flat[i]], axis=1)
        (folder / name).write_bytes(records.tobytes())
    (folder / "batches.meta.txt").write_text("\n".join(CLASSES) + "\n\n")
    return folder


def make_tar(folder: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(folder, arcname=folder.name)
    return archive


def check_dataset(ds, flat, labels) -> None:
    assert ds.X_train.shape == (5 * N_PER_BATCH, 32, 32, 3) and ds.X_train.dtype == np.uint8
    assert ds.X_test.shape == (N_PER_BATCH, 32, 32, 3)
    assert ds.y_train.dtype == np.int64 and ds.y_test.dtype == np.int64
    np.testing.assert_array_equal(ds.X_train, to_hwc(flat[:5]))
    np.testing.assert_array_equal(ds.X_test, to_hwc(flat[5]))
    np.testing.assert_array_equal(ds.y_train, labels[:5].ravel())
    np.testing.assert_array_equal(ds.y_test, labels[5])
    assert ds.classes == tuple(CLASSES)
    # HWC layout: row = 1024 red, 1024 green, 1024 blue values, each 32x32 row-major.
    assert ds.X_train[1, 2, 3, 1] == flat[0, 1, 1024 + 2 * 32 + 3]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "cache"))


@pytest.fixture(autouse=True)
def _small_batches(monkeypatch):
    """The fixtures' batches hold N_PER_BATCH images instead of the official 10,000."""
    for name in ("PYTHON_RELEASE", "BINARY_RELEASE"):
        monkeypatch.setattr(cifar10, name, dataclasses.replace(getattr(cifar10, name),
                                                               rows_per_batch=N_PER_BATCH))


@pytest.fixture
def no_network(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("network access attempted")
    monkeypatch.setattr(download, "urlopen", fail)


# ----------------------------------------------------------------------------- python release

def test_py2_fixture_is_a_valid_pickle():
    flat, labels = make_arrays()
    data = py2_pickle({"data": flat[0], "labels": [1, 2]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # numpy.core alias under NumPy 2
        plain = pickle.loads(data, encoding="latin1")
    np.testing.assert_array_equal(plain["data"], flat[0])
    safe = restricted_loads(data, "fixture")
    np.testing.assert_array_equal(safe["data"], flat[0])
    assert safe["labels"] == [1, 2]


def test_python_release_folder_archive_and_parent(tmp_path, no_network):
    flat, labels = make_arrays()
    folder = write_python_release(tmp_path / "data", flat, labels)
    archive = make_tar(folder, tmp_path / "cifar-10-python.tar.gz")
    check_dataset(load_cifar10(folder), flat, labels)
    check_dataset(load_cifar10(tmp_path / "data"), flat, labels)
    check_dataset(load_cifar10(archive), flat, labels)
    check_dataset(get_dataset(f"cifar10:{archive}"), flat, labels)


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_batches_pickled_by_python3_numpy2(tmp_path, protocol):
    flat, labels = make_arrays(1)
    folder = write_python_release(tmp_path, flat, labels,
                                  dumps=lambda o: pickle.dumps(o, protocol=protocol))
    check_dataset(load_cifar10(folder), flat, labels)


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_malicious_pickle(tmp_path):
    marker = tmp_path / "pwned"
    flat, labels = make_arrays()
    folder = write_python_release(tmp_path / "data", flat, labels)
    payload = pickle.dumps({"data": _Evil(marker), "labels": [0]}, protocol=2)
    (folder / "data_batch_3").write_bytes(payload)
    with pytest.raises(UnsafePickleError, match=r"data_batch_3.*refusing.*system"):
        load_cifar10(folder)
    assert not marker.exists()
    # Also when read straight from an archive.
    archive = make_tar(folder, tmp_path / "evil.tar.gz")
    with pytest.raises(UnsafePickleError):
        load_cifar10(archive)
    assert not marker.exists()


@pytest.mark.parametrize("payload", [
    pickle.dumps(eval, protocol=2),                       # builtins.eval
    b"cbuiltins\nexec\n(Vprint(1)\ntR.",                  # exec("print(1)")
    b"csubprocess\nPopen\n((Vtrue\nltR.",                 # Popen(["true"])
    b"c_codecs\nencode\n(Vabc\nVrot13\ntR.",             # only latin-1 bytes are allowed
])
def test_restricted_unpickler_refuses_other_globals(payload):
    with pytest.raises(UnsafePickleError):
        restricted_loads(payload, "x")


def test_truncated_pickle_is_a_clear_error():
    data = py2_pickle({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]})
    with pytest.raises(pickle.UnpicklingError, match="not a readable pickle"):
        restricted_loads(data[:100], "data_batch_1")


def test_bad_labels_and_shapes_name_file_and_index(tmp_path):
    flat, labels = make_arrays()
    labels[1, 2] = 12
    folder = write_python_release(tmp_path / "a", flat, labels)
    with pytest.raises(DataError, match=r"data_batch_2.*\[0, 10\), got 12 at index 2"):
        load_cifar10(folder)
    flat, labels = make_arrays()
    folder = write_python_release(tmp_path / "b", flat, labels)
    (folder / "test_batch").write_bytes(py2_pickle({"data": flat[0][:, :100], "labels": [0] * 4}))
    with pytest.raises(DataError, match=r"test_batch.*uint8 \(4, 3072\).*got uint8\[4, 100\]"):
        load_cifar10(folder)
    (folder / "test_batch").write_bytes(py2_pickle({"data": flat[0], "labels": [0] * 3}))
    with pytest.raises(DataError, match="expected 4 labels"):
        load_cifar10(folder)
    (folder / "test_batch").unlink()
    with pytest.raises(FileNotFoundError, match="missing test_batch"):
        load_cifar10(folder)


# ----------------------------------------------------------------------------- binary release

def test_binary_release_folder_and_archive(tmp_path, no_network):
    flat, labels = make_arrays(2)
    folder = write_binary_release(tmp_path / "data", flat, labels)
    check_dataset(load_cifar10(folder), flat, labels)
    archive = make_tar(folder, tmp_path / "cifar-10-binary.tar.gz")
    check_dataset(load_cifar10(archive), flat, labels)
    check_dataset(load_cifar10(archive), flat, labels)  # from the decoded-array cache


def test_binary_release_bad_size_and_label(tmp_path):
    flat, labels = make_arrays(3)
    folder = write_binary_release(tmp_path, flat, labels)
    (folder / "data_batch_4.bin").write_bytes(b"\x00" * 3074)
    with pytest.raises(DataError, match=r"data_batch_4.bin.*size 3074 bytes is not 4 records of "
                                        r"3073 bytes"):
        load_cifar10(folder)
    bad = np.zeros((4, 3073), np.uint8)
    bad[1, 0] = 10
    (folder / "data_batch_4.bin").write_bytes(bad.tobytes())
    with pytest.raises(DataError, match=r"data_batch_4.bin.*got 10 at index 1"):
        load_cifar10(folder)


# ----------------------------------------------------------------------------- archive cache

def test_archive_decoded_once_then_cached(tmp_path, monkeypatch):
    flat, labels = make_arrays(4)
    archive = make_tar(write_python_release(tmp_path / "d", flat, labels), tmp_path / "c.tar.gz")
    check_dataset(load_cifar10(archive), flat, labels)

    def boom(*a, **k):
        raise AssertionError("archive re-read despite a valid cache")
    monkeypatch.setattr(cifar10, "_tar_reader", boom)
    check_dataset(load_cifar10(archive), flat, labels)
    os.utime(archive, ns=(1, 1))  # a changed archive invalidates the cache
    with pytest.raises(AssertionError, match="re-read"):
        load_cifar10(archive)


# ----------------------------------------------------------------------------- download

@pytest.fixture
def fixture_release(tmp_path, monkeypatch):
    """Point PYTHON_RELEASE at a fixture archive served by a file:// URL."""
    flat, labels = make_arrays(5)
    folder = write_python_release(tmp_path / "upstream", flat, labels)
    archive = make_tar(folder, tmp_path / "upstream.tar.gz")
    member_md5 = {p.name: download.file_md5(p) for p in folder.iterdir()}
    release = dataclasses.replace(cifar10.PYTHON_RELEASE, url=archive.as_uri(),
                                  md5=download.file_md5(archive), member_md5=member_md5)
    monkeypatch.setattr(cifar10, "PYTHON_RELEASE", release)
    return release, flat, labels


def _cache_files(tmp_path) -> list[str]:
    root = tmp_path / "cache"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def test_no_network_without_download(tmp_path, no_network):
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_cifar10()
    with pytest.raises(FileNotFoundError, match="download=True"):
        get_dataset("cifar10")


def test_download_verifies_extracts_and_loads_offline_after(tmp_path, fixture_release, monkeypatch):
    release, flat, labels = fixture_release
    check_dataset(load_cifar10(download=True), flat, labels)
    cache = tmp_path / "cache"
    assert (cache / release.filename).is_file()
    assert (cache / release.folder / "data_batch_1").is_file()
    assert not [p for p in _cache_files(tmp_path) if p.endswith((".part", ".extract"))]

    def fail(*a, **k):
        raise AssertionError("network access attempted")
    monkeypatch.setattr(download, "urlopen", fail)
    check_dataset(load_cifar10(), flat, labels)  # offline, verified against member MD5s
    check_dataset(load_cifar10(download=True), flat, labels)  # already there: no fetch
    # Archive kept but folder gone: verified again and re-extracted, still offline.
    for f in (cache / release.folder).iterdir():
        f.unlink()
    (cache / release.folder).rmdir()
    check_dataset(load_cifar10(), flat, labels)
    assert (cache / release.folder / "test_batch").is_file()


def test_download_checksum_mismatch_keeps_nothing(tmp_path, fixture_release, monkeypatch):
    release, _, _ = fixture_release
    monkeypatch.setattr(cifar10, "PYTHON_RELEASE", dataclasses.replace(release, md5="0" * 32))
    with pytest.raises(ChecksumError, match="expected 0000"):
        load_cifar10(download=True)
    assert _cache_files(tmp_path) == []


def test_interrupted_download_keeps_nothing(tmp_path, fixture_release, monkeypatch):
    class Broken(io.BytesIO):
        def read(self, size=-1):
            if self.tell() > 0:
                raise ConnectionResetError("connection reset by peer")
            return super().read(10)

    monkeypatch.setattr(download, "urlopen", lambda url, timeout: Broken(b"x" * 100))
    with pytest.raises(ConnectionResetError):
        load_cifar10(download=True)
    assert _cache_files(tmp_path) == []


def test_modified_batch_fails_checksum_before_unpickling(tmp_path, fixture_release):
    release, flat, labels = fixture_release
    load_cifar10(download=True)
    marker = tmp_path / "pwned"
    batch = tmp_path / "cache" / release.folder / "data_batch_2"
    batch.write_bytes(pickle.dumps(_Evil(marker)))
    with pytest.raises(ChecksumError, match="data_batch_2 has MD5"):
        load_cifar10()
    assert not marker.exists()


def test_extraction_refuses_path_traversal(tmp_path, fixture_release, monkeypatch):
    release, flat, labels = fixture_release
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tf:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"bad"))
        tf.add(tmp_path / "upstream" / release.folder, arcname=release.folder)
    monkeypatch.setattr(cifar10, "PYTHON_RELEASE", dataclasses.replace(
        release, url=evil.as_uri(), md5=download.file_md5(evil)))
    with pytest.raises(tarfile.FilterError):
        load_cifar10(download=True)
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "cache" / "escaped.txt").exists()
    assert not [p for p in _cache_files(tmp_path) if p.endswith(".extract")]
    assert not (tmp_path / "cache" / release.folder).exists()


# ----------------------------------------------------------------------------- hostile batches

def test_zero_stride_ndarray_bomb_is_refused():
    """The 281-byte "batch" whose 'data' is numpy.ndarray((150000, 3072), u1, 1-byte buffer,
    strides (0, 0)): a 460 MB array from one byte (seven such files: 2.75 GB). Refused before
    anything is built: numpy.ndarray is never called by the unpickler."""
    bomb = ndarray_call_pickle(((150_000, 3072), "u1", b"\x00", 0, (0, 0)),
                               ((150_000,), "<i8", b"\x00" * 8, 0, (0,)))
    assert len(bomb) < 400
    with pytest.raises(UnsafePickleError, match=r"data_batch_1: refusing to call numpy\.ndarray"):
        restricted_loads(bomb, "data_batch_1")


def test_uninitialised_memory_ndarray_is_refused():
    """numpy.ndarray(shape, dtype) with no buffer hands back uninitialised memory (labels read
    as old pointers): refused."""
    trick = ndarray_call_pickle(((N_PER_BATCH, 3072), "u1"), ((N_PER_BATCH,), "<i8"))
    with pytest.raises(UnsafePickleError, match="numpy.ndarray"):
        restricted_loads(trick, "data_batch_1")


def test_ndarray_bombs_refused_through_load_cifar10(tmp_path):
    flat, labels = make_arrays()
    folder = write_python_release(tmp_path / "data", flat, labels)
    (folder / "data_batch_2").write_bytes(
        ndarray_call_pickle(((N_PER_BATCH, 3072), "u1", b"\x00", 0, (0, 0))))
    with pytest.raises(UnsafePickleError, match=r"data_batch_2: refusing to call numpy\.ndarray"):
        load_cifar10(folder)


@pytest.mark.parametrize("shape, raw, why", [
    ((10_000, 3072), b"\x00", "needs 30720000 bytes but the pickle holds 1"),   # claims 30 MB
    ((4, 3072), b"\x00" * (4 * 3072 + 1), "needs 12288 bytes but the pickle holds 12289"),
    ((2**62, 2**62), b"\x00", "needs .* bytes but the pickle holds 1"),        # overflowing
    ((4, -3072), b"\x00", "non-negative ints"),
])
def test_array_state_must_hold_exactly_its_bytes(shape, raw, why):
    with pytest.raises(UnsafePickleError, match=why):
        restricted_loads(reconstruct_pickle(shape, "u1", raw), "data_batch_1")


@pytest.mark.parametrize("dtype", ["f8", "O", "V8", "U4"])
def test_only_plain_integer_dtypes_are_built(dtype):
    n = np.dtype(dtype).itemsize if dtype != "O" else 8
    with pytest.raises(UnsafePickleError, match=r"refusing numpy\.dtype"):
        restricted_loads(reconstruct_pickle((4,), dtype, b"\x00" * 4 * n), "data_batch_1")


def test_dtype_state_must_be_numpys_own():
    """A uint8 dtype whose __setstate__ claims an 8 GB item size (a void-type state) is refused."""
    payload = (b"\x80\x02cnumpy\ndtype\nU\x02u1K\x00K\x01\x87R"
               b"(K\x03U\x01|NNNJ\x00\x00\x00\x7fJ\xff\xff\xff\xffK\x00tb.")
    with pytest.raises(UnsafePickleError, match="not the state NumPy writes"):
        restricted_loads(payload, "x")


def test_array_declared_without_data_is_refused():
    payload = (b"\x80\x02}(U\x04datacnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
               b"K\x00\x85U\x01b\x87Ru.")
    with pytest.raises(UnsafePickleError, match="its data never followed"):
        restricted_loads(payload, "x")


@pytest.mark.parametrize("rows", [N_PER_BATCH - 1, N_PER_BATCH + 1])
def test_python_batch_must_hold_exactly_the_official_row_count(tmp_path, rows):
    """Every official batch holds exactly 10,000 images (N_PER_BATCH in these fixtures)."""
    flat, labels = make_arrays()
    folder = write_python_release(tmp_path / "a", flat, labels)
    data = np.zeros((rows, 3072), np.uint8)
    (folder / "data_batch_5").write_bytes(py2_pickle({"data": data, "labels": [0] * rows}))
    with pytest.raises(DataError, match=rf"data_batch_5: expected 'data' as uint8 \({N_PER_BATCH}, "
                                        rf"3072\).*got uint8\[{rows}, 3072\]"):
        load_cifar10(folder)


def test_official_releases_accept_exactly_10000_rows_per_batch():
    assert OFFICIAL_ROWS == {"PYTHON_RELEASE": 10_000, "BINARY_RELEASE": 10_000}
    data = np.zeros((10_000, 3072), np.uint8)
    X, y = cifar10._parse_python_batch(py2_pickle({"data": data, "labels": [3] * 10_000}), "b", 10_000)
    assert X.shape == (10_000, 32, 32, 3) and (y == 3).all()
    with pytest.raises(DataError, match=r"uint8 \(10000, 3072\).*got uint8\[9999, 3072\]"):
        cifar10._parse_python_batch(py2_pickle({"data": data[1:], "labels": [3] * 9999}), "b", 10_000)


@pytest.mark.parametrize("labels, why", [
    ([0, 1, 2, 10], r"labels in \[0, 10\), got 10 at index 3"),
    ([0, -1, 2, 3], r"labels in \[0, 10\), got -1 at index 1"),
    ([0, 1, 2, 2**64 - 1], r"'labels' as a list of ints, got float64"),
    (np.array([0, 1, 2, 2**64 - 1], np.uint64),
     r"labels in \[0, 10\), got 18446744073709551615 at index 3"),
    ([0, 1, 2], "4 labels .one per image., got 3"),
    ([0, 1, 2, 3, 4], "4 labels .one per image., got 5"),
    ([True, False, True, False], "'labels' as a list of ints, got bool"),
    ({"a": 1}, "'labels' as a list of 4 ints, got dict"),
])
def test_python_batch_labels_must_be_official(tmp_path, labels, why):
    flat, lab = make_arrays()
    folder = write_python_release(tmp_path / "a", flat, lab)
    batch = {"data": flat[0], "labels": labels}
    (folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(DataError, match=rf"test_batch: expected {why}"):
        load_cifar10(folder)


def test_binary_batch_must_hold_exactly_the_official_row_count(tmp_path):
    flat, labels = make_arrays(3)
    folder = write_binary_release(tmp_path, flat, labels)
    (folder / "data_batch_2.bin").write_bytes(np.zeros((2, 3073), np.uint8).tobytes())
    with pytest.raises(DataError, match=r"data_batch_2.bin: size 6146 bytes is not 4 records"):
        load_cifar10(folder)


def test_oversized_batch_file_is_refused_before_reading(tmp_path):
    """A 1 GiB (sparse: no disk used) data_batch_1 is refused from its size, never read."""
    flat, labels = make_arrays()
    folder = write_python_release(tmp_path / "a", flat, labels)
    with open(folder / "data_batch_1", "r+b") as f:
        f.truncate(1 << 30)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"data_batch_1: 1073741824 bytes is larger than any "
                                            r"file of the official release"):
            load_cifar10(folder)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20


def test_oversized_archive_member_is_refused_before_reading(tmp_path):
    """A 2 KiB archive whose data_batch_1 member declares 1 GiB (a sparse member): refused from
    its header, with memory bounded by the archive, not by the claim."""
    archive = tmp_path / "cifar-10-python.tar"
    archive.write_bytes(tar_bytes([], [sparse_tar_member("cifar-10-batches-py/data_batch_1",
                                                         1 << 30)]))
    assert archive.stat().st_size < 4096
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"member 'cifar-10-batches-py/data_batch_1' is "
                                            r"1,073,741,824 bytes, over the limit"):
            load_cifar10(archive, cache=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20


@pytest.mark.parametrize("bad", ["/tmp/x/cifar-10-batches-py/data_batch_1",
                                 "../cifar-10-batches-py/data_batch_1"])
def test_release_archive_with_unsafe_member_names_is_refused(tmp_path, bad):
    flat, labels = make_arrays()
    folder = write_python_release(tmp_path / "d", flat, labels)
    members = [(f"cifar-10-batches-py/{p.name}", p.read_bytes()) for p in sorted(folder.iterdir())
               if p.name != "data_batch_1"]
    members.append((bad, (folder / "data_batch_1").read_bytes()))
    archive = tmp_path / "c.tar"
    archive.write_bytes(tar_bytes(members))
    with pytest.raises(DataError, match=rf"(?s)1 member\(s\) have unsafe names.*{re.escape(bad)}"):
        load_cifar10(archive, cache=False)


@pytest.mark.parametrize("payload", [
    b"\x80\x04\x8e" + (8 * 10**9).to_bytes(8, "little") + b"x" * 10 + b".",   # BINBYTES8 "of 8 GB"
    b"\x80\x04\x96" + (8 * 10**9).to_bytes(8, "little") + b"x" * 10 + b".",   # BYTEARRAY8
    b"\x80\x02B" + (2**31).to_bytes(4, "little") + b"x" * 10 + b".",          # BINBYTES "of 2 GB"
    b"\x80\x02]r" + (2**32 - 1).to_bytes(4, "little") + b".",                # memo index 4e9 (LONG_BINPUT)
])
def test_lengths_and_memo_indices_a_pickle_claims_are_never_allocated(payload):
    """A 22-byte pickle whose opcode claims 8 GB of bytes (or a memo slot 4 billion entries out): at most what the
    file holds is read, whatever it claims."""
    tracemalloc.start()
    try:
        try:
            restricted_loads(payload, "data_batch_1")
        except pickle.UnpicklingError:
            pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20
