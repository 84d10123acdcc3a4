"""``chainrule train``: build a ``chainrule.classifiers`` estimator from the configuration, fit it with the run-folder
callbacks (metrics, checkpoints, progress), write the run folder (``chainrule.runs.train_run``; the folder's layout:
chainrule.train.runfolder).

    chainrule train --data digits --model mlp --hidden 100 --epochs 20 --out runs/digits-mlp
    chainrule train --config configs/cifar10-mlp-zca.toml --data folder:../shared/data/cifar10-train-jpeg.tar.gz
    chainrule train --resume runs/digits-mlp                 # continue a stopped or killed run exactly
    chainrule train --resume runs/digits-mlp --epochs 40     # extend a finished run
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from chainrule.commands import config as cfgmod
from chainrule.commands import params as P
from chainrule.commands.common import UsageError, data_spec, say, usage_errors
from chainrule.runs import OldRunFormatError, RunResult, run_settings, train_run

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
    from chainrule.classifiers import RESUME_MAY_DIFFER, is_fit_checkpoint
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
        diff = cfgmod.differing_keys(state["run"], run_settings(requested))
        if diff:
            raise UsageError(f"cannot resume {args.resume}: its checkpoint {path.name} was trained with other run "
                             f"settings than {folder.config_path} and the flags ask for: {'; '.join(diff)}. Put them "
                             "back, or start a new run with --out")
    c = state["counters"]
    logger.info("resuming %s from %s (step %d, epoch %d of %s)", args.resume, path.name, c["step"], c["epoch"],
                requested.get("epochs") or f"{requested.get('iterations')} steps")
    return _report(train_run(requested, folder, progress=not args.quiet, resume_state=state))


def _report(result: RunResult) -> int:
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
