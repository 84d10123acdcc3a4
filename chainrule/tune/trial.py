"""One trial: build an estimator from (params, seed), fit it on each training fold, score it on each validation fold.

A trial is a pure function of its inputs: the parameters, the seed (which becomes the estimator's
``random_state`` when it has one and it is unset) and the folds (themselves a function of the seed). The same
inputs give the same scores in any process, on any worker.

Divergence. A trial whose loss goes non-finite or explodes ends as ``status="diverged"``, not as a crash:

- NumPy floating-point traps are on while it fits (``np.errstate(over="raise", invalid="raise")``): the first
  overflow or NaN-producing operation raises ``FloatingPointError`` and stops the fit at that step. chainrule's
  ops are written so that a healthy run never overflows; ``trap_fp=False`` turns this off for third-party
  estimators that rely on inf arithmetic.
- An estimator that raises ``FloatingPointError`` itself (``chainrule.train.NonFiniteError`` is one) has diverged.
- Estimators whose ``fit`` takes ``callbacks`` (chainrule's MLP and linear models: trainer callbacks), or that have
  a ``callbacks`` parameter, get a ``DivergenceCallback`` that stops the fit at the first step whose loss is
  non-finite or more than ``explode_factor`` times the first step's loss.
- After fitting, a recorded loss history (``loss_history_`` or ``loss_curve_``) is checked the same way, and a
  non-finite validation score also counts as divergence.

Any other exception is ``status="failed"``, with its type and message kept in the record.
"""

from __future__ import annotations

import inspect
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

__all__ = ["Trial", "Diverged", "DivergenceCallback", "build_estimator", "default_params", "estimator_name",
           "fit_and_score", "evaluate", "accuracy", "get_scorer", "check_losses", "STATUSES"]

STATUSES = ("ok", "diverged", "failed")
LOSS_HISTORY_ATTRS = ("loss_history_", "loss_curve_")


class Diverged(FloatingPointError):
    """The loss went non-finite or exploded; the message says when and by how much."""


# ---- estimators --------------------------------------------------------------------------------------------


def _is_instance(factory: Any) -> bool:
    return hasattr(factory, "get_params") and not isinstance(factory, type)


def default_params(factory: Any) -> dict[str, Any]:
    """The hyperparameters (``get_params()``) of the estimator the factory builds with no arguments."""
    est = factory if _is_instance(factory) else factory()
    if not hasattr(est, "get_params"):
        raise TypeError(f"{estimator_name(factory)} does not build an estimator with get_params(); a factory is "
                        "an estimator class, an estimator instance, or a function returning one")
    return dict(est.get_params())


def estimator_name(factory: Any) -> str:
    if _is_instance(factory):
        return type(factory).__name__
    return getattr(factory, "__name__", None) or type(factory).__name__


def build_estimator(factory: Any, params: Mapping[str, Any], seed: int | None = None) -> Any:
    """A fresh estimator with ``params``: ``factory(**params)``, or for an instance a clone with them set.

    With ``seed`` given, an estimator that has a ``random_state`` parameter left at None gets ``seed``.
    """
    params = dict(params)
    if _is_instance(factory):
        base = dict(factory.get_params())
        est = type(factory)(**{**base, **params})
    else:
        est = factory(**params)
    if seed is not None and "random_state" not in params:
        current = est.get_params() if hasattr(est, "get_params") else {}
        if "random_state" in current and current["random_state"] is None:
            est.set_params(random_state=int(seed))
    return est


def _accepts_callbacks(est: Any) -> bool:
    try:
        return "callbacks" in est.get_params()
    except Exception:  # noqa: BLE001 - an odd get_params just means "no"
        return False


def _fit_takes_callbacks(est: Any) -> bool:
    try:
        return "callbacks" in inspect.signature(est.fit).parameters
    except (TypeError, ValueError):  # builtins or odd callables: no
        return False


# ---- scoring -----------------------------------------------------------------------------------------------


def accuracy(estimator: Any, X: np.ndarray, y: np.ndarray) -> float:
    """Fraction of samples whose predicted label equals y."""
    return float(np.mean(np.asarray(estimator.predict(X)) == np.asarray(y)))


def get_scorer(scoring: str | Callable[[Any, np.ndarray, np.ndarray], float]) -> Callable[..., float]:
    if callable(scoring):
        return scoring
    if scoring == "accuracy":
        return accuracy
    raise ValueError(f"scoring must be 'accuracy' or a function scorer(estimator, X, y) -> float, got {scoring!r}")


# ---- divergence --------------------------------------------------------------------------------------------


def check_losses(losses: Sequence[float], explode_factor: float, what: str = "loss") -> None:
    """Raise Diverged if a loss is non-finite or exceeds ``explode_factor`` times the first one."""
    values = np.asarray(losses, dtype=np.float64).ravel()
    if values.size == 0:
        return
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        i = int(bad[0])
        raise Diverged(f"{what} became {values[i]} at step {i} (was {values[0]:.4g} at step 0)")
    first = abs(values[0])
    if first > 0 and explode_factor and np.max(values) > explode_factor * first:
        i = int(np.argmax(values > explode_factor * first))
        raise Diverged(f"{what} exploded to {values[i]:.4g} at step {i}, more than {explode_factor:g}x its first "
                       f"value {values[0]:.4g}")


class DivergenceCallback:
    """Trainer callback: stop at the first step whose loss is non-finite or > explode_factor x the first loss."""

    def __init__(self, explode_factor: float = 10.0):
        self.explode_factor = explode_factor
        self.first: float | None = None

    def on_step_end(self, trainer: Any) -> None:
        loss = float(trainer.history.steps["loss"][-1])
        if self.first is None and math.isfinite(loss):
            self.first = loss
        step = len(trainer.history.steps["loss"]) - 1
        if not math.isfinite(loss):
            raise Diverged(f"loss became {loss} at step {step}")
        if self.first and self.explode_factor and loss > self.explode_factor * abs(self.first):
            raise Diverged(f"loss exploded to {loss:.4g} at step {step}, more than {self.explode_factor:g}x its "
                           f"first value {self.first:.4g}")


def _check_history(est: Any, explode_factor: float) -> None:
    for attr in LOSS_HISTORY_ATTRS:
        losses = getattr(est, attr, None)
        if losses is not None and len(losses):
            check_losses(losses, explode_factor, "loss")
            return


# ---- one fold, one trial ------------------------------------------------------------------------------------


def fit_and_score(factory: Any, params: Mapping[str, Any], X: np.ndarray, y: np.ndarray,
                  train_idx: np.ndarray, val_idx: np.ndarray, *, seed: int | None = 0,
                  scoring: Any = "accuracy", explode_factor: float = 10.0,
                  trap_fp: bool = True) -> tuple[float, float, float]:
    """Fit a fresh estimator on X[train_idx] and score it on X[val_idx]: (score, fit_time_s, score_time_s).

    Raises Diverged (see the module docstring); other exceptions from the estimator propagate.
    """
    scorer = get_scorer(scoring)
    est = build_estimator(factory, params, seed)
    fit_kwargs: dict[str, Any] = {}
    if _fit_takes_callbacks(est):
        fit_kwargs["callbacks"] = [DivergenceCallback(explode_factor)]
    elif _accepts_callbacks(est) and "callbacks" not in params:
        est.set_params(callbacks=[*(est.get_params()["callbacks"] or ()), DivergenceCallback(explode_factor)])
    errstate = dict(over="raise", invalid="raise") if trap_fp else {}
    X_tr, y_tr = X[train_idx], y[train_idx]
    t0 = time.perf_counter()
    try:
        with np.errstate(**errstate):
            est.fit(X_tr, y_tr, **fit_kwargs)
    except FloatingPointError as e:  # numpy traps, NonFiniteError, Diverged
        raise Diverged(f"while fitting: {e}") from None
    fit_time = time.perf_counter() - t0
    _check_history(est, explode_factor)
    t0 = time.perf_counter()
    try:
        with np.errstate(**errstate):
            score = float(scorer(est, X[val_idx], y[val_idx]))
    except FloatingPointError as e:
        raise Diverged(f"while scoring: {e}") from None
    if not math.isfinite(score):
        raise Diverged(f"validation score is {score}")
    return score, fit_time, time.perf_counter() - t0


@dataclass
class Trial:
    """The record of one evaluated parameter set (one line of trials.jsonl).

    ``trial`` numbers the candidate (its index in the grid or in the random draws); successive halving
    evaluates a candidate at several ``rung``s with a growing ``budget``. ``score`` is the mean validation score
    over ``scores`` (one per fold; one for a holdout split); None unless ``status == "ok"``. ``fit_time`` and
    ``score_time`` are wall-clock seconds summed over folds; ``cpu_time`` is the CPU seconds of the whole trial
    (all threads of the process running it): much less than the wall time means it waited for a core.
    """

    trial: int
    params: dict[str, Any]
    status: str = "ok"
    score: float | None = None
    std: float | None = None
    scores: list[float] = field(default_factory=list)
    fit_time: float = 0.0
    score_time: float = 0.0
    cpu_time: float = 0.0
    seed: int = 0
    rung: int = 0
    budget: float | None = None
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Trial":
        names = set(inspect.signature(cls).parameters)
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def evaluate(task: Mapping[str, Any], X: np.ndarray, y: np.ndarray,
             folds: Sequence[tuple[np.ndarray, np.ndarray]], factory: Any, options: Mapping[str, Any]) -> Trial:
    """Run one trial task ``{"trial", "params", "rung", "budget", "fit_params"}`` over all folds -> Trial.

    ``fit_params`` are the estimator arguments (the trial's params plus fixed values and the budget);
    ``options``: seed, scoring, explode_factor, trap_fp, and optionally ``budget_samples`` (train on the first
    ``budget`` samples of each training fold, in a seeded order). Never raises for a bad trial.
    """
    seed = int(options.get("seed", 0))
    record = Trial(trial=int(task["trial"]), params=dict(task["params"]), seed=seed, rung=int(task.get("rung", 0)),
                   budget=task.get("budget"))
    scores, fit_time, score_time = [], 0.0, 0.0
    cpu_start = time.process_time()
    try:
        for f, (train_idx, val_idx) in enumerate(folds):
            if options.get("budget_samples") and record.budget is not None:
                order = np.random.default_rng([seed, f]).permutation(train_idx)
                train_idx = np.sort(order[:int(record.budget)])
            score, t_fit, t_score = fit_and_score(
                factory, task["fit_params"], X, y, train_idx, val_idx, seed=seed,
                scoring=options.get("scoring", "accuracy"), explode_factor=options.get("explode_factor", 10.0),
                trap_fp=options.get("trap_fp", True))
            scores.append(score)
            fit_time += t_fit
            score_time += t_score
    except Diverged as e:
        record.status, record.message = "diverged", (f"fold {len(scores)}: " if len(folds) > 1 else "") + str(e)
    except Exception as e:  # noqa: BLE001 - a failing trial is recorded, the search goes on
        record.status, record.message = "failed", f"{type(e).__name__}: {e}"
    else:
        record.score, record.std = float(np.mean(scores)), float(np.std(scores))
    record.scores = [float(s) for s in scores]
    record.fit_time, record.score_time = fit_time, score_time
    record.cpu_time = time.process_time() - cpu_start
    return record
