"""``BaseClassifier``: the scikit-learn contract, the fitted checks, ``score``, ``save`` / ``load`` and the per-model
facts the front ends ask for, without scikit-learn. The input and hyperparameter checks and the errors are
``chainrule.classifiers.checks`` (imported here too).

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
from typing import Any, Iterator

import numpy as np

from chainrule.classifiers.checks import (DataConversionWarning, NotFittedError, check_choice, check_int_param,
                                          check_real_param, check_X, check_y, data_conversion_warning,
                                          not_fitted_error)

__all__ = ["BaseClassifier", "NotFittedError", "not_fitted_error", "DataConversionWarning", "data_conversion_warning",
           "check_X", "check_y", "check_int_param", "check_real_param", "check_choice"]


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
        for name in ("fit", "partial_fit"):  # defined here or by a mixin (NeuralNetClassifier's NetworkTraining)
            method = getattr(cls, name, None)
            if method is not None and not getattr(method, "_unfitted_on_failure", False):
                setattr(cls, name, _unfitted_on_failure(method))

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
