"""Validation splits and k-fold cross-validation of one estimator configuration.

    >>> from chainrule.tune import cross_validate
    >>> cv = cross_validate(KNearestNeighbor(k=5), X, y, k=5, seed=0)     # doctest: +SKIP
    >>> cv.scores, cv.mean, cv.std, cv.fit_times                         # doctest: +SKIP

The folds are exactly ``chainrule.data.kfold(len(X), k, stratify_labels=y, seed=seed)``: the same seed gives the
same folds here, in a search, and anywhere else the library splits data. Stratified folds (the default) keep
each class's share of samples in every fold, which needs at least ``k`` samples of every class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from chainrule.data import kfold, train_val_indices
from chainrule.tune.parallel import run_tasks
from chainrule.tune.trial import fit_and_score

__all__ = ["CVResult", "cross_validate", "make_folds", "check_folds", "label_codes"]

Folds = list[tuple[np.ndarray, np.ndarray]]


def label_codes(y: np.ndarray) -> np.ndarray:
    """(N,) int64 codes 0..C-1 of any label values (sorted order), for stratification."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be a 1-D array of labels, got shape {y.shape}")
    return np.unique(y, return_inverse=True)[1].astype(np.int64).ravel()


def check_folds(y: np.ndarray, k: int) -> None:
    """Raise ValueError unless every class of y has at least k samples (needed by stratified k-fold)."""
    classes, counts = np.unique(np.asarray(y), return_counts=True)
    smallest = int(np.argmin(counts))
    if counts[smallest] < k:
        raise ValueError(f"k={k} stratified folds need at least {k} samples of every class, but class "
                         f"{classes[smallest].item()!r} has only {counts[smallest]}; use k <= {counts[smallest]}, "
                         "or stratify=False")


def make_folds(y: np.ndarray, validation: str | int = 5, *, seed: int = 0, val_size: float | int = 0.2,
               stratify: bool = True) -> Folds:
    """The (train_idx, val_idx) pairs a validation scheme uses on labels y (N,).

    ``validation``: an int k for k-fold cross-validation (``chainrule.data.kfold``), or "holdout" for one
    split with ``val_size`` (a fraction or a count) held out (``chainrule.data.train_val_indices``).
    """
    codes = label_codes(y)
    n = len(codes)
    if validation == "holdout":
        return [train_val_indices(codes, val_size, stratify=stratify, seed=seed)]
    if isinstance(validation, bool) or not isinstance(validation, (int, np.integer)):
        raise ValueError(f"validation must be 'holdout' or an int number of folds >= 2, got {validation!r}")
    k = int(validation)
    if not 2 <= k <= n:
        raise ValueError(f"k-fold cross-validation needs 2 <= k <= {n} (the number of samples), got k={k}")
    if stratify:
        check_folds(y, k)
    return list(kfold(n, k, stratify_labels=codes if stratify else None, seed=seed))


@dataclass
class CVResult:
    """Per-fold validation scores and timings of one configuration; ``mean`` and ``std`` over folds."""

    scores: np.ndarray
    fit_times: np.ndarray
    score_times: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return float(np.mean(self.scores))

    @property
    def std(self) -> float:
        return float(np.std(self.scores))

    def __repr__(self) -> str:
        return (f"CVResult(mean={self.mean:.4f}, std={self.std:.4f}, scores={np.round(self.scores, 4).tolist()}, "
                f"fit_time={self.fit_times.sum():.2f}s, score_time={self.score_times.sum():.2f}s)")


def _fold_task(f: int, X: np.ndarray, y: np.ndarray, folds: Folds, factory: Any,
               options: Mapping[str, Any]) -> tuple[int, float, float, float]:
    train_idx, val_idx = folds[f]
    return (f, *fit_and_score(factory, options["params"], X, y, train_idx, val_idx, seed=options["seed"],
                              scoring=options["scoring"], explode_factor=options["explode_factor"],
                              trap_fp=options["trap_fp"]))


def cross_validate(estimator_or_factory: Any, X: np.ndarray, y: np.ndarray, k: int = 5, *, seed: int = 0,
                   scoring: Any = "accuracy", n_jobs: int | None = -1, params: Mapping[str, Any] | None = None,
                   stratify: bool = True, backend: str = "local", scheduler: Any = None,
                   explode_factor: float = 10.0, trap_fp: bool = True) -> CVResult:
    """k-fold cross-validation: fit a fresh estimator on k-1 folds, score it on the held-out fold, k times.

    Args:
        estimator_or_factory: an estimator (cloned with ``params`` applied, never fitted itself), an estimator
            class, or a function returning an estimator.
        X, y: (N, ...) inputs and (N,) labels.
        k: number of folds; the folds are ``chainrule.data.kfold(N, k, stratify_labels=y, seed=seed)``.
        seed: the folds, and ``random_state`` of an estimator that has it unset.
        scoring: "accuracy" or ``scorer(estimator, X, y) -> float``.
        n_jobs, backend, scheduler: where the folds run (``chainrule.tune.parallel.run_tasks``).
        explode_factor, trap_fp: divergence detection (``chainrule.tune.trial``); a diverging fit raises
            ``chainrule.tune.Diverged``.

    Returns:
        CVResult with ``scores``, ``fit_times``, ``score_times`` (k,) in fold order, ``mean`` and ``std``.
    """
    X, y = np.asarray(X), np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"X and y must have the same number of samples, got {len(X)} and {len(y)}")
    folds = make_folds(y, k, seed=seed, stratify=stratify)
    options = {"params": dict(params or {}), "seed": seed, "scoring": scoring, "explode_factor": explode_factor,
               "trap_fp": trap_fp}
    out = np.zeros((3, len(folds)))
    for f, score, fit_time, score_time in run_tasks(
            _fold_task, list(range(len(folds))), shared=(X, y, folds, estimator_or_factory, options),
            n_jobs=n_jobs, backend=backend, scheduler=scheduler):
        out[:, f] = score, fit_time, score_time
    return CVResult(scores=out[0], fit_times=out[1], score_times=out[2], params=dict(params or {}))
