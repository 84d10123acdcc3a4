"""``chainrule predict``: the top classes of image files under a trained run.

    chainrule predict runs/cifar-mlp cat.jpg ship.png
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.commands.common import UsageError, say
from chainrule.runs import load_trained


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("predict", parents=[common], help="top-3 classes of image files",
                       description="Classify image files with a trained run (its best checkpoint) or a checkpoint "
                                   "file. Images are converted to the run's colour mode and resized to its image "
                                   "size.")
    p.add_argument("target", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image files (any format Pillow reads)")
    p.add_argument("--top", type=int, default=3, help="how many classes to show per image (default: 3)")
    p.set_defaults(func=run)


def load_image(path: Path, shape: list[int], dtype: str, max_value: float) -> tuple[np.ndarray, str]:
    """Read ``path`` as an (H, W, C) array like the training images; returns it and a note on resizing. The image
    decoder's pixel cap applies (``chainrule.data._decode.read_image``)."""
    from chainrule.data._decode import read_image
    from chainrule.data.dataset import DataError

    h, w, c = shape
    try:
        arr, (h0, w0) = read_image(path, "L" if c == 1 else "RGB", (h, w))
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise RuntimeError("predict needs Pillow to read images: pip install 'chainrule[cli]'") from e
    except DataError as e:
        raise UsageError(str(e)) from None
    note = f"resized {w0}x{h0} -> {w}x{h}" if (h0, w0) != (h, w) else ""
    arr = arr.reshape(h, w, c)
    if np.dtype(dtype) != np.uint8:
        arr = (arr.astype(np.float32) * (max_value / 255.0)).astype(dtype)
    return arr, note


def run(args: argparse.Namespace) -> int:
    if args.top < 1:
        raise UsageError(f"--top must be >= 1, got {args.top}")
    from chainrule.data._decode import what_is

    for img in args.images:
        if not Path(img).is_file():
            raise UsageError(f"image {img} {what_is(img)}; predict takes image files")
    pipe = load_trained(args.target)
    ckpt = pipe.source
    info = pipe.input
    if info["kind"] != "image":
        raise UsageError(f"this run was trained on {info['shape'][0]}-dimensional vectors, not images; predict "
                         "takes image files")
    arrays, notes = [], []
    for img in args.images:
        a, note = load_image(Path(img), info["shape"], info["dtype"], info["max_value"])
        arrays.append(a)
        notes.append(note)
    probs, what = pipe.probabilities(np.stack(arrays))
    top = min(args.top, len(pipe.classes))
    say(f"{args.target} ({ckpt.name}); probabilities are the {what}")
    for img, note, p in zip(args.images, notes, probs):
        say(f"{img}" + (f"  ({note})" if note else ""))
        order = np.argsort(-p, kind="stable")[:top]
        for rank, c in enumerate(order, 1):
            say(f"  {rank}. {pipe.classes[c]:<12} {100 * p[c]:6.2f}%")
    return 0
