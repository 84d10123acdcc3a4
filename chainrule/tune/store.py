"""A search's run folder: its configuration, one line per finished trial, the results, and ``load_best``.

    runs/NAME/
        search.json     the resolved search configuration (space, fixed values, strategy, seed, validation,
                        budget, ...) plus ``metadata`` (the CLI stores the data spec and model there)
        trials.jsonl    one JSON object per finished trial, appended (and fsync'ed) the moment it finishes
        results.csv     every trial, one row each (written when the search ends)
        best.json       the best trial's parameters and scores (written when the search ends)
        plots/          validation score against each hyperparameter, heat maps, accuracy vs k

One writer: a search holds the folder's lock (``.lock``, ``chainrule.utils.locking``) from ``create`` / ``lock``
until ``release``, so two searches, or two resumes, of one folder cannot both run its trials; the second is
refused with ``FolderInUseError`` naming the holder's pid.

trials.jsonl is the source of truth: a search that is interrupted (Ctrl-C, a killed process, a lost machine)
keeps every trial that finished, and resuming it skips them. A last line cut short by a kill is dropped with a
warning. ``load_best`` works on a finished or an interrupted search.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from chainrule.utils.atomic import atomic_write_text
from chainrule.utils.locking import FolderLock, create_locked_folder
from chainrule.tune.results import best_trial, fit_params
from chainrule.tune.trial import Trial

__all__ = ["SearchFolder", "BestConfig", "load_best", "differing_keys", "SEARCH_FORMAT", "SearchFolderError",
           "SearchFolderWarning"]

SEARCH_FORMAT = 1
# Keys of search.json that may change when a search is resumed: they do not change any trial's result (the data
# itself is compared through its fingerprint, the estimator through its name).
RESUME_MAY_DIFFER = ("n_jobs", "backend", "scheduler", "chainrule_version", "metadata")


class SearchFolderError(ValueError):
    """A run folder is not a search folder, is corrupt, or does not match the search asked for."""


class SearchFolderWarning(UserWarning):
    """Something in a search folder was repaired (a cut-off last line of trials.jsonl)."""


def _json_default(v: Any) -> Any:
    if hasattr(v, "item"):
        return v.item()
    if isinstance(v, (set, tuple)):
        return list(v)
    raise TypeError(f"cannot store {v!r} ({type(v).__name__}) in JSON")


def dumps(obj: Any, **kw: Any) -> str:
    return json.dumps(obj, default=_json_default, allow_nan=True, **kw)


class SearchFolder:
    CONFIG = "search.json"
    TRIALS = "trials.jsonl"
    RESULTS = "results.csv"
    BEST = "best.json"
    PLOTS = "plots"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock: FolderLock | None = None

    @property
    def config_path(self) -> Path:
        return self.path / self.CONFIG

    @property
    def trials_path(self) -> Path:
        return self.path / self.TRIALS

    @property
    def plots_dir(self) -> Path:
        return self.path / self.PLOTS

    def exists(self) -> bool:
        return self.config_path.is_file()

    def create(self, config: Mapping[str, Any]) -> None:
        """Start a new search here, holding the folder's lock (the folder is created locked, or locked if it
        exists); SearchFolderError if it already holds a search."""
        try:
            self._lock = create_locked_folder(self.path)
        except FileExistsError:
            self.lock()
            if self.exists():
                self.release()
                raise SearchFolderError(f"{self.path} already holds a search; continue it with resume=True "
                                        "(chainrule tune --resume), or choose another folder") from None
        self.write_config(config)
        if not self.trials_path.exists():
            atomic_write_text(self.trials_path, "")

    def lock(self) -> None:
        """Hold this folder's lock (``FolderInUseError`` naming the pid if another process holds it)."""
        if self._lock is None:
            self._lock = FolderLock(self.path).acquire()

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def write_config(self, config: Mapping[str, Any]) -> None:
        atomic_write_text(self.config_path, dumps(config, indent=2, sort_keys=False) + "\n")

    def read_config(self) -> dict[str, Any]:
        if not self.exists():
            raise SearchFolderError(f"{self.path} is not a search folder: it has no {self.CONFIG}")
        try:
            config = json.loads(self.config_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise SearchFolderError(f"{self.config_path} is not valid JSON: {e}") from None
        if config.get("format") != SEARCH_FORMAT:
            raise SearchFolderError(f"{self.config_path} has format {config.get('format')!r}; this version of "
                                    f"chainrule reads format {SEARCH_FORMAT}")
        return config

    def append(self, trial: Trial) -> None:
        """Append one finished trial as a single line, flushed and fsync'ed before returning."""
        line = dumps(trial.to_json(), sort_keys=True) + "\n"
        with open(self.trials_path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def read_trials(self, repair: bool = False) -> list[Trial]:
        """Every trial recorded so far. A cut-off last line is dropped with a warning (and removed from the file
        with ``repair=True``); a bad line elsewhere is an error naming it."""
        if not self.trials_path.exists():
            return []
        data = self.trials_path.read_bytes()
        lines = data.split(b"\n")
        trials, good_end, offset = [], 0, 0
        for i, raw in enumerate(lines):
            end = offset + len(raw) + 1
            if raw.strip():
                try:
                    trials.append(Trial.from_json(json.loads(raw)))
                except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as e:
                    if i == len(lines) - 1:  # no newline after it: a write cut short
                        warnings.warn(f"{self.trials_path}: dropping a cut-off last line ({len(raw)} bytes) "
                                      "left by an interrupted write", SearchFolderWarning, stacklevel=2)
                        break
                    raise SearchFolderError(f"{self.trials_path} line {i + 1} is not a trial record: {e}") from None
            good_end = min(end, len(data))
            offset = end
        if repair and good_end < len(data):
            with open(self.trials_path, "r+b") as f:
                f.truncate(good_end)
        elif repair and data and not data.endswith(b"\n"):  # a whole record whose newline was cut off
            with open(self.trials_path, "ab") as f:
                f.write(b"\n")
        return trials

    def write_results(self, result: Any) -> None:
        """results.csv and (if any trial succeeded) best.json for a SearchResult."""
        result.to_csv(self.path / self.RESULTS)
        if any(t.ok for t in result.trials):
            atomic_write_text(self.path / self.BEST, dumps(result.summary(), indent=2) + "\n")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return float(a) == float(b) or (math.isnan(float(a)) and math.isnan(float(b)))
    return json.loads(dumps(a)) == json.loads(dumps(b))


def differing_keys(saved: Mapping[str, Any], requested: Mapping[str, Any],
                   may_differ: tuple[str, ...] = RESUME_MAY_DIFFER) -> list[str]:
    """'key (run has A, requested B)' for each setting that differs between two search configurations."""
    out = []
    for key in sorted(set(saved) | set(requested)):
        if key in may_differ:
            continue
        if not _same(saved.get(key), requested.get(key)):
            out.append(f"{key} (run has {dumps(saved.get(key))}, requested {dumps(requested.get(key))})")
    return out


@dataclass
class BestConfig:
    """The best configuration of a search folder, ready to retrain.

    ``params``: the full estimator keyword arguments (fixed values, the trial's hyperparameters and the halving
    budget); ``space_params``: only the searched ones. ``data`` and ``model``: the dataset spec and model name the
    CLI recorded (None for searches started from Python without them).
    """

    params: dict[str, Any]
    space_params: dict[str, Any]
    score: float
    std: float
    trial: int
    data: str | None = None
    model: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)


def load_best(run_dir: str | os.PathLike) -> BestConfig:
    """The best trial of the search in ``run_dir`` (finished or interrupted), computed from trials.jsonl."""
    folder = SearchFolder(run_dir)
    if not folder.path.is_dir():
        raise SearchFolderError(f"search folder {str(folder.path)!r} does not exist")
    config = folder.read_config()
    trials = folder.read_trials()
    best = best_trial(trials)
    meta = dict(config.get("metadata") or {})
    return BestConfig(params=fit_params(config, best), space_params=dict(best.params), score=float(best.score),
                      std=float(best.std or 0.0), trial=best.trial, data=meta.get("data"), model=meta.get("model"),
                      metadata=meta, config=config)
