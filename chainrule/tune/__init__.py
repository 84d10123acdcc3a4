"""Hyperparameter search and cross-validation, local or on a Dask cluster (see docs/tune.md).

    from chainrule.tune import cross_validate, search, loguniform

    cv = cross_validate(KNearestNeighbor(k=10), X, y, k=5, seed=0)      # per-fold scores, mean, std, times
    result = search(SoftmaxClassifier, {"lr": loguniform(1e-4, 1e-1), "reg": [1e-4, 1e-3, 1e-2]}, X, y,
                    strategy="random", n_trials=20, seed=0, n_jobs=2, run_dir="runs/softmax-search")
    result.best_params, result.best_score, print(result.table())
    load_best("runs/softmax-search")                                     # the best configuration, to retrain

Hyperparameters are chosen on validation folds carved from the training data, never on the test set.
"""

from chainrule.tune.cv import CVResult, check_folds, cross_validate, make_folds
from chainrule.tune.parallel import SchedulerUnreachableError, run_tasks
from chainrule.tune.results import NoSuccessfulTrialError, SearchResult
from chainrule.tune.config import STRATEGIES, Budget, SearchConfig, halving_plan
from chainrule.tune.runner import SearchRunner
from chainrule.tune.search import search
from chainrule.tune.space import (Choice, Dimension, LogUniform, RandInt, Space, SpaceError, Uniform, choice,
                                  load_space, loguniform, parse_space, randint, uniform)
from chainrule.tune.store import BestConfig, SearchFolder, SearchFolderError, load_best
from chainrule.tune.trial import Diverged, DivergenceCallback, Trial, build_estimator

__all__ = [
    "search", "SearchConfig", "SearchRunner", "cross_validate", "load_best", "STRATEGIES", "Budget", "halving_plan",
    "SearchResult", "CVResult", "Trial", "BestConfig", "make_folds", "check_folds",
    "Space", "Dimension", "Choice", "Uniform", "LogUniform", "RandInt",
    "choice", "uniform", "loguniform", "randint", "load_space", "parse_space",
    "SpaceError", "SearchFolderError", "NoSuccessfulTrialError", "SchedulerUnreachableError", "Diverged",
    "DivergenceCallback", "SearchFolder", "run_tasks", "build_estimator",
]
