"""The model registry: the one table of the models every front end offers (``chainrule train --model``, ``compare
--models``, ``evaluate`` / ``predict`` loading a run, ``--config`` help, ``tune`` and the playground's model list).

    from chainrule.classifiers import register, get_spec, model_names
    register("centroid", NearestCentroid, label="nearest centroid", inputs=("vectors", "images", "points"))
    get_spec("centroid").estimator_class          # NearestCentroid
    model_names()                                 # ("knn", "svm", "softmax", "mlp", "random", "centroid")

Adding a model is one estimator (a ``chainrule.classifiers.BaseClassifier``: scikit-learn's contract, plus the
per-model facts the front ends ask for: ``n_parameters()``, ``weight_images()``, ``describe()``,
``has_training_curve``) and one ``register`` call; docs/adding-a-model.md walks through one.

A spec's ``estimator`` may be the class or "module:Class" (imported on first use, so that listing the models does
not import the network code). ``inputs`` says what the model can take: "vectors" (feature rows (N, D)), "images"
((N, H, W, C) arrays) and "points" (the playground's 2-D points); the playground offers the models with "points".
``playground`` holds the parameters the playground starts such a model with (its page may change those it has
controls for); None means the estimator's defaults.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = ["ModelSpec", "register", "unregister", "get_spec", "model_names", "specs", "spec_of", "INPUT_KINDS"]

INPUT_KINDS = ("vectors", "images", "points")


@dataclass(frozen=True)
class ModelSpec:
    """One registered model: its name in the front ends, its estimator class, a label for people, what it takes."""

    name: str
    estimator: Any  # the class, or "module:Class"
    label: str
    inputs: tuple[str, ...] = ("vectors", "images")
    playground: Mapping[str, Any] | None = field(default=None, compare=False)
    in_compare: bool = True  # whether ``chainrule compare`` trains it when --models is not given

    @property
    def estimator_class(self) -> type:
        """The estimator class (imported now if the spec names it as "module:Class")."""
        if isinstance(self.estimator, str):
            module, _, name = self.estimator.partition(":")
            return getattr(importlib.import_module(module), name)
        return self.estimator

    @property
    def class_name(self) -> str:
        """The estimator's class name, without importing it."""
        return self.estimator.partition(":")[2] if isinstance(self.estimator, str) else self.estimator.__name__

    def build(self, **params: Any) -> Any:
        """A new estimator with ``params`` (only the ones it takes: the others are dropped)."""
        cls = self.estimator_class
        names = set(cls._get_param_names())
        return cls(**{k: v for k, v in params.items() if k in names})

    def playground_params(self) -> dict[str, Any]:
        """The parameters the playground starts this model with (the estimator's defaults where it says none)."""
        return dict(self.playground) if self.playground is not None else {}


_SPECS: dict[str, ModelSpec] = {}


def register(name: str, estimator_class: Any, *, label: str, inputs: tuple[str, ...] | list[str] = ("vectors", "images"),
             playground: Mapping[str, Any] | None = None, in_compare: bool = True,
             replace: bool = False) -> ModelSpec:
    """Offer ``estimator_class`` (a ``BaseClassifier`` subclass, or "module:Class") under ``name`` in every front end.

    ``label``: a few words for people ("linear SVM"); ``inputs``: the kinds of input it takes, from ``INPUT_KINDS``;
    ``playground``: its starting parameters in the playground; ``in_compare``: whether ``chainrule compare`` trains
    it by default (a model whose fit takes minutes can leave it to ``--models``). A name registered before is refused unless
    ``replace=True``. Returns the spec.
    """
    if not isinstance(name, str) or not name or not name.replace("_", "").replace("-", "").isalnum() \
            or name != name.lower():
        raise ValueError(f"register: a model name is a short lower-case word like 'mlp', got {name!r}")
    if name in _SPECS and not replace:
        raise ValueError(f"register: a model named {name!r} is registered already "
                         f"({_SPECS[name].class_name}); pass replace=True to replace it")
    inputs = tuple(inputs)
    bad = [k for k in inputs if k not in INPUT_KINDS]
    if bad or not inputs:
        raise ValueError(f"register: inputs must be a non-empty subset of {list(INPUT_KINDS)}, got {list(inputs)}")
    if not isinstance(estimator_class, str):
        from chainrule.classifiers.base import BaseClassifier

        if not (isinstance(estimator_class, type) and issubclass(estimator_class, BaseClassifier)):
            raise TypeError(f"register: {name!r} needs a chainrule.classifiers.BaseClassifier subclass (or "
                            f"'module:Class'), got {estimator_class!r}")
    elif ":" not in estimator_class:
        raise ValueError(f"register: a lazily imported estimator is named 'module:Class', got {estimator_class!r}")
    spec = ModelSpec(name, estimator_class, str(label), inputs, None if playground is None else dict(playground),
                     bool(in_compare))
    _SPECS[name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove ``name`` from the registry (KeyError if it is not there)."""
    del _SPECS[name]


def get_spec(name: str) -> ModelSpec:
    """The spec of model ``name``; ValueError naming the registered models otherwise."""
    try:
        return _SPECS[name]
    except (KeyError, TypeError):
        import difflib

        close = difflib.get_close_matches(str(name), list(_SPECS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown model {name!r}{hint}; the models are: {', '.join(_SPECS)}") from None


def model_names(inputs: str | None = None) -> tuple[str, ...]:
    """The registered model names, in registration order; with ``inputs`` only those that take that kind."""
    return tuple(n for n, s in _SPECS.items() if inputs is None or inputs in s.inputs)


def specs() -> tuple[ModelSpec, ...]:
    """Every registered spec, in registration order."""
    return tuple(_SPECS.values())


def spec_of(estimator: Any) -> ModelSpec:
    """The spec whose estimator class is ``estimator``'s class (or ``estimator``, a class, or its name)."""
    name = estimator if isinstance(estimator, str) else (
        estimator.__name__ if isinstance(estimator, type) else type(estimator).__name__)
    for spec in _SPECS.values():
        if spec.class_name == name:
            return spec
    raise ValueError(f"{name} is not a registered model; register it with chainrule.classifiers.register(name, "
                     f"{name}, label=...)")
