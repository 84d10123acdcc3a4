"""``chainrule evaluate``: accuracy, per-class accuracy and the confusion matrix of a trained run on a split.

    chainrule evaluate runs/digits-mlp                    # the run's own dataset: test split if it has one
    chainrule evaluate runs/cifar-mlp --data cifar10:../shared/data/cifar10-test.tar.gz --split test
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from typing import Any

import numpy as np

from chainrule.commands.common import UsageError, say, split_data
from chainrule.commands.outputs import confusion_text, per_class_accuracy
from chainrule.commands.pipeline import load_trained

logger = logging.getLogger("chainrule")


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("evaluate", parents=[common], help="accuracy and confusion matrix of a trained run",
                       description="Evaluate a run folder (its best checkpoint) or a checkpoint file on a split; "
                                   "print accuracy, per-class accuracy and the confusion matrix and write them "
                                   "to the run folder (eval-<split>.json, plots/confusion-<split>.png).")
    p.add_argument("target", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("--data", help="dataset spec (default: the dataset the run was trained on)")
    p.add_argument("--split", choices=("test", "val", "train"), default=None,
                   help="which split (default: test if the dataset has one, else val: the run's validation split)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    pipe, state, folder, ckpt = load_trained(args.target)
    config = pipe.config
    spec = args.data
    if not spec:
        spec = config["data"]
        logger.info("no --data given: using the run's dataset '%s'", spec)
    data = split_data(spec, config["val_size"], config["seed"])
    if tuple(data.sample_shape) != tuple(pipe.input["shape"]):
        raise UsageError(f"the run was trained on inputs of shape {tuple(pipe.input['shape'])}, but --data {spec} "
                         f"has {data.sample_shape}")
    if len(data.classes) != len(pipe.classes):
        raise UsageError(f"the run has {len(pipe.classes)} classes, but --data {spec} has {len(data.classes)}")
    split = args.split
    if split is None:
        split = "test" if data.X_test is not None else "val"
        logger.info("evaluating on the %s split%s", split,
                    "" if split == "test" else f" ({spec} has no test split; this is the run's validation split)")
    if split == "test":
        if data.X_test is None:
            raise UsageError(f"{spec} has no test split; use --split val (the run's validation split) or "
                             "point --data at a test set")
        X, y = data.X_test, data.y_test
    elif split == "val":
        X, y = data.X_val, data.y_val
    else:
        X, y = data.X_train, data.y_train
    t0 = time.perf_counter()
    y_pred = pipe.predict(X)
    seconds = time.perf_counter() - t0
    from chainrule.train.plots import confusion_matrix, plot_confusion

    cm = confusion_matrix(y, y_pred, len(pipe.classes))
    acc = float(np.mean(y_pred == y))
    per_class = per_class_accuracy(cm, pipe.classes)
    say(f"{args.target} ({ckpt.name}) on {spec}, {split} split: {len(y)} samples")
    say(f"accuracy: {100 * acc:.2f}%  ({int(np.sum(y_pred == y))}/{len(y)}; {len(y) / max(seconds, 1e-9):,.0f} "
        "samples/s)")
    say("per-class accuracy:")
    for name, a in per_class.items():
        say(f"  {name:>12}  " + ("   n/a" if a is None else f"{100 * a:6.2f}%"))
    say("confusion matrix (rows: true class, columns: predicted):")
    say(confusion_text(cm, pipe.classes))
    if folder is not None:
        result = {"target": str(args.target), "checkpoint": ckpt.name, "data": spec, "split": split,
                  "num_samples": int(len(y)), "accuracy": acc, "per_class_accuracy": per_class,
                  "confusion_matrix": cm.tolist(), "classes": list(pipe.classes), "predict_time_s": seconds}
        out = folder.path / f"eval-{split}.json"
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        folder.plots_dir.mkdir(parents=True, exist_ok=True)
        png = folder.plots_dir / f"confusion-{split}.png"
        plot_confusion(cm, pipe.classes, png, title=f"Confusion matrix ({split})")
        say(f"wrote {out} and {png}")
    return 0
