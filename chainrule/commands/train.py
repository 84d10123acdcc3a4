"""``chainrule train``: train one classifier and write a run folder (see chainrule.train.runfolder).

    chainrule train --data digits --model mlp --hidden 100 --epochs 20 --out runs/digits-mlp
    chainrule train --resume runs/digits-mlp          # continue a stopped or killed run exactly
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Mapping

import numpy as np

from chainrule.commands import config as cfgmod
from chainrule.commands.common import Data, UsageError, data_spec, say, split_data, usage_errors
from chainrule.commands.outputs import (
    history_plots, model_plots, per_class_accuracy, write_run_report,
)
from chainrule.commands.pipeline import (
    KNN_KIND, Pipeline, fit_knn, input_spec, knn_neighbour_labels, require_knn, vote,
)

logger = logging.getLogger("chainrule")


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "train", parents=[common], help="train a classifier and write a run folder",
        description="Train a classifier (kNN, linear SVM, softmax or MLP) and write runs/<name>/ with config.toml, "
                    "metrics.csv/.jsonl, summary.json, checkpoints/, plots/ and report.html. Every setting can also "
                    "come from --config file.toml (keys as below, with '_' or '-'); flags win.")
    cfgmod.add_arguments(p)
    p.add_argument("--config", dest="config_file", metavar="FILE.toml", help="read settings from a TOML file")
    p.add_argument("--out", metavar="DIR", help="run folder (default: runs/<model>-<data>-<timestamp>)")
    p.add_argument("--resume", metavar="RUN", help="continue the run in this folder from its latest checkpoint")
    p.add_argument("--from-search", metavar="RUN", help="train the best configuration of a `chainrule tune` search "
                   "(its data, model, seed and best hyperparameters; flags and --config still win)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from chainrule.train import RunFolder, load_toml
    from chainrule.train.runfolder import default_run_name

    flags = cfgmod.from_flags(args)
    file_layer: dict[str, Any] = {}
    if args.config_file:
        with usage_errors("--config: "):
            file_layer = cfgmod.from_file(load_toml(args.config_file), args.config_file)
    if args.from_search:
        from chainrule.commands.tune import train_settings

        with usage_errors("--from-search: "):
            settings, dropped = train_settings(args.from_search)
        if dropped:
            logger.warning("--from-search: `chainrule train` has no setting for %s; using its defaults",
                           ", ".join(dropped))
        file_layer = {**cfgmod.from_file(settings, args.from_search), **file_layer}
    if args.resume:
        if args.out and Path(args.out).resolve() != Path(args.resume).resolve():
            raise UsageError("--out and --resume name different folders; a resumed run stays in its folder")
        return _resume(args, file_layer, flags)
    config = cfgmod.resolve(file_layer, flags)
    config["data"] = data_spec(config["data"])
    out = Path(args.out) if args.out else Path("runs") / default_run_name(config["model"], config["data"])
    folder = RunFolder(out)
    if folder.exists() or (folder.checkpoint_dir.is_dir() and any(folder.checkpoint_dir.iterdir())):
        raise UsageError(f"{out} already holds a run; continue it with --resume {out}, or choose another --out")
    result = train_run(config, folder, progress=not args.quiet)
    return _report(result)


def _resume(args: argparse.Namespace, file_layer: Mapping[str, Any], flags: Mapping[str, Any]) -> int:
    from chainrule.train import CheckpointError, RunFolder

    folder = RunFolder(args.resume)
    if not folder.exists():
        raise UsageError(f"cannot resume {args.resume}: it is not a run folder (no config.toml there)")
    with usage_errors(f"{folder.config_path}: "):
        saved = cfgmod.resolve(cfgmod.from_file(folder.read_config(), str(folder.config_path)))
    requested = cfgmod.resolve(saved, file_layer, flags)
    diff = cfgmod.differing_keys(saved, requested)
    if diff:
        raise UsageError(f"cannot resume {args.resume} with a different configuration: {'; '.join(diff)}. "
                         "Drop those flags, or start a new run with --out")
    if requested["model"] == "knn":
        say(f"{args.resume} is a kNN run: it has no training loop to continue (it is complete)")
        return 0
    manager = folder.checkpoints(requested["keep_checkpoints"])
    try:
        latest = manager.load_latest()
    except CheckpointError as e:
        raise RuntimeError(f"cannot resume {args.resume}: {e}") from e
    if latest is None:  # stopped before its first checkpoint: nothing to continue, so start it over
        logger.info("%s has no checkpoint yet (it stopped before its first one): training it from the start",
                    args.resume)
        return _report(train_run(requested, folder, progress=not args.quiet))
    state, path = latest
    ckpt_model = state.get("config", {}).get("model")
    if state.get("kind") != "chainrule.Trainer" or ckpt_model != requested["model"]:
        raise RuntimeError(f"{path} is a checkpoint of a {ckpt_model!r} run ({state.get('kind')}), but this run "
                           f"trains {requested['model']!r}; it cannot be resumed from it")
    logger.info("resuming %s from %s (step %d, epoch %d of %d)", args.resume, path.name,
                state["counters"]["step"], state["counters"]["epoch"], requested["epochs"])
    result = train_run(requested, folder, progress=not args.quiet, resume_state=state)
    return _report(result)


def _report(result: "RunResult") -> int:
    s = result.summary
    say(f"run folder: {result.folder.path}")
    if s["model"] == "knn":
        say(f"kNN ({s['metric']}), k={s['knn_k']} chosen on validation; fit {s['train_time_s']:.2f} s, "
            f"predict {s['predict_time_s']:.2f} s for {s['num_val']} samples")
    else:
        rate = f" ({s['train_samples_per_s']:,.0f} samples/s)" if s.get("train_samples_per_s") else ""
        say(f"{s['model']} ({s['num_parameters']:,} parameters): {s['epochs_completed']} epochs, {s['steps']} steps "
            f"in {s['train_time_s']:.1f} s{rate}")
    say(f"validation accuracy: {100 * s['val_acc']:.2f}%" + (f" (best epoch {s['best_epoch']})"
                                                             if s.get("best_epoch") else ""))
    say(f"report: {result.folder.report_path}")
    if s.get("stop_reason") and s["stop_reason"].startswith("non-finite"):
        what = s["stop_reason"][len("non-finite: "):].split(";")[0]
        raise RuntimeError(f"training stopped at {what}; the run folder {result.folder.path} holds everything up "
                           "to the last finite step (lower --lr or set --clip-grad)")
    return 0


@dataclass
class RunResult:
    folder: Any
    summary: dict[str, Any]
    pipeline: Pipeline
    data: Data
    history: Any = None
    extras: dict[str, Any] = field(default_factory=dict)


def train_run(config: Mapping[str, Any], folder: Any, progress: bool = True,
              resume_state: Mapping[str, Any] | None = None, data: Data | None = None) -> RunResult:
    """Train ``config`` into run folder ``folder`` (a ``RunFolder``); everything the CLI writes, written."""
    import chainrule

    t_start = time.perf_counter()
    config = dict(config)
    if config["model"] == "knn":
        require_knn()  # fail before anything is written
    if data is None:
        data = split_data(config["data"], config["val_size"], config["seed"])
    pipe = Pipeline(config, input_spec(data.X_train), data.classes)
    with usage_errors():
        X_train = pipe.fit_transform(data.X_train)
        X_val = pipe.transform(data.X_val)
    folder.create()
    folder.write_config({"command": "train", "chainrule_version": chainrule.__version__, **config})
    logger.info("%s: %d training / %d validation samples, %d features, %d classes", data.name, len(X_train),
                len(X_val), X_train.shape[1], len(data.classes))
    if config["model"] == "knn":
        result = _train_knn(config, folder, pipe, data, X_train, X_val)
    else:
        result = _train_nn(config, folder, pipe, data, X_train, X_val, progress, resume_state)
    result.summary["wall_time_s"] = time.perf_counter() - t_start
    if pipe.feature_time_s:
        result.summary["feature_time_s"] = pipe.feature_time_s
    folder.write_summary(result.summary)
    write_run_report(folder, result.summary, config, result.extras["figures"], result.history)
    return result


def _common_summary(config: Mapping[str, Any], folder: Any, pipe: Pipeline, data: Data, X_train: np.ndarray,
                    y_pred: np.ndarray) -> dict[str, Any]:
    import chainrule
    from chainrule.train.plots import confusion_matrix

    cm = confusion_matrix(data.y_val, y_pred, len(data.classes))
    return {
        "run": Path(folder.path).name, "model": config["model"], "data": config["data"], "dataset": data.name,
        "classes": list(data.classes), "num_train": int(len(data.X_train)), "num_val": int(len(data.X_val)),
        "num_features": int(X_train.shape[1]), "val_acc": float(np.mean(y_pred == data.y_val)),
        "per_class_val_acc": per_class_accuracy(cm, data.classes), "confusion_matrix": cm.tolist(),
        "seed": config["seed"], "chainrule_version": chainrule.__version__,
    }


def _train_knn(config: Mapping[str, Any], folder: Any, pipe: Pipeline, data: Data, X_train: np.ndarray,
               X_val: np.ndarray) -> RunResult:
    from chainrule.train import History, MetricsWriter, save_checkpoint

    ks = sorted(set(config["k"]))
    if ks[-1] > len(X_train):
        raise UsageError(f"--k {ks[-1]} is larger than the training set ({len(X_train)} samples)")
    t0 = time.perf_counter()
    pipe.model = fit_knn(config, X_train, data.y_train)
    pipe.knn_y = data.y_train
    fit_time = time.perf_counter() - t0
    t0 = time.perf_counter()
    labels = knn_neighbour_labels(pipe.model, data.y_train, X_val, ks[-1])  # one distance pass for every k
    predict_time = time.perf_counter() - t0
    accs = {k: float(np.mean(vote(labels, k, len(data.classes)).argmax(axis=1) == data.y_val)) for k in ks}
    best_k = max(ks, key=lambda k: (accs[k], -k))
    pipe.knn_k = best_k
    for k in ks:
        logger.info("k=%-3d validation accuracy %.4f%s", k, accs[k], "  <- best" if k == best_k else "")
    y_pred = vote(labels, best_k, len(data.classes)).argmax(axis=1)
    save_checkpoint(folder.checkpoint_dir / "best.npz", {
        "kind": KNN_KIND, "config": dict(config), "metadata": pipe.metadata(),
        "train_X": data.X_train, "train_y": data.y_train, "val_acc_by_k": {str(k): a for k, a in accs.items()},
    })
    history = History()
    history.log_epoch({"epoch": 1, "step": 0, "val_acc": accs[best_k], "time_s": fit_time,
                       "samples_per_s": len(X_val) / predict_time if predict_time > 0 else None,
                       "knn_k": best_k, "val_acc_by_k": {str(k): a for k, a in accs.items()}})
    writer = MetricsWriter(folder.path)
    holder = SimpleNamespace(history=history)
    writer.on_train_begin(holder)
    writer.on_train_end(holder)
    figures = []
    if len(ks) > 1:
        p = folder.plots_dir / "knn_k.png"
        _plot_k(ks, [accs[k] for k in ks], p, config["metric"])
        figures.append(("Validation accuracy for each k", p))
    figures += model_plots(folder, pipe, data.X_val, data.y_val, y_pred, data.X_train, data.y_train)
    summary = _common_summary(config, folder, pipe, data, X_train, y_pred)
    summary.update({"knn_k": best_k, "metric": config["metric"], "val_acc_by_k": {str(k): a for k, a in accs.items()},
                    "best_val_acc": accs[best_k], "train_time_s": fit_time, "predict_time_s": predict_time,
                    "predict_samples_per_s": len(X_val) / predict_time if predict_time > 0 else None,
                    "num_parameters": 0, "epochs_completed": 0, "steps": 0})
    return RunResult(folder, summary, pipe, data, history, {"figures": figures})


def _plot_k(ks: list[int], accs: list[float], path: Path, metric: str) -> None:
    from chainrule.train.plots import _figure, _save

    fig = _figure(6.0, 3.6)
    ax = fig.add_subplot()
    ax.plot(ks, [100 * a for a in accs], marker="o")
    ax.set_xlabel("k (number of neighbours)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(f"kNN ({metric.upper()} distance): choosing k on the validation split")
    ax.set_xticks(ks)
    ax.grid(alpha=0.3)
    _save(fig, path)


def make_optimizer(config: Mapping[str, Any], params: list[Any]) -> Any:
    from chainrule import optim

    name, lr, wd = config["optimizer"], config["lr"], config["weight_decay"]
    with usage_errors():
        if name in ("sgd", "nesterov"):
            return optim.SGD(params, lr=lr, momentum=config["momentum"], nesterov=name == "nesterov",
                             weight_decay=wd)
        if name == "rmsprop":
            return optim.RMSProp(params, lr=lr, weight_decay=wd)
        if name == "adam":
            return optim.Adam(params, lr=lr, weight_decay=wd)
        return optim.AdamW(params, lr=lr, weight_decay=wd)


def make_schedule(config: Mapping[str, Any], optimizer: Any, total_steps: int) -> Any:
    """The named schedule over the whole run (``total_steps`` optimizer steps)."""
    from chainrule.optim.schedules import make_schedule as build

    name, warmup = config["schedule"], config["warmup"]
    kwargs: dict[str, Any] = {}
    if name == "cosine":
        kwargs = {"total_steps": total_steps, "min_lr": config["min_lr"]}
    elif name == "linear":
        kwargs = {"total_steps": total_steps, "end_lr": config["min_lr"]}
    elif name == "step":  # x0.1 at 50% and 75% of the run
        kwargs = {"milestones": sorted({max(1, total_steps // 2), max(2, 3 * total_steps // 4)}), "gamma": 0.1}
    elif name == "exponential":  # down to 1% of the rate by the end
        kwargs = {"gamma": 0.01 ** (1.0 / max(total_steps - warmup, 1))}
    elif name == "plateau":
        kwargs = {"mode": "max", "factor": 0.5, "patience": 2}
    with usage_errors("--schedule: "):
        return build(name, optimizer, warmup=warmup, **kwargs)


def _train_nn(config: Mapping[str, Any], folder: Any, pipe: Pipeline, data: Data, X_train: np.ndarray,
              X_val: np.ndarray, progress: bool, resume_state: Mapping[str, Any] | None) -> RunResult:
    import chainrule.nn.functional as F
    from chainrule.data import Augment, DataLoader
    from chainrule.train import MetricsWriter, ProgressBar, Trainer

    model = pipe.build_model(X_train.shape[1])
    loss = F.multiclass_hinge if config["model"] == "svm" else F.cross_entropy
    reg = config["reg"]
    regularizer = (lambda m: F.l2_penalty(m, reg)) if reg > 0 else None
    optimizer = make_optimizer(config, model.parameters())
    with usage_errors():
        if config["augment"]:
            if pipe.input["kind"] != "image":
                raise UsageError("--augment needs image data (flips and crops); this dataset has vectors")
            pad = max(1, pipe.input["shape"][0] // 8)
            loader = DataLoader(data.X_train, data.y_train, config["batch_size"], seed=config["seed"],
                                augment=Augment(flip=True, crop_padding=pad), transform=pipe.prep.transform)
        else:
            loader = DataLoader(X_train, data.y_train, config["batch_size"], seed=config["seed"])
    schedule = make_schedule(config, optimizer, config["epochs"] * len(loader))
    sub = np.random.default_rng(config["seed"]).permutation(len(X_train))[:1000]
    trainer = Trainer(
        model, loss, optimizer, loader, schedule=schedule, val_data=(X_val, data.y_val),
        train_eval_data=(X_train[np.sort(sub)], data.y_train[np.sort(sub)]), epochs=config["epochs"],
        regularizer=regularizer, clip_grad_norm=config["clip_grad"] or None, nan_policy=config["nan_policy"],
        early_stopping_patience=config["early_stopping"] or None, min_delta=config["min_delta"],
        diagnostics=config["diagnostics"], checkpoints=folder.checkpoints(config["keep_checkpoints"]),
        checkpoint_every=config["checkpoint_every"] or None, config=config, metadata=pipe.metadata(),
        callbacks=[MetricsWriter(folder.path), ProgressBar(enabled=progress)],
    )
    if resume_state is not None:
        try:
            trainer.load_state_dict(resume_state)
        except (ValueError, KeyError) as e:
            raise RuntimeError("the checkpoint does not fit this run's model and settings: "
                               + str(e).replace("\n", " ")) from e
    logger.info("model: %s", " -> ".join(map(str, [X_train.shape[1], *config["hidden"], len(data.classes)]))
                + f" ({model.num_parameters():,} parameters), {config['optimizer']} lr {config['lr']:g}, "
                f"{config['schedule']} schedule, {config['epochs']} epochs of {len(loader)} steps")
    trainer.fit()
    # The model now holds the best-validation parameters.
    t0 = time.perf_counter()
    y_pred = pipe.predict(X_val, transformed=True)
    predict_time = time.perf_counter() - t0
    history = trainer.history
    last = history.epochs[-1] if history.epochs else {}
    summary = _common_summary(config, folder, pipe, data, X_train, y_pred)
    train_time = trainer.train_time_s
    summary.update({
        "num_parameters": int(model.num_parameters()), "epochs_completed": trainer.epoch, "steps": trainer.step,
        "best_epoch": trainer.best_epoch or None,
        "best_val_acc": trainer.best_val_acc if trainer.best_epoch else None,
        "final_train_acc": last.get("train_acc"), "final_val_acc": last.get("val_acc"),
        "final_val_loss": last.get("val_loss"), "train_time_s": train_time,
        "train_samples_per_s": trainer.samples_seen / train_time if train_time > 0 else None,
        "predict_time_s": predict_time,
        "predict_samples_per_s": len(X_val) / predict_time if predict_time > 0 else None,
        "stop_reason": trainer.stop_reason,
    })
    figures = history_plots(folder, history, trainer.best_epoch or None)
    figures += model_plots(folder, pipe, data.X_val, data.y_val, y_pred, data.X_train, data.y_train)
    return RunResult(folder, summary, pipe, data, history, {"figures": figures, "trainer": trainer})
