"""``TensorBoardLogger``: a Trainer callback that also writes TensorBoard event files (``chainrule train
--tensorboard``); the run folder's ``metrics.csv`` / ``metrics.jsonl`` stay the record, this is a view of them.

    logger = TensorBoardLogger("runs/a/tensorboard", sample_shape=(32, 32, 3))
    Trainer(..., callbacks=[logger]).fit()        # then: tensorboard --logdir runs/a/tensorboard

What it writes (tensorboardX's ``SummaryWriter``, the ``interop`` extra):

- every step, at the step number: ``step/loss``, ``step/lr``, ``step/grad_norm`` (the step rows of metrics.csv);
- every epoch, at the epoch number: ``epoch/<column>`` for each number of the epoch row (``train_loss``,
  ``train_acc``, ``val_loss``, ``val_acc``, ``lr``, ``time_s``, ``samples_per_s``);
- every epoch: histograms ``weights/<parameter>`` and ``gradients/<parameter>`` (the last step's gradient);
- every epoch: ``first_layer``, the first layer's filters as images (the columns of a ``Linear`` weight of
  ``prod(sample_shape)`` inputs reshaped to the sample's (H, W[, C]); a convolution's (O, C, kh, kw) filters),
  each min-max scaled, at most ``max_images``.

A resumed run appends to the same folder; events after the checkpoint's step (written before the interruption and
then computed again) are purged, as TensorBoard's ``purge_step`` does.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

STEP_TAGS = ("loss", "lr", "grad_norm")
EPOCH_TAGS = ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "time_s", "samples_per_s")


class TensorBoardLogger:
    """Trainer callback writing scalars, histograms and first-layer images to ``logdir`` (module docstring)."""

    def __init__(self, logdir: str | os.PathLike, sample_shape: Sequence[int] | None = None, max_images: int = 16):
        try:
            import tensorboardX  # noqa: F401
        except ImportError as e:
            raise ImportError("TensorBoard logs need tensorboardX: pip install 'chainrule[interop]'") from e
        self.logdir = Path(logdir)
        self.sample_shape = None if sample_shape is None else tuple(int(s) for s in sample_shape)
        self.max_images = int(max_images)
        self._writer: Any = None
        self._written_steps = 0
        self._written_epochs = 0

    def on_train_begin(self, trainer: Any) -> None:
        from tensorboardX import SummaryWriter

        self.close()
        history = trainer.history
        self._written_steps, self._written_epochs = history.num_steps, len(history.epochs)
        # A resumed run: what was logged after the checkpoint is about to be computed again, so drop it. tensorboardX
        # names files by the second: the suffix keeps a file written within the same second (a quick resume) from
        # replacing the last one, and sorts after it (TensorBoard reads the files in name order).
        self._writer = SummaryWriter(str(self.logdir), purge_step=trainer.step + 1 if trainer.step else None,
                                     filename_suffix=f".{time.time_ns()}")

    def on_step_end(self, trainer: Any) -> None:
        for row in trainer.history.step_rows(self._written_steps):
            for tag in STEP_TAGS:
                if _finite(row.get(tag)):
                    self._writer.add_scalar(f"step/{tag}", float(row[tag]), int(row["step"]))
        self._written_steps = trainer.history.num_steps

    def on_epoch_end(self, trainer: Any) -> None:
        self.on_step_end(trainer)
        for record in trainer.history.epochs[self._written_epochs:]:
            for tag in EPOCH_TAGS:
                if _finite(record.get(tag)):
                    self._writer.add_scalar(f"epoch/{tag}", float(record[tag]), int(record["epoch"]))
        self._written_epochs = len(trainer.history.epochs)
        epoch = int(trainer.epoch)
        for name, p in trainer.model.named_parameters():
            self._writer.add_histogram(f"weights/{name}", np.asarray(p.data, np.float64), epoch)
            if p.grad is not None:
                self._writer.add_histogram(f"gradients/{name}", np.asarray(p.grad, np.float64), epoch)
        images = self.first_layer_images(trainer.model)
        if images is not None:
            self._writer.add_images("first_layer", images, epoch, dataformats="NHWC")
        self._writer.flush()

    def on_train_end(self, trainer: Any) -> None:
        if len(trainer.history.epochs) > self._written_epochs:
            self.on_epoch_end(trainer)
        else:  # stopped inside an epoch: its steps so far
            self.on_step_end(trainer)
        self.close()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def first_layer_images(self, model: Any) -> np.ndarray | None:
        """(K, H, W, C) float32 in [0, 1]: the first weight's filters as images, or None if they are not images."""
        params = [p for _, p in model.named_parameters() if p.data.ndim >= 2]
        if not params:
            return None
        w = np.asarray(params[0].data, np.float64)
        if w.ndim == 4:  # a convolution's (O, C, kh, kw) filters
            filters = w.transpose(0, 2, 3, 1)
        elif w.ndim == 2 and self.sample_shape and len(self.sample_shape) in (2, 3) \
                and math.prod(self.sample_shape) == w.shape[0]:
            filters = w.T.reshape(w.shape[1], *self.sample_shape)
        else:
            return None
        filters = filters[:self.max_images]
        if filters.ndim == 3:
            filters = filters[..., None]
        if filters.shape[-1] not in (1, 3):
            filters = filters[..., :1]
        low = filters.min(axis=(1, 2, 3), keepdims=True)
        high = filters.max(axis=(1, 2, 3), keepdims=True)
        return ((filters - low) / np.maximum(high - low, 1e-12)).astype(np.float32)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and math.isfinite(float(v))
