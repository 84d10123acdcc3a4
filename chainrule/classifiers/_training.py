"""How the trainable estimators (``MLPClassifier``, ``LinearSVM``, ``SoftmaxClassifier``) drive
``chainrule.train.Trainer``: seeds, parameter groups, exact resume, and the state ``partial_fit`` keeps.

``fit(X, y, *, validation_data=None, callbacks=(), checkpoints=None, checkpoint_every=None, resume=None,
diagnostics=False)`` is the same for all three. The keyword-only arguments are the run-folder machinery of
``chainrule train`` (anyone may use them):

- ``callbacks``: ``Trainer`` callbacks (``MetricsWriter``, ``ProgressBar``, ...), called during this fit;
- ``checkpoints`` (a ``CheckpointManager``) and ``checkpoint_every`` (steps): the trainer's full state, written at
  every epoch end (and every ``checkpoint_every`` steps); its ``config`` names the estimator class and its
  parameters, its ``metadata`` holds the fitted input steps and the labels, so a checkpoint alone rebuilds the
  estimator (``restore_fitted``);
- ``resume``: a checkpoint's state (``chainrule.train.load_checkpoint``): fit rebuilds the same model, loader,
  optimizer and schedule from the same data and parameters, loads the state and continues bit for bit;
  parameters in ``RESUME_MAY_DIFFER`` may change (a larger ``epochs`` extends the run: the schedule is rebuilt for
  the new length and continues from the step reached);
- ``diagnostics``: per-epoch weight / gradient / update statistics in the history (``chainrule.train.diagnostics``).

Seeds: ``random_state`` becomes one Generator (``chainrule.utils.seeding``) from which fit draws, in this order, the
seeds of the validation split (MLP early stopping), the minibatch order (and augmentation) and the initial weights;
``partial_fit`` draws the same ones, so ``E`` calls of ``partial_fit`` with a constant learning rate train exactly
the model ``fit`` trains in ``E`` epochs.
"""

from __future__ import annotations

import contextlib
from typing import Any, Mapping, Sequence

import numpy as np

from chainrule.classifiers.base import BaseClassifier, check_X, check_y, refusals_keep_fit
from chainrule.optim.factory import NO_DECAY, make_optimizer, set_options
from chainrule.train.resume import STATE_KIND
from chainrule.utils.seeding import as_generator

FIT_KIND = "chainrule.estimator.fit"  # metadata["kind"] of the checkpoints an estimator's fit writes
# Parameters that may change when a fit is resumed from a checkpoint: they do not change what was already learned
# (epochs / iterations extend or shorten the run; the schedule is rebuilt for the new length).
RESUME_MAY_DIFFER = ("epochs", "iterations", "time_budget", "verbose", "eval_batch_size", "n_iter_no_change",
                     "early_stopping", "tol")
EXTENDING = ("epochs", "iterations", "time_budget")  # a change of these rebuilds the schedule for the new length


def one_blas_thread() -> Any:
    """Limit BLAS to one thread for a linear model's SGD loop, when threadpoolctl is installed (else change nothing).

    The loop's GEMMs are skinny ((256, 3072) x (3072, 10)): a second thread saves little on an idle machine, and
    on a busy one OpenBLAS's threads wait on each other: measured 3 ms/step with one thread against 18 ms/step
    with two on this project's 2 shared cores (bench/bench_linear.py).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - depends on the environment
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def draw_seeds(random_state: Any) -> tuple[int, int, int]:
    """(split_seed, loader_seed, model_seed) drawn from ``random_state`` (see the module docstring)."""
    rng = as_generator(random_state, name="random_state")
    return tuple(int(s) for s in rng.integers(0, 2**62, size=3))  # type: ignore[return-value]


def decay_groups(params: Sequence[Any], weight_decay: float) -> list[dict[str, Any]]:
    """Param groups with ``weight_decay`` on the weight matrices only (not biases or normalisation parameters)."""
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay, "name": "decay"},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0, "name": NO_DECAY}]
    return [g for g in groups if g["params"]]


def build_optimizer(name: str, params: Sequence[Any], hp: Mapping[str, Any]) -> Any:
    return make_optimizer(name, decay_groups(params, hp.get("weight_decay", 0.0)), lr=hp["lr"],
                          momentum=hp.get("momentum", 0.0), nesterov=hp.get("nesterov", False))


# ---- checkpoints: what a fit's trainer stores, and checking a resume against it ------------------------------


def _json_params(est: BaseClassifier) -> dict[str, Any]:
    from chainrule.classifiers.io import _json_value

    out = {}
    for name, value in est.get_params().items():
        ok, jv = _json_value(value)
        out[name] = jv if ok else repr(value)
    return out


def trainer_config(est: BaseClassifier) -> dict[str, Any]:
    """The ``config`` of the trainer of ``est.fit``: the estimator class and its parameters (JSON values)."""
    return {"estimator": type(est).__name__, "params": _json_params(est)}


def fitted_metadata(est: BaseClassifier) -> dict[str, Any]:
    """What a checkpoint needs, beyond the trainer's own state, to rebuild the fitted estimator: its labels,
    input shape and fitted input steps (``est._input_state()``)."""
    meta, arrays = est._input_state()
    classes = np.asarray(est.classes_)
    return {"kind": FIT_KIND, "classes": classes if classes.dtype.kind in "biufU" else classes.tolist(),
            "n_features_in": int(est.n_features_in_), "sample_shape": list(est.sample_shape_),
            "inputs": {"meta": meta, "arrays": arrays}}


def trainer_hooks(est: BaseClassifier, *, callbacks: Any = (), checkpoints: Any = None,
                  checkpoint_every: int | None = None, diagnostics: bool = False) -> dict[str, Any]:
    """The Trainer keyword arguments of fit's run-folder hooks (config and metadata only when checkpointing)."""
    hooks: dict[str, Any] = {"callbacks": list(callbacks or ()), "diagnostics": bool(diagnostics)}
    if checkpoints is not None:
        hooks.update(checkpoints=checkpoints, checkpoint_every=checkpoint_every, config=trainer_config(est),
                     metadata=fitted_metadata(est))
    return hooks


def is_fit_checkpoint(state: Mapping[str, Any]) -> bool:
    return state.get("kind") == STATE_KIND and (state.get("metadata") or {}).get("kind") == FIT_KIND


def check_resume(est: BaseClassifier, state: Mapping[str, Any]) -> list[str]:
    """Raise ValueError unless ``state`` is a checkpoint of this estimator's fit with the same parameters (except
    ``RESUME_MAY_DIFFER``); return the names of the parameters that differ (allowed)."""
    name = type(est).__name__
    if not is_fit_checkpoint(state):
        raise ValueError(f"{name}.fit(resume=...) needs a checkpoint written by an estimator's fit; this one is of "
                         f"kind {state.get('kind')!r} / {(state.get('metadata') or {}).get('kind')!r}")
    config = state.get("config") or {}
    if config.get("estimator") != name:
        raise ValueError(f"the checkpoint is of a {config.get('estimator')} fit, not of a {name} one")
    saved, mine = config.get("params", {}), _json_params(est)
    differ = sorted(k for k in set(saved) | set(mine) if saved.get(k) != mine.get(k))
    fixed = [k for k in differ if k not in RESUME_MAY_DIFFER]
    if fixed:
        raise ValueError(f"cannot resume {name}: the checkpoint was trained with different parameters: "
                         + "; ".join(f"{k} (checkpoint has {saved.get(k)!r}, this estimator {mine.get(k)!r})"
                                     for k in fixed))
    return differ


def restore_fitted(est: BaseClassifier, metadata: Mapping[str, Any]) -> None:
    """Set the labels, input shape and fitted input steps of ``est`` from a checkpoint's metadata."""
    classes = metadata["classes"]
    est.classes_ = classes if isinstance(classes, np.ndarray) else np.array(classes, dtype=object)
    est.n_features_in_ = int(metadata["n_features_in"])
    est.sample_shape_ = tuple(int(s) for s in metadata["sample_shape"])
    est._set_input_state(metadata["inputs"]["meta"], metadata["inputs"]["arrays"])


def check_resume_data(est: BaseClassifier, X: np.ndarray, y_index: np.ndarray,
                      metadata: Mapping[str, Any]) -> None:
    """The data of a resumed fit must be the data of the checkpointed one (same labels and input shape)."""
    saved = metadata["classes"]
    saved = saved.tolist() if isinstance(saved, np.ndarray) else list(saved)
    if saved != np.asarray(est.classes_).tolist() or list(est.sample_shape_) != list(metadata["sample_shape"]):
        raise ValueError(f"cannot resume {type(est).__name__}: the checkpoint was trained on samples of shape "
                         f"{tuple(metadata['sample_shape'])} with classes {saved}, this data has "
                         f"{est.sample_shape_} and {np.asarray(est.classes_).tolist()}")


# ---- partial_fit ------------------------------------------------------------------------------------------------


class PartialFitState:
    """What ``partial_fit`` keeps between calls besides the learned attributes: the optimizer (and its name, to see
    a change) with the model whose parameters it updates, the minibatch seed, how many epochs have run, and the
    architecture/data parameters the model was built with (a change re-initialises)."""

    def __init__(self, arch: tuple[Any, ...], loader_seed: int, optimizer: Any, optimizer_name: str,
                 epochs_done: int = 0, model: Any = None):
        self.arch, self.loader_seed, self.model = arch, loader_seed, model
        self.optimizer, self.optimizer_name, self.epochs_done = optimizer, optimizer_name, epochs_done

    def optimizer_for(self, params: Sequence[Any], hp: Mapping[str, Any]) -> Any:
        """The optimizer for this call: rebuilt (fresh state) when ``optimizer`` changed, else the running one with
        this call's lr / momentum / nesterov / weight_decay."""
        if hp["optimizer"] != self.optimizer_name or self.optimizer is None:
            self.optimizer, self.optimizer_name = build_optimizer(hp["optimizer"], params, hp), hp["optimizer"]
        else:
            set_options(self.optimizer, lr=hp["lr"], momentum=hp.get("momentum", 0.0),
                        nesterov=hp.get("nesterov", False), weight_decay=hp.get("weight_decay", 0.0))
        return self.optimizer


def partial_fit_data(est: BaseClassifier, X: Any, y: Any, classes: Any, hp: Mapping[str, Any],
                     fitted: str) -> tuple[bool, PartialFitState | None, np.ndarray, np.ndarray]:
    """The opening of every ``partial_fit``: (first, state, X checked, y as indices). ``first`` says this call
    (re)initialises the model: ``est`` has no ``fitted`` attribute yet, or a parameter of ``est._arch(hp)`` changed
    since the model was built; ``state`` is the ``PartialFitState`` of earlier calls (or None). A later call's
    refused batch leaves the fitted model as it was."""
    state = getattr(est, "_partial", None)
    first = not hasattr(est, fitted) or (state is not None and state.arch != est._arch(hp))
    with refusals_keep_fit(not first):
        X = check_X(X, est, reset=first, keep_uint8=True)
        y_index = partial_labels(est, y, len(X), classes, first)
    return first, state, X, y_index


def partial_labels(est: BaseClassifier, y: Any, n_samples: int, classes: Any, first: bool) -> np.ndarray:
    """y as indices into ``classes_`` for ``partial_fit``. On the first call ``classes_`` is ``classes`` (sorted,
    distinct) or, without it, the labels of y (then y must hold every class); later calls must use those labels."""
    name = type(est).__name__
    if first:
        if classes is None and hasattr(est, "classes_"):
            classes = est.classes_  # re-initialised by a parameter change: keep the labels
        if classes is None:
            est.classes_, index = check_y(y, n_samples, est)
            return index
        known = np.unique(np.asarray(classes))
        if len(known) < 2:
            raise ValueError(f"{name}.partial_fit: classes must hold at least 2 distinct labels, got {classes!r}")
        est.classes_ = known
    elif classes is not None and not np.array_equal(np.unique(np.asarray(classes)), est.classes_):
        raise ValueError(f"{name}.partial_fit: classes={np.asarray(classes).tolist()!r} differs from the classes of "
                         f"the first call {est.classes_.tolist()!r}; call fit (or clone the estimator) to start over")
    return label_index(est, y, n_samples, f"{name}.partial_fit",
                       hint="; pass every label in classes= on the first call")


def label_index(est: BaseClassifier, y: Any, n_samples: int, what: str, hint: str = "") -> np.ndarray:
    """Labels y (N,) as int64 indices into ``est.classes_``; ValueError naming ``what`` for an unknown label."""
    labels = np.asarray(y)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.shape != (n_samples,):
        raise ValueError(f"{what}: y has shape {labels.shape}, expected ({n_samples},): one label per sample")
    try:
        index = np.minimum(np.searchsorted(est.classes_, labels), len(est.classes_) - 1)
        unknown = np.flatnonzero(est.classes_[index] != labels)
    except TypeError:  # labels of another type
        index, unknown = np.zeros(len(labels), np.int64), np.arange(len(labels))
    if unknown.size:
        raise ValueError(f"{what}: label {labels[unknown[0]].tolist()!r} at index {int(unknown[0])} is not one of "
                         f"the training classes {est.classes_.tolist()}{hint}")
    return index.astype(np.int64)


def history_epochs(history_state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The epoch records of a checkpoint's history (``chainrule.train.History.state_dict()``)."""
    from chainrule.train.history import History

    history = History()
    history.load_state_dict(history_state)
    return history.epochs


def epoch_means(epoch_of_step: np.ndarray, losses: np.ndarray) -> list[float]:
    """Mean loss of each epoch (1-based epoch numbers per step), the last possibly partial."""
    if not len(epoch_of_step):
        return []
    epochs = epoch_of_step.astype(np.int64)
    first, last = int(epochs.min()), int(epochs.max())
    sums = np.bincount(epochs - first, weights=losses, minlength=last - first + 1)
    counts = np.bincount(epochs - first, minlength=last - first + 1)
    return [float(s / c) for s, c in zip(sums, counts) if c]
