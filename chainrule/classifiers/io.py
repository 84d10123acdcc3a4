"""Save and load fitted classifiers without pickle, in chainrule's one file format (``chainrule.utils.serial``).

    model.save("svm.npz")
    model = LinearSVM.load("svm.npz")                     # must hold a LinearSVM
    model = chainrule.classifiers.load("svm.npz")         # any chainrule classifier

The file is a NumPy ``.npz`` archive read with ``allow_pickle=False``, so loading a file runs no code from it,
written atomically. Its JSON document (``format_version`` 2)::

    {"format": "chainrule.classifier", "format_version": 2, "chainrule_version": "0.2.0",
     "state": {"class": "LinearSVM",              # the estimator class, checked on load
               "params": {...},                   # get_params(): hyperparameters (JSON values)
               "n_features_in": 3072, "sample_shape": [32, 32, 3],
               "classes": <array> | [...],        # classes_: an array (numbers, strings) or a JSON list
               "learned": {...},                  # the estimator's JSON-able learned values (e.g. loss_curve)
               "arrays": {"W_": <array>, ...}}}   # its learned arrays, each stored as an archive entry

A path ending in ``.safetensors`` is written and read as a safetensors file instead (``chainrule.safetensors``:
checked before it is read): the learned arrays are its tensors, the rest of the tree (with ``classes`` as
``{"values": [...], "dtype": ...}``) is the JSON metadata entry ``"chainrule"``; the ``"arrays"`` entry lists the
tensor names.

Files of format version 1 (chainrule 0.1: arrays at the top level of the archive beside a ``__metadata__`` JSON
entry) still load. A hyperparameter that JSON cannot hold (e.g. ``random_state=np.random.default_rng()``) is saved
as null with a warning: it only matters for refitting. Unknown classes, newer format versions and missing or
misshapen arrays raise ValueError naming the problem.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from typing import Any, Mapping

import numpy as np

from chainrule.utils.serial import FileFormatError, load_tree, npz_members, read_npz, save_tree

FORMAT = "chainrule.classifier"
FORMAT_VERSION = 2
_V1_META_KEY = "__metadata__"  # format 1's JSON entry


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
        classes_value: Any = classes
    else:
        ok, values = _json_value(list(classes))
        if not ok or len({type(v) for v in values}) > 1:
            raise ValueError(
                f"cannot save class labels {list(classes)[:5]!r}...: without pickle only numbers and strings can be "
                "stored; map the labels to ints or strings before fitting"
            )
        classes_value = values
    from chainrule import __version__

    for key, value in arrays.items():
        if not isinstance(value, np.ndarray) or value.dtype.kind == "O":
            raise TypeError(f"cannot save {key!r}: only numeric and string arrays are stored (got {type(value)})")
    tree = {"class": type(estimator).__name__, "params": params, "n_features_in": int(estimator.n_features_in_),
            "sample_shape": list(estimator.sample_shape_), "classes": classes_value, "learned": meta_state,
            "arrays": arrays}
    if _is_safetensors(path):
        _save_safetensors(path, tree, __version__)
        return
    save_tree(path, tree, header={"format": FORMAT, "chainrule_version": __version__}, format_version=FORMAT_VERSION)


def load(path: str | os.PathLike, expected: type | None = None) -> Any:
    """Read a classifier written by ``save``; with ``expected`` (a class) the file must hold that class."""
    path = os.fspath(path)
    if _is_safetensors(path):
        return _build(path, _load_safetensors(path), expected)
    try:  # the zip's directory first: which format; members are then read bounded (chainrule.utils.serial)
        version1 = _V1_META_KEY in npz_members(path)
        arrays = read_npz(path) if version1 else {}
    except FileFormatError as e:
        raise ValueError(f"{path}: not a chainrule classifier file readable without pickle ({e})") from e
    if version1:
        tree = _version1_tree(path, arrays)
    else:
        try:
            header, tree = load_tree(path, max_version=FORMAT_VERSION)
        except FileFormatError as e:
            raise ValueError(str(e).replace("chainrule file", "chainrule classifier file")) from e
        if header.get("format") != FORMAT:
            raise ValueError(f"{path}: format is {header.get('format')!r}, expected {FORMAT!r}"
                             + ("; it is a training checkpoint: load it with chainrule.classifiers."
                                "estimator_from_checkpoint, or a run with chainrule.runs.load_trained"
                               if header.get("format") is None else ""))
    return _build(path, tree, expected)


def _is_safetensors(path: str | os.PathLike) -> bool:
    return os.fspath(path).endswith(".safetensors")


def _save_safetensors(path: str | os.PathLike, tree: dict[str, Any], version: str) -> None:
    from chainrule.safetensors import save_file

    classes = tree["classes"]
    if isinstance(classes, np.ndarray):
        classes = {"values": classes.tolist(), "dtype": classes.dtype.str}
    else:
        classes = {"values": classes, "dtype": None}
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "chainrule_version": version,
           "state": {**tree, "classes": classes, "arrays": sorted(tree["arrays"])}}
    save_file(tree["arrays"], path, metadata={"chainrule": json.dumps(doc, separators=(",", ":"))})


def _load_safetensors(path: str) -> dict[str, Any]:
    from chainrule.safetensors import SafetensorsError, load_file_and_metadata

    try:
        arrays, meta = load_file_and_metadata(path)
        doc = json.loads(meta["chainrule"]) if "chainrule" in meta else None
    except (SafetensorsError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a chainrule classifier file ({e})") from e
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("state"), dict):
        raise ValueError(f"{path}: a safetensors file without chainrule's classifier metadata (format {FORMAT!r}); "
                         "load plain weights with chainrule.safetensors.load_file")
    if not isinstance(doc.get("format_version"), int) or doc["format_version"] > FORMAT_VERSION:
        raise ValueError(f"{path}: format_version {doc.get('format_version')!r} is not one this chainrule reads "
                         f"(<= {FORMAT_VERSION}); upgrade chainrule")
    tree = doc["state"]
    if sorted(arrays) != sorted(tree.get("arrays") or []):
        raise ValueError(f"{path}: its tensors {sorted(arrays)} are not the ones its metadata lists "
                         f"{sorted(tree.get('arrays') or [])}")
    classes = tree.get("classes") or {}
    try:
        values = classes["values"]
        classes = values if classes["dtype"] is None else np.array(values, dtype=np.dtype(classes["dtype"]))
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: the class labels in its metadata are malformed ({e})") from e
    return {**tree, "classes": classes, "arrays": arrays}


def _version1_tree(path: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The tree of a format-1 file (chainrule 0.1): its ``__metadata__`` JSON and top-level arrays."""
    try:
        meta = json.loads(arrays.pop(_V1_META_KEY).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: the metadata is not valid JSON ({e})") from e
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: format is {meta.get('format')!r}, expected {FORMAT!r}")
    if meta.get("format_version") != 1:
        raise ValueError(f"{path}: format_version {meta.get('format_version')!r} is newer than this chainrule "
                         f"understands ({FORMAT_VERSION}); upgrade chainrule")
    if meta["classes"]["storage"] == "array":
        if "classes_" not in arrays:
            raise ValueError(f"{path}: the 'classes_' array is missing")
        classes: Any = arrays.pop("classes_")
    else:
        classes = meta["classes"]["values"]
    return {"class": meta.get("class"), "params": meta["params"], "n_features_in": meta["n_features_in"],
            "sample_shape": meta["sample_shape"], "classes": classes, "learned": meta.get("state", {}),
            "arrays": arrays}


def _build(path: str, tree: dict[str, Any], expected: type | None) -> Any:
    import chainrule.classifiers as package

    registry = _registry()
    name = tree.get("class")
    cls = registry.get(name)
    if cls is None and isinstance(name, str):  # a registered model whose module is imported on first use
        try:
            cls = package.spec_of(name).estimator_class
        except ValueError:
            cls = None
    if cls is None:
        raise ValueError(f"{path}: unknown classifier class {name!r}; known: {sorted(registry)}")
    if expected is not None and cls is not expected:
        raise ValueError(
            f"{path} holds a {cls.__name__}, not a {expected.__name__}; use {cls.__name__}.load or "
            "chainrule.classifiers.load"
        )
    valid = set(cls._get_param_names())
    params = dict(tree["params"])
    unknown = sorted(set(params) - valid)
    if unknown:
        raise ValueError(f"{path}: hyperparameters {unknown} are not parameters of {cls.__name__}")
    estimator = cls(**params)
    estimator.n_features_in_ = int(tree["n_features_in"])
    estimator.sample_shape_ = tuple(int(s) for s in tree["sample_shape"])
    classes = tree["classes"]
    estimator.classes_ = classes if isinstance(classes, np.ndarray) else np.array(classes, dtype=object)
    try:
        estimator._set_state(dict(tree.get("learned") or {}), dict(tree["arrays"]))
    except KeyError as e:
        raise ValueError(f"{path}: array {e.args[0]!r} is missing; the file is incomplete") from e
    return estimator


def estimator_from_checkpoint(state: Mapping[str, Any]) -> Any:
    """The estimator a fit checkpoint describes (a ``chainrule.train.load_checkpoint`` state written by an
    estimator's ``fit(checkpoints=...)``), with the weights training had reached at that step: its class is looked up
    in the model registry, its parameters, labels and fitted input steps restored from the checkpoint."""
    from chainrule.classifiers import _training as tr
    from chainrule.classifiers.registry import spec_of

    if not tr.is_fit_checkpoint(state):
        raise ValueError("this checkpoint was not written by an estimator's fit (chainrule train)")
    config = state["config"]
    try:
        spec = spec_of(str(config.get("estimator")))
    except ValueError:
        raise ValueError(f"unknown estimator {config.get('estimator')!r} in the checkpoint") from None
    est = spec.estimator_class(**config["params"])
    tr.restore_fitted(est, state["metadata"])
    est._set_weights(state["model"], state["history"])
    return est
