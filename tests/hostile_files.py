"""Builders of small hostile files for the untrusted-input tests (nothing large is ever written).

- `sparse_tar_member(name, size)`: a GNU sparse tar member whose header declares ``size`` bytes
  (all holes: reading it yields that many zero bytes) in 512 bytes of archive.
- `png_header(width, height)`: a PNG that declares width x height pixels but holds no pixel
  data (Pillow opens it lazily; decoding it fails).
- `ndarray_call_pickle(shape, ...)`: the pickle that calls ``numpy.ndarray(shape, dtype, buffer,
  offset, strides)`` directly (the zero-stride memory bomb, or uninitialised memory without a
  buffer).
"""
from __future__ import annotations

import io
import pickle
import struct
import tarfile
import zlib

import numpy as np


def sparse_tar_member(name: str, size: int) -> bytes:
    """The 512-byte header of a GNU sparse member ``name`` of ``size`` bytes, all of them holes."""
    info = tarfile.TarInfo(name)
    info.type = tarfile.GNUTYPE_SPARSE
    info.size = 0  # bytes stored in the archive
    buf = bytearray(info.tobuf(format=tarfile.GNU_FORMAT))
    buf[483:495] = b"%011o\0" % size  # the real (expanded) size
    buf[148:156] = b" " * 8
    buf[148:156] = b"%06o\0 " % sum(buf)  # header checksum
    return bytes(buf)


def tar_bytes(members: list[tuple[str, bytes]], raw: list[bytes] = ()) -> bytes:
    """A tar archive of regular ``members`` (name, data) followed by ``raw`` member blocks."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    body = out.getvalue().rstrip(b"\0")
    body += b"\0" * (-len(body) % 512)
    return body + b"".join(raw) + b"\0" * 1024


def png_header(width: int, height: int) -> bytes:
    """A PNG signature + IHDR (8-bit RGB) + an empty IDAT + IEND: huge dimensions, no pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + \
        chunk(b"IEND", b"")


class _NdarrayCall:
    """Pickles as ``numpy.ndarray(*args)``: what the restricted unpickler must never run."""

    def __init__(self, *args) -> None:
        self.args = args

    def __reduce__(self):
        return (np.ndarray, self.args)


def ndarray_call_pickle(data_args: tuple, labels_args: tuple | None = None) -> bytes:
    """A protocol-2 CIFAR 'batch' whose 'data' (and 'labels') call numpy.ndarray(*args)."""
    batch = {"data": _NdarrayCall(*data_args),
             "labels": _NdarrayCall(*labels_args) if labels_args else [0]}
    return pickle.dumps(batch, protocol=2)


def reconstruct_pickle(shape: tuple, dtype: str, raw: bytes, fortran: bool = False) -> bytes:
    """A batch whose 'data' is ``_reconstruct(ndarray, (0,), b'b')`` + the given (maybe lying) state."""
    class Recipe:
        def __reduce__(self):
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:  # NumPy 1.x
                from numpy.core.multiarray import _reconstruct
            return (_reconstruct, (np.ndarray, (0,), b"b"),
                    (1, shape, np.dtype(dtype), fortran, raw))
    return pickle.dumps({"data": Recipe(), "labels": [0]}, protocol=2)
