"""``chainrule train``: build a ``chainrule.classifiers`` estimator from the configuration, fit it with the run-folder
callbacks (metrics, checkpoints, progress), write the run folder (see chainrule.train.runfolder).

    chainrule train --data digits --model mlp --hidden 100 --epochs 20 --out runs/digits-mlp
    chainrule train --config configs/cifar10-mlp-zca.toml --data folder:../shared/data/cifar10-train-jpeg.tar.gz
    chainrule train --resume runs/digits-mlp                 # continue a stopped or killed run exactly
    chainrule train --resume runs/digits-mlp --epochs 40     # extend a finished run

The model a run trains is the one the Python API trains with the same parameters, data and seed:
``MLPClassifier(**params).fit(X_train, y_train, validation_data=(X_val, y_val))`` (tests check it).
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Mapping

import numpy as np

from chainrule.commands import config as cfgmod
from chainrule.commands import params as P
from chainrule.commands.common import Data, UsageError, data_spec, say, split_data, usage_errors
from chainrule.commands.outputs import history_plots, model_plots, per_class_accuracy, write_run_report
from chainrule.commands.pipeline import OldRunFormatError, Trained, input_spec

logger = logging.getLogger("chainrule")


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "train", parents=[common], help="train a classifier and write a run folder",
        description="Train one of chainrule.classifiers' estimators (kNN, linear SVM, softmax or MLP) with its own "
                    "parameters and write runs/<name>/ with config.toml, model.npz, metrics.csv/.jsonl, "
                    "summary.json, checkpoints/, plots/ and report.html. Every setting can also come from "
                    "--config file.toml (keys as below, with '_' or '-'); flags win. See docs/cli.md.")
    cfgmod.add_arguments(p)
    p.add_argument("--config", dest="config_file", metavar="FILE.toml", help="read settings from a TOML file")
    p.add_argument("--resume", metavar="RUN", help="continue the run in this folder from its latest checkpoint "
                   "(with a larger --epochs: extend a finished run)")
    p.add_argument("--from-search", metavar="RUN", help="train the best configuration of a `chainrule tune` search "
                   "(its data, model, seed and every parameter of its best trial; --config and flags still win)")
    p.add_argument("--dry-run", action="store_true", help="check the configuration (and that the data path exists), "
                   "print the config.toml it resolves to, and stop: nothing is loaded, trained or written")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from chainrule.train import RunFolder, load_toml
    from chainrule.train.runfolder import default_run_name

    layers = []
    if args.from_search:
        from chainrule.commands.tune import train_settings

        with usage_errors("--from-search: "):
            layers.append(cfgmod.from_table(train_settings(args.from_search), args.from_search))
    if args.config_file:
        with usage_errors("--config: "):
            layers.append(cfgmod.from_table(load_toml(args.config_file), args.config_file))
    layers.append(cfgmod.from_flags(args))
    if args.resume:
        return _resume(args, layers)
    config = cfgmod.resolve(*layers)
    config["data"] = data_spec(config["data"])
    if args.dry_run:
        from chainrule.commands.common import check_spec
        from chainrule.train import dumps_toml

        check_spec(config["data"])
        say(dumps_toml(cfgmod.to_toml(config)).rstrip())
        return 0
    out = Path(config["out"]) if config["out"] else Path("runs") / default_run_name(config["model"], config["data"])
    folder = RunFolder(out)
    _check_new(folder)  # before anything is loaded (train_run checks again when it creates the folder)
    return _report(train_run(config, folder, progress=not args.quiet))


def _check_new(folder: Any) -> None:
    from chainrule.train.runfolder import RunExistsError

    try:
        folder.check_new()
    except RunExistsError as e:
        raise UsageError(str(e)) from None


def _resume(args: argparse.Namespace, layers: list[dict[str, Any]]) -> int:
    from chainrule.train import RunFolder

    folder = RunFolder(args.resume)
    if not folder.exists():
        raise UsageError(f"cannot resume {args.resume}: it is not a run folder (no config.toml there)")
    folder.lock()  # FolderInUseError (exit 1) while another process writes it; held until the run ends
    try:
        return _resume_locked(args, layers, folder)
    finally:
        folder.release()


def _resume_locked(args: argparse.Namespace, layers: list[dict[str, Any]], folder: Any) -> int:
    from chainrule.classifiers._training import RESUME_MAY_DIFFER, is_fit_checkpoint
    from chainrule.train import CheckpointError
    from chainrule.train.resume import check_trainer_state

    table = folder.read_config()
    if table.get("format") is None:
        raise OldRunFormatError(f"cannot resume {args.resume}: it was written by chainrule 0.1 (run-folder format 1), "
                                "before `chainrule train` trained chainrule.classifiers estimators; train it again "
                                "with the estimators' parameter names (docs/cli.md)")
    with usage_errors(f"{folder.config_path}: "):
        saved = cfgmod.resolve(cfgmod.from_table(table, str(folder.config_path)))
    saved["out"] = str(folder.path)
    requested = cfgmod.resolve(cfgmod.from_table(table, str(folder.config_path)), *layers)
    if requested["out"] and Path(requested["out"]).resolve() != folder.path.resolve():
        raise UsageError("--out and --resume name different folders; a resumed run stays in its folder")
    requested["out"] = str(folder.path)
    diff = cfgmod.differing_keys(saved, requested, may_differ=RESUME_MAY_DIFFER)
    if diff:
        raise UsageError(f"cannot resume {args.resume} with a different configuration: {'; '.join(diff)}. "
                         "Drop those flags, or start a new run with --out")
    summary = folder.read_summary() if folder.summary_path.is_file() else {}
    has_curve = P.estimator_class(requested["model"]).has_training_curve
    if summary.get("status") == "complete" and not cfgmod.differing_keys(summary.get("config", {}), requested):
        what = (f"{summary.get('epochs_completed')} epoch(s), {summary.get('steps')} steps" if has_curve
                else f"a {P.class_name(requested['model'])} run has no training loop to continue")
        say(f"{args.resume} is complete ({what}); nothing to resume. To train longer, resume with a larger --epochs")
        return 0
    if summary.get("status") in ("failed", "interrupted"):
        logger.info("%s %s earlier (%s); continuing it", args.resume, summary["status"],
                    summary.get("error") or "no reason recorded")
    latest = None
    if has_curve:
        try:
            latest = folder.checkpoints(requested["keep_checkpoints"]).load_latest(validate=check_trainer_state)
        except CheckpointError as e:
            raise RuntimeError(f"cannot resume {args.resume}: {e}") from e
    if latest is None:  # stopped before its first checkpoint (or no training loop): nothing to continue: start over
        logger.info("%s has no checkpoint to continue from: training it from the start", args.resume)
        return _report(train_run(requested, folder, progress=not args.quiet))
    state, path = latest
    if not is_fit_checkpoint(state):
        raise RuntimeError(f"{path} was not written by an estimator's fit (kind {state.get('kind')!r}); it cannot be "
                           "resumed by this version of chainrule")
    estimator = P.class_name(requested["model"])
    if state["config"].get("estimator") != estimator:
        raise RuntimeError(f"{path} is a checkpoint of a {state['config'].get('estimator')} fit, but this run trains "
                           f"a {estimator}; it cannot be resumed from it")
    if isinstance(state.get("run"), dict):  # the run settings this checkpoint was trained with (data, split, ...)
        diff = cfgmod.differing_keys(state["run"], _run_settings(requested))
        if diff:
            raise UsageError(f"cannot resume {args.resume}: its checkpoint {path.name} was trained with other run "
                             f"settings than {folder.config_path} and the flags ask for: {'; '.join(diff)}. Put them "
                             "back, or start a new run with --out")
    c = state["counters"]
    logger.info("resuming %s from %s (step %d, epoch %d of %s)", args.resume, path.name, c["step"], c["epoch"],
                requested.get("epochs") or f"{requested.get('iterations')} steps")
    return _report(train_run(requested, folder, progress=not args.quiet, resume_state=state))


def _report(result: "RunResult") -> int:
    s = result.summary
    say(f"run folder: {result.folder.path}")
    if not s["training_curve"]:
        say(s["description"] + (" (k chosen on validation)" if s.get("val_acc_by_k") else "")
            + f"; fit {s['train_time_s']:.2f} s, predict {s['predict_time_s']:.2f} s for {s['num_val']} samples")
    else:
        rate = f" ({s['train_samples_per_s']:,.0f} samples/s)" if s.get("train_samples_per_s") else ""
        say(f"{s['model']} ({s['num_parameters']:,} parameters): {s['epochs_completed']} epochs, {s['steps']} steps "
            f"in {s['train_time_s']:.1f} s{rate}")
    best = (f" (best epoch {s['best_epoch']}: {100 * s['best_val_acc']:.2f}%)"
            if s.get("best_epoch") and s.get("best_val_acc") is not None and s["best_val_acc"] > s["val_acc"]
            else "")
    say(f"validation accuracy: {100 * s['val_acc']:.2f}%{best}")
    say(f"report: {result.folder.report_path}")
    return 0


@dataclass
class RunResult:
    folder: Any
    summary: dict[str, Any]
    trained: Trained
    data: Data
    history: Any = None


def split_seed(config: Mapping[str, Any]) -> int:
    """The validation split's seed: ``split_seed``, else the estimator's random_state (``--seed``), else 0."""
    if config.get("split_seed") is not None:
        return int(config["split_seed"])
    seed = config.get("random_state")
    return int(seed) if isinstance(seed, int) and not isinstance(seed, bool) else 0


class _Recorder:
    """Trainer callback keeping a reference to the trainer (its history outlives a fit that raises)."""

    trainer: Any = None

    def on_train_begin(self, trainer: Any) -> None:
        self.trainer = trainer


def train_run(config: Mapping[str, Any], folder: Any, progress: bool = True,
              resume_state: Mapping[str, Any] | None = None, data: Data | None = None,
              checkpoints: bool = True) -> RunResult:
    """Train ``config`` (resolved) into run folder ``folder`` (a ``RunFolder``); everything the CLI writes, written.

    ``data`` (already split) skips loading; ``resume_state`` (a checkpoint) continues that fit exactly;
    ``checkpoints=False`` writes no step checkpoints (``compare``, whose runs are not resumed: an epoch-end
    checkpoint costs more than an epoch of a linear model on digits).
    """
    from chainrule.train.interrupt import StopOnSignal

    t_start = time.perf_counter()
    config = dict(config)
    new_run = resume_state is None and not folder.exists()
    acquired = not folder.held
    with StopOnSignal() as stop:
        if data is None:
            data = split_data(config["data"], config["val_size"], split_seed(config), config.get("image_size"))
        estimator = P.build(config["model"], cfgmod.params_of(config))
        _check_fits(config, data, estimator)
        # Everything is checked: create the folder (exclusively, locked until this run ends) and write it.
        if new_run:
            _create(folder)
        else:
            folder.lock()
        try:
            return _train_into(config, folder, data, estimator, progress, resume_state, checkpoints, stop, t_start)
        except BaseException as e:
            _failed(folder, new_run, e)
            raise
        finally:
            if acquired:
                folder.release()


def _create(folder: Any) -> None:
    from chainrule.train.runfolder import RunExistsError

    try:
        folder.create()
    except RunExistsError as e:
        raise UsageError(str(e)) from None


def _check_fits(config: Mapping[str, Any], data: Data, est: Any) -> None:
    """Parameters that cannot exceed the training set (the estimator's ``capped_to``: kNN's k) must fit it, and so
    must one candidate of ``--select-k`` (candidates beyond the training set are left out): a usage error before
    anything is written."""
    n = len(data.X_train)
    wanted = {name: getattr(est, name) for name in est.capped_to(n)}
    if config["select_k"]:
        wanted = {"k": min(config["select_k"])} if min(config["select_k"]) > n else {}
    for name, value in wanted.items():
        raise UsageError(f"{name}={value} is larger than the training set ({n} samples); choose {name} <= {n}")


def _failed(folder: Any, new_run: bool, error: BaseException) -> None:
    """A run that fails (or is interrupted) before its first checkpoint leaves nothing behind if it was new;
    otherwise its summary says so (status "failed" or "interrupted", and why), and ``--resume`` continues it."""
    from chainrule.train.interrupt import Interrupted

    if isinstance(error, _DivergedRun):  # its summary and report are written
        return
    saved = folder.checkpoints(1).steps()
    if new_run and not saved:
        folder.remove()
        return
    status = "interrupted" if isinstance(error, (Interrupted, KeyboardInterrupt)) else "failed"
    try:
        summary = folder.read_summary() if folder.summary_path.is_file() else {}
        folder.write_summary({**summary, "status": status, "error": _error_text(error)})
    except Exception:  # noqa: BLE001 - e.g. the disk is full: the error being raised says more than this one
        logger.debug("could not mark %s %s", folder.path, status, exc_info=True)
    if saved and isinstance(error, OSError):  # e.g. disk full: say what is still there
        error.strerror = (f"{error.strerror or error}; the last good checkpoint, {saved[-1][1]}, is intact: "
                          f"free space (or fix the cause) and continue with chainrule train --resume {folder.path}")
    if saved and isinstance(error, Interrupted):
        error.args = (f"{error.args[0]}: stopped after step {saved[-1][0]}, checkpoint {saved[-1][1]}; continue "
                      f"with chainrule train --resume {folder.path}",)


def _error_text(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _train_into(config: dict[str, Any], folder: Any, data: Data, estimator: Any, progress: bool,
                resume_state: Mapping[str, Any] | None, checkpoints: bool, stop: Any, t_start: float) -> RunResult:
    import chainrule

    info = {"classes": list(data.classes), "input": input_spec(data.X_train), "status": "training"}
    _write_config(folder, config)
    folder.write_summary({**info, "config": _jsonable(config)})
    logger.info("%s: %d training / %d validation samples, %d classes; %s(%s)", data.name, len(data.X_train),
                len(data.X_val), len(data.classes), type(estimator).__name__, _changed_params(config))
    if not estimator.has_training_curve:
        history, fit_time, y_pred, predict_time = _fit_once(estimator, config, folder, data)
    else:
        stop.training = True
        try:
            history, fit_time = _fit(estimator, config, folder, data, progress, resume_state, info, checkpoints,
                                     stop)
        finally:
            stop.training = False
        stop.check()  # a signal during the fit: the trainer stopped after its step and wrote a checkpoint
    estimator.save(folder.model_path)
    trained = Trained(estimator, config["model"], tuple(data.classes), info["input"], config, folder,
                      folder.model_path)
    if estimator.has_training_curve:
        t0 = time.perf_counter()
        y_pred = trained.predict(data.X_val)
        predict_time = time.perf_counter() - t0
    summary = {**_summary(config, folder, data, estimator, y_pred, history), **info, "status": "complete",
               "train_time_s": fit_time, "predict_time_s": predict_time,
               "predict_samples_per_s": len(data.X_val) / predict_time if predict_time > 0 else None,
               "chainrule_version": chainrule.__version__, "config": _jsonable(config)}
    figures = []
    if summary.get("val_acc_by_k"):
        figures.append(_plot_k(folder, summary["val_acc_by_k"], estimator.describe()))
    elif estimator.has_training_curve:
        figures += history_plots(folder, history, summary.get("best_epoch"))
    figures += model_plots(folder, trained, data.X_val, data.y_val, y_pred, data.X_train, data.y_train)
    summary["wall_time_s"] = time.perf_counter() - t_start
    folder.write_summary(summary)
    write_run_report(folder, summary, cfgmod.to_toml(config), figures, history)
    return RunResult(folder, summary, trained, data, history)


def _fit(est: Any, config: Mapping[str, Any], folder: Any, data: Data, progress: bool,
         resume_state: Mapping[str, Any] | None, info: dict[str, Any], checkpoints: bool,
         stop: Any) -> tuple[Any, float]:
    """``est.fit`` with the run-folder hooks; a diverged run writes its summary and report, then fails (exit 1)."""
    from chainrule.train import MetricsWriter, ProgressBar
    from chainrule.train.tensorboard import TensorBoardLogger

    recorder, writer = _Recorder(), MetricsWriter(folder.path)
    extra = [TensorBoardLogger(folder.path / "tensorboard", data.X_train.shape[1:])] if config["tensorboard"] else []
    t0 = time.perf_counter()
    try:
        with usage_errors():
            try:
                est.fit(data.X_train, data.y_train, validation_data=(data.X_val, data.y_val),
                        callbacks=[writer, ProgressBar(enabled=progress), recorder, stop, *extra],
                        checkpoints=(folder.checkpoints(config["keep_checkpoints"],
                                                        extra={"run": _run_settings(config)}) if checkpoints else None),
                        checkpoint_every=config["checkpoint_every"] or None, resume=resume_state,
                        diagnostics=config["diagnostics"])
            except FloatingPointError as e:  # not a usage error: report it below
                raise _Diverged(str(e)) from e
    except _Diverged as e:
        writer.close()
        history = recorder.trainer.history if recorder.trainer is not None else None
        folder.write_summary({**info, "status": "diverged", "stop_reason": f"non-finite: {e}",
                              "model": config["model"], "data": config["data"], "config": _jsonable(config)})
        figures = history_plots(folder, history, None) if history is not None else []
        write_run_report(folder, {"model": config["model"], "data": config["data"], "stop_reason": str(e)},
                         cfgmod.to_toml(config), figures, history)
        raise _DivergedRun(f"{e}; the run folder {folder.path} holds the metrics and checkpoints up to the last "
                           "finite step") from None
    return recorder.trainer.history, time.perf_counter() - t0


class _Diverged(Exception):
    pass


class _DivergedRun(RuntimeError):
    """A diverged run, its summary and report written (exit 1)."""


def _fit_once(est: Any, config: dict[str, Any], folder: Any, data: Data) -> tuple[Any, float, np.ndarray, float]:
    """Fit a model without a training loop (``has_training_curve`` False: kNN, ...), choosing k and the metric on
    the validation split first with ``select_k`` / ``select_metric`` (``KNearestNeighbor.select``: one distance
    pass per metric scores every k), predict the validation split and log its one "epoch". Returns (history, fit
    time, validation predictions, their time)."""
    from chainrule.train import History, MetricsWriter

    selecting = bool(config["select_k"] or config.get("select_metric"))
    ks = [k for k in sorted(set(config["select_k"] or [getattr(est, "k", 1)])) if k <= len(data.X_train)]
    with usage_errors():
        t0 = time.perf_counter()
        est.fit(data.X_train, data.y_train)
        fit_time = time.perf_counter() - t0
        t0 = time.perf_counter()
        if selecting:
            table, predictions = est.select(data.X_val, data.y_val, ks, config.get("select_metric") or None)
        else:
            predictions = est.predict(data.X_val)
        predict_time = time.perf_counter() - t0
    record: dict[str, Any] = {"epoch": 1, "step": 0, "time_s": fit_time,
                              "val_acc": float(np.mean(predictions == data.y_val)),
                              "samples_per_s": len(data.X_val) / predict_time if predict_time > 0 else None}
    if selecting:
        record["knn_k"] = est.k
        for metric, by_k in table.items():
            for k, acc in by_k.items():
                logger.info("%s k=%-3d validation accuracy %.4f%s", metric, k, acc,
                            "  <- best" if (k, metric) == (est.k, est.metric) else "")
        config["k"], config["metric"] = est.k, est.metric
        _write_config(folder, config)
        record["val_acc_by_k"] = {str(k): a for k, a in table[est.metric].items()}
        record["val_acc_by_metric"] = {m: {str(k): a for k, a in by_k.items()} for m, by_k in table.items()}
    history = History()
    history.log_epoch(record)
    writer, holder = MetricsWriter(folder.path), SimpleNamespace(history=history)
    writer.on_train_begin(holder)
    writer.on_train_end(holder)
    return history, fit_time, np.asarray(predictions).astype(np.int64), predict_time


def _summary(config: Mapping[str, Any], folder: Any, data: Data, est: Any, y_pred: np.ndarray,
             history: Any) -> dict[str, Any]:
    from chainrule.train.plots import confusion_matrix

    cm = confusion_matrix(data.y_val, y_pred, len(data.classes))
    s: dict[str, Any] = {
        "run": Path(folder.path).name, "model": config["model"], "estimator": type(est).__name__,
        "description": est.describe(), "training_curve": bool(est.has_training_curve),
        "data": config["data"], "dataset": data.name, "num_train": int(len(data.X_train)),
        "num_val": int(len(data.X_val)), "val_acc": float(np.mean(y_pred == data.y_val)),
        "per_class_val_acc": per_class_accuracy(cm, data.classes), "confusion_matrix": cm.tolist(),
        "seed": config.get("random_state"),
    }
    s.update(num_features=est.n_model_features(), num_parameters=est.n_parameters())
    if not est.has_training_curve:
        first = history.epochs[0]
        s.update(epochs_completed=0, steps=0, val_acc_by_k=first.get("val_acc_by_k"),
                 val_acc_by_metric=first.get("val_acc_by_metric"))
        if first.get("val_acc_by_k"):
            s.update(knn_k=first["knn_k"], best_val_acc=max(first["val_acc_by_k"].values()))
        return s
    epochs = history.epochs
    vals = [e.get("val_acc") for e in epochs]
    best = int(np.nanargmax(np.array(vals, dtype=float))) + 1 if any(v is not None for v in vals) else None
    last = epochs[-1] if epochs else {}
    train_time = float(last.get("time_s") or 0.0)
    s.update({
        "epochs_completed": len(epochs), "steps": int(est.n_steps_),
        "best_epoch": best, "best_val_acc": vals[best - 1] if best else None,
        "model_epoch": int(getattr(est, "best_epoch_", len(epochs))),
        "final_train_acc": last.get("train_acc"), "final_val_acc": last.get("val_acc"),
        "final_val_loss": last.get("val_loss"), "train_loop_time_s": train_time,
        "train_samples_per_s": (len(data.X_train) * len(epochs) / train_time) if train_time > 0 else None,
        "stop_reason": getattr(est, "stop_reason_", None),
    })
    return s


def _write_config(folder: Any, config: Mapping[str, Any]) -> None:
    import chainrule

    folder.write_config({"command": "train", "chainrule_version": chainrule.__version__, **cfgmod.to_toml(config)})


def _run_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The run settings (not the estimator's parameters: its fit checks those) a checkpoint is checked against."""
    return {k: v for k, v in _jsonable(config).items() if k == "model" or k in cfgmod.RUN_BY_KEY}


def _jsonable(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in config.items() if k != "out"}


def _changed_params(config: Mapping[str, Any]) -> str:
    from chainrule.commands.params import signature

    own = signature(config["model"])
    return ", ".join(f"{k}={config[k]!r}" for k in own if config[k] != own[k][1])


def _plot_k(folder: Any, accs: Mapping[str, float], description: str) -> tuple[str, Path]:
    from chainrule.train.plots import _figure, _save

    ks = sorted(int(k) for k in accs)
    fig = _figure(6.0, 3.6)
    ax = fig.add_subplot()
    ax.plot(ks, [100 * accs[str(k)] for k in ks], marker="o")
    ax.set_xlabel("k (number of neighbours)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(f"{description}: choosing k on the validation split")
    ax.set_xticks(ks)
    ax.grid(alpha=0.3)
    path = folder.plots_dir / "knn_k.png"
    _save(fig, path)
    return "Validation accuracy for each k", path


__all__ = ["train_run", "RunResult", "split_seed"]
