"""``chainrule tune``: hyperparameter search (grid, random, successive halving), local or on a Dask cluster.

    chainrule tune --data digits --model softmax --space space.toml --strategy random --trials 40 --out runs/s1
    chainrule tune --resume runs/s1                       # finish an interrupted search (skips finished trials)
    chainrule tune --data digits --model knn --space knn.toml --strategy grid --cv 5 --jobs 2
    chainrule tune ... --backend dask --scheduler tcp://HOST:8786   # trials on a cluster (see docs/tune.md)

The search runs on the training split only (a validation split or k folds carved from it); the test split is
never touched. The run folder gets search.json, trials.jsonl (one line per finished trial), results.csv,
best.json and plots/. ``chainrule train --from-search runs/NAME`` retrains the best configuration.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.commands import config as cfgmod
from chainrule.commands.common import UsageError, data_spec, load_dataset, say, usage_errors
from chainrule.commands.params import class_name, estimator_class, model_names

logger = logging.getLogger("chainrule")

# Settings stored in search.json's metadata and reused by --resume.
_RESUMABLE = ("data", "model", "image_size", "subset", "strategy", "trials", "cv", "val_size", "budget", "eta",
              "seed")


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "tune", parents=[common], help="search hyperparameters (grid / random / halving), locally or on Dask",
        description="Search the hyperparameters of a classifier on a validation split (or k folds) of the training "
                    "data. Trials run in parallel (--jobs) or on a Dask cluster (--backend dask); each finished "
                    "trial is saved at once, so --resume continues an interrupted search.")
    # the run settings a search shares with `chainrule train` and `compare`: one table, the same defaults
    cfgmod.add_option(p, cfgmod.RUN_BY_KEY["data"])
    cfgmod.add_model_argument(p)
    p.add_argument("--space", metavar="FILE.toml", help="search space: a [space] table of hyperparameters "
                   "(lists or distributions like {loguniform = [1e-4, 1e-1]}) and an optional [fixed] table")
    p.add_argument("--strategy", choices=("grid", "random", "halving"), help="search strategy (default: random, "
                   "or grid when every hyperparameter is a list)")
    p.add_argument("--trials", type=int, metavar="N", help="random / halving candidates (default 20)")
    p.add_argument("--cv", type=int, metavar="K", help="k-fold cross-validation instead of one validation split")
    cfgmod.add_option(p, cfgmod.RUN_BY_KEY["val_size"])
    p.add_argument("--budget", metavar="PARAM:MIN:MAX", help="halving resource, e.g. epochs:1:27 or "
                   "n_samples:500:4000")
    p.add_argument("--eta", type=float, help="halving keeps the best 1/eta each rung (default 3)")
    cfgmod.add_option(p, cfgmod.RUN_BY_KEY["image_size"])
    p.add_argument("--subset", type=int, metavar="N", help="use a stratified sample of N training samples")
    p.add_argument("--seed", type=int, help="seed of folds, draws and estimators (default 0)")
    p.add_argument("--jobs", type=int, default=-1, metavar="N", help="parallel worker processes (default -1: one per "
                   "core; BLAS threads are split between them)")
    p.add_argument("--retries", type=int, default=1, metavar="N", help="run a trial again up to N times when its "
                   "worker process dies (killed, out of memory; default 1), then record it failed")
    p.add_argument("--backend", choices=("local", "dask"), default="local", help="where trials run")
    p.add_argument("--scheduler", metavar="ADDR", help="Dask scheduler address, e.g. tcp://HOST:8786")
    p.add_argument("--connect-timeout", type=float, default=5.0, metavar="S",
                   help="give up on an unreachable scheduler after S seconds (default 5)")
    p.add_argument("--top", type=int, default=10, metavar="N", help="rows of the final table (default 10)")
    p.add_argument("--out", metavar="DIR", help="run folder (default: runs/tune-<model>-<data>-<timestamp>)")
    p.add_argument("--resume", metavar="RUN", help="continue the search in this folder")
    p.set_defaults(func=run)


def parse_budget(text: str) -> tuple[str, float, float]:
    parts = text.split(":")
    try:
        if len(parts) != 3:
            raise ValueError
        lo, hi = (int(v) if v.strip().lstrip("-").isdigit() else float(v) for v in parts[1:])
        return parts[0].strip(), lo, hi
    except ValueError:
        raise UsageError(f"--budget must look like PARAM:MIN:MAX (e.g. epochs:1:27), got {text!r}") from None


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """The search settings given on the command line (None where not given), coerced as `chainrule train`'s."""
    val_size = args.val_size
    if val_size is not None:
        val_size = cfgmod.run_value(cfgmod.RUN_BY_KEY["val_size"], val_size, "--val-size")
    return {"data": args.data, "model": None if args.model is None else cfgmod.check_model(args.model), "image_size": args.image_size, "subset": args.subset,
            "strategy": args.strategy,
            "trials": args.trials, "cv": args.cv, "val_size": val_size,
            "budget": args.budget, "eta": args.eta, "seed": args.seed}


def _resumed_settings(args: argparse.Namespace) -> tuple[dict[str, Any], Any, dict[str, Any]]:
    from chainrule.tune import SearchFolder, SearchFolderError, Space

    folder = SearchFolder(args.resume)
    with usage_errors(f"cannot resume {args.resume}: "):
        try:
            saved = folder.read_config()
        except SearchFolderError as e:
            raise ValueError(str(e)) from None
    if args.out and Path(args.out).resolve() != Path(args.resume).resolve():
        raise UsageError("--out and --resume name different folders; a resumed search stays in its folder")
    if args.space:
        raise UsageError("--space cannot change on --resume: the search's space is stored in its search.json")
    settings = dict(saved.get("metadata", {}).get("cli", {}))
    given = {k: v for k, v in _settings(args).items() if v is not None}
    settings.update(given)
    return settings, Space(saved["space"]), dict(saved.get("fixed") or {})


def run(args: argparse.Namespace) -> int:
    from chainrule.tune import SearchConfig, SearchFolderError, SearchRunner, SpaceError, load_space

    if args.resume:
        settings, space, fixed = _resumed_settings(args)
        out = Path(args.resume)
    else:
        if not args.space:
            raise UsageError("--space FILE.toml is required: it lists the hyperparameters to search "
                             "(see docs/tune.md)")
        with usage_errors("--space: "):
            space, fixed = load_space(args.space)
        settings = _settings(args)
        settings["data"] = data_spec(settings["data"])
        settings["model"] = settings["model"] or cfgmod.DEFAULT_MODEL
        out = None
    s = settings
    strategy = s["strategy"] or ("grid" if space.grid_size is not None and not s["trials"] else "random")
    s["strategy"] = strategy
    if s["trials"] is not None and s["trials"] < 1:
        raise UsageError(f"--trials must be >= 1, got {s['trials']}")
    validation: Any = s["cv"] if s["cv"] else "holdout"
    val_size: Any = cfgmod.RUN_BY_KEY["val_size"].default if s["val_size"] is None else s["val_size"]
    if val_size >= 1:
        if not float(val_size).is_integer():
            raise UsageError(f"--val-size must be a fraction in (0, 1) or a whole count, got {val_size}")
        val_size = int(val_size)
    budget = parse_budget(s["budget"]) if s["budget"] else None
    seed = 0 if s["seed"] is None else s["seed"]
    if args.backend == "dask" and not args.scheduler:
        raise UsageError("--backend dask needs --scheduler tcp://HOST:8786 (the address `dask scheduler` prints)")
    if args.scheduler and args.backend != "dask":
        raise UsageError("--scheduler is used with --backend dask")

    factory = estimator_class(s["model"])
    image_size = s.get("image_size")
    if image_size is not None:
        from chainrule.data import parse_image_size

        with usage_errors("--image-size: "):
            image_size = "{}x{}".format(*parse_image_size(image_size))
        s["image_size"] = image_size
    ds = load_dataset(s["data"], seed=seed, image_size=image_size)
    X, y = ds.X_train, ds.y_train
    if s["subset"]:
        from chainrule.data import train_val_indices

        with usage_errors("--subset: "):
            if not 0 < s["subset"] <= len(y):
                raise ValueError(f"expected a count in [1, {len(y)}], got {s['subset']}")
            if s["subset"] < len(y):
                keep = train_val_indices(y, s["subset"], seed=seed)[1]  # stratified
                X, y = X[keep], y[keep]
    if out is None:
        from chainrule.train.runfolder import default_run_name

        out = Path(args.out) if args.out else Path("runs") / default_run_name("tune", s["model"], s["data"])
    logger.info("%s: searching %s over %d training samples (%s), %s strategy, run folder %s", ds.name,
                class_name(s["model"]), len(y), f"{validation}-fold CV" if validation != "holdout" else
                f"holdout {val_size}", strategy, out)
    progress = _Progress(enabled=not getattr(args, "quiet", False))
    try:
        with usage_errors():
            try:
                config = SearchConfig(
                    strategy=strategy, n_trials=s["trials"], validation=validation, val_size=val_size, seed=seed,
                    fixed=fixed, budget=budget, eta=s["eta"] or 3,
                    metadata={"data": s["data"], "model": s["model"], "dataset": ds.name, "classes": list(ds.classes),
                              "cli": {k: s.get(k) for k in _RESUMABLE}})
                runner = SearchRunner(factory, space, config, n_jobs=args.jobs, backend=args.backend,
                                      scheduler=args.scheduler, connect_timeout=args.connect_timeout, run_dir=out,
                                      retries=args.retries,
                                      resume=bool(args.resume), on_trial=progress)
                result = runner.run(X, y)
            except (SpaceError, SearchFolderError) as e:
                raise ValueError(str(e)) from None
    finally:
        progress.close()
    say(result.table(top=args.top))
    say(f"run folder: {out}")
    if not any(t.ok for t in result.trials):
        raise RuntimeError(f"no trial finished ok: {_first_problem(result)}")
    best = result.best
    say(f"best: {', '.join(f'{k}={v}' for k, v in result.best_fit_params.items())} -> validation score "
        f"{best.score:.4f}" + (f" ± {best.std:.4f}" if len(best.scores) > 1 else ""))
    say(f"train it: chainrule train --from-search {out}")
    return 0


def train_settings(run_dir: str | Path) -> dict[str, Any]:
    """The `chainrule train` configuration of the best trial of the search in ``run_dir``: its data spec and model,
    and every estimator argument of that trial (fixed values, searched values, the halving budget) under the
    estimator's own names, with ``random_state`` the search's seed when the trial left it unset (as the trials
    did). For ``chainrule train --from-search runs/NAME``: the layer below ``--config`` and the flags."""
    from chainrule.commands.params import to_toml_value
    from chainrule.tune import load_best

    best = load_best(run_dir)
    if best.model not in model_names() or not best.data:
        raise ValueError(f"{run_dir} was not written by `chainrule tune` (no data spec and model in its "
                         "search.json); use chainrule.tune.load_best from Python instead")
    params = dict(best.params)
    if params.get("random_state") is None:
        params["random_state"] = int(best.config.get("seed", 0))
    image_size = ((best.config.get("metadata") or {}).get("cli") or {}).get("image_size")
    return {"data": best.data, "model": best.model, **({"image_size": image_size} if image_size else {}),
            **{k: to_toml_value(v) for k, v in params.items()}}


def _first_problem(result: Any) -> str:
    t = next(t for t in result.trials if not t.ok)
    return f"trial {t.trial} ({t.status}): {t.message}"


class _Progress:
    """Trials done of all, the best score so far and an ETA (``chainrule.progress``): a live line on a terminal,
    one log line per trial otherwise."""

    def __init__(self, enabled: bool = True):
        from chainrule.progress import Progress

        self.enabled = enabled
        self.bar: Any = None
        if enabled:
            self.bar = Progress(None, "tune", "trials", delay=0.0, log_every=0, rate=False)
        self.best = -np.inf

    def __call__(self, trial: Any, done: int, total: int) -> None:
        from chainrule.progress import format_duration

        if trial.ok and trial.score > self.best:
            self.best = trial.score
        if self.bar is None:
            return
        self.bar.set_total(max(total, done))
        self.bar.note(f"best {self.best:.4f}" if np.isfinite(self.best) else "")
        self.bar.set(done)
        if not self.bar.tty:
            what = f"{trial.score:.4f}" if trial.ok else f"{trial.status}: {trial.message}"
            eta = self.bar.eta()
            logger.info("trial %d/%d (#%d%s): %s  %s%s", done, total, trial.trial,
                        f", budget {trial.budget}" if trial.budget is not None else "", what,
                        ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                  for k, v in trial.params.items()),
                        f"  (ETA {format_duration(eta)})" if eta is not None and done < total else "")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
