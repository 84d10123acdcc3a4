"""Decoding images into uint8 arrays, in worker processes, with bounded memory.

    decoder = Decoder(size=None, num_workers=workers(None, n), chunk_size=chunk_size(n, w))
    decoder.add(name, path_or_bytes) ...
    X = decoder.finish(where)          # uint8 (N, H, W, 3) in the order added

Chunks of images are decoded by `decode_chunk` (in a worker process, or in this one when the pool
cannot start or breaks). Each image's header is read first: one that declares more than
``max_pixels`` pixels is an error and is never decoded; without a target size, an image whose
size differs from the chunk's first image is only reported, never decoded. Decoded images are
stacked once the chunk is done, so nothing is allocated for a size an image merely claims (a
huge first image cannot make the chunk allocate N copies of its size). Errors name the image.
"""
from __future__ import annotations

import io
import os
import warnings
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Union

import numpy as np

from chainrule.progress import Progress

from .dataset import DataError

_SERIAL_BELOW = 512      # fewer images than this: decode in-process (pool startup costs more)
MAX_ERRORS_SHOWN = 20    # unreadable files listed in one error message
DEFAULT_MAX_IMAGE_PIXELS = 89_478_485  # Pillow's default Image.MAX_IMAGE_PIXELS (~ 9459 x 9459)

Source = Union[str, bytes]  # a file path, or the bytes of an archive member


class ImageSizeError(DataError):
    """Two images of one dataset have different sizes and no ``image_size`` was given.

    ``first`` and ``other`` are (name, (height, width)) of the first image and of one that
    differs, for callers that phrase their own fix (e.g. a command-line flag).
    """

    def __init__(self, where: str, first: tuple[str, tuple[int, int]],
                 other: tuple[str, tuple[int, int]]) -> None:
        (ref_name, ref), (name, s) = first, other
        super().__init__(f"{where}: images must all have the same size, but {ref_name} is "
                         f"{ref[0]}x{ref[1]} and {name} is {s[0]}x{s[1]} (height x width); "
                         "pass image_size=(height, width) to resize them")
        self.first, self.other = first, other


@dataclass
class _Chunk:
    """Decoded images of one chunk, plus what went wrong (filled in by a worker)."""

    images: np.ndarray | None = None                         # (n, H, W, 3) uint8
    errors: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    sizes: list[tuple[str, tuple[int, int]]] = field(default_factory=list)  # odd (H, W)


class _TooManyPixels(ValueError):
    pass


@contextmanager
def _pixel_limit(max_pixels: int | None) -> Iterator[None]:
    """Pillow's own decompression-bomb check set to ``max_pixels`` while a chunk decodes.

    Pillow warns above ``Image.MAX_IMAGE_PIXELS`` and raises above twice that; we check the limit
    ourselves, so the warning is silenced and the error only ever fires above our limit. The
    setting is process-wide and restored afterwards (chunks decode in worker processes, or in
    this process one at a time).
    """
    from PIL import Image

    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _to_array(im: Any, size: tuple[int, int] | None) -> np.ndarray:
    from PIL import Image

    im = im.convert("RGB") if im.mode != "RGB" else im
    if size is not None and im.size != (size[1], size[0]):
        im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    w, h = im.size
    return np.frombuffer(im.tobytes(), dtype=np.uint8).reshape(h, w, 3)


def what_is(path: str | os.PathLike) -> str:
    """What a path that is not a regular file is, for errors: "is a directory", "is a FIFO (named pipe)", ...,
    or "does not exist"."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "does not exist"
    except OSError as e:
        return f"cannot be read ({e.strerror})"
    for test, text in ((stat.S_ISDIR, "is a directory"), (stat.S_ISFIFO, "is a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "is a socket"), (stat.S_ISCHR, "is a character device"),
                       (stat.S_ISBLK, "is a block device"), (stat.S_ISREG, "is a file")):
        if test(mode):
            return text
    return "is not a regular file"


def read_image(path: str | os.PathLike, mode: str = "RGB", size: tuple[int, int] | None = None,
               max_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS) -> tuple[np.ndarray, tuple[int, int]]:
    """One image file as uint8 (H, W, C) in Pillow ``mode`` ("RGB" or "L"), resized (bilinear) to ``size`` (H, W)
    if given; returns it and the file's own (H, W). The header is read first: an image declaring more than
    ``max_pixels`` pixels is refused (``DataError`` naming the file and its size) and never decoded, exactly as
    ``load_image_folder`` refuses it. A path that is not a regular file (a directory, a FIFO: opening a FIFO
    would wait for a writer) is refused saying what it is."""
    from PIL import Image, UnidentifiedImageError

    if not os.path.isfile(path):
        raise DataError(f"image {path} {what_is(path)}; expected an image file")
    with _pixel_limit(max_pixels):
        try:
            with Image.open(path) as im:
                w, h = im.size  # from the header: nothing is decoded yet
                if max_pixels is not None and w * h > max_pixels:
                    raise DataError(f"image {path}: {h}x{w} (height x width) is {w * h:,} pixels, over the limit of "
                                    f"{max_pixels:,} (max_image_pixels); refusing to decode it")
                im = im.convert(mode) if im.mode != mode else im
                if size is not None and im.size != (size[1], size[0]):
                    im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
                arr = np.asarray(im, dtype=np.uint8)
        except Image.DecompressionBombError as e:
            raise DataError(f"image {path}: over the limit of {max_pixels:,} pixels (max_image_pixels): {e}") from e
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise DataError(f"cannot read image {path}: {e}") from e
    return arr.reshape(arr.shape[0], arr.shape[1], -1), (h, w)


def decode_chunk(names: list[str], sources: list[Source], size: tuple[int, int] | None,
                 max_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS) -> _Chunk:
    """Decode a list of images (runs in a worker process).

    Each image's header is read first: over ``max_pixels`` it is an error, and without a target
    ``size`` an image whose size differs from the chunk's first image is only reported in
    ``sizes`` (the first entry is the chunk's reference), never decoded. Decoded images are
    stacked at the end, so nothing is allocated for sizes the images merely claim.
    """
    from PIL import Image

    chunk = _Chunk()
    images: list[np.ndarray] = []
    ref = None
    with _pixel_limit(max_pixels):
        for name, src in zip(names, sources):
            try:
                with Image.open(io.BytesIO(src) if isinstance(src, bytes) else src) as im:
                    w, h = im.size  # from the header: nothing is decoded yet
                    if max_pixels is not None and w * h > max_pixels:
                        raise _TooManyPixels(f"{h}x{w} (height x width) is {w * h:,} pixels, over "
                                             f"the limit of {max_pixels:,} (max_image_pixels); "
                                             "refusing to decode it")
                    if size is None:
                        if ref is None:
                            ref = (h, w)
                            chunk.sizes.append((name, ref))
                        elif (h, w) != ref:
                            chunk.sizes.append((name, (h, w)))
                            continue
                    images.append(_to_array(im, size))
            except _TooManyPixels as exc:
                chunk.errors.append((name, str(exc)))
            except Image.DecompressionBombError as exc:
                chunk.errors.append((name, f"over the limit of {max_pixels:,} pixels "
                                           f"(max_image_pixels): {exc}"))
            except Exception as exc:  # Pillow raises many types for bad files
                chunk.errors.append((name, f"{type(exc).__name__}: {exc}"))
    if images:
        chunk.images = np.stack(images)
    return chunk


class Decoder:
    """Submits chunks of images to worker processes (or decodes in-process), keeping order.

    If the worker pool cannot start or breaks (e.g. a worker is killed), the affected chunks
    are decoded in this process instead, with a warning.
    """

    def __init__(self, size: tuple[int, int] | None, num_workers: int, chunk_size: int,
                 max_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS) -> None:
        self.size, self.num_workers, self.chunk_size = size, num_workers, chunk_size
        self.max_pixels = max_pixels
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
                future = self.pool.submit(decode_chunk, names, sources, self.size, self.max_pixels)
                self.results.append((future, names, sources))
                return
            except (BrokenProcessPool, RuntimeError) as exc:
                self._fall_back(exc)
        self.results.append((decode_chunk(names, sources, self.size, self.max_pixels), names,
                             sources))
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
                    result = decode_chunk(names, sources, self.size, self.max_pixels)
                if self.progress is not None:
                    self.progress.update(len(names))
            chunks.append(result)
        return chunks

    def close(self) -> None:
        """Stop the worker pool (pending chunks are cancelled); safe to call twice."""
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None

    def finish(self, where: str) -> np.ndarray:
        """Wait for all chunks; raise DataError for unreadable files or mixed sizes."""
        self._flush(final=True)
        try:
            chunks = self._collect()
        finally:
            self.close()
        errors = [e for c in chunks for e in c.errors]
        if errors:
            shown = "\n  ".join(f"{name}: {why}" for name, why in errors[:MAX_ERRORS_SHOWN])
            more = len(errors) - MAX_ERRORS_SHOWN
            raise DataError(f"{where}: {len(errors)} file(s) could not be read as images:\n  "
                            f"{shown}" + (f"\n  ... and {more} more" if more > 0 else ""))
        sizes = [s for c in chunks for s in c.sizes]
        odd = [(n, s) for n, s in sizes if s != sizes[0][1]]
        if odd:
            raise ImageSizeError(where, sizes[0], odd[0])
        return np.concatenate([c.images for c in chunks])


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def workers(num_workers: int | None, n: int | None) -> int:
    """Decoding processes for ``n`` images (None: not known yet): 1 below ``_SERIAL_BELOW`` images."""
    if num_workers is None:
        num_workers = min(available_cpus(), 8)
    if num_workers < 1:
        raise ValueError(f"num_workers must be >= 1 (or None for all cores), got {num_workers}")
    return 1 if n is not None and n < _SERIAL_BELOW else num_workers


def chunk_size(n: int, workers: int) -> int:
    return int(np.clip(-(-n // (workers * 8)), 64, 2048)) if workers > 1 else max(n, 1)
