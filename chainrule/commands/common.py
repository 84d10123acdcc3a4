"""Pieces shared by the subcommands: errors and exit codes, logging, datasets from a spec string."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

logger = logging.getLogger("chainrule")

DEFAULT_DATA = "digits"


def data_forms() -> tuple[str, ...]:
    """The dataset spec forms ``--data`` takes, from ``chainrule.data.registry`` (the one list)."""
    from chainrule.data.registry import DATASET_SPECS

    return tuple(form for form, _ in DATASET_SPECS)


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
    """Log chainrule's messages to stderr as plain lines and Python warnings as one "warning: ..." line each;
    ``quiet`` also turns progress bars off (``chainrule.progress``).

    Returns a function that undoes this (``main`` calls it on the way out, so embedding programs and tests keep
    their own logging and warning display).
    """
    from chainrule import progress

    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    root = logging.getLogger("chainrule")
    saved = (root.level, root.propagate, warnings.showwarning, progress.set_enabled(not quiet))
    handler = progress.LogHandler(sys.stderr)  # erases a live progress bar before each line, redraws it after
    handler.setFormatter(_ContextFormatter("%(message)s"))
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
        progress.close_all()  # bars an error or Ctrl-C left open: erase them before the error line
        progress.set_enabled(saved[3])

    return restore


_log_context: contextvars.ContextVar[str] = contextvars.ContextVar("chainrule_log_context", default="")


class _ContextFormatter(logging.Formatter):
    """Prefixes each message with the current ``log_context`` ("linear SVM: ..."), if any."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        prefix = _log_context.get()
        return f"{prefix}: {text}" if prefix else text


@contextlib.contextmanager
def log_context(label: str, quiet_info: bool = False) -> Iterator[None]:
    """Inside the block, every log line says what it is about (``label``: e.g. the model of a ``compare`` row).

    With ``quiet_info`` chainrule's INFO lines (epoch lines and the like) are dropped inside the block, except
    the periodic progress lines of long work (``chainrule.progress``); warnings and errors stay. Debug logging
    (``--verbose``) keeps everything.
    """
    token = _log_context.set(label)
    root, prog = logging.getLogger("chainrule"), logging.getLogger("chainrule.progress")
    saved = (root.level, prog.level)
    if quiet_info and root.getEffectiveLevel() == logging.INFO:
        root.setLevel(logging.WARNING)
        prog.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.setLevel(saved[0])
        prog.setLevel(saved[1])
        _log_context.reset(token)


def say(message: str) -> None:
    """A line of results on stdout (never printed over a live progress bar)."""
    from chainrule.progress import write

    write(message, sys.stdout)


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


def data_spec(spec: str | None) -> str:
    """The spec to use: the given one, or the offline default (digits) with a note saying so."""
    if spec is None or spec == "":
        logger.info("no --data given: using the built-in offline dataset '%s' (scikit-learn's 8x8 digits)",
                    DEFAULT_DATA)
        return DEFAULT_DATA
    return spec


TEST_PREFIX = "test:"


def is_test_spec(spec: str) -> bool:
    """Whether ``spec`` says "this whole dataset is a test set": ``test:folder:PATH``, ``test:cifar10:PATH``."""
    return spec.strip().lower().startswith(TEST_PREFIX)


def base_spec(spec: str) -> str:
    """``spec`` without a ``test:`` prefix."""
    return spec.strip()[len(TEST_PREFIX):] if is_test_spec(spec) else spec.strip()


def same_dataset(a: str, b: str) -> bool:
    """Whether two specs name the same data (names compared case-insensitively, paths after resolving)."""
    (na, sa, pa), (nb, sb, pb) = (base_spec(x).partition(":") for x in (a, b))
    if na.lower() != nb.lower() or bool(sa) != bool(sb):
        return False
    return not sa or Path(pa).expanduser().resolve() == Path(pb).expanduser().resolve()


def check_spec(spec: str) -> None:
    name, sep, path = base_spec(spec).partition(":")
    name = name.lower()
    valid = {("cifar10", False), ("cifar10", True), ("folder", True), ("digits", False), ("spiral", False)}
    if (name, bool(sep)) not in valid or (sep and not path):
        raise UsageError(f"unknown dataset spec {spec!r}; expected one of {', '.join(data_forms())}")
    if sep:
        p = Path(path).expanduser()
        if not p.exists():
            raise UsageError(f"dataset path {str(p)!r} (from --data {spec}) does not exist; paths are relative "
                             f"to the current directory ({Path.cwd()})")


def _cifar10_missing(spec: str) -> UsageError:
    """The CLI's advice when the bare spec 'cifar10' finds no official release in the cache directory."""
    from chainrule.data._cache import ENV_VAR, cache_dir
    from chainrule.data.cifar10 import PYTHON_RELEASE

    cache = cache_dir()
    return UsageError(
        f"--data {spec}: no CIFAR-10 release in {cache} (the cache directory; set ${ENV_VAR} to use another). "
        f"Point at a copy with --data cifar10:PATH (PATH: {PYTHON_RELEASE.filename}, its extracted "
        f"{PYTHON_RELEASE.folder}/ folder, or an image-folder .tar.gz such as cifar10-train-jpeg.tar.gz), or "
        f"download {PYTHON_RELEASE.url} into {cache}/ and run again")


def load_dataset(spec: str, seed: int = 0, image_size: str | None = None) -> Any:
    """``chainrule.data.get_dataset(spec)`` with spec and path checked first (those are usage errors).

    A ``test:`` prefix is allowed and ignored here (see ``load_test_set``). ``image_size`` ("HxW", ``--image-size``)
    resizes the images of ``folder:PATH`` data; other datasets refuse it.
    """
    from chainrule.data import get_dataset
    from chainrule.data._decode import ImageSizeError

    check_spec(spec)
    source = base_spec(spec)
    if image_size is not None and not source.lower().startswith("folder:"):
        raise UsageError(f"--image-size resizes the images of folder:PATH data; --data {spec} is not an image "
                         "folder (drop --image-size)")
    try:
        return get_dataset(source, seed=seed, image_size=image_size)
    except ImageSizeError as e:
        (first, (h, w)), (other, (h2, w2)) = e.first, e.other
        raise UsageError(f"{source}: images must all have the same size, but {first} is {h}x{w} and {other} is "
                         f"{h2}x{w2} (height x width); pass --image-size {h}x{w} to resize every image to one size") \
            from None
    except FileNotFoundError as e:
        if source.lower() == "cifar10":
            raise _cifar10_missing(spec) from e
        raise UsageError(str(e)) from e


@dataclass
class HeldOutSet:
    """A held-out dataset scored whole: every sample of a folder / archive, or an official release's test split."""

    spec: str
    name: str
    classes: tuple[str, ...]
    X: np.ndarray
    y: np.ndarray
    description: str  # e.g. "all 10000 images of image folder PATH"


def load_test_set(spec: str, seed: int = 0, image_size: str | None = None) -> HeldOutSet:
    """The test set named by ``spec`` (``test:`` prefix optional): a dataset with an official test split (the
    CIFAR-10 release) gives that split; any other (an image folder or archive) is a test set as a whole."""
    ds = load_dataset(spec, seed=seed, image_size=image_size)
    name = ds.name or base_spec(spec)
    if ds.X_test is not None:
        return HeldOutSet(spec, name, tuple(ds.classes), ds.X_test, ds.y_test,
                       f"the {len(ds.y_test)} samples of the test split of {name}")
    return HeldOutSet(spec, name, tuple(ds.classes), ds.X_train, ds.y_train,
                   f"all {len(ds.y_train)} samples of {name}")


def split_data(spec: str, val_size: float, seed: int, image_size: str | None = None) -> Data:
    """Load ``spec`` (images resized to ``image_size``, see ``load_dataset``) and carve a stratified validation
    split (``val_size``: fraction or count) with ``seed``."""
    from chainrule.data import train_val_split

    if is_test_spec(spec):
        raise UsageError(f"--data {spec} is marked as a test set; training data cannot be one (drop the "
                         f"'{TEST_PREFIX}' prefix, or score it with `chainrule evaluate RUN --data {spec}`)")
    ds = load_dataset(spec, seed=seed, image_size=image_size)
    with usage_errors("--val-size: "):
        X_tr, y_tr, X_val, y_val = train_val_split(ds.X_train, ds.y_train, val_size, stratify=True, seed=seed)
    return Data(spec=spec, name=ds.name or spec, classes=tuple(ds.classes), X_train=X_tr, y_train=y_tr,
                X_val=X_val, y_val=y_val, X_test=ds.X_test, y_test=ds.y_test)
