"""Every module of the package imports on this Python (CI also runs this on the lowest supported one, 3.10), and
the basic engine works there: a smoke test for syntax, standard-library and dependency-floor problems."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import numpy as np
import pytest

import chainrule

# Optional dependencies (pyproject extras); a module that needs one that is not installed is skipped, not failed.
OPTIONAL = {"numba", "mkl", "dask", "distributed", "starlette", "uvicorn", "httpx", "PIL", "matplotlib", "sklearn",
            "tqdm", "joblib", "threadpoolctl", "scipy", "torch", "autograd", "graphviz"}

# (``__main__`` modules run the CLI when imported: the CLI tests run them)
MODULES = sorted(m.name for m in pkgutil.walk_packages(chainrule.__path__, "chainrule.")
                 if not m.name.endswith(".__main__"))


def test_the_package_has_modules() -> None:
    assert "chainrule.tensor" in MODULES and "chainrule.tune.space" in MODULES and len(MODULES) > 50


@pytest.mark.parametrize("name", MODULES)
def test_module_imports(name: str) -> None:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as e:
        missing = (e.name or "").split(".")[0]
        if missing in OPTIONAL:
            pytest.skip(f"{name} needs the optional package {missing!r}, which is not installed")
        raise


def test_engine_smoke() -> None:
    import chainrule as cr
    from chainrule import nn, optim

    cr.manual_seed(0)
    model = nn.MLP([4, 8, 3], seed=0)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32), np.arange(16) % 3
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] and model(x).dtype == np.float32
    assert cr.gradcheck(lambda a: (a * a).logsumexp(axis=1).sum(), cr.Tensor(np.ones((2, 3)), requires_grad=True))


def test_python_version_is_supported() -> None:
    assert sys.version_info >= (3, 10)
