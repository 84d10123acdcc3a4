"""How a search runs: ``SearchRunner`` evaluates a ``SearchConfig``'s trials locally (joblib workers) or on a Dask
cluster, records each finished trial in the run folder the moment it arrives, skips the finished ones on resume, and
drives successive halving rung by rung.

    runner = SearchRunner(SoftmaxClassifier, space, SearchConfig(strategy="random", n_trials=20), n_jobs=2,
                          run_dir="runs/s", on_trial=progress)
    result = runner.run(X, y)                                   # a SearchResult
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from chainrule.tune.config import Budget, SearchConfig
from chainrule.tune.parallel import connect, run_tasks
from chainrule.tune.results import SearchResult
from chainrule.tune.space import Space
from chainrule.tune.store import RESUME_MAY_DIFFER, SearchFolder, SearchFolderError, differing_keys
from chainrule.tune.store import dumps as _dumps
from chainrule.tune.trial import Trial, evaluate

__all__ = ["SearchRunner", "RUN_OPTIONS"]

logger = logging.getLogger("chainrule.tune")

RUN_OPTIONS = ("n_jobs", "backend", "scheduler", "connect_timeout", "retries", "run_dir", "resume", "on_trial",
               "plots")


class SearchRunner:
    """Runs the search ``config`` of ``factory`` over ``space``.

    Args:
        n_jobs, backend, scheduler, connect_timeout: where trials run (``chainrule.tune.parallel``).
        retries: how often a trial whose local worker process died is run again (default once) before it is
            recorded as failed (``tune --resume`` runs failed trials again).
        run_dir, resume: the run folder (``chainrule.tune.store``) and whether to continue the search there; the
            folder is locked while the search runs (``chainrule.utils.locking``): a second search or resume of it
            is refused naming the holder's pid.
        on_trial: called as ``on_trial(trial, finished, total)`` after each trial that runs (progress bars);
            ``finished`` counts the trials a resumed search reuses too.
        plots: write plots/ into ``run_dir`` at the end (needs matplotlib).
    """

    def __init__(self, factory: Any, space: Space | Mapping[str, Any], config: SearchConfig | None = None, *,
                 n_jobs: int | None = -1, backend: str = "local", scheduler: Any = None,
                 connect_timeout: float = 5.0, retries: int = 1, run_dir: str | Path | None = None,
                 resume: bool = False,
                 on_trial: Callable[[Trial, int, int], None] | None = None, plots: bool = True):
        self.factory = factory
        self.space = space if isinstance(space, Space) else Space(space)
        self.config = config or SearchConfig()
        self.n_jobs, self.backend, self.scheduler, self.connect_timeout = n_jobs, backend, scheduler, connect_timeout
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be an integer >= 0, got {retries!r}")
        self.retries = retries
        self.run_dir, self.resume, self.on_trial, self.plots = run_dir, resume, on_trial, plots

    def run(self, X: np.ndarray, y: np.ndarray) -> SearchResult:
        """Every trial of the search on the training data X (N, ...), y (N,); returns the SearchResult."""
        t_start = time.perf_counter()
        X, y = np.asarray(X), np.asarray(y)
        if len(X) != len(y):
            raise ValueError(f"X and y must have the same number of samples, got {len(X)} and {len(y)}")
        c = self.config
        plan = c.plan(self.factory, self.space, y)
        record = c.to_json(plan, self.space, X, y)
        record["backend"] = self.backend
        record["scheduler"] = self.scheduler if isinstance(self.scheduler, (str, type(None))) else "client"
        with _scheduler(self.backend, self.scheduler, self.connect_timeout) as scheduler:  # fail before writing
            folder, done = _open_folder(self.run_dir, self.resume, record, c.strategy)
            try:
                return self._run(X, y, plan, record, folder, done, scheduler, t_start)
            finally:
                if folder is not None:
                    folder.release()

    def _run(self, X: np.ndarray, y: np.ndarray, plan: Any, record: dict[str, Any], folder: SearchFolder | None,
             done: dict[str, Trial], scheduler: Any, t_start: float) -> SearchResult:
        c = self.config
        options = {"seed": c.seed, "scoring": c.scoring, "explode_factor": c.explode_factor,
                   "trap_fp": c.trap_fp, "budget_samples": bool(plan.budget and plan.budget.param == "n_samples")}
        run_options = {"n_jobs": self.n_jobs, "backend": self.backend, "scheduler": scheduler,
                       "connect_timeout": self.connect_timeout, "retries": self.retries}
        runner = _TaskRunner((X, y, plan.folds, self.factory, options), c.seed, folder, done, plan.total,
                             run_options, self.on_trial)
        if plan.budget is None:
            trials = runner.run([_task(i, p, plan.fixed) for i, p in enumerate(plan.candidates)])
        else:
            trials = _halving(runner, plan.candidates, plan.fixed, plan.budget, plan.rungs)
        result = SearchResult(trials=trials, space=self.space, config=record,
                              run_dir=folder.path if folder else None, elapsed=time.perf_counter() - t_start)
        if folder is not None:
            folder.write_results(result)
            if self.plots and any(t.ok for t in trials):
                from chainrule.tune.plots import save_plots

                save_plots(result, folder.plots_dir)
        return result


def _task(trial: int, params: dict[str, Any], fixed: Mapping[str, Any], rung: int = 0,
          budget: float | None = None, budget_param: str | None = None) -> dict[str, Any]:
    fit_params = {**fixed, **params}
    if budget_param is not None and budget_param != "n_samples":
        fit_params[budget_param] = budget
    return {"trial": trial, "rung": rung, "budget": budget, "params": params, "fit_params": fit_params}


def _key(trial: int, rung: int, params: Mapping[str, Any], budget: Any) -> str:
    return _dumps([trial, rung, params, budget], sort_keys=True)


class _TaskRunner:
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
        folder.create(config)  # locked until the search ends (SearchRunner.run releases it)
        return folder, {}
    if folder.exists():
        folder.lock()  # FolderInUseError while another search or resume of it runs; released when the search ends
    try:
        saved = folder.read_config()
        may_differ = RESUME_MAY_DIFFER + (("n_trials",) if strategy == "random" else ())
        diff = differing_keys(saved, config, may_differ)
        if diff:
            raise SearchFolderError(f"cannot resume {folder.path} with a different search: {'; '.join(diff)}")
        done = {_key(t.trial, t.rung, t.params, t.budget): t for t in folder.read_trials(repair=True)}
        folder.write_config(config)
    except BaseException:
        folder.release()
        raise
    logger.info("resuming the search in %s: %d finished trials are kept", folder.path,
                sum(t.status != "failed" for t in done.values()))
    return folder, done


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


def _halving(runner: _TaskRunner, candidates: Sequence[dict[str, Any]], fixed: Mapping[str, Any], budget: Budget,
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
