"""Fixtures shared by the test files (one copy each, instead of one per file).

- ``blobs``: a function making Gaussian blobs ``blobs(n_per_class, d, classes, seed, spread, scale)`` -> float32
  X (N, d), labels y (N,) (shuffled; ``classes`` an int or the label values).
- ``one_blas_thread``: run a test on one BLAS thread (tiny GEMMs on a busy 2-core machine: a second OpenBLAS thread
  waits for a core and makes each step many times slower). Modules opt in with
  ``pytestmark = pytest.mark.usefixtures("one_blas_thread")``.
- ``onednn``: oneDNN's convolution backend selected for the test (and the oneDNN kernels of
  ``chainrule.backend.fused`` with it), the previous choice restored after.
- ``dask_client_timeouts``: the connect timeouts of the ``distributed.Client`` objects a test creates (a spy).
- ``isolated_cache``: ``$CHAINRULE_DATA`` pointed at a fresh folder, so decoded-data caches never leak between tests.
- ``chainrule_process``: run ``python -m chainrule ...`` (or ``python -c CODE ...``) as a real child process in a
  folder, with this checkout importable; returns the ``CompletedProcess``.
- ``tune_data``: the small blob data set the tune tests search on.
- ``digits_split``: the digits dataset split like ``chainrule train`` splits it (val_size 0.1, seed 0).
- ``checkout``: a working folder laid out like a checkout (configs/, ../shared beside it), the current directory.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def make_blobs(n_per_class: int = 30, d: int = 4, classes: Any = 3, seed: int = 0, spread: float = 1.0,
               scale: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """(N, d) float32 Gaussian blobs (std ``spread``) around random centres (std ``scale``), (N,) labels, shuffled."""
    labels = np.arange(classes) if isinstance(classes, int) else np.asarray(classes)
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, scale, size=(len(labels), d))
    X = np.concatenate([c + spread * rng.standard_normal((n_per_class, d)) for c in centres]).astype(np.float32)
    y = np.repeat(labels, n_per_class)
    order = rng.permutation(len(y))
    return X[order], y[order]


@pytest.fixture
def blobs() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    return make_blobs


@pytest.fixture
def one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # threadpoolctl comes with scikit-learn; without it, run as configured
        limit: Any = contextlib.nullcontext()
    else:
        limit = threadpool_limits(limits=1, user_api="blas")
    with limit:
        yield


@pytest.fixture
def onednn():
    """oneDNN's convolution backend selected for the test (so the oneDNN kernels behind ``chainrule.backend.fused``
    run too), the previous choice restored after; the test module skips itself where oneDNN does not load."""
    from chainrule.backend import conv

    before = conv.info()["conv_requested"]
    conv.select_conv("onednn")
    yield
    conv.select_conv(before)


@pytest.fixture
def dask_client_timeouts(monkeypatch):
    """The connect timeout of every ``distributed.Client`` the test creates, in order (a spy on the class: tests
    check the timeout asked for, never the wall clock)."""
    distributed = pytest.importorskip("distributed")
    timeouts = []

    class SpyClient(distributed.Client):
        def __init__(self, *args, **kwargs):
            timeouts.append(kwargs.get("timeout"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(distributed, "Client", SpyClient)
    return timeouts


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "cache"))
    return tmp_path / "cache"


def run_chainrule(args: Sequence[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m chainrule *args`` (or ``python -c CODE *rest`` when args[0] == "-c") in ``cwd``."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    argv = list(args) if args and args[0] == "-c" else ["-m", "chainrule", *args]
    return subprocess.run([sys.executable, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def chainrule_process() -> Callable[..., subprocess.CompletedProcess]:
    return run_chainrule


@pytest.fixture(scope="session")
def tune_data():
    """The tune tests' data: 3 classes x 20 blobs in 4-D (``make_blobs(20, 4, 3, seed=1, spread=1.5)``)."""
    return make_blobs(n_per_class=20, d=4, classes=3, seed=1, spread=1.5)


@pytest.fixture(scope="session")
def digits_split():
    """``chainrule.commands.common.split_data("digits", 0.1, 0)``: what a default ``chainrule train`` trains on."""
    from chainrule.commands.common import split_data

    return split_data("digits", 0.1, 0)


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A working folder laid out like a checkout, the current directory for the test: the repository's configs/
    and, beside it, ../shared (where the checkout has one) -- what the docs' examples expect."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "configs").symlink_to(ROOT / "configs")
    shared = ROOT.parent / "shared"
    if shared.is_dir():
        (tmp_path / "shared").symlink_to(shared)
    monkeypatch.chdir(work)
    return work
