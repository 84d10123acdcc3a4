"""Downloading and extracting archives safely.

- `download_url` streams to a temporary file next to the destination while hashing, checks the
  MD5, and only then renames the file into place: an interrupted or corrupted download leaves
  no file behind.
- `extract_tar` extracts with tarfile's ``filter="data"`` (no absolute paths, no ``..``, no
  links out of the destination, no device files) into a temporary folder that is renamed into
  place once complete.
- Archives read in memory (never extracted) go through `read_member`, which refuses a member
  over a size limit from its header, before reading it, and never reads more than the limit;
  and `unsafe_member_reason`, which names what is wrong with an absolute, ``..`` or
  control-character member name (such archives are refused, see `unsafe_names_error`).
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
import unicodedata
from pathlib import Path, PurePosixPath
from typing import Sequence
from urllib.request import urlopen

from chainrule.utils.atomic import atomic_open

from .dataset import DataError

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


def file_md5(path: str | os.PathLike, chunk: int = _CHUNK) -> str:
    """MD5 hex digest of a file, read in chunks."""
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def bytes_md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class ChecksumError(ValueError):
    """A downloaded or cached file does not have the expected MD5."""


def download_url(url: str, dest: str | os.PathLike, md5: str, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` and verify its MD5; returns ``dest``.

    The data goes to a temporary file in ``dest``'s folder first (``chainrule.utils.atomic``); it
    is renamed to ``dest`` only after the MD5 matches. On any error (network, checksum,
    KeyboardInterrupt) the temporary file is removed and ``dest`` is left untouched.
    """
    dest = Path(dest)
    h = hashlib.md5(usedforsecurity=False)
    logger.info("downloading %s to %s", url, dest)
    with atomic_open(dest, "wb", mkdir=True) as out, urlopen(url, timeout=timeout) as response:
        while block := response.read(_CHUNK):
            h.update(block)
            out.write(block)
        if h.hexdigest() != md5:  # raised inside the block: the temporary file is removed, dest untouched
            raise ChecksumError(f"downloaded {url} has MD5 {h.hexdigest()}, expected {md5}; "
                                "the download is corrupt or the file changed upstream; nothing "
                                "was kept, try again")
    return dest


def extract_tar(archive: str | os.PathLike, dest_dir: str | os.PathLike, member_dir: str) -> Path:
    """Extract ``archive`` and move its top folder ``member_dir`` to ``dest_dir/member_dir``.

    Extraction uses ``filter="data"`` and happens in a temporary folder inside ``dest_dir``;
    the result is renamed into place only when complete. Returns the final folder.
    """
    if not hasattr(tarfile, "data_filter"):
        raise RuntimeError("safe extraction needs tarfile's filter='data' (Python >= 3.10.12 or "
                           ">= 3.11.4); upgrade Python or extract the archive yourself and pass "
                           "its folder")
    dest_dir = Path(dest_dir)
    final = dest_dir / member_dir
    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{member_dir}.", suffix=".extract", dir=dest_dir))
    try:
        with tarfile.open(archive, "r:*") as tf:
            tf.extractall(tmp, filter="data")
        extracted = tmp / member_dir
        if not extracted.is_dir():
            raise FileNotFoundError(f"{archive} has no top-level folder {member_dir!r}")
        try:
            os.replace(extracted, final)
        except OSError:
            if not final.is_dir():  # a concurrent extraction may have won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


# ----------------------------------------------------------------------------- reading members

def read_member(tf: tarfile.TarFile, member: tarfile.TarInfo, limit: int,
                archive: str | os.PathLike, fix: str) -> bytes:
    """The bytes of the regular-file ``member`` of ``tf``, at most ``limit`` of them.

    A member whose header declares more than ``limit`` bytes (for a sparse member: its expanded
    size) is refused (DataError naming it, with ``fix`` appended) before anything is read.
    tarfile never yields more than the header's size, so memory never exceeds the limit.
    """
    if member.size > limit:
        raise DataError(f"{archive}: member {member.name!r} is {member.size:,} bytes, over the "
                        f"limit of {limit:,} bytes; refusing to read it. {fix}")
    f = tf.extractfile(member)
    if f is None:  # not a regular file
        raise DataError(f"{archive}: member {member.name!r} is not a regular file")
    return f.read(member.size)  # not read(limit): a buffered read allocates what it is asked for


def unsafe_member_reason(name: str) -> str | None:
    """Why the archive member ``name`` is unsafe to use as a path, or None when it is safe.

    Unsafe: an absolute path (``/x``), a ``..`` component (it points outside the archive's
    folder), or a control character (newlines and escapes would forge log lines and CSV rows).
    """
    if name.startswith("/"):
        return "absolute path"
    if ".." in PurePosixPath(name).parts:
        return "'..' component"
    if any(unicodedata.category(c) == "Cc" for c in name):
        return "control character"
    return None


def unsafe_names_error(archive: str | os.PathLike, bad: Sequence[tuple[str, str]],
                       shown: int = 20) -> DataError:
    """The DataError refusing ``archive`` for its unsafe member names ``bad`` ((name, reason)...)."""
    lines = "\n  ".join(f"{name!r}: {why}" for name, why in bad[:shown])
    more = f"\n  ... and {len(bad) - shown} more" if len(bad) > shown else ""
    return DataError(f"{archive}: {len(bad)} member(s) have unsafe names (absolute paths, '..' "
                     f"components or control characters); refusing the archive, nothing was "
                     f"used:\n  {lines}{more}")
