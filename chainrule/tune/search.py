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

The search is two objects: ``SearchConfig`` (what the search is: ``chainrule.tune.config``) and ``SearchRunner``
(where and how it runs: ``chainrule.tune.runner``); ``search()`` builds both from its keyword arguments::

    SearchRunner(SoftmaxClassifier, space, SearchConfig(strategy="random", n_trials=20), n_jobs=2).run(X, y)
"""


from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from chainrule.tune.config import STRATEGIES, Budget, SearchConfig, halving_plan
from chainrule.tune.results import SearchResult
from chainrule.tune.runner import RUN_OPTIONS, SearchRunner
from chainrule.tune.space import Space

__all__ = ["search", "Budget", "STRATEGIES", "halving_plan", "SearchConfig", "SearchRunner"]


def search(factory: Any, space: Space | Mapping[str, Any], X: np.ndarray, y: np.ndarray,
           **options: Any) -> SearchResult:
    """Search ``space`` for the hyperparameters of ``factory`` that score best on held-out data.

    Args:
        factory: an estimator class, an estimator instance (cloned per trial) or a function returning an
            estimator; its ``get_params()`` names are the valid hyperparameters.
        space: a ``Space`` or a mapping of names to lists / ranges / distributions (``chainrule.tune.space``).
        X, y: (N, ...) inputs and (N,) labels of the *training* data; validation folds are carved from them.
        **options: the fields of ``SearchConfig`` (what the search is) and the options of ``SearchRunner``
            (how it runs):

            strategy: "grid" (default), "random" or "halving" (module docstring). n_trials: random/halving
                candidates. validation: "holdout" (one stratified split holding out ``val_size``, default 0.2)
                or an int k (k-fold CV; every class needs >= k samples when ``stratify``). seed: folds, random
                draws, and ``random_state`` of estimators that leave it unset. scoring: "accuracy" or
                ``scorer(estimator, X, y) -> float`` (higher is better). fixed: estimator arguments every trial
                uses. budget, eta: successive halving's resource and factor. explode_factor, trap_fp: divergence
                detection (``chainrule.tune.trial``). metadata: JSON-able facts stored in search.json.
            n_jobs (default -1: a worker per core), backend ("local" or "dask"), scheduler, connect_timeout: where
                trials run (``chainrule.tune.parallel``). run_dir, resume: the run folder and whether to continue
                the search there. on_trial(trial, finished, total): after each trial that runs. plots: write
                plots/ into ``run_dir`` at the end (default True; needs matplotlib).

    Returns:
        SearchResult: every trial (params, scores, times, status), ``best_params``, ``best_score``, ``table()``.
    """
    known = SearchConfig.field_names()
    unknown = sorted(set(options) - set(known) - set(RUN_OPTIONS))
    if unknown:
        raise TypeError(f"search() got unexpected keyword argument(s) {unknown}; the search takes "
                        f"{', '.join(known)} and runs with {', '.join(RUN_OPTIONS)}")
    config = SearchConfig(**{k: v for k, v in options.items() if k in known})
    runner = SearchRunner(factory, space, config, **{k: v for k, v in options.items() if k in RUN_OPTIONS})
    return runner.run(X, y)
