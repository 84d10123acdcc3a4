"""The one rule turning a seed into a ``numpy.random.Generator`` (estimators' ``random_state``, layers' ``seed``,
splits, toy data, dropout).

    rng = as_generator(0)                       # a fresh Generator seeded with 0
    rng = as_generator(existing_generator)      # the same object: draws continue its stream
    rng = as_generator(None)                    # fresh OS entropy, or drawn from the global generator after
                                                # chainrule.manual_seed (unless allow_none=False)
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

SeedLike = Any  # None | int | np.random.Generator | np.random.SeedSequence | np.random.RandomState


def as_generator(seed: SeedLike, *, name: str = "seed", allow_none: bool = True) -> np.random.Generator:
    """A Generator from ``seed``: None (fresh OS entropy; refused with ``allow_none=False``), a non-negative int,
    a ``SeedSequence``, a Generator (returned as is, so its stream continues), or a legacy ``RandomState`` (a seed
    drawn from it). A negative int raises ValueError; bools and other objects raise TypeError; both name ``name``
    and the value."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        if not allow_none:
            raise TypeError(f"{name} must be a numpy Generator or an int seed, got None")
        return generator_for(None)  # the global generator after chainrule.manual_seed
    if isinstance(seed, numbers.Integral) and not isinstance(seed, (bool, np.bool_)):
        if seed < 0:
            raise ValueError(f"{name} must be a non-negative int, got {seed!r}")
        return np.random.default_rng(int(seed))
    if isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    if isinstance(seed, np.random.RandomState):
        return np.random.default_rng(seed.randint(0, 2**31 - 1))
    also = ", a SeedSequence or RandomState" + (", or None" if allow_none else "")
    raise TypeError(f"{name} must be a numpy Generator or an int seed{also}, got {seed!r}")


# ---- the global generator (chainrule.manual_seed) ------------------------------------------------------------

class _Global:
    generator: np.random.Generator | None = None  # set by manual_seed


def manual_seed(seed: int) -> None:
    """Seed chainrule's global generator (``randn`` and layers or dropout built without a seed draw from it)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"manual_seed: expected a non-negative integer seed, got {seed!r}")
    _Global.generator = np.random.default_rng(int(seed))


def default_generator() -> np.random.Generator:
    """The global generator once ``manual_seed`` was called; before that, one from fresh OS entropy."""
    if _Global.generator is None:
        _Global.generator = np.random.default_rng()
    return _Global.generator


def generator_for(seed: Any) -> np.random.Generator:
    """The generator a layer with ``seed`` draws from: for None a child of the global generator (reproducible after
    ``manual_seed``) or, if it was never seeded, fresh OS entropy; anything else as ``utils.seeding.as_generator``."""
    if seed is None:
        if _Global.generator is None:
            return np.random.default_rng()
        return np.random.default_rng(_Global.generator.integers(0, 2**63))
    return as_generator(seed)
