"""Image-folder datasets: folders and archives, bad files, parallel decoding, the decode cache."""
from __future__ import annotations

import gzip
import io
import os
import re
import struct
import tarfile
import tracemalloc
import zlib
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chainrule.data import (CIFAR10_CLASSES, CacheWarning, DataError, ImageSizeError, _cache, _decode,
                            get_dataset, image_folder, load_cifar10, load_image_folder,
                            parse_image_size)
from hostile_files import png_header, sparse_tar_member, tar_bytes

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


# ----------------------------------------------------------------------------- hostile files

def _png_bytes(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def _small_members(n: int = 2) -> list[tuple[str, bytes]]:
    """PNGs ds/cat/img0.png ... ds/dog/img<n-1>.png of 4x4 random pixels (incompressible: the
    last one, with a 4x4x3 byte text chunk more, is the largest)."""
    rng = np.random.default_rng(1)
    members = [(f"ds/{cls}/img{i}.png", _png_bytes(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)))
               for cls in ("cat", "dog") for i in range(n)]
    name, data = members[-1]
    extra = struct.pack(">I", 48) + b"tEXt" + b"c\0" + b"x" * 46
    members[-1] = (name, data[:-12] + extra + zlib.crc32(extra[4:]).to_bytes(4, "big") + data[-12:])
    return members


def _traced_peak(fn) -> int:
    """Peak bytes traced by tracemalloc (NumPy reports its arrays to it) while ``fn()`` runs."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_decompression_bomb_member_is_refused_before_reading(tmp_path):
    """A 6 KiB archive with a member 'cat/zz.jpg' that expands to 1 GiB (a sparse member: nothing
    large is written) is refused from its header; memory stays bounded by the archive."""
    archive = tmp_path / "bomb.tar"
    archive.write_bytes(tar_bytes(_small_members(), [sparse_tar_member("ds/cat/zz.jpg", 1 << 30)]))
    assert archive.stat().st_size < 8192

    def load():
        with pytest.raises(DataError, match=r"bomb.tar: member 'ds/cat/zz.jpg' is 1,073,741,824 "
                                            r"bytes, over the limit of 67,108,864 bytes.*"
                                            r"max_image_bytes"):
            load_image_folder(archive, cache=False, num_workers=1)
    assert _traced_peak(load) < 16 * 2**20
    assert image_folder.DEFAULT_MAX_IMAGE_BYTES == 64 * 2**20


def test_max_image_bytes_is_settable_for_archives_and_folders(tmp_path):
    members = _small_members()
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(gzip.compress(tar_bytes(members)))
    largest = max(len(data) for _, data in members)
    biggest = [name for name, data in members if len(data) == largest][0]
    with pytest.raises(DataError, match=rf"member '{biggest}' is {largest} bytes, over the limit "
                                        rf"of {largest - 1} bytes"):
        load_image_folder(archive, cache=False, max_image_bytes=largest - 1)
    assert len(load_image_folder(archive, cache=False, max_image_bytes=largest).X_train) == 4
    assert len(load_image_folder(archive, cache=False, max_image_bytes=None).X_train) == 4
    root = tmp_path / "folder"
    for name, data in members:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    with pytest.raises(DataError, match=rf"(?s)1 file\(s\) are larger than max_image_bytes="
                                        rf"{largest - 1} bytes and were not read:.*{biggest}: "
                                        rf"{largest} bytes"):
        load_image_folder(root / "ds", cache=False, max_image_bytes=largest - 1)
    with pytest.raises(ValueError, match="max_image_bytes must be a positive int"):
        load_image_folder(root / "ds", max_image_bytes=0)


@pytest.mark.parametrize("side, how", [
    (10_000, r"10000x10000 \(height x width\) is 100,000,000 pixels, over the limit of 89,478,485"),
    (20_000, r"over the limit of 89,478,485 pixels \(max_image_pixels\): .*400000000 pixels"),
])
def test_pixel_bomb_is_refused_before_decoding(tmp_path, monkeypatch, side, how):
    """A PNG declaring side x side pixels (a header of ~60 bytes, no pixel data): refused, naming
    the file, before it is decoded. (Pillow alone only warns below twice its limit, and allocates
    the image before finding the pixel data missing.)"""
    root = tmp_path / "imgs"
    make_folder(root, sizes=(1, 1))
    (root / "c0" / "big.png").write_bytes(png_header(side, side))
    decoded = []

    def to_array(im, size):
        decoded.append(im.size)
        return real_to_array(im, size)
    real_to_array = _decode._to_array
    monkeypatch.setattr(_decode, "_to_array", to_array)
    with pytest.raises(DataError, match=rf"1 file\(s\) could not be read as images:\n  "
                                        rf".*c0/big.png: {how}"):
        load_image_folder(root, cache=False, num_workers=1)
    assert decoded == [(5, 6), (5, 6)]  # the two real images only


def test_max_image_pixels_is_settable(tmp_path):
    root = tmp_path / "imgs"
    make_folder(root, sizes=(1, 1), hw=(8, 8))
    with pytest.raises(DataError, match=r"8x8 \(height x width\) is 64 pixels, over the limit of 63"):
        load_image_folder(root, cache=False, max_image_pixels=63)
    assert load_image_folder(root, cache=False, max_image_pixels=64).X_train.shape == (2, 8, 8, 3)
    assert load_image_folder(root, cache=False, max_image_pixels=None).X_train.shape == (2, 8, 8, 3)


def test_huge_first_image_gives_the_size_error_without_a_giant_allocation(tmp_path):
    """A 2000x2000 image sorted first, then 100 small ones: the size-mismatch error, and memory
    for one big image, not for 101 of them (the chunk is never allocated from the first size)."""
    root = tmp_path / "imgs"
    make_folder(root, sizes=(50, 50), hw=(4, 4))
    Image.new("RGB", (2000, 2000)).save(root / "c0" / "aaa.png")

    def load():
        with pytest.raises(ImageSizeError, match=r"aaa.png is 2000x2000 and .*img00.png is 4x4"):
            load_image_folder(root, cache=False, num_workers=1)
    assert _traced_peak(load) < 64 * 2**20  # one decoded 2000x2000 image is 12 MB


@pytest.mark.parametrize("bad, why", [
    ("/tmp/x/cat/y.png", "absolute path"),
    ("../ds/cat/y.png", "'..' component"),
    ("ds/cat/../../y.png", "'..' component"),
    ("ds/cat/a\nb.png", "control character"),
])
def test_unsafe_member_names_refuse_the_archive(tmp_path, bad, why):
    """An absolute, '..' or control-character name never relabels the dataset (an absolute
    member used to make the classes ['/', 'ds']) and is never skipped silently."""
    members = _small_members() + [(bad, _small_members(1)[0][1])]
    archive = tmp_path / "a.tar"
    archive.write_bytes(tar_bytes(members))
    with pytest.raises(DataError, match=rf"a.tar: 1 member\(s\) have unsafe names .*refusing the "
                                        rf"archive, nothing was used:\n  {re.escape(repr(bad))}: "
                                        rf"{why}"):
        load_image_folder(archive, cache=False)


def test_unsafe_member_names_are_all_listed(tmp_path):
    members = _small_members() + [(f"/abs/cat/{i}.png", b"x") for i in range(25)]
    archive = tmp_path / "a.tar"
    archive.write_bytes(tar_bytes(members))
    with pytest.raises(DataError, match=r"(?s)25 member\(s\) have unsafe names.*/abs/cat/19.png.*"
                                        r"\.\.\. and 5 more"):
        load_image_folder(archive, cache=False)


def test_link_members_are_skipped_with_a_warning_naming_them(tmp_path):
    archive = tmp_path / "a.tar"
    with tarfile.open(archive, "w") as tf:
        for name, data in _small_members():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, kind in (("ds/cat/sym.png", tarfile.SYMTYPE), ("ds/dog/hard.png", tarfile.LNKTYPE)):
            link = tarfile.TarInfo(name)
            link.type, link.linkname = kind, "ds/cat/img0.png"
            tf.addfile(link)
    with pytest.warns(UserWarning, match=r"skipped 2 member\(s\) named like images that are links "
                                         r".*'ds/cat/sym.png', 'ds/dog/hard.png'"):
        ds = load_image_folder(archive, cache=False)
    assert ds.classes == ("cat", "dog") and len(ds.X_train) == 4


def test_symlink_loop_in_a_folder_is_refused(tmp_path):
    root = tmp_path / "imgs"
    make_folder(root, sizes=(1, 1))
    (root / "c0" / "loop").symlink_to(root / "c0")
    with pytest.raises(DataError, match=r"c0/loop: this folder is its own ancestor \(a symlink loop\)"):
        load_image_folder(root, cache=False)


def test_followed_symlinks_still_load(tmp_path):
    root = tmp_path / "imgs"
    files = make_folder(root, sizes=(2, 2))
    elsewhere = tmp_path / "elsewhere"
    (root / "c1").rename(elsewhere)
    (root / "c1").symlink_to(elsewhere)
    ds = load_image_folder(root, cache=False)
    np.testing.assert_array_equal(ds.X_train, expected_arrays(files)[0])


@pytest.mark.parametrize("text, size", [("6x5", (6, 5)), ("7", (7, 7)), (" 3 X 4 ", (3, 4)),
                                        ((2, 3), (2, 3)), (9, (9, 9))])
def test_image_size_accepts_text_and_resizes(tmp_path, text, size):
    root = tmp_path / "imgs"
    make_folder(root, sizes=(1, 1), hw=(6, 5))
    assert parse_image_size(text) == size
    ds = get_dataset(f"folder:{root}", image_size=text)
    assert ds.X_train.shape == (2, *size, 3)


@pytest.mark.parametrize("bad", ["6x", "x5", "0x5", "-3", "6x5x2", "big", True, (6,), (6, 0)])
def test_image_size_refuses_bad_values(bad):
    with pytest.raises(ValueError, match="image_size must be"):
        parse_image_size(bad)


def test_size_mismatch_error_carries_the_two_images(tmp_path):
    root = tmp_path / "imgs"
    make_folder(root, sizes=(1,), hw=(6, 5))
    save_png(root / "c1" / "odd.png", np.zeros((3, 4, 3), np.uint8))
    with pytest.raises(ImageSizeError) as info:
        load_image_folder(root, cache=False)
    assert info.value.first == (str(root / "c0/img00.png"), (6, 5))
    assert info.value.other == (str(root / "c1/odd.png"), (3, 4))
    assert isinstance(info.value, DataError)


def test_cache_entry_with_a_lying_header_is_rebuilt_without_allocating_the_claim(tmp_path):
    """A cached X.npy of 2 images whose header is edited to claim 10,000,000 (300 MB): the entry
    is ignored from its header (np.load would allocate the claim before reading) and rebuilt."""
    root = tmp_path / "imgs"
    files = make_folder(root, sizes=(1, 1), hw=(4, 4))
    load_image_folder(root)
    (entry,) = _cache_entries(tmp_path)
    x_npy = entry / "X.npy"
    raw = x_npy.read_bytes()
    n = int.from_bytes(raw[8:10], "little")
    header = raw[10:10 + n].decode("latin1")
    lying = header.replace("(2, 4, 4, 3), }", "(10000000, 4, 4, 3), }").replace(" " * 7 + "\n", "\n")
    assert len(lying) == n
    x_npy.write_bytes(raw[:10] + lying.encode("latin1") + raw[10 + n:])

    def load():
        with pytest.warns(CacheWarning, match=r"header says \(10000000, 4, 4, 3\) uint8"):
            ds = load_image_folder(root)
        np.testing.assert_array_equal(ds.X_train, expected_arrays(files)[0])
    assert _traced_peak(load) < 16 * 2**20
