"""Image-folder datasets: ``root/<class>/<image>`` (or a ``.tar.gz`` of such folders) -> arrays.

    ds = load_image_folder("photos/")                  # classes = sorted folder names
    ds = load_image_folder("cifar10-train-jpeg.tar.gz")  # <top>/<class>/<image> inside
    ds.X_train  # uint8 (N, H, W, 3); ds.y_train int64 (N,); ds.classes; ds.X_test is None

Like torchvision's ImageFolder: classes are the sorted names of the sub-folders, images are
found recursively inside each class folder and sorted by path, hidden files are skipped, and
files whose extension is not in `IMAGE_EXTENSIONS` are ignored. Images are converted to RGB.

Untrusted files cost memory bounded by what they are: an image file or archive member larger
than ``max_image_bytes`` (default `DEFAULT_MAX_IMAGE_BYTES`, 64 MiB) is refused before it is
read; an image whose header declares more than ``max_image_pixels`` pixels (default
`DEFAULT_MAX_IMAGE_PIXELS`, Pillow's own default of 89,478,485) is refused before it is
decoded; sizes are compared from the headers, so an image of the wrong size is never decoded
and nothing is allocated for the size an image claims. An archive whose member names are
absolute, contain ``..`` or control characters is refused (all such names are listed); links
and other non-regular members named like images are skipped with a warning that counts and
names them (a folder's symlinks are followed; a symlink loop is refused).

Decoding runs in worker processes, and the decoded arrays are cached in the cache dir
(`cache_dir()`), keyed by the folder's file list, sizes and mtimes (an archive's size and
mtime). The next load memory-maps the cached arrays copy-on-write: it takes milliseconds,
and the arrays behave like ordinary writable arrays whose changes never reach the cache.
Nothing is ever written into ``root``.
"""
from __future__ import annotations

import os
import re
import tarfile
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Iterator, Sequence

import numpy as np

from chainrule.progress import progress

from ._cache import ArrayCache
from ._decode import DEFAULT_MAX_IMAGE_PIXELS, MAX_ERRORS_SHOWN, Decoder, chunk_size, workers
from .dataset import DataError, Dataset, check_images, check_labels
from .download import read_member, unsafe_member_reason, unsafe_names_error

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".pbm", ".pnm", ".bmp",
                              ".gif", ".tif", ".tiff", ".webp", ".tga"})
_FORMAT_VERSION = 1
DEFAULT_MAX_IMAGE_BYTES = 64 * 2**20  # a file or member over this is refused before it is read


def _is_image(name: str) -> bool:
    return not name.startswith(".") and PurePosixPath(name).suffix.lower() in IMAGE_EXTENSIONS


def parse_image_size(image_size: int | str | Sequence[int] | None) -> tuple[int, int] | None:
    """None, an int ``n``, ``(height, width)``, or text ``"n"`` / ``"HxW"`` -> (height, width) or None."""
    if image_size is None:
        return None
    if isinstance(image_size, str):
        m = re.fullmatch(r"\s*(\d+)\s*(?:[xX,]\s*(\d+)\s*)?", image_size)
        if m is None:
            raise ValueError(f"image_size must be N or HxW with positive integers (e.g. 32 or "
                             f"32x48), got {image_size!r}")
        image_size = (int(m[1]), int(m[2] or m[1]))
    size = (image_size, image_size) if isinstance(image_size, (int, np.integer)) \
        else tuple(image_size)
    if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                                 and s > 0 for s in size):
        raise ValueError(f"image_size must be a positive int or (height, width), got {image_size!r}")
    return int(size[0]), int(size[1])


def _check_limit(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int (or None for no limit), got {value!r}")
    return int(value)


# ----------------------------------------------------------------------------- folder

@dataclass
class _Listing:
    classes: list[str]
    files: list[tuple[str, int]]       # (path relative to root, class index), sorted
    stats: list[tuple[str, int, int]]  # (relative path, size, mtime_ns) for the cache key


def _walk_images(folder: str, rel: str, ancestors: frozenset[tuple[int, int]] = frozenset()
                 ) -> Iterator[tuple[str, os.stat_result]]:
    """(relative path, stat) of the images under ``folder``, sorted; symlinks are followed, loops refused."""
    st = os.stat(folder)
    here = (st.st_dev, st.st_ino)
    if here in ancestors:
        raise DataError(f"{folder}: this folder is its own ancestor (a symlink loop); remove the "
                        "link or point it elsewhere")
    ancestors = ancestors | {here}
    with os.scandir(folder) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            yield from _walk_images(entry.path, f"{rel}/{entry.name}", ancestors)
        elif entry.is_file() and _is_image(entry.name):
            yield f"{rel}/{entry.name}", entry.stat()


def _too_large_error(where: str, big: list[tuple[str, int]], limit: int) -> DataError:
    shown = "\n  ".join(f"{name}: {size:,} bytes" for name, size in big[:MAX_ERRORS_SHOWN])
    more = len(big) - MAX_ERRORS_SHOWN
    return DataError(f"{where}: {len(big)} file(s) are larger than max_image_bytes={limit:,} "
                     f"bytes and were not read:\n  {shown}"
                     + (f"\n  ... and {more} more" if more > 0 else "")
                     + "\npass a larger max_image_bytes (or None) to load them")


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


def _decode_folder(root: Path, listing: _Listing, size, num_workers, max_bytes: int | None,
                   max_pixels: int | None) -> np.ndarray:
    if max_bytes is not None:
        big = [(str(root / rel), nbytes) for rel, nbytes, _ in listing.stats if nbytes > max_bytes]
        if big:
            raise _too_large_error(str(root), big, max_bytes)
    n = len(listing.files)
    procs = workers(num_workers, n)
    decoder = Decoder(size, procs, chunk_size(n, procs), max_pixels)
    try:
        with progress(n, f"decoding {root.name}/ (first load only)", "images") as bar:
            decoder.progress = bar
            for rel, _ in listing.files:
                decoder.add(str(root / rel), str(root / rel))
            return decoder.finish(str(root))
    finally:
        decoder.close()


# ----------------------------------------------------------------------------- archive

def _class_of(parts: tuple[str, ...], strip: int) -> str | None:
    return parts[strip] if len(parts) > strip + 1 else None


def _decode_archive(archive: Path, size, num_workers, max_bytes: int | None,
                    max_pixels: int | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read an image-folder archive in one pass, decoding chunks while the rest is read.

    Unsafe member names refuse the whole archive (after one pass over the names, so all are
    listed); links and other non-regular members named like images are skipped with a warning.
    """
    procs = workers(num_workers, None)  # the image count is unknown until the end
    decoder = Decoder(size, procs, 1024 if procs > 1 else 1 << 30, max_pixels)
    try:
        return _read_archive(archive, decoder, max_bytes)
    finally:
        decoder.close()


def _read_archive(archive: Path, decoder: Decoder, max_bytes: int | None
                  ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    names: list[str] = []
    dirs: list[str] = []
    unsafe: list[tuple[str, str]] = []
    skipped: list[str] = []
    fix = "Pass a larger max_image_bytes (or None) to load_image_folder to allow it."
    with open(archive, "rb") as raw, tarfile.open(fileobj=raw, mode="r:*") as tf, \
            progress(archive.stat().st_size, f"decoding {archive.name} (first load only)", "B") as bar:
        for member in tf:
            bar.set(raw.tell())  # compressed bytes read: the images are decoded while the archive is read
            if (why := unsafe_member_reason(member.name)) is not None:
                unsafe.append((member.name, why))
                continue
            parts = PurePosixPath(member.name).parts
            if unsafe or not parts or any(p.startswith(".") for p in parts):
                continue  # after an unsafe name only the names are still looked at
            if member.isdir():
                dirs.append(member.name)
            elif _is_image(parts[-1]):
                if not member.isfile():
                    skipped.append(member.name)
                    continue
                names.append(member.name)
                limit = max_bytes if max_bytes is not None else member.size
                decoder.add(f"{archive}:{member.name}",
                            read_member(tf, member, limit, archive, fix))
    if unsafe:
        raise unsafe_names_error(archive, unsafe)
    if skipped:
        shown = ", ".join(repr(n) for n in skipped[:MAX_ERRORS_SHOWN])
        more = f" and {len(skipped) - MAX_ERRORS_SHOWN} more" if len(skipped) > MAX_ERRORS_SHOWN else ""
        warnings.warn(f"{archive}: skipped {len(skipped)} member(s) named like images that are "
                      f"links or other non-regular files (links are not followed inside "
                      f"archives): {shown}{more}", UserWarning, stacklevel=4)
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

def readable_class_names(classes: Sequence[str], where: str) -> tuple[str, ...]:
    """Class names as text every output can hold: a folder or member name that is not valid UTF-8 (Python keeps
    its bytes as lone surrogates, which no UTF-8 file, JSON report or plot can show) is shown with U+FFFD
    replacement characters, ``caf\ufffd`` for the Latin-1 bytes ``caf\xe9``. Two names that would then read the
    same are refused (DataError naming both): rename one."""
    shown = tuple(os.fsencode(c).decode("utf-8", "replace") if any("\udc80" <= ch <= "\udcff" for ch in c) else c
                  for c in classes)
    if len(set(shown)) != len(shown):
        first = {}
        for raw, text in zip(classes, shown):
            if text in first:
                raise DataError(f"{where}: class folders {os.fsencode(first[text])!r} and {os.fsencode(raw)!r} are "
                                f"not valid UTF-8 and would both be shown as {text!r}; rename one of them")
            first[text] = raw
    return shown


def load_image_folder(root: str | os.PathLike, image_size: int | str | Sequence[int] | None = None,
                      *, cache: bool = True, num_workers: int | None = None,
                      max_image_bytes: int | None = DEFAULT_MAX_IMAGE_BYTES,
                      max_image_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS) -> Dataset:
    """Load ``root/<class>/<image>`` files (or a ``.tar``/``.tar.gz`` of them) into arrays.

    Args:
        root: a folder whose sub-folders are the classes, or a tar archive of such a folder
            (files ``<class>/<image>`` or ``<top>/<class>/<image>``).
        image_size: None to require all images to have one size, or an int / (height, width)
            / text "N" or "HxW" to resize every image to (bilinear); see `parse_image_size`.
        cache: read/write the decoded arrays in the cache dir (keyed by file list, sizes and
            mtimes, so editing, adding or removing a file triggers a fresh decode).
        num_workers: decoding processes; None uses all cores (at most 8), 1 decodes in-process.
        max_image_bytes: a file or archive member larger than this is refused before it is read
            (None: no limit). The limits apply when files are read and decoded; a decode cached
            by an earlier call is reused as it is.
        max_image_pixels: an image whose header declares more pixels (width x height) is
            refused before it is decoded (None: no limit; Pillow's own check is set to match).

    Returns:
        `Dataset` with X_train uint8 (N, H, W, 3), y_train int64 (N,), classes (sorted folder
        names), and X_test = y_test = None.

    Raises:
        DataError: naming the paths of unreadable images (all of them, up to 20), files over
            the limits, an empty class folder, unsafe archive member names (all of them), or
            (`ImageSizeError`) two images of different sizes when ``image_size`` is None.
    """
    root = Path(root).expanduser()
    size = parse_image_size(image_size)
    max_bytes = _check_limit(max_image_bytes, "max_image_bytes")
    max_pixels = _check_limit(max_image_pixels, "max_image_pixels")
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
            classes = readable_class_names(arrays["classes"].tolist(), str(root))
            check_images(arrays["X"], str(entry.path))
            check_labels(arrays["y"], len(classes), str(entry.path), n=len(arrays["X"]))
            return Dataset(arrays["X"], arrays["y"], None, None, classes, name=name)
        except (KeyError, DataError):
            pass  # stale or foreign cache entry: rebuild it
    if is_archive:
        try:
            X, y, classes = _decode_archive(root, size, num_workers, max_bytes, max_pixels)
        except tarfile.TarError as exc:
            raise DataError(f"{root}: not a readable tar archive ({exc}); expected a folder or "
                            "a .tar/.tar.gz of <class>/<image> files") from exc
    else:
        X = _decode_folder(root, listing, size, num_workers, max_bytes, max_pixels)
        classes = listing.classes
        y = np.array([k for _, k in listing.files], dtype=np.int64)
    ds = Dataset(X, y, None, None, readable_class_names(classes, str(root)), name=name)
    if cache:
        entry.save({"X": X, "y": y, "classes": np.array(classes)})
    return ds
