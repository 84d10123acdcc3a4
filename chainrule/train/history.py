"""Training history (per step and per epoch) and the files it is written to: metrics.csv, metrics.jsonl.

``History`` is what the trainer records: one row per optimizer step (loss, learning rate, gradient norm) held as
growing columns, and one dict per epoch (accuracies, validation loss, timings, diagnostics). It is part of every
checkpoint, so a resumed run has the whole past.

``MetricsWriter`` is a trainer callback that appends the same rows to two files as training goes:

- ``metrics.csv``: one row per step (``kind=step``) and per epoch (``kind=epoch``) with the fixed columns
  ``CSV_COLUMNS`` (empty where a value does not apply): easy to open in a spreadsheet or ``pandas.read_csv``.
- ``metrics.jsonl``: the same rows as JSON objects, one per line, epoch rows with their diagnostics too.
  Non-finite numbers are written as ``null``.

When a run resumes from a checkpoint the writer rewrites both files from the checkpoint's history (atomically),
so rows logged after that checkpoint by the killed process do not appear twice; new rows are appended.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from chainrule.utils.atomic import atomic_write_json, atomic_write_text

STEP_COLUMNS = ("step", "epoch", "loss", "lr", "grad_norm")
CSV_COLUMNS = ("kind", "epoch", "step", "loss", "lr", "grad_norm", "train_loss", "train_acc", "val_loss", "val_acc",
               "time_s", "samples_per_s")


class History:
    """Per-step columns (``steps["loss"]`` ...) and per-epoch records (``epochs[i]["val_acc"]`` ...)."""

    def __init__(self) -> None:
        self.steps: dict[str, list[float]] = {name: [] for name in STEP_COLUMNS}
        self.epochs: list[dict[str, Any]] = []
        self._epochs_json: list[str] = []  # each record as JSON, made once: a checkpoint then costs O(1) per record

    def log_step(self, step: int, epoch: int, loss: float, lr: float, grad_norm: float) -> None:
        for name, value in zip(STEP_COLUMNS, (step, epoch, loss, lr, grad_norm)):
            self.steps[name].append(value)

    def log_epoch(self, record: Mapping[str, Any]) -> None:
        self.epochs.append(dict(record))
        self._epochs_json.append(json.dumps(record, default=_json_scalar, separators=(",", ":")))

    @property
    def num_steps(self) -> int:
        return len(self.steps["step"])

    def step_rows(self, start: int = 0) -> list[dict[str, Any]]:
        """Step records ``start`` .. end as dicts."""
        cols = [self.steps[name][start:] for name in STEP_COLUMNS]
        return [dict(zip(STEP_COLUMNS, values)) for values in zip(*cols)]

    def column(self, name: str) -> np.ndarray:
        """A step column as a float64 array (``"loss"``, ``"lr"``, ``"grad_norm"``, ``"step"``, ``"epoch"``)."""
        return np.asarray(self.steps[name], dtype=np.float64)

    def epoch_column(self, name: str) -> np.ndarray:
        """An epoch field as a float64 array (nan where an epoch lacks it)."""
        return np.array([_num(e.get(name)) for e in self.epochs], dtype=np.float64)

    def state_dict(self) -> dict[str, Any]:
        """Step columns as arrays (compact and exact in a checkpoint), epoch records as one JSON string (numbers
        round-trip exactly; tuples come back as lists)."""
        return {
            "steps": {
                "step": np.asarray(self.steps["step"], dtype=np.int64),
                "epoch": np.asarray(self.steps["epoch"], dtype=np.int64),
                "loss": np.asarray(self.steps["loss"], dtype=np.float64),
                "lr": np.asarray(self.steps["lr"], dtype=np.float64),
                "grad_norm": np.asarray(self.steps["grad_norm"], dtype=np.float64),
            },
            "epochs_json": "[" + ",".join(self._epochs_json) + "]",
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        steps = state["steps"]
        self.steps = {
            name: [int(v) if name in ("step", "epoch") else float(v) for v in np.asarray(steps[name]).tolist()]
            for name in STEP_COLUMNS
        }
        epochs = json.loads(state["epochs_json"]) if "epochs_json" in state else state["epochs"]
        self.epochs = [dict(e) for e in epochs]
        self._epochs_json = [json.dumps(e, default=_json_scalar, separators=(",", ":")) for e in self.epochs]


def _json_scalar(v: Any) -> Any:
    """NumPy scalars and arrays in an epoch record (diagnostics) as JSON values."""
    if isinstance(v, (np.generic, np.ndarray)):
        return v.tolist()
    raise TypeError(f"an epoch record holds a {type(v).__name__}, which JSON cannot store: {v!r}")


def _num(v: Any) -> float:
    return float(v) if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) else math.nan


def _clean(v: Any) -> Any:
    """JSON-safe: non-finite floats become None, NumPy scalars become Python numbers."""
    if isinstance(v, (np.floating, float)):
        v = float(v)
        return v if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, Mapping):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def _csv_value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else str(v)  # repr: shortest exact form; nan/inf stay visible
    return str(v)


class MetricsWriter:
    """Trainer callback: append step and epoch rows to ``metrics.csv`` and ``metrics.jsonl`` in ``directory``."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.csv_path = self.directory / "metrics.csv"
        self.jsonl_path = self.directory / "metrics.jsonl"
        self._written_steps = 0
        self._written_epochs = 0
        self._csv: Any = None
        self._jsonl: Any = None

    # ---- callback hooks ----

    def on_train_begin(self, trainer: Any) -> None:
        """(Re)write both files from the trainer's history (empty for a fresh run, the past for a resumed one), each
        atomically (``chainrule.utils.atomic``); then rows are appended (and flushed at every epoch end)."""
        self.close()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._csv, self._jsonl = io.StringIO(), io.StringIO()
        self._csv.write(",".join(CSV_COLUMNS) + "\n")
        self._written_steps = self._written_epochs = 0
        # Interleave in training order: an epoch's row follows its last step.
        history = trainer.history
        steps = history.step_rows()
        si = 0
        for e in history.epochs:
            while si < len(steps) and steps[si]["step"] <= e.get("step", -1):
                self._write_step(steps[si])
                si += 1
            self._write_epoch(e)
        for row in steps[si:]:
            self._write_step(row)
        self._written_steps = history.num_steps
        self._written_epochs = len(history.epochs)
        atomic_write_text(self.csv_path, self._csv.getvalue())
        atomic_write_text(self.jsonl_path, self._jsonl.getvalue())
        self._csv = open(self.csv_path, "a", newline="", encoding="utf-8")
        self._jsonl = open(self.jsonl_path, "a", encoding="utf-8")

    def on_step_end(self, trainer: Any) -> None:
        history = trainer.history
        for row in history.step_rows(self._written_steps):
            self._write_step(row)
        self._written_steps = history.num_steps

    def on_epoch_end(self, trainer: Any) -> None:
        self.on_step_end(trainer)
        for e in trainer.history.epochs[self._written_epochs:]:
            self._write_epoch(e)
        self._written_epochs = len(trainer.history.epochs)
        self.flush()

    def on_train_end(self, trainer: Any) -> None:
        self.on_epoch_end(trainer)
        self.close()

    # ---- writing ----

    def _write_step(self, row: Mapping[str, Any]) -> None:
        self._write({"kind": "step", **row})

    def _write_epoch(self, record: Mapping[str, Any]) -> None:
        self._write({"kind": "epoch", **record})

    def _write(self, record: Mapping[str, Any]) -> None:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow([_csv_value(record.get(c)) for c in CSV_COLUMNS])
        self._csv.write(buf.getvalue())
        self._jsonl.write(json.dumps(_clean(record), separators=(",", ":")) + "\n")

    def flush(self) -> None:
        for f in (self._csv, self._jsonl):
            if f is not None:
                f.flush()

    def close(self) -> None:
        for f in (self._csv, self._jsonl):
            if f is not None and not f.closed:
                f.close()
        self._csv = self._jsonl = None


def read_metrics_csv(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of a metrics.csv as dicts with numbers parsed (empty cells become None)."""
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            parsed: dict[str, Any] = {}
            for k, v in row.items():
                if k == "kind":
                    parsed[k] = v
                elif v == "" or v is None:
                    parsed[k] = None
                elif k in ("epoch", "step"):
                    parsed[k] = int(v)
                else:
                    parsed[k] = float(v)
            rows.append(parsed)
    return rows


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON atomically (``chainrule.utils.atomic``), non-finite numbers as null."""
    atomic_write_json(path, _clean(obj))
