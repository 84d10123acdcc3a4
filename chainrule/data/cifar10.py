"""CIFAR-10 (Krizhevsky, 2009): the official python and binary releases, and image folders of it.

    ds = load_cifar10()                       # from the cache dir (download=True fetches it)
    ds = load_cifar10("~/data/cifar-10-python.tar.gz")  # or -binary.tar.gz, or their folders
    ds = load_cifar10("../shared/data/cifar10-train-jpeg.tar.gz")  # image-folder archive
    ds.X_train  # uint8 (50000, 32, 32, 3), ds.y_train int64 (50000,), ds.classes (10 names)

Pickled batches go through a restricted unpickler (see `_safe_pickle`), and only the official
layout is accepted: every batch holds exactly 10,000 uint8 rows of 3072 pixels and 10,000 labels
in [0, 10); a file or archive member larger than any official file is refused before it is
read, and an archive with absolute, ``..`` or control-character member names is refused. Data
fetched by ``download=True`` (or found in the cache dir) is checked against the official MD5s
before it is extracted or unpickled. Archives are read in memory, never extracted into a user's folder; the
decoded arrays are cached in the cache dir.
"""
from __future__ import annotations

import enum
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable

import numpy as np

from ._cache import ArrayCache, cache_dir
from ._safe_pickle import restricted_loads
from .dataset import DataError, Dataset, check_images, check_labels
from .download import (ChecksumError, bytes_md5, download_url, extract_tar, file_md5, read_member,
                       unsafe_member_reason, unsafe_names_error)
from .image_folder import IMAGE_EXTENSIONS, load_image_folder

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
_IMAGE_SHAPE = (32, 32, 3)
_ROW = 32 * 32 * 3
_FORMAT_VERSION = 1


@dataclass(frozen=True)
class CifarRelease:
    """Where an official CIFAR-10 release lives and what its files must hash to."""

    filename: str
    url: str
    md5: str
    folder: str
    train_files: tuple[str, ...]
    test_file: str
    meta_file: str
    member_md5: dict[str, str] = field(default_factory=dict)  # known per-file MD5s
    rows_per_batch: int = 10_000  # images in each batch file (every official batch has 10,000)

    @property
    def files(self) -> tuple[str, ...]:
        return (*self.train_files, self.test_file, self.meta_file)

    @property
    def max_file_bytes(self) -> int:
        """Largest file of the release read into memory: a batch's pixels and labels + 1 MiB.

        Each official python batch is about 31.0 MB (30,720,000 bytes of pixels); a bigger member
        or file is refused before it is read.
        """
        return self.rows_per_batch * (_ROW + 1) + (1 << 20)


PYTHON_RELEASE = CifarRelease(
    filename="cifar-10-python.tar.gz",
    url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    md5="c58f30108f718f92721af3b95e74349a",
    folder="cifar-10-batches-py",
    train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
    test_file="test_batch",
    meta_file="batches.meta",
    member_md5={
        "data_batch_1": "c99cafc152244af753f735de768cd75f",
        "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
        "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
        "data_batch_4": "634d18415352ddfa80567beed471001a",
        "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
        "test_batch": "40351d587109b95175f43aff81a1287e",
        "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
    },
)

BINARY_RELEASE = CifarRelease(
    filename="cifar-10-binary.tar.gz",
    url="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    md5="c32a1d4ab5d03f1284b67883e8d87530",
    folder="cifar-10-batches-bin",
    train_files=tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
    test_file="test_batch.bin",
    meta_file="batches.meta.txt",
)


class _Kind(enum.Enum):
    PYTHON = "python release"
    BINARY = "binary release"
    IMAGES = "image folder"


def _release(kind: _Kind) -> CifarRelease:
    # Looked up at call time so tests can substitute fixture releases.
    return PYTHON_RELEASE if kind is _Kind.PYTHON else BINARY_RELEASE


# ----------------------------------------------------------------------------- parsing batches

def _parse_python_batch(data: bytes, source: str, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch -> uint8 (rows, 32, 32, 3) images and int64 (rows,) labels.

    Only the official layout is accepted: 'data' a uint8 (rows, 3072) array, 'labels' ``rows``
    ints in [0, 10).
    """
    batch = restricted_loads(data, source)
    if not isinstance(batch, dict):
        raise DataError(f"{source}: expected a pickled dict, got {type(batch).__name__}")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    for key in ("data", "labels"):
        if key not in batch:
            raise DataError(f"{source}: missing key {key!r} (keys: {sorted(map(str, batch))})")
    flat = batch["data"]
    if not isinstance(flat, np.ndarray) or flat.dtype != np.uint8 or flat.shape != (rows, _ROW):
        desc = f"{flat.dtype}{list(flat.shape)}" if isinstance(flat, np.ndarray) else \
            type(flat).__name__
        raise DataError(f"{source}: expected 'data' as uint8 ({rows}, {_ROW}) (the official "
                        f"layout: {rows} images of 3x32x32 bytes), got {desc}")
    labels = batch["labels"]
    if not isinstance(labels, (list, np.ndarray)):
        raise DataError(f"{source}: expected 'labels' as a list of {rows} ints, got "
                        f"{type(labels).__name__}")
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataError(f"{source}: expected 'labels' as a list of ints, got "
                        f"{labels.dtype}{list(labels.shape)}")
    if len(labels) != rows:
        raise DataError(f"{source}: expected {rows} labels (one per image), got {len(labels)}")
    if labels.dtype == np.uint64 and len(labels) and labels.max() >= 10:  # may not fit int64
        i = int(np.argmax(labels >= 10))
        raise DataError(f"{source}: expected labels in [0, 10), got {int(labels[i])} at index {i}")
    labels = labels.astype(np.int64)
    check_labels(labels, 10, source, n=rows)
    return flat.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _parse_python_meta(data: bytes, source: str) -> tuple[str, ...]:
    meta = restricted_loads(data, source)
    if isinstance(meta, dict):
        meta = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in meta.items()}
    names = meta.get("label_names") if isinstance(meta, dict) else None
    if not isinstance(names, list) or len(names) != 10 or not all(isinstance(n, str) for n in names):
        raise DataError(f"{source}: expected 'label_names' with 10 class names, got {names!r}")
    return tuple(names)


def _parse_binary_batch(data: bytes, source: str, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """One binary batch (``rows`` records of 1 label byte + 3072 pixel bytes) -> images, labels."""
    if len(data) != rows * (_ROW + 1):
        raise DataError(f"{source}: size {len(data)} bytes is not {rows} records of "
                        f"{_ROW + 1} bytes (1 label byte + {_ROW} pixels) = "
                        f"{rows * (_ROW + 1)} bytes, the official layout")
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, _ROW + 1)
    labels = records[:, 0].astype(np.int64)
    check_labels(labels, 10, source)
    return records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _parse_binary_meta(data: bytes, source: str) -> tuple[str, ...]:
    names = tuple(line.strip() for line in data.decode("utf-8", "replace").splitlines()
                  if line.strip())
    if len(names) != 10:
        raise DataError(f"{source}: expected 10 class names (one per line), got {len(names)}")
    return names


def _read_release(kind: _Kind, read: Callable[[str, int], bytes], where: str,
                  verify: bool) -> Dataset:
    """Decode a release given ``read(filename, max_bytes) -> bytes`` for its batch folder's files."""
    release = _release(kind)
    parse = _parse_python_batch if kind is _Kind.PYTHON else _parse_binary_batch
    parse_meta = _parse_python_meta if kind is _Kind.PYTHON else _parse_binary_meta
    arrays = {}
    for name in release.files:
        data = read(name, release.max_file_bytes)
        expected = release.member_md5.get(name)
        if verify and expected is not None and bytes_md5(data) != expected:
            raise ChecksumError(f"{where}/{name} has MD5 {bytes_md5(data)}, expected {expected} "
                                "(official release); it is corrupt or was modified, delete it "
                                "and download again")
        source = f"{where}/{name}"
        arrays[name] = (parse_meta(data, source) if name == release.meta_file
                        else parse(data, source, release.rows_per_batch))
    train = [arrays[n] for n in release.train_files]
    X_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    X_test, y_test = arrays[release.test_file]
    return Dataset(np.ascontiguousarray(X_train), y_train, np.ascontiguousarray(X_test), y_test,
                   arrays[release.meta_file], name=f"cifar10 ({kind.value}: {where})")


def _folder_reader(folder: Path) -> Callable[[str, int], bytes]:
    def read(name: str, limit: int) -> bytes:
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(f"CIFAR-10 folder {folder} is missing {name}")
        size = path.stat().st_size
        if size > limit:
            raise DataError(f"{path}: {size} bytes is larger than any file of the official "
                            f"release (limit {limit} bytes); refusing to read it")
        with open(path, "rb") as f:
            return f.read(size)  # never more than was checked, even if the file grows
    return read


def _tar_reader(archive: Path, kind: _Kind) -> Callable[[str, int], bytes]:
    """Read the release's files from ``archive`` into memory (one pass, nothing extracted).

    A member larger than any official file is refused from its header, before it is read.
    """
    release = _release(kind)
    wanted = set(release.files)
    found: dict[str, bytes] = {}
    unsafe: list[tuple[str, str]] = []
    with tarfile.open(archive, "r:*") as tf:
        for member in tf:
            if (why := unsafe_member_reason(member.name)) is not None:
                unsafe.append((member.name, why))
                continue
            base = PurePosixPath(member.name).name
            if member.isfile() and base in wanted and not unsafe:
                if base in found:
                    raise DataError(f"{archive}: contains {base} twice; expected one CIFAR-10 "
                                    "batch folder")
                found[base] = read_member(tf, member, release.max_file_bytes, archive,
                                          "Every file of the official release is smaller.")
    if unsafe:
        raise unsafe_names_error(archive, unsafe)

    def read(name: str, limit: int) -> bytes:
        if name not in found:
            raise FileNotFoundError(f"CIFAR-10 archive {archive} has no file named {name}")
        return found[name]
    return read


# ----------------------------------------------------------------------------- locating sources

def _tar_kind(archive: Path) -> _Kind:
    """Recognise an archive by its first few files (cheap: stops early)."""
    py, binary = set(PYTHON_RELEASE.files), set(BINARY_RELEASE.files)
    with tarfile.open(archive, "r:*") as tf:
        for i, member in enumerate(tf):
            base = PurePosixPath(member.name).name
            if member.isfile():
                if base in py:
                    return _Kind.PYTHON
                if base in binary:
                    return _Kind.BINARY
                if PurePosixPath(base).suffix.lower() in IMAGE_EXTENSIONS:
                    return _Kind.IMAGES
            if i > 100:
                break
    raise DataError(f"{archive}: not a CIFAR-10 archive: expected cifar-10-python.tar.gz, "
                    "cifar-10-binary.tar.gz or a .tar.gz of <class>/<image> folders")


def _locate(path: Path) -> tuple[_Kind, Path]:
    """Find the release or image folder at ``path``: returns (kind, folder or archive)."""
    if path.is_file():
        return _tar_kind(path), path
    if not path.is_dir():
        raise FileNotFoundError(f"CIFAR-10 path {path} does not exist")
    for kind in (_Kind.PYTHON, _Kind.BINARY):
        release = _release(kind)
        for folder in (path / release.folder, path):
            if (folder / release.train_files[0]).is_file():
                return kind, folder
        if (path / release.filename).is_file():
            return kind, path / release.filename
    if any(p.is_dir() and not p.name.startswith(".") for p in path.iterdir()):
        return _Kind.IMAGES, path
    raise FileNotFoundError(
        f"no CIFAR-10 data in {path}: expected {PYTHON_RELEASE.folder}/ or "
        f"{PYTHON_RELEASE.filename} (or their binary versions), or <class>/<image> folders")


def _find_official(root: Path) -> tuple[_Kind, Path] | None:
    """An official release in ``root`` (extracted folder or archive), else None."""
    for kind in (_Kind.PYTHON, _Kind.BINARY):
        release = _release(kind)
        if (root / release.folder / release.train_files[0]).is_file():
            return kind, root / release.folder
        if (root / release.filename).is_file():
            return kind, root / release.filename
    return None


# ----------------------------------------------------------------------------- public API

def download_cifar10(root: str | os.PathLike | None = None, *, binary: bool = False) -> Path:
    """Download and extract an official CIFAR-10 release; returns its batch folder.

    Fetches ``cifar-10-python.tar.gz`` (or ``cifar-10-binary.tar.gz`` with ``binary=True``)
    into ``root`` (default: `cache_dir()`), checks the archive MD5 before extracting, and
    extracts with ``filter="data"``. Does nothing when the folder is already there.
    """
    release = BINARY_RELEASE if binary else PYTHON_RELEASE
    root = Path(root).expanduser() if root is not None else cache_dir()
    folder = root / release.folder
    if (folder / release.train_files[0]).is_file():
        return folder
    archive = root / release.filename
    if not archive.is_file():
        download_url(release.url, archive, release.md5)
    elif (digest := file_md5(archive)) != release.md5:
        raise ChecksumError(f"{archive} has MD5 {digest}, expected {release.md5}; delete it "
                            "and download again")
    return extract_tar(archive, root, release.folder)


def load_cifar10(root: str | os.PathLike | None = None, download: bool = False, *,
                 verify: bool | None = None, cache: bool = True) -> Dataset:
    """Load CIFAR-10 as uint8 (N, 32, 32, 3) images, int64 labels and class names.

    Args:
        root: None for the cache dir (`cache_dir()`), or a path to ``cifar-10-python.tar.gz``,
            ``cifar-10-binary.tar.gz``, their extracted folders, a folder holding one of them,
            or an image folder / ``.tar.gz`` of ``<class>/<image>`` files with the 10 CIFAR-10
            classes (e.g. the shared ``cifar10-train-jpeg.tar.gz``, which has no test split).
        download: fetch the official python release into ``root`` (or the cache dir) if it is
            not there. Without it, no network access ever happens.
        verify: check the official MD5s (archive and each batch) before extracting or
            unpickling. Default: on for data in the cache dir or fetched by ``download``; off
            for files you point to (those are still only read through the restricted
            unpickler and validated).
        cache: keep decoded arrays of archives in the cache dir (keyed by path, size, mtime).

    Returns:
        `Dataset` with X_train (50000, 32, 32, 3), y_train, X_test (10000, 32, 32, 3), y_test
        (None for image folders), classes.
    """
    if verify is None:
        verify = root is None or download
    if root is None or download:
        base = Path(root).expanduser() if root is not None else cache_dir()
        official = _find_official(base) if base.is_dir() else None
        if official is None and download:
            official = (_Kind.PYTHON, download_cifar10(base))
        if official is None:
            raise FileNotFoundError(
                f"CIFAR-10 not found in {base} (expected {PYTHON_RELEASE.folder}/ or "
                f"{PYTHON_RELEASE.filename}); pass download=True to fetch it from "
                f"{PYTHON_RELEASE.url}, or load a local copy with load_cifar10(PATH)")
        kind, path = official
        if verify and path.is_file() and (digest := file_md5(path)) != _release(kind).md5:
            raise ChecksumError(f"{path} has MD5 {digest}, expected {_release(kind).md5}; "
                                "delete it and download again")
        if verify and path.is_file():
            path = extract_tar(path, path.parent, _release(kind).folder)
    else:
        kind, path = _locate(Path(root).expanduser())

    if kind is _Kind.IMAGES:
        return _load_image_folder_cifar(path, cache)
    if path.is_dir():
        return _read_release(kind, _folder_reader(path), str(path), verify)
    return _load_release_archive(kind, path, verify, cache)


def _load_release_archive(kind: _Kind, archive: Path, verify: bool, cache: bool) -> Dataset:
    st = archive.stat()
    entry = ArrayCache("cifar10", source=["release", _FORMAT_VERSION, str(archive.resolve())],
                       content=[st.st_size, st.st_mtime_ns, verify])
    if cache and (arrays := entry.load()) is not None:
        try:
            check_images(arrays["X_train"], str(entry.path), _IMAGE_SHAPE)
            check_images(arrays["X_test"], str(entry.path), _IMAGE_SHAPE)
            return Dataset(arrays["X_train"], arrays["y_train"], arrays["X_test"],
                           arrays["y_test"], tuple(arrays["classes"].tolist()),
                           name=f"cifar10 ({kind.value}: {archive})")
        except (KeyError, DataError):
            pass  # stale or foreign cache entry: rebuild it
    ds = _read_release(kind, _tar_reader(archive, kind), str(archive), verify)
    if cache:
        entry.save({"X_train": ds.X_train, "y_train": ds.y_train, "X_test": ds.X_test,
                    "y_test": ds.y_test, "classes": np.array(ds.classes)})
    return ds


def _load_image_folder_cifar(path: Path, cache: bool) -> Dataset:
    ds = load_image_folder(path, cache=cache)
    if ds.classes != CIFAR10_CLASSES:
        raise DataError(f"{path}: a CIFAR-10 image folder needs the class folders "
                        f"{list(CIFAR10_CLASSES)}, got {list(ds.classes)}; use "
                        "load_image_folder / 'folder:PATH' for other datasets")
    check_images(ds.X_train, str(path), _IMAGE_SHAPE)
    return Dataset(ds.X_train, ds.y_train, None, None, ds.classes,
                   name=f"cifar10 ({_Kind.IMAGES.value}: {path})")
