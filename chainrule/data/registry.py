"""Resolve a dataset from one string (used by the command line)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .cifar10 import load_cifar10
from .dataset import Dataset
from .image_folder import load_image_folder
from .toy import load_digits, spiral_dataset

DATASET_SPECS = (
    ("cifar10", "official CIFAR-10 python release in the cache dir ($CHAINRULE_DATA or "
                "~/.cache/chainrule); download=True fetches it"),
    ("cifar10:PATH", "cifar-10-python.tar.gz / cifar-10-binary.tar.gz / an extracted folder, "
                     "or an image-folder .tar.gz of CIFAR-10 (e.g. cifar10-train-jpeg.tar.gz)"),
    ("folder:PATH", "a folder (or .tar.gz) of <class>/<image> files"),
    ("digits", "scikit-learn's 1,797 8x8 digits (offline)"),
    ("spiral", "CS231n's 2-D spiral, 3 classes x 100 points (offline)"),
)


def has_images(spec: str) -> bool:
    """Whether the dataset named by ``spec`` holds images (N, H, W[, C]): every form but the spiral's 2-D points."""
    return str(spec).strip().lower().removeprefix("test:").partition(":")[0] != "spiral"


def flips_keep_labels(spec: str) -> bool:
    """Whether mirroring a sample of the dataset named by ``spec`` keeps its label, so that random flips are a fair
    augmentation: natural photographs (CIFAR-10, image folders) yes; the 8x8 digits (a mirrored 2, 3 or 7 is not
    that digit) and the spiral's points no."""
    return has_images(spec) and str(spec).strip().lower().removeprefix("test:").partition(":")[0] != "digits"


def _usage() -> str:
    return "\n".join(f"  {form:<14} {desc}" for form, desc in DATASET_SPECS)


def get_dataset(spec: str, *, download: bool = False,
                image_size: int | Sequence[int] | None = None, seed: int = 0) -> Dataset:
    """Load the dataset named by ``spec``; see `DATASET_SPECS` for the accepted forms.

    ``download`` applies to ``cifar10`` only, ``image_size`` to ``folder:PATH`` only, ``seed``
    to ``spiral`` only (the noise draw). Raises ValueError listing the valid forms for an
    unknown spec.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"dataset spec must be a non-empty string, got {spec!r}; valid forms:\n"
                         + _usage())
    name, sep, path = spec.strip().partition(":")
    name = name.lower()
    if sep and not path:
        raise ValueError(f"dataset spec {spec!r} has an empty PATH; valid forms:\n" + _usage())
    if download and (name != "cifar10" or sep):
        raise ValueError(f"download=True only applies to the spec 'cifar10', got {spec!r}")
    if image_size is not None and name != "folder":
        raise ValueError(f"image_size only applies to 'folder:PATH' specs, got {spec!r}")

    if name == "cifar10" and not sep:
        return load_cifar10(download=download)
    if name == "cifar10":
        return load_cifar10(Path(path).expanduser())
    if name == "folder" and sep:
        return load_image_folder(Path(path).expanduser(), image_size=image_size)
    if name == "digits" and not sep:
        return load_digits()
    if name == "spiral" and not sep:
        return spiral_dataset(seed=seed)
    raise ValueError(f"unknown dataset spec {spec!r}; valid forms:\n" + _usage())
