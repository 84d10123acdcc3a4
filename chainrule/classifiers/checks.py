"""What every estimator checks, and the errors it raises: inputs ``X`` and labels ``y`` (``check_X``, ``check_y``),
hyperparameters (``check_int_param``, ``check_real_param``, ``check_choice``), ``NotFittedError`` and
``DataConversionWarning`` (``chainrule.classifiers.base`` re-exports them all, and ``BaseClassifier`` uses them).

Inputs: ``X`` is a feature matrix (N, D) or images (N, H, W, C) (any (N, ...) array), flattened to (N, D) row by
row; ``y`` holds N labels of any one orderable type (ints, strings, ...). ``classes_`` is the sorted array of the
distinct labels; internally the estimators work with indices into it (0 .. C-1).

Errors follow scikit-learn's messages where its estimator checks look for them (``NotFittedError``, "X has 3
features, but ... is expecting 4 features as input", "Unknown label type: ...", "... contains NaN").
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - types only
    from chainrule.classifiers.base import BaseClassifier

__all__ = ["NotFittedError", "not_fitted_error", "DataConversionWarning", "data_conversion_warning", "check_X",
           "check_y", "check_int_param", "check_real_param", "check_choice"]

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
