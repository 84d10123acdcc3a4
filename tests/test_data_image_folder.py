"""Image-folder datasets: folders and archives, bad files, parallel decoding, the decode cache."""
from __future__ import annotations

import io
import os
import tarfile
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chainrule.data import (CIFAR10_CLASSES, CacheWarning, DataError, _cache, _decode, get_dataset,
                            image_folder, load_cifar10, load_image_folder)

REPO = Path(__file__).resolve().parents[1]
SHARED_ARCHIVE = REPO.parent / "shared" / "data" / "cifar10-train-jpeg.tar.gz"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "cache"))


def save_png(path: Path, pixels: np.ndarray, mode: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(pixels) if mode is None else Image.fromarray(pixels).convert(mode)
    img.save(path)


def make_folder(root: Path, sizes=(3, 2, 4), hw=(6, 5), seed=0) -> dict[str, np.ndarray]:
    """Classes c0, c1, ... with random PNGs; returns {relative path: pixels}."""
    rng = np.random.default_rng(seed)
    files = {}
    for k, count in enumerate(sizes):
        for i in range(count):
            rel = f"c{k}/img{i:02d}.png"
            files[rel] = rng.integers(0, 256, size=(*hw, 3), dtype=np.uint8)
            save_png(root / rel, files[rel])
    return files


def expected_arrays(files: dict[str, np.ndarray]):
    rels = sorted(files)  # class folders sort first, then paths
    X = np.stack([files[r] for r in rels])
    y = np.array([int(r.split("/")[0][1:]) for r in rels])
    return X, y


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def make_tar(root: Path, archive: Path, arcname: str) -> Path:
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(root, arcname=arcname)
    return archive


def test_folder_loads_sorted_classes_and_files(tmp_path):
    root = tmp_path / "imgs"
    files = make_folder(root)
    # Ignored: hidden files, non-image files, files outside class folders, hidden folders.
    (root / "c0" / ".hidden.png").write_bytes(b"junk")
    (root / "c1" / "notes.txt").write_text("not an image")
    (root / "README.md").write_text("top-level file")
    (root / ".git").mkdir()
    # Found: images in nested folders of a class.
    nested = np.full((6, 5, 3), 7, np.uint8)
    save_png(root / "c2" / "sub" / "deep.png", nested)
    files["c2/sub/deep.png"] = nested
    before = snapshot(root)
    ds = load_image_folder(root)
    X, y = expected_arrays(files)
    np.testing.assert_array_equal(ds.X_train, X)
    np.testing.assert_array_equal(ds.y_train, y)
    assert ds.classes == ("c0", "c1", "c2") and ds.X_test is None and ds.y_test is None
    assert ds.X_train.dtype == np.uint8 and ds.y_train.dtype == np.int64
    assert snapshot(root) == before  # nothing written into the user's folder


@pytest.mark.parametrize("arcname", ["top", "."])
def test_archive_matches_folder(tmp_path, arcname):
    root = tmp_path / "imgs"
    files = make_folder(root, sizes=(2, 3))
    archive = make_tar(root, tmp_path / "imgs.tar.gz", arcname)
    ds = load_image_folder(archive)
    X, y = expected_arrays(files)
    np.testing.assert_array_equal(ds.X_train, X)
    np.testing.assert_array_equal(ds.y_train, y)
    assert ds.classes == ("c0", "c1")
    ds2 = get_dataset(f"folder:{archive}")
    np.testing.assert_array_equal(ds2.X_train, X)


def test_modes_are_converted_to_rgb(tmp_path):
    rng = np.random.default_rng(1)
    gray = rng.integers(0, 256, size=(4, 4), dtype=np.uint8)
    rgba = rng.integers(0, 256, size=(4, 4, 4), dtype=np.uint8)
    save_png(tmp_path / "a" / "gray.png", gray)
    save_png(tmp_path / "b" / "rgba.png", rgba)
    ds = load_image_folder(tmp_path)
    np.testing.assert_array_equal(ds.X_train[0], np.repeat(gray[..., None], 3, axis=2))
    np.testing.assert_array_equal(ds.X_train[1], rgba[..., :3])


def test_corrupt_files_are_reported_by_path(tmp_path):
    root = tmp_path / "imgs"
    make_folder(root)
    (root / "c1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    good = io.BytesIO()
    Image.fromarray(np.zeros((6, 5, 3), np.uint8)).save(good, format="JPEG")
    (root / "c2" / "truncated.jpg").write_bytes(good.getvalue()[:40])
    with pytest.raises(DataError) as err:
        load_image_folder(root)
    msg = str(err.value)
    assert "2 file(s) could not be read" in msg
    assert str(root / "c1" / "broken.png") in msg and str(root / "c2" / "truncated.jpg") in msg
    archive = make_tar(root, tmp_path / "x.tar.gz", "x")
    with pytest.raises(DataError, match=r"x\.tar\.gz:x/c1/broken\.png"):
        load_image_folder(archive)


def test_empty_class_folder_is_an_error(tmp_path):
    root = tmp_path / "imgs"
    make_folder(root)
    (root / "empty").mkdir()
    (root / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match="class folder 'empty' contains no images"):
        load_image_folder(root)
    with pytest.raises(DataError, match="contains no images"):
        load_image_folder(make_tar(root, tmp_path / "x.tar.gz", "top"))
    with pytest.raises(DataError, match="no class folders"):
        load_image_folder(root / "empty")


def test_mixed_sizes_need_image_size(tmp_path):
    root = tmp_path / "imgs"
    make_folder(root, hw=(6, 5))
    save_png(root / "c1" / "big.png", np.zeros((9, 7, 3), np.uint8))
    with pytest.raises(DataError, match=r"big\.png is 9x7.*image_size"):
        load_image_folder(root)
    ds = load_image_folder(root, image_size=(4, 3))
    assert ds.X_train.shape == (10, 4, 3, 3)
    assert load_image_folder(root, image_size=8).X_train.shape == (10, 8, 8, 3)
    with pytest.raises(ValueError, match="image_size"):
        load_image_folder(root, image_size=(0, 3))


def test_parallel_decode_matches_serial(tmp_path):
    root = tmp_path / "imgs"
    files = make_folder(root, sizes=(300, 300), hw=(4, 4), seed=3)
    parallel = load_image_folder(root, num_workers=2, cache=False)
    serial = load_image_folder(root, num_workers=1, cache=False)
    X, y = expected_arrays(files)
    np.testing.assert_array_equal(parallel.X_train, X)
    np.testing.assert_array_equal(serial.X_train, X)
    np.testing.assert_array_equal(parallel.y_train, y)
    archive = make_tar(root, tmp_path / "a.tar.gz", "a")
    np.testing.assert_array_equal(load_image_folder(archive, num_workers=2, cache=False).X_train, X)


class _BrokenPool:
    """Stands in for ProcessPoolExecutor when a worker dies: every future is broken."""

    def __init__(self, max_workers):
        pass

    def submit(self, fn, *args):
        future = Future()
        future.set_exception(BrokenProcessPool("a worker was killed"))
        return future

    def shutdown(self, cancel_futures=False):
        pass


def test_broken_worker_pool_falls_back_to_serial(tmp_path, monkeypatch):
    monkeypatch.setattr(_decode, "ProcessPoolExecutor", _BrokenPool)
    monkeypatch.setattr(_decode, "_SERIAL_BELOW", 0)
    monkeypatch.setattr(image_folder, "chunk_size", lambda n, workers: 2)
    root = tmp_path / "imgs"
    files = make_folder(root)
    with pytest.warns(UserWarning, match="decoding in this process"):
        ds = load_image_folder(root, num_workers=2, cache=False)
    np.testing.assert_array_equal(ds.X_train, expected_arrays(files)[0])


def _cache_entries(tmp_path) -> list[Path]:
    return sorted((tmp_path / "cache" / "image_folder").glob("*"))


def test_cache_hit_and_invalidation(tmp_path, monkeypatch):
    root = tmp_path / "imgs"
    files = make_folder(root)
    first = load_image_folder(root)
    assert len(_cache_entries(tmp_path)) == 1

    calls = []
    real_decode = image_folder._decode_folder

    def counting(*args, **kwargs):
        calls.append(1)
        return real_decode(*args, **kwargs)
    monkeypatch.setattr(image_folder, "_decode_folder", counting)
    again = load_image_folder(root)
    assert calls == []  # served from the cache
    np.testing.assert_array_equal(again.X_train, first.X_train)

    # Rewrite one file: new pixels, new size/mtime -> decoded again, stale entry dropped.
    new = np.full((6, 5, 3), 200, np.uint8)
    save_png(root / "c1" / "img01.png", new)
    os.utime(root / "c1" / "img01.png", ns=(10**18, 10**18))
    files["c1/img01.png"] = new
    changed = load_image_folder(root)
    assert calls == [1]
    np.testing.assert_array_equal(changed.X_train, expected_arrays(files)[0])
    assert len(_cache_entries(tmp_path)) == 1

    # Removing a file also invalidates it.
    (root / "c0" / "img00.png").unlink()
    assert len(load_image_folder(root).X_train) == len(files) - 1
    assert calls == [1, 1]

    # A different image_size is a separate entry; a corrupt entry is ignored and rebuilt.
    load_image_folder(root, image_size=3)
    assert len(_cache_entries(tmp_path)) == 2
    for entry in _cache_entries(tmp_path):
        (entry / "X.npy").write_bytes(b"not an npy file")
    with pytest.warns(UserWarning, match="unreadable cache"):
        assert len(load_image_folder(root).X_train) == len(files) - 1


def test_archive_cache_invalidated_by_mtime(tmp_path, monkeypatch):
    root = tmp_path / "imgs"
    make_folder(root)
    archive = make_tar(root, tmp_path / "a.tar.gz", "a")
    load_image_folder(archive)

    def boom(*a, **k):
        raise AssertionError("decoded again")
    monkeypatch.setattr(image_folder, "_decode_archive", boom)
    load_image_folder(archive)
    os.utime(archive, ns=(10**18, 10**18))
    with pytest.raises(AssertionError, match="decoded again"):
        load_image_folder(archive)


def test_cached_arrays_are_copy_on_write_maps(tmp_path, monkeypatch):
    monkeypatch.setattr(_cache, "_MMAP_BYTES", 0)  # map every array, however small
    root = tmp_path / "imgs"
    files = make_folder(root)
    load_image_folder(root)
    cached = load_image_folder(root)
    assert isinstance(cached.X_train, np.memmap)
    cached.X_train[:] = 0  # writable, but only this process's copy changes
    np.testing.assert_array_equal(load_image_folder(root).X_train, expected_arrays(files)[0])


def test_unwritable_cache_warns_and_still_loads(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache dir should be")
    monkeypatch.setenv("CHAINRULE_DATA", str(blocker))
    root = tmp_path / "imgs"
    files = make_folder(root)
    with pytest.warns(CacheWarning, match="could not write cache"):
        ds = load_image_folder(root)
    np.testing.assert_array_equal(ds.X_train, expected_arrays(files)[0])


def test_cache_false_writes_nothing(tmp_path):
    root = tmp_path / "imgs"
    make_folder(root)
    load_image_folder(root, cache=False)
    assert not (tmp_path / "cache").exists()


def test_cifar10_image_folder_needs_cifar_classes(tmp_path):
    root = tmp_path / "imgs"
    make_folder(root)
    with pytest.raises(DataError, match="needs the class folders"):
        load_cifar10(root)


@pytest.mark.skipif(not SHARED_ARCHIVE.is_file(), reason="shared CIFAR-10 JPEG archive not present")
def test_shared_archive_subset(tmp_path):
    """50 images per class from the shared archive, repacked; decoded like Pillow does."""
    per_class: dict[str, int] = {}
    subset = tmp_path / "subset.tar.gz"
    raw = {}
    with tarfile.open(SHARED_ARCHIVE, "r:gz") as src, tarfile.open(subset, "w:gz") as dst:
        for member in src:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 3:
                continue
            if per_class.get(parts[1], 0) >= 50:
                if len(per_class) == 10 and all(v >= 50 for v in per_class.values()):
                    break
                continue
            per_class[parts[1]] = per_class.get(parts[1], 0) + 1
            data = src.extractfile(member).read()
            raw[member.name] = data
            dst.addfile(member, io.BytesIO(data))
    ds = load_cifar10(subset)
    assert ds.X_train.shape == (500, 32, 32, 3) and ds.classes == CIFAR10_CLASSES
    np.testing.assert_array_equal(np.bincount(ds.y_train), [50] * 10)
    first = sorted(raw)[0]
    np.testing.assert_array_equal(ds.X_train[0], np.asarray(Image.open(io.BytesIO(raw[first]))))
    assert 80 < ds.X_train.mean() < 170
