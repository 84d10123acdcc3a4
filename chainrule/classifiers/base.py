"""Shared estimator plumbing: the scikit-learn contract, input validation and label mapping, without scikit-learn.

The contract (scikit-learn's): ``__init__`` stores its keyword arguments and nothing else; ``fit(X, y)`` validates,
learns attributes whose names end in ``_`` and returns ``self``; ``get_params`` / ``set_params`` read the
parameter names off ``__init__``'s signature, so ``sklearn.base.clone``, ``GridSearchCV`` and ``Pipeline`` work.

Inputs: ``X`` is a feature matrix (N, D) or images (N, H, W, C) (any (N, ...) array), flattened to (N, D) row by
row; ``y`` holds N labels of any one orderable type (ints, strings, ...). ``classes_`` is the sorted array of the
distinct labels; internally the estimators work with indices into it (0 .. C-1), so "the smallest label" in a
tie-break is the first class in ``classes_``.

Errors follow scikit-learn's messages where its estimator checks look for them (``NotFittedError``, "X has 3
features, but ... is expecting 4 features as input", "Unknown label type: ...", "... contains NaN").
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import numbers
import warnings
from typing import Any, Iterator

import numpy as np

from chainrule.data.preprocessing import NotFittedError as _PreprocessingNotFitted


class NotFittedError(ValueError, AttributeError, _PreprocessingNotFitted):
    """A method that needs a fitted estimator was called before ``fit`` (or ``load``).

    A ValueError and AttributeError like scikit-learn's, and a ``chainrule.data.NotFittedError``, so one
    ``except`` catches unfitted preprocessing and unfitted classifiers alike.
    """


_COMBINED: dict[type, type] = {}


def not_fitted_error(message: str) -> NotFittedError:
    """A NotFittedError; when scikit-learn is already imported, also an ``sklearn.exceptions.NotFittedError``.

    scikit-learn's tools (and its estimator checks) recognise unfitted estimators by that class. chainrule does not
    import scikit-learn for this: if the user's program has loaded it, the error subclasses both.
    """
    import sys

    sk = sys.modules.get("sklearn.exceptions")
    if sk is None:
        return NotFittedError(message)
    cls = _COMBINED.get(sk.NotFittedError)
    if cls is None:
        cls = _COMBINED[sk.NotFittedError] = type("NotFittedError", (NotFittedError, sk.NotFittedError),
                                                  {"__module__": __name__, "__doc__": NotFittedError.__doc__})
    return cls(message)


class DataConversionWarning(UserWarning):
    """The input had to be converted (e.g. a column vector y of shape (N, 1) was flattened).

    Issued as ``data_conversion_warning()``'s class: when scikit-learn is loaded, a subclass of scikit-learn's
    ``DataConversionWarning`` too, so its warning filters (and estimator checks) see it.
    """


def data_conversion_warning() -> type[DataConversionWarning]:
    """The category to warn with: DataConversionWarning, also scikit-learn's when scikit-learn is already imported
    (chainrule does not import it for this), as ``not_fitted_error`` does for NotFittedError."""
    import sys

    sk = sys.modules.get("sklearn.exceptions")
    if sk is None:
        return DataConversionWarning
    cls = _COMBINED.get(sk.DataConversionWarning)
    if cls is None:
        cls = _COMBINED[sk.DataConversionWarning] = type(
            "DataConversionWarning", (DataConversionWarning, sk.DataConversionWarning),
            {"__module__": __name__, "__doc__": DataConversionWarning.__doc__})
    return cls


# ---- X ----------------------------------------------------------------------------------------------------------


def _is_sparse(X: Any) -> bool:
    return type(X).__module__.startswith("scipy.sparse") or (hasattr(X, "tocsr") and hasattr(X, "nnz"))


def _first_nonfinite(X: np.ndarray) -> tuple[str, tuple[int, ...]]:
    """('NaN' or 'infinity', index) of the first non-finite entry of a float array that has one."""
    flat = X.reshape(len(X), -1)
    for start in range(0, len(flat), 4096):
        block = flat[start:start + 4096]
        bad = np.flatnonzero(~np.isfinite(block))
        if len(bad):
            row, col = divmod(int(bad[0]), block.shape[1])
            kind = "NaN" if np.isnan(block[row, col]) else "infinity"
            return kind, (start + row, col)
    raise AssertionError("no non-finite entry")  # pragma: no cover - only called when one exists


def check_X(X: Any, estimator: "BaseClassifier", *, reset: bool, dtype: Any = np.float32,
            keep_uint8: bool = False) -> np.ndarray:
    """Validate ``X`` and return it as a C-contiguous (N, D) array of ``dtype`` (or uint8 with ``keep_uint8``).

    ``reset=True`` (in ``fit``) records ``n_features_in_`` and ``sample_shape_`` on ``estimator``; otherwise the
    feature count must match them. Never modifies ``X``; copies only when the dtype or layout must change.
    """
    name = type(estimator).__name__
    if X is None:
        raise ValueError(f"{name} expected array-like X, got None")
    if _is_sparse(X):
        raise TypeError(
            f"{name} does not accept sparse input (got {type(X).__name__}); convert it with X.toarray() first"
        )
    arr = np.asarray(X)
    if arr.dtype.kind == "c":
        raise ValueError(f"Complex data not supported: {name} got X of dtype {arr.dtype}; pass real numbers")
    if arr.dtype.kind == "O":
        arr = arr.astype(np.float64)  # raises TypeError naming the offending element type
    elif arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} expects numeric X, got dtype {arr.dtype}; encode strings as numbers first")
    if arr.ndim < 2:
        what = "scalar array" if arr.ndim == 0 else "1D array"
        raise ValueError(
            f"Expected 2D array, got {what} instead: X={arr!r}. Reshape your data either using "
            "X.reshape(-1, 1) if your data has a single feature or X.reshape(1, -1) if it contains a single sample."
        )
    n = arr.shape[0]
    d = int(np.prod(arr.shape[1:]))
    if n == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={arr.shape}) while a minimum of 1 is required by {name}."
        )
    if d == 0:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required by {name}."
        )
    if arr.dtype.kind == "f":
        # The float64 sum of finite numbers is finite unless it overflows, so one fast pass clears almost every
        # input; only when it fails do we look entry by entry.
        with np.errstate(over="ignore", invalid="ignore"):
            total = float(np.sum(arr, dtype=np.float64))
        if not math.isfinite(total) and not np.isfinite(arr).all():
            kind, where = _first_nonfinite(arr)
            raise ValueError(
                f"Input X contains {kind} (first at sample {where[0]}, feature {where[1]}); {name} needs finite "
                "values: remove or impute the missing/infinite entries"
            )
    if reset:
        estimator.n_features_in_ = d
        estimator.sample_shape_ = tuple(int(s) for s in arr.shape[1:])
    else:
        expected = estimator.n_features_in_
        if d != expected:
            raise ValueError(
                f"X has {d} features, but {name} is expecting {expected} features as input "
                f"(it was fitted on samples of shape {estimator.sample_shape_}; got shape {arr.shape[1:]})."
            )
    arr = arr.reshape(n, d)
    if keep_uint8 and arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.dtype.kind == "f" and np.dtype(dtype).itemsize < arr.dtype.itemsize:
        limit = float(np.finfo(dtype).max)
        if float(np.max(np.abs(arr))) > limit:
            raise ValueError(
                f"Input X has values beyond the {np.dtype(dtype)} range (|x| <= {limit:.3g}) that {name} computes in; "
                "rescale the features"
            )
    return np.ascontiguousarray(arr, dtype=dtype)


# ---- y ----------------------------------------------------------------------------------------------------------


def _show(value: Any) -> str:
    """repr of a label or number without NumPy's scalar wrapper (0, not np.int64(0))."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _label_kind(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, numbers.Number):
        return "number"
    return type(value).__name__


def check_y(y: Any, n_samples: int, estimator: "BaseClassifier") -> tuple[np.ndarray, np.ndarray]:
    """Validate labels ``y`` (N,) and return ``(classes_, y_index)``: sorted distinct labels and int64 indices.

    Column vectors (N, 1) are flattened with a DataConversionWarning. Labels must be discrete (integral floats
    are fine), of one orderable type, finite, and of at least two classes.
    """
    name = type(estimator).__name__
    if y is None:
        raise ValueError(f"{name} requires y to be passed, but the target y is None.")
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected. Please change the shape of y to "
            "(n_samples,), for example using ravel().", data_conversion_warning(), stacklevel=3,
        )
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"y should be a 1d array, got an array of shape {arr.shape} instead.")
    if len(arr) != n_samples:
        raise ValueError(
            f"X and y have inconsistent numbers of samples: X has {n_samples}, y has {len(arr)}; pass one label "
            "per sample"
        )
    if arr.dtype.kind == "c":
        raise ValueError(f"Complex data not supported: y has dtype {arr.dtype}")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            i = int(np.flatnonzero(~np.isfinite(arr))[0])
            kind = "NaN" if np.isnan(arr[i]) else "infinity"
            raise ValueError(f"Input y contains {kind} (first at index {i}); every sample needs a class label")
        frac = np.flatnonzero(arr != np.round(arr))
        if len(frac):
            i = int(frac[0])
            raise ValueError(
                f"Unknown label type: continuous. {name} is a classifier and needs discrete class labels, got "
                f"{_show(arr[i])} at index {i}; round or bin regression targets into classes first"
            )
    elif arr.dtype.kind == "O":
        kinds = {_label_kind(v) for v in arr}
        if len(kinds) > 1:
            raise ValueError(
                f"Mix of label input types ({', '.join(sorted(kinds))}): y must hold labels of one type; got e.g. "
                f"{', '.join(_show(next(v for v in arr if _label_kind(v) == k)) for k in sorted(kinds))}"
            )
        if kinds == {"number"}:
            if not all(math.isfinite(float(v)) for v in arr):
                raise ValueError("Input y contains NaN or infinity; every sample needs a class label")
            if any(float(v) != round(float(v)) for v in arr):
                raise ValueError(f"Unknown label type: continuous. {name} needs discrete class labels")
    elif arr.dtype.kind not in "biuUS":
        raise ValueError(f"Unknown label type: y has dtype {arr.dtype}; use integer or string class labels")
    try:
        classes, y_index = np.unique(arr, return_inverse=True)
    except TypeError as e:
        raise ValueError(f"Unknown label type: labels of y cannot be sorted ({e}); use labels of one type") from e
    if len(classes) < 2:
        raise ValueError(
            f"y has 1 class ({_show(classes[0])}); {name} needs samples of at least 2 classes to learn to tell "
            "them apart"
        )
    return classes, y_index.reshape(-1).astype(np.int64)


# ---- the estimator base -----------------------------------------------------------------------------------------


@contextlib.contextmanager
def refusals_keep_fit(keep: bool = True) -> Iterator[None]:
    """Checks of a ``partial_fit`` call's inputs made before it changes anything: with ``keep``, an error raised
    inside leaves the fitted estimator as it was (a refused batch, such as a label outside ``classes_``, does not
    undo the earlier calls) instead of not fitted (``_unfitted_on_failure``). The error propagates."""
    try:
        yield
    except Exception as e:
        if keep:
            e._chainrule_fit_kept = True  # type: ignore[attr-defined]
        raise


def _unfitted_on_failure(method: Any) -> Any:
    """Wrap ``fit`` / ``partial_fit``: if it raises, the estimator is left not fitted (``_forget_fit``), so using it
    raises ``NotFittedError`` instead of an AttributeError about a half-set model, unless the call refused its
    inputs before changing anything (``refusals_keep_fit``). The exception propagates."""
    if getattr(method, "_unfitted_on_failure", False):
        return method

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as e:
            if not getattr(e, "_chainrule_fit_kept", False):
                self._forget_fit()
            raise

    wrapper._unfitted_on_failure = True  # type: ignore[attr-defined]
    return wrapper


class BaseClassifier:
    """get/set_params, repr, tags, fitted checks, ``score`` and ``save``/``load`` for chainrule's classifiers.

    Subclasses define ``__init__`` (keyword hyperparameters only), ``fit``, ``predict``, ``_state`` and
    ``_set_state`` (the learned attributes, for save/load).

    scikit-learn compatibility is by protocol, not inheritance, so scikit-learn stays a test-only dependency:
    ``get_params``/``set_params`` (``clone``, ``GridSearchCV``, ``Pipeline`` and ``cross_val_score`` use them, with
    no warning), ``__sklearn_tags__`` and ``__sklearn_is_fitted__``. Only scikit-learn's own test harness
    (``check_estimator``, ``parametrize_with_checks``) warns "Estimator ... does not inherit from
    `sklearn.base.BaseEstimator`": since 1.6 it tests ``isinstance(estimator, BaseEstimator)``, which no protocol
    method can satisfy, so chainrule's tests filter exactly that message.
    """

    _estimator_type = "classifier"
    registry: dict[str, type] = {}  # every concrete subclass by name, for chainrule.classifiers.load

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        BaseClassifier.registry[cls.__name__] = cls
        for name in ("fit", "partial_fit"):
            if name in cls.__dict__:
                setattr(cls, name, _unfitted_on_failure(cls.__dict__[name]))

    def _forget_fit(self) -> None:
        """Back to the state of a new estimator with the same hyperparameters: every attribute that is not one is
        removed (learned ``*_`` attributes and private state)."""
        params = set(self._get_param_names())
        for key in [k for k in vars(self) if k not in params]:
            delattr(self, key)

    @classmethod
    def _get_param_names(cls) -> list[str]:
        init = cls.__init__
        if init is object.__init__:
            return []
        params = [p for p in inspect.signature(init).parameters.values() if p.name != "self"]
        for p in params:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise TypeError(f"{cls.__name__}.__init__ must list its hyperparameters explicitly, not *{p.name}")
        return sorted(p.name for p in params)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The hyperparameters, as passed to ``__init__`` (or ``set_params``)."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> "BaseClassifier":
        """Set hyperparameters by name; they are validated when ``fit`` runs. Returns self."""
        valid = self._get_param_names()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(
                    f"Invalid parameter {key!r} for estimator {type(self).__name__}. Valid parameters are: {valid!r}."
                )
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        sig = inspect.signature(type(self).__init__).parameters
        parts = []
        for name in self._get_param_names():
            value = getattr(self, name)
            default = sig[name].default
            same = value is default
            if not same:
                try:
                    same = bool(value == default) and type(value) is type(default)
                except Exception:  # arrays, objects with odd __eq__
                    same = False
            if not same:
                parts.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def __sklearn_tags__(self) -> Any:
        # Only scikit-learn calls this, so importing it here keeps it a test-only dependency.
        from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags

        return Tags(estimator_type="classifier", target_tags=TargetTags(required=True),
                    classifier_tags=ClassifierTags(), input_tags=InputTags(two_d_array=True))

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "classes_")

    def _check_is_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise not_fitted_error(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with appropriate arguments "
                f"(or {type(self).__name__}.load(path)) before using this estimator."
            )

    def _fit_labels(self, y: Any, n_samples: int) -> np.ndarray:
        """Set ``classes_`` from y and return y as class indices (N,) int64."""
        classes, y_index = check_y(y, n_samples, self)
        self.classes_ = classes
        return y_index

    def predict(self, X: Any) -> np.ndarray:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    # ---- per-model facts the front ends ask for (the CLI's summaries and reports, the playground) -----------------

    has_training_curve = False  # True: fit runs epochs of a training loop (loss curve, checkpoints, resume)

    def n_parameters(self) -> int:
        """How many learned numbers the fitted model holds in its weights (0 for a model that stores its training
        data, such as kNN)."""
        return 0

    def n_model_features(self) -> int:
        """How many numbers per sample the fitted model weighs (after any hand-designed features)."""
        self._check_is_fitted()
        return int(self.n_features_in_)

    def weight_images(self) -> tuple[np.ndarray, bool] | None:
        """(W (D, units), is_linear): learned weights over the raw input values, one column per unit (class
        templates, first-layer units), for pictures of what the model looks for; ``is_linear``: the columns are the
        class scores' templates. None when the model has no such weights."""
        return None

    def probabilities(self, X: Any) -> tuple[np.ndarray, str]:
        """((N, C) class probabilities, columns in ``classes_`` order; what they are), for reports and the
        playground's shading: ``predict_proba`` where the model has one."""
        return np.asarray(self.predict_proba(X)), "softmax of the scores"  # type: ignore[attr-defined]

    def capped_to(self, n_samples: int) -> dict[str, Any]:
        """{parameter: largest allowed value} for the parameters that cannot exceed a training set of
        ``n_samples`` and now do (kNN's k); empty when every parameter fits."""
        return {}

    def describe(self) -> str:
        """A few words on the model and its main setting, for plot titles ("kNN, k=5, l2")."""
        return type(self).__name__

    def _validate_params(self) -> None:
        """Check every hyperparameter (ValueError naming the rule and the value) without fitting: what ``fit``
        checks first, for front ends (the CLI) that must refuse bad settings before they write anything."""

    def score(self, X: Any, y: Any) -> float:
        """Mean accuracy of ``predict(X)`` against the labels ``y``."""
        pred = self.predict(X)
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.shape != pred.shape:
            raise ValueError(f"y has shape {y.shape} but X has {len(pred)} samples; pass one label per sample")
        return float(np.mean(pred == y))

    # ---- persistence (format in chainrule.classifiers.io) --------------------------------------------------------

    def save(self, path: Any) -> None:
        """Write the fitted estimator to ``path``: a .npz file holding arrays and JSON metadata, or, for a path ending
        in ``.safetensors``, a safetensors file (no pickle either way; ``chainrule.classifiers.io``)."""
        from chainrule.classifiers.io import save

        save(self, path)

    @classmethod
    def load(cls, path: Any) -> "BaseClassifier":
        """Read an estimator written by ``save``; it must be of this class (``chainrule.classifiers.load``: any)."""
        from chainrule.classifiers.io import load

        return load(path, expected=cls)

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-able learned values, learned arrays) beyond ``classes_``, ``n_features_in_``, ``sample_shape_``."""
        raise NotImplementedError

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Restore what ``_state`` returned (the common attributes are already set)."""
        raise NotImplementedError


def check_int_param(estimator: BaseClassifier, name: str, low: int, *, allow_none: bool = False) -> int | None:
    """The hyperparameter ``name`` as an int >= ``low`` (bools rejected), else ValueError naming it."""
    value = getattr(estimator, name)
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{type(estimator).__name__}: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


def check_real_param(estimator: BaseClassifier, name: str, low: float, *, strict: bool = False) -> float:
    """The hyperparameter ``name`` as a finite float >= ``low`` (> ``low`` with ``strict``), else ValueError."""
    value = getattr(estimator, name)
    ok = (not isinstance(value, (bool, np.bool_)) and isinstance(value, numbers.Real)
          and math.isfinite(float(value)) and (float(value) > low if strict else float(value) >= low))
    if not ok:
        rule = f"> {low:g}" if strict else f">= {low:g}"
        raise ValueError(f"{type(estimator).__name__}: {name} must be a finite number {rule}, got {value!r}")
    return float(value)


def check_choice(estimator: BaseClassifier, name: str, choices: tuple[Any, ...]) -> Any:
    """The hyperparameter ``name``, which must be one of ``choices``."""
    value = getattr(estimator, name)
    if not any(value is c or (isinstance(value, str) and value == c) for c in choices):
        import difflib

        words = [c for c in choices if isinstance(c, str)]
        close = difflib.get_close_matches(value, words, n=1) if isinstance(value, str) else []
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"{type(estimator).__name__}: {name} must be one of {list(choices)}, got {value!r}{hint}")
    return value
