"""Save and load fitted classifiers without pickle: one ``.npz`` of arrays plus a JSON document inside it.

    model.save("svm.npz")
    model = LinearSVM.load("svm.npz")                     # must hold a LinearSVM
    model = chainrule.classifiers.load("svm.npz")         # any chainrule classifier

Format (``format_version`` 1): a NumPy ``.npz`` archive read with ``allow_pickle=False``, so loading a file runs
no code from it. Its entries:

- ``__metadata__``: uint8 bytes of a UTF-8 JSON object::

      {"format": "chainrule.classifier", "format_version": 1, "chainrule_version": "0.1.0",
       "class": "LinearSVM",               # the estimator class, checked on load
       "params": {...},                    # get_params(): hyperparameters (JSON values)
       "n_features_in": 3072, "sample_shape": [32, 32, 3],
       "classes": {"storage": "array"}     # classes_ is the array entry "classes_" (numbers, strings)
                | {"storage": "json", "values": [...]},   # object labels of one JSON type
       "state": {...}}                     # the estimator's JSON-able learned values (e.g. loss_history)

- ``classes_`` (when stored as an array) and the estimator's learned arrays, each under its attribute name.

A hyperparameter that JSON cannot hold (e.g. ``random_state=np.random.default_rng()``) is saved as null with a
warning: it only matters for refitting. Unknown classes, newer format versions and missing or misshapen arrays
raise ValueError naming the problem.
"""

from __future__ import annotations

import io as _io
import json
import math
import os
import warnings
from typing import Any

import numpy as np

FORMAT = "chainrule.classifier"
FORMAT_VERSION = 1
_META_KEY = "__metadata__"


def _registry() -> dict[str, type]:
    """Every ``BaseClassifier`` subclass defined so far, by name (they register themselves)."""
    from chainrule.classifiers.base import BaseClassifier

    return dict(BaseClassifier.registry)


def _json_value(value: Any) -> tuple[bool, Any]:
    """(ok, JSON value) for None, bools, finite numbers, strings and lists/tuples of them."""
    if value is None or isinstance(value, (bool, str)):
        return True, value
    if isinstance(value, (np.bool_,)):
        return True, bool(value)
    if isinstance(value, (int, np.integer)):
        return True, int(value)
    if isinstance(value, (float, np.floating)):
        return (True, float(value)) if math.isfinite(float(value)) else (False, None)
    if isinstance(value, (list, tuple)):
        items = [_json_value(v) for v in value]
        return all(ok for ok, _ in items), [v for _, v in items]
    return False, None


def save(estimator: Any, path: str | os.PathLike) -> None:
    """Write a fitted chainrule classifier to ``path`` (format in the module docstring)."""
    estimator._check_is_fitted()
    params = {}
    for name, value in estimator.get_params().items():
        ok, jv = _json_value(value)
        if not ok:
            if name != "random_state":
                raise ValueError(
                    f"cannot save {type(estimator).__name__}: hyperparameter {name}={value!r} is not a JSON value "
                    "(None, bool, number, string or list of them)"
                )
            warnings.warn(f"random_state={value!r} cannot be stored without pickle; it is saved as None",
                          UserWarning, stacklevel=3)
        params[name] = jv
    meta_state, arrays = estimator._state()
    arrays = dict(arrays)
    classes = np.asarray(estimator.classes_)
    if classes.dtype.kind in "biufU":
        class_meta: dict[str, Any] = {"storage": "array"}
        arrays["classes_"] = classes
    else:
        ok, values = _json_value(list(classes))
        if not ok or len({type(v) for v in values}) > 1:
            raise ValueError(
                f"cannot save class labels {list(classes)[:5]!r}...: without pickle only numbers and strings can be "
                "stored; map the labels to ints or strings before fitting"
            )
        class_meta = {"storage": "json", "values": values}
    from chainrule import __version__

    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "chainrule_version": __version__,
            "class": type(estimator).__name__, "params": params, "n_features_in": int(estimator.n_features_in_),
            "sample_shape": list(estimator.sample_shape_), "classes": class_meta, "state": meta_state}
    arrays[_META_KEY] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    for key, value in arrays.items():
        if not isinstance(value, np.ndarray) or value.dtype.kind == "O":
            raise TypeError(f"cannot save {key!r}: only numeric and string arrays are stored (got {type(value)})")
    path = os.fspath(path)
    # np.savez appends ".npz" to names without it; write through a file object so the name is kept exactly.
    buffer = _io.BytesIO()
    np.savez(buffer, **arrays)
    with open(path, "wb") as f:
        f.write(buffer.getvalue())


def load(path: str | os.PathLike, expected: type | None = None) -> Any:
    """Read a classifier written by ``save``; with ``expected`` (a class) the file must hold that class."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except ValueError as e:  # e.g. an object array inside, which would need pickle
        raise ValueError(f"{path}: not a chainrule classifier file readable without pickle ({e})") from e
    if _META_KEY not in arrays:
        raise ValueError(
            f"{path}: no {_META_KEY!r} entry; this .npz was not written by a chainrule classifier's save()"
        )
    try:
        meta = json.loads(arrays.pop(_META_KEY).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: the metadata is not valid JSON ({e})") from e
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: format is {meta.get('format')!r}, expected {FORMAT!r}")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{path}: format_version {version!r} is newer than this chainrule understands ({FORMAT_VERSION}); "
            "upgrade chainrule"
        )
    import chainrule.classifiers as package

    registry = _registry()
    cls = registry.get(meta.get("class"))
    if cls is None and meta.get("class") in package.__all__:  # exported but loaded lazily (MLPClassifier)
        cls = getattr(package, meta["class"])
    if cls is None:
        raise ValueError(f"{path}: unknown classifier class {meta.get('class')!r}; known: {sorted(registry)}")
    if expected is not None and cls is not expected:
        raise ValueError(
            f"{path} holds a {cls.__name__}, not a {expected.__name__}; use {cls.__name__}.load or "
            "chainrule.classifiers.load"
        )
    valid = set(cls._get_param_names())
    unknown = sorted(set(meta["params"]) - valid)
    if unknown:
        raise ValueError(f"{path}: hyperparameters {unknown} are not parameters of {cls.__name__}")
    estimator = cls(**meta["params"])
    estimator.n_features_in_ = int(meta["n_features_in"])
    estimator.sample_shape_ = tuple(int(s) for s in meta["sample_shape"])
    if meta["classes"]["storage"] == "array":
        if "classes_" not in arrays:
            raise ValueError(f"{path}: the 'classes_' array is missing")
        estimator.classes_ = arrays.pop("classes_")
    else:
        estimator.classes_ = np.array(meta["classes"]["values"], dtype=object)
    try:
        estimator._set_state(meta.get("state", {}), arrays)
    except KeyError as e:
        raise ValueError(f"{path}: array {e.args[0]!r} is missing; the file is incomplete") from e
    return estimator
