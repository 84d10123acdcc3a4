"""Hyperparameter search: grid, random and successive halving, parallel, resumable.

    from chainrule.classifiers import SoftmaxClassifier
    from chainrule.tune import search, loguniform

    result = search(SoftmaxClassifier, {"lr": loguniform(1e-4, 1e-1), "reg": loguniform(1e-5, 1e-1)},
                    X, y, strategy="random", n_trials=20, validation="holdout", seed=0, n_jobs=2,
                    run_dir="runs/softmax-search")
    print(result.table())
    result.best_params, result.best_score

Strategies:
    grid      every combination of the listed values
    random    ``n_trials`` draws from the space (default 20); finite spaces are drawn without replacement
    halving   successive halving (Jamieson & Talwalkar 2016): ``n_trials`` random candidates (or the whole grid
              of a finite space when ``n_trials`` is None) are trained with a small budget; the best 1/eta of
              them are trained again with eta times the budget, and so on until the largest budget. The budget
              is an estimator parameter (``budget=("epochs", 1, 27)``) or ``"n_samples"``, the number of
              training samples per fold.

Every trial is a pure function of (params, seed): the folds come from ``seed``, and so does ``random_state`` of
an estimator that leaves it unset. With ``run_dir`` each finished trial is appended to ``trials.jsonl`` at once;
``resume=True`` skips the trials found there (failed ones are run again), so an interrupted search finishes as
if it had never stopped. Trials whose loss goes non-finite or explodes are stopped early and recorded as
``diverged`` (see ``chainrule.tune.trial``); they never win and are never promoted.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from chainrule.tune.cv import label_codes, make_folds
from chainrule.tune.parallel import connect, run_tasks
from chainrule.tune.results import SearchResult
from chainrule.tune.space import Space, SpaceError, check_names
from chainrule.tune.store import RESUME_MAY_DIFFER, SEARCH_FORMAT, SearchFolder, SearchFolderError, differing_keys
from chainrule.tune.store import dumps as _dumps
from chainrule.tune.trial import Trial, default_params, estimator_name, evaluate

__all__ = ["search", "Budget", "STRATEGIES", "halving_plan"]

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


def _task(trial: int, params: dict[str, Any], fixed: Mapping[str, Any], rung: int = 0,
          budget: float | None = None, budget_param: str | None = None) -> dict[str, Any]:
    fit_params = {**fixed, **params}
    if budget_param is not None and budget_param != "n_samples":
        fit_params[budget_param] = budget
    return {"trial": trial, "rung": rung, "budget": budget, "params": params, "fit_params": fit_params}


def _key(trial: int, rung: int, params: Mapping[str, Any], budget: Any) -> str:
    return _dumps([trial, rung, params, budget], sort_keys=True)


class _Runner:
    """Runs lists of trial tasks, skipping finished ones, recording each result the moment it arrives."""

    def __init__(self, shared: tuple[Any, ...], seed: int, folder: SearchFolder | None, done: dict[str, Trial],
                 total: int, run_options: Mapping[str, Any], on_trial: Callable[[Trial, int, int], None] | None):
        """``shared``: the arguments after the task of ``chainrule.tune.trial.evaluate`` (X, y, folds, factory,
        options); ``done``: trials of an earlier run of this search by key; ``total``: planned trials."""
        self.shared, self.seed, self.folder, self.done, self.total = shared, seed, folder, done, total
        self.run_options, self.on_trial = run_options, on_trial
        self.finished = 0

    def run(self, tasks: list[dict[str, Any]]) -> list[Trial]:
        results: dict[str, Trial] = {}
        todo = []
        for task in tasks:
            key = _key(task["trial"], task["rung"], task["params"], task["budget"])
            prior = self.done.get(key)
            if prior is not None and prior.status in ("ok", "diverged"):
                results[key] = prior
                self.finished += 1  # counted in the progress, but not reported again
            else:
                todo.append(task)

        def lost(task: Mapping[str, Any], exc: BaseException) -> Trial:
            return Trial(trial=task["trial"], params=dict(task["params"]), status="failed", seed=self.seed,
                         rung=task["rung"], budget=task["budget"], message=f"{type(exc).__name__}: {exc}")

        for trial in run_tasks(evaluate, todo, shared=self.shared, on_error=lost, **self.run_options):
            if self.folder is not None:
                self.folder.append(trial)
            results[_key(trial.trial, trial.rung, trial.params, trial.budget)] = trial
            self._count(trial)
        return [results[_key(t["trial"], t["rung"], t["params"], t["budget"])] for t in tasks]

    def _count(self, trial: Trial) -> None:
        self.finished += 1
        if self.on_trial is not None:
            self.on_trial(trial, self.finished, self.total)


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


def _open_folder(run_dir: Any, resume: bool, config: dict[str, Any], strategy: str) -> tuple[SearchFolder | None,
                                                                                           dict[str, Trial]]:
    if run_dir is None:
        if resume:
            raise ValueError("resume=True needs run_dir, the folder of the search to continue")
        return None, {}
    folder = SearchFolder(run_dir)
    if not resume:
        if folder.exists():
            raise SearchFolderError(f"{folder.path} already holds a search; continue it with resume=True "
                                    "(chainrule tune --resume), or choose another folder")
        folder.create(config)
        return folder, {}
    saved = folder.read_config()
    may_differ = RESUME_MAY_DIFFER + (("n_trials",) if strategy == "random" else ())
    diff = differing_keys(saved, config, may_differ)
    if diff:
        raise SearchFolderError(f"cannot resume {folder.path} with a different search: {'; '.join(diff)}")
    done = {_key(t.trial, t.rung, t.params, t.budget): t for t in folder.read_trials(repair=True)}
    folder.write_config(config)
    logger.info("resuming the search in %s: %d finished trials are kept", folder.path,
                sum(t.status != "failed" for t in done.values()))
    return folder, done


def search(factory: Any, space: Space | Mapping[str, Any], X: np.ndarray, y: np.ndarray, *,
           strategy: str = "grid", n_trials: int | None = None, validation: str | int = "holdout",
           val_size: float | int = 0.2, stratify: bool = True, seed: int = 0, scoring: Any = "accuracy",
           fixed: Mapping[str, Any] | None = None, budget: Any = None, eta: float = 3,
           n_jobs: int | None = -1, backend: str = "local", scheduler: Any = None, connect_timeout: float = 5.0,
           run_dir: str | Path | None = None, resume: bool = False, explode_factor: float = 10.0,
           trap_fp: bool = True, on_trial: Callable[[Trial, int, int], None] | None = None,
           metadata: Mapping[str, Any] | None = None, plots: bool = True) -> SearchResult:
    """Search ``space`` for the hyperparameters of ``factory`` that score best on held-out data.

    Args:
        factory: an estimator class, an estimator instance (cloned per trial) or a function returning an
            estimator; its ``get_params()`` names are the valid hyperparameters.
        space: a ``Space`` or a mapping of names to lists / ranges / distributions (``chainrule.tune.space``).
        X, y: (N, ...) inputs and (N,) labels of the *training* data; validation folds are carved from them.
        strategy: "grid", "random" or "halving" (module docstring). n_trials: random/halving candidates.
        validation: "holdout" (one stratified split holding out ``val_size``) or an int k (k-fold CV; every
            class needs >= k samples when ``stratify``).
        seed: folds, random draws, and ``random_state`` of estimators that leave it unset.
        scoring: "accuracy" or ``scorer(estimator, X, y) -> float`` (higher is better).
        fixed: estimator arguments every trial uses. budget, eta: successive halving's resource and factor.
        n_jobs, backend, scheduler, connect_timeout: where trials run (``chainrule.tune.parallel``).
        run_dir, resume: the run folder (``chainrule.tune.store``) and whether to continue the search there.
        explode_factor, trap_fp: divergence detection (``chainrule.tune.trial``).
        on_trial: called as ``on_trial(trial, finished, total)`` after each trial that runs (progress bars);
            ``finished`` counts the trials a resumed search reuses too.
        metadata: JSON-able facts stored in search.json (the CLI stores the data spec and model).
        plots: write plots/ into ``run_dir`` at the end (needs matplotlib).

    Returns:
        SearchResult: every trial (params, scores, times, status), ``best_params``, ``best_score``, ``table()``.
    """
    t_start = time.perf_counter()
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    space = space if isinstance(space, Space) else Space(space)
    fixed = dict(fixed or {})
    X, y = np.asarray(X), np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"X and y must have the same number of samples, got {len(X)} and {len(y)}")
    if eta <= 1 or not math.isfinite(eta):
        raise ValueError(f"eta must be > 1 (the factor by which halving cuts candidates), got {eta!r}")
    budget_obj = Budget.parse(budget) if budget is not None else None
    if strategy == "halving" and budget_obj is None:
        raise ValueError("strategy='halving' needs budget=(param, min, max), e.g. ('epochs', 1, 27) or "
                         "('n_samples', 500, 4500)")
    if strategy != "halving" and budget_obj is not None:
        raise ValueError(f"budget is only used by strategy='halving'; for {strategy} search put a fixed value in "
                         f"fixed={{{budget_obj.param!r}: ...}}")
    valid = list(default_params(factory))
    owner = estimator_name(factory)
    check_names(list(space), valid, owner)
    check_names(list(fixed), valid, owner)
    overlap = sorted(set(space) & set(fixed))
    if overlap:
        raise SpaceError(f"{', '.join(overlap)} appear both in the space and in fixed; keep one")
    if budget_obj is not None:
        if budget_obj.param != "n_samples":
            check_names([budget_obj.param], valid, owner)
        if budget_obj.param in space or budget_obj.param in fixed:
            raise SpaceError(f"the halving budget {budget_obj.param!r} is set by the search; remove it from the "
                             "space and fixed")
    folds = make_folds(y, validation, seed=seed, val_size=val_size, stratify=stratify)
    candidates = _candidates(space, strategy, n_trials, seed)

    config = {
        "format": SEARCH_FORMAT, "estimator": owner, "strategy": strategy,
        "n_trials": None if strategy == "grid" else len(candidates), "space": space.to_dict(), "fixed": fixed,
        "validation": validation, "val_size": val_size if validation == "holdout" else None,
        "stratify": stratify, "seed": seed,
        "scoring": scoring if isinstance(scoring, str) else estimator_name(scoring),
        "budget": budget_obj.to_json() if budget_obj else None, "eta": eta if budget_obj else None,
        "explode_factor": explode_factor, "trap_fp": trap_fp, "data": _fingerprint(X, y),
        "metadata": dict(metadata or {}), "backend": backend,
        "scheduler": scheduler if isinstance(scheduler, (str, type(None))) else "client",
    }
    try:
        from chainrule import __version__
        config["chainrule_version"] = __version__
    except ImportError:  # pragma: no cover
        pass
    with _scheduler(backend, scheduler, connect_timeout) as scheduler:  # unreachable: fail before writing
        folder, done = _open_folder(run_dir, resume, config, strategy)
        options = {"seed": seed, "scoring": scoring, "explode_factor": explode_factor, "trap_fp": trap_fp,
                   "budget_samples": bool(budget_obj and budget_obj.param == "n_samples")}
        run_options = {"n_jobs": n_jobs, "backend": backend, "scheduler": scheduler,
                       "connect_timeout": connect_timeout}
        plan = halving_plan(len(candidates), budget_obj, eta) if budget_obj else [(len(candidates), None)]
        runner = _Runner((X, y, folds, factory, options), seed, folder, done, sum(n for n, _ in plan),
                         run_options, on_trial)
        if budget_obj is None:
            trials = runner.run([_task(i, p, fixed) for i, p in enumerate(candidates)])
        else:
            trials = _halving(runner, candidates, fixed, budget_obj, plan)
    result = SearchResult(trials=trials, space=space, config=config, run_dir=folder.path if folder else None,
                          elapsed=time.perf_counter() - t_start)
    if folder is not None:
        folder.write_results(result)
        if plots and any(t.ok for t in trials):
            from chainrule.tune.plots import save_plots

            save_plots(result, folder.plots_dir)
    return result


@contextlib.contextmanager
def _scheduler(backend: str, scheduler: Any, timeout: float) -> Iterator[Any]:
    """A connected Dask client for the whole search (closed after it if we opened it), or ``scheduler`` as is."""
    if backend != "dask" or scheduler is None:
        yield scheduler
        return
    client, owned = connect(scheduler, timeout)
    try:
        yield client
    finally:
        if owned:
            client.close()


def _halving(runner: _Runner, candidates: Sequence[dict[str, Any]], fixed: Mapping[str, Any], budget: Budget,
             plan: list[tuple[int, float]]) -> list[Trial]:
    alive = list(range(len(candidates)))
    trials: list[Trial] = []
    for rung, (n_keep, b) in enumerate(plan):
        if not alive:
            break
        alive = alive[:n_keep]
        results = runner.run([_task(i, candidates[i], fixed, rung, b, budget.param) for i in alive])
        trials.extend(results)
        ok = sorted((t for t in results if t.ok), key=lambda t: (-t.score, t.std or 0.0, t.trial))
        alive = [t.trial for t in ok]
        logger.info("halving rung %d (%s=%s): %d candidates, %d ok", rung, budget.param, b, len(results), len(ok))
    return trials
