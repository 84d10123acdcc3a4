"""``chainrule evaluate``: accuracy, per-class accuracy and the confusion matrix of a trained run on a split.

    chainrule evaluate runs/digits-mlp                        # the run's own data: its validation split
    chainrule evaluate runs/cifar-mlp --data test:folder:../shared/data/cifar10-test-jpeg.tar.gz
    chainrule evaluate runs/cifar-mlp --data cifar10:~/data/cifar-10-python.tar.gz    # the release's test split

``--data`` naming the run's own dataset gives the run's splits (the validation split carved with the run's seed,
or the training split, or an official test split when the dataset has one). Any other dataset is a held-out test
set and is scored whole - every image of a folder or archive (``test:`` says so explicitly, as torchvision's
``train=False`` does), or the test split of an official CIFAR-10 release.
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any, Mapping

import numpy as np

from chainrule.commands.common import (
    UsageError, is_test_spec, load_test_set, same_dataset, say, split_data,
)
from chainrule.runs.outputs import confusion_text
from chainrule.runs import load_trained
from chainrule.train.history import write_json

logger = logging.getLogger("chainrule")


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("evaluate", parents=[common], help="accuracy and confusion matrix of a trained run",
                       description="Evaluate a run folder (its model.npz) or a checkpoint file on a split; "
                                   "print accuracy, per-class accuracy and the confusion matrix and write them "
                                   "to the run folder (eval-<split>.json, plots/confusion-<split>.png).")
    p.add_argument("target", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("--data", help="dataset spec (default: the dataset the run was trained on). A dataset other "
                   "than the run's own is a held-out test set, scored whole: test:folder:PATH (every image of "
                   "the folder or .tar.gz), or cifar10:PATH of an official release (its test split)")
    p.add_argument("--split", choices=("test", "val", "train"), default=None,
                   help="which split of the run's own dataset (default: test if the dataset has one, else val: "
                        "the run's validation split); a held-out --data is always the test split")
    p.set_defaults(func=run)


def _check_fits(pipe: Any, spec: str, sample_shape: tuple[int, ...], classes: tuple[str, ...]) -> None:
    if tuple(sample_shape) != tuple(pipe.input["shape"]):
        raise UsageError(f"the run was trained on inputs of shape {tuple(pipe.input['shape'])}, but --data {spec} "
                         f"has {tuple(sample_shape)}")
    if tuple(classes) != tuple(pipe.classes):
        raise UsageError(f"the run's classes are {list(pipe.classes)}, but --data {spec} has {list(classes)}; "
                         "a test set needs the same classes (the same class folder names)")


def _select(args: argparse.Namespace, pipe: Any) -> tuple[str, str, np.ndarray, np.ndarray, str]:
    """(spec, split, X, y, what the samples are) for the command line's --data / --split."""
    config = pipe.config
    if not config and not args.data:
        raise UsageError(f"{args.target} is not inside a run folder, so its dataset is unknown; pass --data")
    own = config.get("data", "")
    spec = args.data
    if not spec:
        spec = own
        logger.info("no --data given: using the run's dataset '%s'", spec)
    if is_test_spec(spec) or not same_dataset(spec, own):  # a separate, held-out dataset: all of it
        if args.split in ("val", "train"):
            raise UsageError(f"--split {args.split} is a split of the run's own dataset ({own}); --data {spec} is "
                             "another dataset, scored whole as a test set (drop --split, or use --split test)")
        held = load_test_set(spec, seed=pipe.split_seed, image_size=_image_size(config, spec))
        _check_fits(pipe, spec, held.X.shape[1:], held.classes)
        return spec, "test", held.X, held.y, held.description
    data = split_data(spec, config.get("val_size", 0.1), pipe.split_seed, _image_size(config, spec))
    _check_fits(pipe, spec, data.sample_shape, data.classes)
    split = args.split or ("test" if data.X_test is not None else "val")
    if split == "test":
        if data.X_test is None:
            raise UsageError(f"{spec} is the run's own training data and has no test split; use --split val (the "
                             "run's validation split), or score a separate test set with --data test:folder:PATH")
        return spec, split, data.X_test, data.y_test, f"the test split of {data.name}"
    if split == "val":
        return spec, split, data.X_val, data.y_val, (f"the run's validation split: held out from training, carved "
                                                     f"from {data.name} with seed {pipe.split_seed}")
    return spec, split, data.X_train, data.y_train, f"the run's training split of {data.name}"


def run(args: argparse.Namespace) -> int:
    pipe = load_trained(args.target)
    folder, ckpt = pipe.folder, pipe.source
    spec, split, X, y, what = _select(args, pipe)
    t0 = time.perf_counter()
    y_pred = pipe.predict(X)
    seconds = time.perf_counter() - t0
    from chainrule.train import confusion_matrix, per_class_accuracy
    from chainrule.train.plots import plot_confusion

    cm = confusion_matrix(y, y_pred, len(pipe.classes))
    acc = float(np.mean(y_pred == y))
    per_class = per_class_accuracy(cm, pipe.classes)
    say(f"{args.target} ({ckpt.name}) on {spec}, {split} split: {len(y)} samples ({what})")
    say(f"accuracy: {100 * acc:.2f}%  ({int(np.sum(y_pred == y))}/{len(y)}; {len(y) / max(seconds, 1e-9):,.0f} "
        "samples/s)")
    say("per-class accuracy:")
    for name, a in per_class.items():
        say(f"  {name:>12}  " + ("   n/a" if a is None else f"{100 * a:6.2f}%"))
    say("confusion matrix (rows: true class, columns: predicted):")
    say(confusion_text(cm, pipe.classes))
    if folder is not None:
        result = {"target": str(args.target), "checkpoint": ckpt.name, "data": spec, "split": split,
                  "num_samples": int(len(y)), "samples": what, "accuracy": acc, "per_class_accuracy": per_class,
                  "confusion_matrix": cm.tolist(), "classes": list(pipe.classes), "predict_time_s": seconds}
        out = folder.path / f"eval-{split}.json"
        write_json(out, result)
        folder.plots_dir.mkdir(parents=True, exist_ok=True)
        png = folder.plots_dir / f"confusion-{split}.png"
        plot_confusion(cm, pipe.classes, png, title=f"Confusion matrix ({split})")
        say(f"wrote {out} and {png}")
    return 0


def _image_size(config: Mapping[str, Any], spec: str) -> str | None:
    """The run's --image-size, for image-folder data (scored at the size the model was trained at)."""
    from chainrule.commands.common import base_spec

    return config.get("image_size") if base_spec(spec).lower().startswith("folder:") else None
