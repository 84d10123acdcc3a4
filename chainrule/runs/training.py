"""Running a training run into its run folder: the one place that builds the estimator of a resolved configuration,
fits it with the run-folder hooks (metrics, checkpoints, progress, signals), and writes everything a run folder
holds (config.toml, model.npz, summary.json, plots, report.html; see chainrule.train.runfolder).

    result = train_run(config, RunFolder("runs/digits-mlp"))     # config: chainrule.commands.config.resolve(...)
    result.summary["val_acc"]; result.trained.predict(X)

``chainrule train`` and ``chainrule compare`` call ``train_run``; ``chainrule.runs.load_trained`` loads what it wrote.
The model a run trains is the one the Python API trains with the same parameters, data and seed:
``MLPClassifier(**params).fit(X_train, y_train, validation_data=(X_val, y_val))`` (tests check it).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Mapping

import numpy as np

from chainrule.commands import config as cfgmod
from chainrule.commands import params as P
from chainrule.commands.common import Data, UsageError, split_data, usage_errors
from chainrule.runs.loading import Trained, input_spec
from chainrule.runs.outputs import history_plots, model_plots, write_run_report

logger = logging.getLogger("chainrule")

__all__ = ["train_run", "RunResult", "split_seed", "run_settings"]


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
        if config["tensorboard"] and not estimator.has_training_curve:
            raise UsageError(f"--tensorboard logs training curves, and {type(estimator).__name__} has no training "
                             "loop; drop --tensorboard (the run folder's metrics.csv has its validation accuracy)")
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
        from chainrule.train.plots import plot_k_selection

        path = folder.plots_dir / "knn_k.png"
        plot_k_selection(summary["val_acc_by_k"], path, estimator.describe())
        figures.append(("Validation accuracy for each k", path))
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
                                                        extra={"run": run_settings(config)}) if checkpoints else None),
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
    the validation split first with ``select_k`` / ``select_metric`` (the estimator's ``select``: one distance
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
    from chainrule.train import confusion_matrix, per_class_accuracy

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


def run_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The run settings (not the estimator's parameters: its fit checks those) a checkpoint is checked against:
    stored with each checkpoint, compared on ``--resume``."""
    return {k: v for k, v in _jsonable(config).items() if k == "model" or k in cfgmod.RUN_BY_KEY}


def _jsonable(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in config.items() if k != "out"}


def _changed_params(config: Mapping[str, Any]) -> str:
    from chainrule.commands.params import signature

    own = signature(config["model"])
    return ", ".join(f"{k}={config[k]!r}" for k in own if config[k] != own[k][1])
