"""A trained run loaded back for ``evaluate`` / ``predict``: the fitted estimator plus what the run recorded.

    trained = load_trained("runs/digits-mlp")          # a run folder, its model.npz, or one of its checkpoints
    trained.estimator                                   # the chainrule.classifiers estimator, as fit left it
    trained.predict(X)                                  # class indices (N,) into trained.classes
    P, what = trained.probabilities(X)                  # (N, C) and what they are (softmax, vote fractions, ...)

A run folder's ``model.npz`` is the fitted estimator (``chainrule.classifiers.load``): the same object the Python
API returns. A step checkpoint rebuilds the estimator from the checkpoint alone (its parameters, fitted input steps
and the weights at that step; ``chainrule.classifiers._training``), so a run that is still training or was killed
can be evaluated (``chainrule.classifiers.estimator_from_checkpoint``). Run folders of chainrule 0.1 (run-folder format 1, with ``--preprocess`` / ``--features raw`` and
``MLP([D, C])`` linear models) are refused with a message saying so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from chainrule.commands.common import UsageError, usage_errors

__all__ = ["Trained", "load_trained", "input_spec", "OldRunFormatError"]


class OldRunFormatError(RuntimeError):
    """A run folder or checkpoint written by chainrule 0.1, whose format this version does not read."""


def _old_format(what: str) -> OldRunFormatError:
    return OldRunFormatError(
        f"{what} was written by chainrule 0.1 (run-folder format 1: a pipeline of its own, before `chainrule train` "
        "trained chainrule.classifiers estimators); this version cannot load or resume it. Train it again with "
        "the estimators' parameter names (see docs/cli.md: e.g. --preprocess mean is now --preprocessing center, "
        "--features hog+color is --features hog_color)"
    )


def input_spec(X: np.ndarray) -> dict[str, Any]:
    """How raw inputs look: kind "image" (N, H, W, C) or "vector" (N, D), dtype and the largest value."""
    kind = "image" if X.ndim == 4 else "vector"
    max_value = 255.0 if X.dtype == np.uint8 else float(np.max(X)) if X.size else 1.0
    if X.dtype != np.uint8 and kind == "image":  # e.g. digits: 0..16; keep the nominal range
        max_value = float(np.ceil(max_value))
    return {"kind": kind, "shape": list(X.shape[1:]), "dtype": str(X.dtype), "max_value": max_value}


@dataclass
class Trained:
    """A fitted estimator and what its run recorded (class names, input description, configuration)."""

    estimator: Any
    model: str                     # its name in the registry (chainrule.classifiers.spec_of)
    classes: tuple[str, ...]       # names of the classes; predictions are indices into this
    input: dict[str, Any]          # input_spec of the training data
    config: dict[str, Any] = field(default_factory=dict)  # the run configuration (config.toml), if any
    folder: Any = None             # the RunFolder, if the model came from one
    source: Path | None = None     # the file the estimator was loaded from

    @property
    def split_seed(self) -> int:
        """The seed of the run's validation split (``chainrule.runs.split_seed``)."""
        from chainrule.runs.training import split_seed

        return split_seed(self.config)

    def _columns(self) -> np.ndarray:
        return np.asarray(self.estimator.classes_).astype(np.int64)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class indices (N,) of raw inputs X."""
        return np.asarray(self.estimator.predict(X)).astype(np.int64)

    def probabilities(self, X: np.ndarray) -> tuple[np.ndarray, str]:
        """(N, C) class probabilities (columns in ``classes`` order) and what they are (the estimator's
        ``probabilities``)."""
        scores, what = self.estimator.probabilities(X)
        out = np.zeros((len(scores), len(self.classes)))
        out[:, self._columns()] = scores
        return out, what

    def first_layer_weights(self) -> tuple[np.ndarray, bool] | None:
        """(W (D, units), is_linear) of a model that weighs raw pixels (the estimator's ``weight_images``)."""
        return self.estimator.weight_images()

    def weight_image_shape(self) -> tuple[int, ...]:
        """The image shape of each column of ``first_layer_weights``: a conv net's filters (``filter_shape()``),
        else one input image."""
        if hasattr(self.estimator, "filter_shape"):
            return tuple(self.estimator.filter_shape())
        return tuple(self.input["shape"])

    def describe(self) -> str:
        """A few words on the model, for plot titles (the estimator's ``describe``)."""
        return self.estimator.describe()


def load_trained(target: str | Path) -> Trained:
    """The trained model of a run folder, of its ``model.npz``, or of one of its checkpoint files.

    A run folder gives its ``model.npz`` (the estimator as ``fit`` left it), else (training did not finish) its
    latest readable step checkpoint, with a warning.
    """
    from chainrule.train import RunFolder

    path = Path(target)
    if path.is_dir():
        folder = RunFolder(path)
        if not folder.exists():
            raise UsageError(f"{target} is not a run folder (it has no config.toml)")
        config = _read_config(folder)
        if folder.model_path.is_file():
            return _from_file(folder.model_path, folder, config)
        latest = folder.checkpoints().load_latest()
        if latest is None:
            raise UsageError(f"{target} holds no trained model yet (no model.npz, no checkpoint)")
        import warnings

        warnings.warn(f"{target} has no model.npz (its training did not finish): using {latest[1].name}",
                      stacklevel=2)
        return _from_checkpoint(latest[0], latest[1], folder, config)
    if not path.is_file():
        raise UsageError(f"{target} does not exist; give a run folder (runs/NAME), its model.npz or a checkpoint")
    folder = None
    parent = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    if (parent / "config.toml").is_file():
        folder = RunFolder(parent)
    config = _read_config(folder) if folder is not None else {}
    from chainrule.train import CheckpointError, load_checkpoint

    try:
        state = load_checkpoint(path)
    except CheckpointError:
        return _from_file(path, folder, config)  # not a checkpoint: an estimator file, or the error says what
    return _from_checkpoint(state, path, folder, config)


def _read_config(folder: Any) -> dict[str, Any]:
    from chainrule.commands import config as cfgmod

    table = folder.read_config()
    if table.get("format") is None:
        raise _old_format(str(folder.path))
    if table.get("format") > cfgmod.RUN_FORMAT:
        raise RuntimeError(f"{folder.path} has run-folder format {table['format']}, newer than this chainrule reads "
                           f"({cfgmod.RUN_FORMAT}); upgrade chainrule")
    with usage_errors(f"{folder.config_path}: "):
        return cfgmod.resolve(cfgmod.from_table(table, str(folder.config_path)))


def _summary_facts(folder: Any, est: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    summary: dict[str, Any] = {}
    if folder is not None and folder.summary_path.is_file():
        summary = folder.read_summary()
    classes = tuple(summary.get("classes") or (str(c) for c in np.asarray(est.classes_).tolist()))
    shape = list(est.sample_shape_)
    default_input = {"kind": "image" if len(shape) == 3 else "vector", "shape": shape, "dtype": "uint8",
                     "max_value": 255.0}
    return classes, dict(summary.get("input") or default_input)


def _from_file(path: Path, folder: Any, config: dict[str, Any]) -> Trained:
    import chainrule.classifiers as classifiers

    try:
        est = classifiers.load(path)
    except ValueError as e:
        raise RuntimeError(f"{path} is neither a chainrule checkpoint nor an estimator file: {e}") from e
    classes, info = _summary_facts(folder, est)
    return Trained(est, _model_name(est), classes, info, config, folder, Path(path))


def _from_checkpoint(state: Mapping[str, Any], path: Path, folder: Any, config: dict[str, Any]) -> Trained:
    meta = state.get("metadata") or {}
    if state.get("kind") in ("chainrule.Trainer", "chainrule.knn") and "input" in meta:
        raise _old_format(str(path))
    from chainrule.classifiers import estimator_from_checkpoint

    try:
        est = estimator_from_checkpoint(state)
    except (ValueError, KeyError) as e:
        raise RuntimeError(f"{path}: {e}; evaluate and predict need a run folder, its model.npz or one of its "
                           "checkpoints") from e
    classes, info = _summary_facts(folder, est)
    return Trained(est, _model_name(est), classes, info, config, folder, Path(path))


def _model_name(est: Any) -> str:
    from chainrule.classifiers import spec_of

    return spec_of(est).name
