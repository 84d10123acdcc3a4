"""The notebooks' data: a small CIFAR-10 slice when the shared JPEG archive is present, else the offline digits.

    from lecture_data import load
    data = load(per_class=100)     # data.X_train (N, H, W, C) uint8, y_train, X_test, y_test, classes, source

The slice is the first ``per_class`` training images of each class for training and the next ``test_per_class`` for
testing, read straight from ``cifar10-train-jpeg.tar.gz`` (looked for in ``shared/data`` beside or above the
checkout, or at ``$CHAINRULE_CIFAR10_ARCHIVE``) without unpacking it. Without the archive: scikit-learn's 8x8 digits
(offline), split the same way. ``CHAINRULE_NOTEBOOK_DATA=digits`` forces the digits.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ARCHIVE = "cifar10-train-jpeg.tar.gz"


def find_archive() -> Path | None:
    if os.environ.get("CHAINRULE_NOTEBOOK_DATA") == "digits":
        return None
    given = os.environ.get("CHAINRULE_CIFAR10_ARCHIVE")
    if given:
        return Path(given) if Path(given).is_file() else None
    for folder in [Path.cwd(), *Path.cwd().parents]:
        candidate = folder / "shared" / "data" / ARCHIVE
        if candidate.is_file():
            return candidate
    return None


def _cifar_slice(archive: Path, per_class: int, test_per_class: int) -> SimpleNamespace:
    from PIL import Image

    want = per_class + test_per_class
    images: dict[str, list[np.ndarray]] = {}
    with tarfile.open(archive, "r|gz") as tar:  # a stream: members are read in order, none is extracted
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) < 2 or not parts[-1].endswith(".jpg"):
                continue
            bucket = images.setdefault(parts[-2], [])
            if len(bucket) < want and member.size < 1 << 20:
                with Image.open(io.BytesIO(tar.extractfile(member).read())) as im:
                    if im.size == (32, 32):
                        bucket.append(np.asarray(im.convert("RGB"), dtype=np.uint8))
    classes = sorted(images)
    X_train = np.stack([im for c in classes for im in images[c][:per_class]])
    y_train = np.concatenate([np.full(len(images[c][:per_class]), i) for i, c in enumerate(classes)])
    X_test = np.stack([im for c in classes for im in images[c][per_class:want]])
    y_test = np.concatenate([np.full(len(images[c][per_class:want]), i) for i, c in enumerate(classes)])
    return SimpleNamespace(X_train=X_train, y_train=y_train, X_test=X_test, y_test=y_test, classes=classes,
                           source=f"CIFAR-10 slice ({per_class} + {test_per_class} images per class from "
                                  f"{archive.name})")


def _digits(per_class: int, test_per_class: int) -> SimpleNamespace:
    from chainrule.data import load_digits

    d = load_digits()
    rng = np.random.default_rng(0)
    train, test = [], []
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(d.y_train == c))
        train.append(idx[:per_class])
        test.append(idx[per_class:per_class + test_per_class])
    train, test = np.concatenate(train), np.concatenate(test)
    return SimpleNamespace(X_train=d.X_train[train], y_train=d.y_train[train], X_test=d.X_train[test],
                           y_test=d.y_train[test], classes=list(d.classes),
                           source=f"8x8 digits ({per_class} + {test_per_class} per class, offline)")


def load(per_class: int = 100, test_per_class: int = 30) -> SimpleNamespace:
    """The lecture data (module docstring)."""
    archive = find_archive()
    return _cifar_slice(archive, per_class, test_per_class) if archive else _digits(per_class, test_per_class)
