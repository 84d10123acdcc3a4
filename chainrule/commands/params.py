"""The estimators' parameters as command-line flags and config-file keys: one table, generated from the estimators.

``chainrule train --model NAME`` trains the estimator registered as NAME (``chainrule.classifiers.get_spec``) with
parameters under the estimator's own names and values: every ``__init__`` parameter of any registered estimator is a
flag
(``--hidden-sizes``, ``--lr``, ``--weight-decay``, ``--preprocessing``, ...) and a ``--config`` key
(``hidden_sizes = [100]``), parsed by the type in the estimator's signature and checked by the estimator itself
(``_validate_params``) before anything is written. ``ALIASES`` is the one table of short names the CLI adds.

Values: numbers, ``true`` / ``false``, strings, comma-separated integers for ``hidden_sizes`` (``1024,1024``;
``""`` or ``none`` for no hidden layer), and ``none`` for a parameter that may be None (TOML has no null).
Integer parameters refuse non-integral numbers (``hidden_sizes = [100.7]`` is an error naming the key and value).
"""

from __future__ import annotations

import inspect
import re
from functools import lru_cache
from typing import Any

from chainrule.commands import values
from chainrule.commands.common import UsageError

# The CLI's short names for estimator parameters (each also works as a --config key).
ALIASES = {"hidden": "hidden_sizes", "seed": "random_state"}
# Defaults of the command line that differ from the estimators': a run is reproducible unless asked otherwise.
CLI_DEFAULTS = {"random_state": 0}
# Where the lectures' numbers need other starting points than an estimator's defaults (by estimator class): the MLP
# starts from the library's documented two-layer recipe (docs/classifiers.md; bench/bench_mlp.py "two_layer": 15
# epochs with random flips, 54.7% on a CIFAR-10 validation split in ~15 s of training). The recipes are for natural
# images, whose mirror image keeps the label (CIFAR-10, image folders: chainrule.data.registry.flips_keep_labels);
# other data (the 8x8 digits, the spiral's points) start from the estimators' own defaults.
RECIPES = {"MLPClassifier": {"epochs": 15, "augment": "flip"}}
# Estimator parameters that are config keys but not flags: the CLI's own -v / -q and progress bar stand in for
# MLPClassifier's verbose.
NOT_FLAGS = ("verbose",)


def estimator_class(model: str) -> type:
    """The estimator class of ``--model model`` (the registry's row)."""
    from chainrule.classifiers import get_spec

    return get_spec(model).estimator_class


def model_names() -> tuple[str, ...]:
    """The models the CLI offers: the registry's."""
    from chainrule.classifiers import model_names as names

    return names()


def signature(model: str) -> dict[str, tuple[frozenset[str], Any]]:
    """{parameter: (kinds, estimator default)} of ``model``'s estimator; kinds from its annotation: "int",
    "float", "bool", "str", "None", "ints" (a sequence of ints)."""
    return _signature(estimator_class(model))


@lru_cache(maxsize=None)
def _signature(cls: type) -> dict[str, tuple[frozenset[str], Any]]:
    out = {}
    for p in inspect.signature(cls.__init__).parameters.values():
        if p.name == "self":
            continue
        out[p.name] = (values.kinds_of(str(p.annotation)), p.default)
    return out


def defaults(model: str, flips: bool = True) -> dict[str, Any]:
    """The parameters a ``--model model`` run starts from: the estimator's defaults, ``CLI_DEFAULTS`` and its
    ``RECIPES`` entry, when the data are natural images whose mirror image keeps the label (``flips``)."""
    recipe = RECIPES.get(estimator_class(model).__name__, {}) if flips else {}
    return {name: recipe.get(name, CLI_DEFAULTS.get(name, default)) for name, (_, default) in signature(model).items()}


def all_parameters() -> dict[str, list[str]]:
    """{parameter: [models that have it]} over every model, in a stable order."""
    out: dict[str, list[str]] = {}
    for model in model_names():
        for name in signature(model):
            out.setdefault(name, []).append(model)
    return out


def canonical(key: str) -> str:
    """A flag or config key ("hidden", "batch-size") as the estimator parameter name it stands for."""
    key = key.replace("-", "_")
    return ALIASES.get(key, key)


# ---- values -----------------------------------------------------------------------------------------------------


def coerce(model: str, name: str, value: Any, where: str) -> Any:
    """``value`` (a flag's text or a TOML value) as the type of ``model``'s parameter ``name``
    (``chainrule.commands.values``); UsageError naming ``where`` otherwise. Ranges and choices are the estimator's
    to check (``build``)."""
    return values.coerce(signature(model)[name][0], value, where)


# ---- checking a whole parameter set -----------------------------------------------------------------------------


def build(model: str, params: dict[str, Any]) -> Any:
    """The estimator of ``model`` with ``params``, its parameters checked by the estimator (UsageError with its
    message when one is invalid)."""
    est = estimator_class(model)(**params)
    try:
        est._validate_params()
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from e
    return est


def check_names(model: str, keys: Any, where: str) -> None:
    """Every key must be a parameter of ``model``'s estimator: a usage error names the others and the valid ones."""
    own = signature(model)
    bad = [k for k in keys if k not in own]
    if bad:
        others = {k: [m for m in all_parameters().get(k, [])] for k in bad}
        parts = [f"{k} (a parameter of {', '.join(class_name(m) for m in others[k])})" if others[k] else k
                 for k in bad]
        raise UsageError(f"{where}: {', '.join(parts)} {'is' if len(bad) == 1 else 'are'} not "
                         f"{'a parameter' if len(bad) == 1 else 'parameters'} of {class_name(model)} "
                         f"(--model {model}); its parameters: {', '.join(own)}")


def class_name(model: str) -> str:
    """The estimator class name of ``--model model``, without importing it."""
    from chainrule.classifiers import get_spec

    return get_spec(model).class_name


def to_toml_value(value: Any) -> Any:
    """A parameter value as TOML can hold it: None as "none", tuples as lists."""
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return list(value)
    return value


# ---- help texts -------------------------------------------------------------------------------------------------


def descriptions() -> dict[str, str]:
    """{parameter: first sentence of its description} from the estimators' docstrings (numpydoc "name : text")."""
    out: dict[str, str] = {}
    for model in reversed(model_names()):  # the later rows' words first (the MLP's before the linear models')
        for name, text in _descriptions(estimator_class(model)).items():
            out.setdefault(name, text)
    return out


@lru_cache(maxsize=None)
def _descriptions(cls: type) -> dict[str, str]:
    out: dict[str, str] = {}
    doc = inspect.getdoc(cls) or ""
    section = doc.split("Parameters", 1)[1] if "Parameters" in doc else ""
    section = re.split(r"\n\s*\n\s*Attributes", section)[0]
    for m in re.finditer(r"^(\w+(?:, \w+)*) : (.*?)(?=^\w+(?:, \w+)* : |\Z)", section, re.S | re.M):
        text = " ".join(m.group(2).split())
        for name in m.group(1).split(", "):
            out.setdefault(name, text)
    return out


def flag_help(name: str) -> str:
    models = all_parameters()[name]
    text = descriptions().get(name, "")
    shown = []
    for m in models:
        d = defaults(m)[name]
        shown.append(f"{m} {values.show(d)}")
    text = f"{text} [{'; '.join(shown)}]" if text else f"[{'; '.join(shown)}]"
    return text.replace("%", "%%")  # argparse formats help strings with %
