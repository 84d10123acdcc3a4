"""Pieces shared by the subcommands: errors and exit codes, logging, datasets from a spec string."""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

logger = logging.getLogger("chainrule")

DEFAULT_DATA = "digits"
DATA_FORMS = ("cifar10", "cifar10:PATH", "folder:PATH", "digits", "spiral")


class UsageError(Exception):
    """The command line (or config file) asks for something invalid: exit code 2."""


@contextlib.contextmanager
def usage_errors(prefix: str = "") -> Iterator[None]:
    """Turn ValueError / TypeError / FileNotFoundError raised while *validating user input* into UsageError."""
    try:
        yield
    except UsageError:
        raise
    except (ValueError, TypeError, FileNotFoundError, NotADirectoryError) as e:
        raise UsageError(f"{prefix}{e}") from e


def configure_logging(quiet: bool = False, verbose: bool = False) -> Callable[[], None]:
    """Log chainrule's messages to stderr as plain lines and Python warnings as one "warning: ..." line each.

    Returns a function that undoes this (``main`` calls it on the way out, so embedding programs and tests keep
    their own logging and warning display).
    """
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    root = logging.getLogger("chainrule")
    saved = (root.level, root.propagate, warnings.showwarning)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False

    def showwarning(message: Any, category: Any, filename: str, lineno: int, file: Any = None,
                    line: Any = None) -> None:
        root.warning("warning: %s", str(message).replace("\n", " "))

    warnings.showwarning = showwarning

    def restore() -> None:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        root.propagate = saved[1]
        warnings.showwarning = saved[2]

    return restore


def say(message: str) -> None:
    """A line of results on stdout."""
    print(message, flush=True)


# ---- data --------------------------------------------------------------------------------------------------


@dataclass
class Data:
    """A dataset split for one run: train / validation (carved from the training data) / optional test."""

    spec: str
    name: str
    classes: tuple[str, ...]
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray | None
    y_test: np.ndarray | None

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.X_train.shape[1:])

    @property
    def is_image(self) -> bool:
        return self.X_train.ndim == 4

    @property
    def is_2d_points(self) -> bool:
        return self.X_train.ndim == 2 and self.X_train.shape[1] == 2


def data_spec(spec: str | None) -> str:
    """The spec to use: the given one, or the offline default (digits) with a note saying so."""
    if spec is None or spec == "":
        logger.info("no --data given: using the built-in offline dataset '%s' (scikit-learn's 8x8 digits)",
                    DEFAULT_DATA)
        return DEFAULT_DATA
    return spec


def check_spec(spec: str) -> None:
    name, sep, path = spec.strip().partition(":")
    name = name.lower()
    valid = {("cifar10", False), ("cifar10", True), ("folder", True), ("digits", False), ("spiral", False)}
    if (name, bool(sep)) not in valid or (sep and not path):
        raise UsageError(f"unknown dataset spec {spec!r}; expected one of {', '.join(DATA_FORMS)}")
    if sep:
        p = Path(path).expanduser()
        if not p.exists():
            raise UsageError(f"dataset path {str(p)!r} (from --data {spec}) does not exist")


def load_dataset(spec: str, seed: int = 0) -> Any:
    """``chainrule.data.get_dataset(spec)`` with spec and path checked first (those are usage errors)."""
    from chainrule.data import get_dataset

    check_spec(spec)
    try:
        return get_dataset(spec, seed=seed)
    except FileNotFoundError as e:
        raise UsageError(str(e)) from e


def split_data(spec: str, val_size: float, seed: int) -> Data:
    """Load ``spec`` and carve a stratified validation split (``val_size``: fraction or count) with ``seed``."""
    from chainrule.data import train_val_split

    ds = load_dataset(spec, seed=seed)
    with usage_errors("--val-size: "):
        X_tr, y_tr, X_val, y_val = train_val_split(ds.X_train, ds.y_train, val_size, stratify=True, seed=seed)
    return Data(spec=spec, name=ds.name or spec, classes=tuple(ds.classes), X_train=X_tr, y_train=y_tr,
                X_val=X_val, y_val=y_val, X_test=ds.X_test, y_test=ds.y_test)


def parse_int_list(value: Any, name: str) -> list[int]:
    """"1024,1024" / [1024, 1024] / 100 / "" / "none" -> a list of positive ints."""
    if isinstance(value, (list, tuple)):
        items = list(value)
    elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        items = [int(value)]
    elif isinstance(value, str):
        text = value.strip().lower()
        items = [] if text in ("", "none", "[]") else [s.strip() for s in text.strip("[]").split(",")]
    else:
        raise UsageError(f"{name} must be a comma-separated list of integers like 1024,1024, got {value!r}")
    out = []
    for item in items:
        try:
            n = int(item)
        except (TypeError, ValueError):
            raise UsageError(f"{name} must be a comma-separated list of integers like 1024,1024, got {value!r}") \
                from None
        if n < 1 or isinstance(item, bool):
            raise UsageError(f"{name} entries must be positive integers, got {n} in {value!r}")
        out.append(n)
    return out
