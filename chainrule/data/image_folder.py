"""Image-folder datasets: ``root/<class>/<image>`` (or a ``.tar.gz`` of such folders) -> arrays.

    ds = load_image_folder("photos/")                  # classes = sorted folder names
    ds = load_image_folder("cifar10-train-jpeg.tar.gz")  # <top>/<class>/<image> inside
    ds.X_train  # uint8 (N, H, W, 3); ds.y_train int64 (N,); ds.classes; ds.X_test is None

Like torchvision's ImageFolder: classes are the sorted names of the sub-folders, images are
found recursively inside each class folder and sorted by path, hidden files are skipped, and
files whose extension is not in `IMAGE_EXTENSIONS` are ignored. Images are converted to RGB.

Decoding runs in worker processes, and the decoded arrays are cached in the cache dir
(`cache_dir()`), keyed by the folder's file list, sizes and mtimes (an archive's size and
mtime). The next load memory-maps the cached arrays copy-on-write: it takes milliseconds,
and the arrays behave like ordinary writable arrays whose changes never reach the cache.
Nothing is ever written into ``root``.
"""
from __future__ import annotations

import io
import os
import tarfile
import warnings
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterator, Sequence, Union

import numpy as np

from chainrule.progress import Progress, progress

from ._cache import ArrayCache
from .dataset import DataError, Dataset, check_images, check_labels

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".pbm", ".pnm", ".bmp",
                              ".gif", ".tif", ".tiff", ".webp", ".tga"})
_FORMAT_VERSION = 1
_SERIAL_BELOW = 512      # fewer images than this: decode in-process (pool startup costs more)
_MAX_ERRORS_SHOWN = 20

Source = Union[str, bytes]  # a file path, or the bytes of an archive member


def _is_image(name: str) -> bool:
    return not name.startswith(".") and PurePosixPath(name).suffix.lower() in IMAGE_EXTENSIONS


def _parse_size(image_size: int | Sequence[int] | None) -> tuple[int, int] | None:
    if image_size is None:
        return None
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in size):
        raise ValueError(f"image_size must be a positive int or (height, width), got {image_size!r}")
    return int(size[0]), int(size[1])


# ----------------------------------------------------------------------------- decoding

@dataclass
class _Chunk:
    """Decoded images of one chunk, plus what went wrong (filled in by a worker)."""

    images: np.ndarray | None = None                         # (n, H, W, 3) uint8
    errors: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    sizes: list[tuple[str, tuple[int, int]]] = field(default_factory=list)  # odd (H, W)


def _decode_one(src: Source, size: tuple[int, int] | None) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(src) if isinstance(src, bytes) else src) as im:
        im = im.convert("RGB") if im.mode != "RGB" else im
        if size is not None and im.size != (size[1], size[0]):
            im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
        w, h = im.size
        return np.frombuffer(im.tobytes(), dtype=np.uint8).reshape(h, w, 3)


def _decode_chunk(names: list[str], sources: list[Source], size: tuple[int, int] | None) -> _Chunk:
    """Decode a list of images (runs in a worker process).

    Without a target ``size`` the first readable image fixes the chunk's size; images of
    another size are reported in ``sizes`` (the first entry is the chunk's reference).
    """
    chunk = _Chunk()
    count = 0
    ref = size
    for name, src in zip(names, sources):
        try:
            img = _decode_one(src, size)
        except Exception as exc:  # Pillow raises many types for bad files
            chunk.errors.append((name, f"{type(exc).__name__}: {exc}"))
            continue
        if chunk.images is None:
            ref = img.shape[:2]
            chunk.images = np.empty((len(names), *img.shape), dtype=np.uint8)
            chunk.sizes.append((name, ref))
        if img.shape[:2] != ref:
            chunk.sizes.append((name, img.shape[:2]))
            continue
        chunk.images[count] = img
        count += 1
    if chunk.images is not None:
        chunk.images = chunk.images[:count]
    return chunk


class _Decoder:
    """Submits chunks of images to worker processes (or decodes in-process), keeping order.

    If the worker pool cannot start or breaks (e.g. a worker is killed), the affected chunks
    are decoded in this process instead, with a warning.
    """

    def __init__(self, size: tuple[int, int] | None, num_workers: int, chunk_size: int) -> None:
        self.size, self.num_workers, self.chunk_size = size, num_workers, chunk_size
        self.pool: Executor | None = None
        # One entry per chunk: (Future or decoded _Chunk, names, sources).
        self.results: list[tuple[Future | _Chunk, list[str], list[Source]]] = []
        self.names: list[str] = []
        self.sources: list[Source] = []
        self.serial = num_workers <= 1
        self.progress: Progress | None = None  # counts decoded images, if set

    def add(self, name: str, src: Source) -> None:
        self.names.append(name)
        self.sources.append(src)
        if len(self.names) >= self.chunk_size:
            self._flush(final=False)

    def _fall_back(self, exc: BaseException) -> None:
        if not self.serial:
            warnings.warn(f"parallel image decoding failed ({type(exc).__name__}: {exc}); "
                          "decoding in this process instead", UserWarning, stacklevel=4)
        self.serial = True

    def _flush(self, final: bool) -> None:
        if not self.names:
            return
        names, sources = self.names, self.sources
        self.names, self.sources = [], []
        # A pool only pays off when more than one chunk is decoded.
        if self.pool is None and not self.serial and not (final and not self.results):
            try:
                self.pool = ProcessPoolExecutor(self.num_workers)
            except (OSError, NotImplementedError, ImportError) as exc:  # no process support
                self._fall_back(exc)
        if self.pool is not None and not self.serial:
            try:
                future = self.pool.submit(_decode_chunk, names, sources, self.size)
                self.results.append((future, names, sources))
                return
            except (BrokenProcessPool, RuntimeError) as exc:
                self._fall_back(exc)
        self.results.append((_decode_chunk(names, sources, self.size), names, sources))
        if self.progress is not None:
            self.progress.update(len(names))

    def _collect(self) -> list[_Chunk]:
        chunks = []
        for result, names, sources in self.results:
            if isinstance(result, Future):
                try:
                    result = result.result()
                except BrokenProcessPool as exc:
                    self._fall_back(exc)
                    result = _decode_chunk(names, sources, self.size)
                if self.progress is not None:
                    self.progress.update(len(names))
            chunks.append(result)
        return chunks

    def finish(self, where: str) -> np.ndarray:
        """Wait for all chunks; raise DataError for unreadable files or mixed sizes."""
        self._flush(final=True)
        try:
            chunks = self._collect()
        finally:
            if self.pool is not None:
                self.pool.shutdown(cancel_futures=True)
        errors = [e for c in chunks for e in c.errors]
        if errors:
            shown = "\n  ".join(f"{name}: {why}" for name, why in errors[:_MAX_ERRORS_SHOWN])
            more = len(errors) - _MAX_ERRORS_SHOWN
            raise DataError(f"{where}: {len(errors)} file(s) could not be read as images:\n  "
                            f"{shown}" + (f"\n  ... and {more} more" if more > 0 else ""))
        sizes = [s for c in chunks for s in c.sizes]
        odd = [(n, s) for n, s in sizes if s != sizes[0][1]]
        if odd:
            (ref_name, ref), (name, s) = sizes[0], odd[0]
            raise DataError(f"{where}: images must all have the same size, but {ref_name} is "
                            f"{ref[0]}x{ref[1]} and {name} is {s[0]}x{s[1]} (height x width); "
                            "pass image_size=(height, width) to resize them")
        return np.concatenate([c.images for c in chunks])


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _workers(num_workers: int | None, n: int) -> int:
    if num_workers is None:
        num_workers = min(_available_cpus(), 8)
    if num_workers < 1:
        raise ValueError(f"num_workers must be >= 1 (or None for all cores), got {num_workers}")
    return 1 if n < _SERIAL_BELOW else num_workers


def _chunk_size(n: int, workers: int) -> int:
    return int(np.clip(-(-n // (workers * 8)), 64, 2048)) if workers > 1 else max(n, 1)


# ----------------------------------------------------------------------------- folder

@dataclass
class _Listing:
    classes: list[str]
    files: list[tuple[str, int]]       # (path relative to root, class index), sorted
    stats: list[tuple[str, int, int]]  # (relative path, size, mtime_ns) for the cache key


def _walk_images(folder: str, rel: str) -> Iterator[tuple[str, os.stat_result]]:
    with os.scandir(folder) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            yield from _walk_images(entry.path, f"{rel}/{entry.name}")
        elif entry.is_file() and _is_image(entry.name):
            yield f"{rel}/{entry.name}", entry.stat()


def _scan_folder(root: Path) -> _Listing:
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise DataError(f"{root}: no class folders found; expected {root}/<class>/<image> files")
    listing = _Listing(classes, [], [])
    for k, cls in enumerate(classes):
        found = 0
        for rel, st in _walk_images(str(root / cls), cls):
            listing.files.append((rel, k))
            listing.stats.append((rel, st.st_size, st.st_mtime_ns))
            found += 1
        if not found:
            raise DataError(f"{root / cls}: class folder '{cls}' contains no images (looked for "
                            f"{', '.join(sorted(IMAGE_EXTENSIONS))})")
    return listing


def _decode_folder(root: Path, listing: _Listing, size, num_workers) -> np.ndarray:
    n = len(listing.files)
    workers = _workers(num_workers, n)
    decoder = _Decoder(size, workers, _chunk_size(n, workers))
    with progress(n, f"decoding {root.name}/ (first load only)", "images") as bar:
        decoder.progress = bar
        for rel, _ in listing.files:
            decoder.add(str(root / rel), str(root / rel))
        return decoder.finish(str(root))


# ----------------------------------------------------------------------------- archive

def _class_of(parts: tuple[str, ...], strip: int) -> str | None:
    return parts[strip] if len(parts) > strip + 1 else None


def _decode_archive(archive: Path, size, num_workers) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read an image-folder archive in one pass, decoding chunks while the rest is read."""
    workers = _workers(num_workers, _SERIAL_BELOW)  # the image count is unknown until the end
    decoder = _Decoder(size, workers, 1024 if workers > 1 else 1 << 30)
    names: list[str] = []
    dirs: list[str] = []
    with open(archive, "rb") as raw, tarfile.open(fileobj=raw, mode="r:*") as tf, \
            progress(archive.stat().st_size, f"decoding {archive.name} (first load only)", "B") as bar:
        for member in tf:
            bar.set(raw.tell())  # compressed bytes read: the images are decoded while the archive is read
            parts = PurePosixPath(member.name).parts
            if any(p.startswith(".") for p in parts):
                continue
            if member.isdir():
                dirs.append(member.name)
            elif member.isfile() and _is_image(parts[-1]):
                names.append(member.name)
                decoder.add(f"{archive}:{member.name}", tf.extractfile(member).read())
    if not names:
        raise DataError(f"{archive}: no images found; expected <class>/<image> files "
                        f"(extensions {', '.join(sorted(IMAGE_EXTENSIONS))})")
    # Files are <class>/<image> or <top>/<class>/<image>: strip one common top folder.
    split = [tuple(p for p in PurePosixPath(n).parts if p != ".") for n in names]
    strip = int(all(len(p) >= 3 for p in split) and len({p[0] for p in split}) == 1)
    labels_by_name = [_class_of(p, strip) for p in split]
    classes = sorted({c for c in labels_by_name if c is not None})
    top = split[0][:strip]
    for d in dirs:  # class folders present in the archive but without images
        parts = tuple(p for p in PurePosixPath(d).parts if p != ".")
        if len(parts) == strip + 1 and parts[:strip] == top and parts[-1] not in classes:
            raise DataError(f"{archive}: class folder '{d}' contains no images")
    if not classes:
        raise DataError(f"{archive}: no class folders found; expected <class>/<image> files")
    X = decoder.finish(str(archive))
    keep = np.array([c is not None for c in labels_by_name])
    index = {c: k for k, c in enumerate(classes)}
    labels = [index[c] if c is not None else -1 for c in labels_by_name]
    order = sorted(np.flatnonzero(keep).tolist(), key=lambda i: (labels[i], split[i]))
    y = np.array(labels, dtype=np.int64)
    if order != list(range(len(names))):
        X, y = X[order], y[order]
    return X, y, classes


# ----------------------------------------------------------------------------- public API

def load_image_folder(root: str | os.PathLike, image_size: int | Sequence[int] | None = None, *,
                      cache: bool = True, num_workers: int | None = None) -> Dataset:
    """Load ``root/<class>/<image>`` files (or a ``.tar``/``.tar.gz`` of them) into arrays.

    Args:
        root: a folder whose sub-folders are the classes, or a tar archive of such a folder
            (files ``<class>/<image>`` or ``<top>/<class>/<image>``).
        image_size: None to require all images to have one size, or an int / (height, width)
            to resize every image to (bilinear).
        cache: read/write the decoded arrays in the cache dir (keyed by file list, sizes and
            mtimes, so editing, adding or removing a file triggers a fresh decode).
        num_workers: decoding processes; None uses all cores (at most 8), 1 decodes in-process.

    Returns:
        `Dataset` with X_train uint8 (N, H, W, 3), y_train int64 (N,), classes (sorted folder
        names), and X_test = y_test = None.

    Raises:
        DataError: naming the paths of unreadable images (all of them, up to 20), an empty
            class folder, or two images of different sizes when ``image_size`` is None.
    """
    root = Path(root).expanduser()
    size = _parse_size(image_size)
    if not root.exists():
        raise FileNotFoundError(f"image folder {root} does not exist")
    is_archive = root.is_file()
    if is_archive:
        st = root.stat()
        listing = None
        content = [st.st_size, st.st_mtime_ns]
    else:
        listing = _scan_folder(root)
        content = [listing.classes, listing.stats]
    entry = ArrayCache("image_folder", content=content,
                       source=["archive" if is_archive else "folder", _FORMAT_VERSION,
                               str(root.resolve()), size])
    name = f"image folder {root}"
    if cache and (arrays := entry.load()) is not None:
        try:
            classes = tuple(arrays["classes"].tolist())
            check_images(arrays["X"], str(entry.path))
            check_labels(arrays["y"], len(classes), str(entry.path), n=len(arrays["X"]))
            return Dataset(arrays["X"], arrays["y"], None, None, classes, name=name)
        except (KeyError, DataError):
            pass  # stale or foreign cache entry: rebuild it
    if is_archive:
        try:
            X, y, classes = _decode_archive(root, size, num_workers)
        except tarfile.TarError as exc:
            raise DataError(f"{root}: not a readable tar archive ({exc}); expected a folder or "
                            "a .tar/.tar.gz of <class>/<image> files") from exc
    else:
        X = _decode_folder(root, listing, size, num_workers)
        classes = listing.classes
        y = np.array([k for _, k in listing.files], dtype=np.int64)
    ds = Dataset(X, y, None, None, tuple(classes), name=name)
    if cache:
        entry.save({"X": X, "y": y, "classes": np.array(classes)})
    return ds
