"""What a hyperparameter search is: ``SearchConfig`` (strategy, validation, seed, fixed values, halving budget, ...),
checked against the estimator and the space, and the plan it makes (the candidates, successive halving's rungs).

    config = SearchConfig(strategy="random", n_trials=20, validation=5, seed=0, fixed={"epochs": 4})
    plan = config.plan(SoftmaxClassifier, space, y)     # folds, candidates, rungs; errors name the rule
    SearchRunner(SoftmaxClassifier, space, config, n_jobs=2, run_dir="runs/s").run(X, y)   # chainrule.tune.runner

A ``SearchConfig`` holds everything the trials' results depend on (it is stored in search.json and compared on
resume); where and how trials run (workers, Dask, the run folder, progress callbacks) is the runner's.
"""

from __future__ import annotations

import functools

import hashlib
import logging
import math
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

import numpy as np

from chainrule.tune.cv import label_codes, make_folds
from chainrule.tune.space import Space, SpaceError, check_names, check_values
from chainrule.tune.store import SEARCH_FORMAT
from chainrule.tune.trial import build_estimator, default_params, estimator_name

__all__ = ["SearchConfig", "SearchPlan", "Budget", "STRATEGIES", "DEFAULT_TRIALS", "halving_plan"]

logger = logging.getLogger("chainrule.tune")

STRATEGIES = ("grid", "random", "halving")
DEFAULT_TRIALS = 20


@dataclass(frozen=True)
class Budget:
    """The resource successive halving grows: an estimator parameter (e.g. "epochs") or "n_samples"."""

    param: str
    min: float
    max: float

    @classmethod
    def parse(cls, value: Any) -> "Budget":
        if isinstance(value, Budget):
            b = value
        elif isinstance(value, Mapping):
            b = cls(value.get("param"), value.get("min"), value.get("max"))  # type: ignore[arg-type]
        elif isinstance(value, (tuple, list)) and len(value) == 3:
            b = cls(*value)
        else:
            raise ValueError(f"budget must be (param, min, max) like ('epochs', 1, 27), got {value!r}")
        if not isinstance(b.param, str) or not b.param:
            raise ValueError(f"budget param must be a parameter name like 'epochs', got {b.param!r}")
        for v in (b.min, b.max):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"budget min and max must be positive numbers, got min={b.min!r}, max={b.max!r}")
        if b.min > b.max:
            raise ValueError(f"budget min must be <= max, got min={b.min!r}, max={b.max!r}")
        return b

    def to_json(self) -> dict[str, Any]:
        return {"param": self.param, "min": self.min, "max": self.max}


def halving_plan(n_candidates: int, budget: Budget, eta: float) -> list[tuple[int, float]]:
    """[(number of candidates, budget)] per rung: budgets min, min*eta, ... ending at max; each rung keeps the
    best floor(n / eta) (at least 1). Integer min and max give integer budgets."""
    n_rungs = int(math.floor(math.log(budget.max / budget.min) / math.log(eta) + 1e-9)) + 1
    ints = isinstance(budget.min, int) and isinstance(budget.max, int)
    plan, n = [], n_candidates
    for r in range(n_rungs):
        b = budget.max if r == n_rungs - 1 else budget.min * eta ** r
        plan.append((n, int(round(b)) if ints else float(b)))
        n = max(1, n // int(eta) if float(eta).is_integer() else int(n / eta))
    return plan


@dataclass(frozen=True)
class SearchConfig:
    """The search itself (see ``chainrule.tune.search`` for each field's meaning): strategy, n_trials, validation,
    val_size, stratify, seed, scoring, fixed, budget, eta, explode_factor, trap_fp, metadata."""

    strategy: str = "grid"
    n_trials: int | None = None
    validation: str | int = "holdout"
    val_size: float | int = 0.2
    stratify: bool = True
    seed: int = 0
    scoring: Any = "accuracy"
    fixed: Mapping[str, Any] = field(default_factory=dict)
    budget: Any = None
    eta: float = 3
    explode_factor: float = 10.0
    trap_fp: bool = True
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def plan(self, factory: Any, space: Space, y: np.ndarray) -> "SearchPlan":
        """Check this configuration against the estimator and the space; the folds, candidates and rungs."""
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if self.eta <= 1 or not math.isfinite(self.eta):
            raise ValueError(f"eta must be > 1 (the factor by which halving cuts candidates), got {self.eta!r}")
        budget = Budget.parse(self.budget) if self.budget is not None else None
        if self.strategy == "halving" and budget is None:
            raise ValueError("strategy='halving' needs budget=(param, min, max), e.g. ('epochs', 1, 27) or "
                             "('n_samples', 500, 4500)")
        if self.strategy != "halving" and budget is not None:
            raise ValueError(f"budget is only used by strategy='halving'; for {self.strategy} search put a fixed "
                             f"value in fixed={{{budget.param!r}: ...}}")
        fixed = dict(self.fixed or {})
        valid = list(default_params(factory))
        owner = estimator_name(factory)
        check_names(list(space), valid, owner)
        check_names(list(fixed), valid, owner)
        overlap = sorted(set(space) & set(fixed))
        if overlap:
            raise SpaceError(f"{', '.join(overlap)} appear both in the space and in fixed; keep one")
        if budget is not None:
            if budget.param != "n_samples":
                check_names([budget.param], valid, owner)
            if budget.param in space or budget.param in fixed:
                raise SpaceError(f"the halving budget {budget.param!r} is set by the search; remove it from the "
                                 "space and fixed")
        folds = make_folds(y, self.validation, seed=self.seed, val_size=self.val_size, stratify=self.stratify)
        candidates = _candidates(space, self.strategy, self.n_trials, self.seed)
        check_values(space, candidates, fixed, functools.partial(_check_params, factory))
        rungs = halving_plan(len(candidates), budget, self.eta) if budget else [(len(candidates), None)]
        return SearchPlan(folds, candidates, budget, rungs, fixed, owner)

    def to_json(self, plan: "SearchPlan", space: Space, X: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        """search.json's description of this search (what a resume must match)."""
        config = {
            "format": SEARCH_FORMAT, "estimator": plan.owner, "strategy": self.strategy,
            "n_trials": None if self.strategy == "grid" else len(plan.candidates), "space": space.to_dict(),
            "fixed": plan.fixed, "validation": self.validation,
            "val_size": self.val_size if self.validation == "holdout" else None, "stratify": self.stratify,
            "seed": self.seed,
            "scoring": self.scoring if isinstance(self.scoring, str) else estimator_name(self.scoring),
            "budget": plan.budget.to_json() if plan.budget else None, "eta": self.eta if plan.budget else None,
            "explode_factor": self.explode_factor, "trap_fp": self.trap_fp, "data": _fingerprint(X, y),
            "metadata": dict(self.metadata or {}),
        }
        try:
            from chainrule import __version__
            config["chainrule_version"] = __version__
        except ImportError:  # pragma: no cover
            pass
        return config


def _check_params(factory: Any, params: Mapping[str, Any]) -> None:
    """The estimator's own parameter check (``_validate_params``: chainrule's and scikit-learn's), without
    fitting; estimators without one are checked when their trials run."""
    est = build_estimator(factory, params)
    validate = getattr(est, "_validate_params", None)
    if callable(validate):
        validate()


@dataclass
class SearchPlan:
    """What a ``SearchConfig`` expands to for one estimator, space and data."""

    folds: list[tuple[np.ndarray, np.ndarray]]
    candidates: list[dict[str, Any]]
    budget: Budget | None
    rungs: list[tuple[int, float | None]]  # (candidates kept, budget) per rung; one rung without halving
    fixed: dict[str, Any]
    owner: str                              # the estimator's name

    @property
    def total(self) -> int:
        return sum(n for n, _ in self.rungs)


def _candidates(space: Space, strategy: str, n_trials: int | None, seed: int) -> list[dict[str, Any]]:
    if strategy == "grid":
        if n_trials is not None:
            raise ValueError(f"grid search tries all {space.grid_size or 'the'} combinations: n_trials is for the "
                             f"random and halving strategies (got n_trials={n_trials})")
        return space.grid()
    if strategy == "halving" and n_trials is None and space.grid_size is not None:
        return space.grid()
    n = DEFAULT_TRIALS if n_trials is None else n_trials
    points = space.sample(n, seed)
    if len(points) < n:
        logger.warning("the space has only %d combinations: running all of them instead of %d random trials",
                       len(points), n)
    return points


def _fingerprint(X: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    codes = np.ascontiguousarray(label_codes(y))
    return {"n_samples": int(len(X)), "sample_shape": list(X.shape[1:]), "dtype": str(X.dtype),
            "labels_sha1": hashlib.sha1(codes.tobytes()).hexdigest()}
