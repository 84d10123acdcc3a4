"""The configuration of a ``chainrule train`` run: the model, its estimator's parameters, and the run settings.

A run configuration is one flat table (what ``--config run.toml`` holds and what ``config.toml`` records)::

    model = "mlp"                              # which estimator: a name in chainrule.classifiers' registry
    data = "folder:../shared/data/cifar10-train-jpeg.tar.gz"
    val_size = 5000                            # run settings: RUN_OPTIONS below
    hidden_sizes = [1024, 1024]                # the estimator's own parameters (chainrule.commands.params)
    preprocessing = "zca"
    ...

It is resolved as  defaults (the estimator's, plus ``params.CLI_DEFAULTS``) < ``--from-search`` < ``--config`` <
command-line flags, each value converted to its parameter's type and the whole set checked by the estimator
before anything is written. Keys may use ``-`` for ``_`` and the short names of ``params.ALIASES``.
"""

from __future__ import annotations

import argparse
import difflib
import math
from dataclasses import dataclass
from typing import Any, Mapping

from chainrule.commands import params as P
from chainrule.commands import values
from chainrule.commands.common import DEFAULT_DATA, UsageError, data_forms

DEFAULT_MODEL = "mlp"  # what --model is when no flag or file names one
RUN_FORMAT = 2  # config.toml's "format"; chainrule 0.1's run folders have none (format 1)
# Keys written into config.toml for information; ignored when it is read back.
INFO_KEYS = ("chainrule_version", "command", "format", "run_name", "estimator")


@dataclass(frozen=True)
class Option:
    """A run setting (not an estimator parameter)."""

    key: str
    kind: str                      # "str" "int" "float" "bool" "ints"
    default: Any
    help: str
    low: float | None = None       # inclusive lower bound for numbers
    resume_may_differ: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.key.replace("_", "-")


RUN_OPTIONS: tuple[Option, ...] = (
    Option("data", "str", None, f"dataset: {' | '.join(data_forms())} (default: {DEFAULT_DATA}, offline)"),
    Option("image_size", "str", None, "folder:PATH data: resize every image to N or HxW pixels (bilinear), e.g. 32 "
           "or 32x48 (default: every image must have the size of the first)"),
    Option("val_size", "float", 0.1, "validation split carved from the training data (stratified): a fraction "
           "(0.1) or a count (5000)", low=0.0),
    Option("split_seed", "int", None, "seed of the validation split (default: the estimator's random_state, "
           "--seed; 0 for kNN)", low=0),
    Option("out", "str", None, "the run folder (default: runs/<model>-<data>-<timestamp>)"),
    Option("select_k", "ints", None, "kNN only: try these k on the validation split (one distance pass) and train "
           "with the best, e.g. 1,3,5,10,20 (default: 1,3,5,10,20 unless --k is given; none: train with --k)"),
    Option("select_metric", "strs", None, "kNN only: try these metrics on the validation split (one distance pass "
           "each) and train with the best, e.g. l1,l2 (default: l1,l2 unless --metric is given; none: train with "
           "--metric)"),
    Option("checkpoint_every", "int", 0, "also checkpoint every N steps (0: at epoch ends only)", low=0,
           resume_may_differ=True),
    Option("keep_checkpoints", "int", 3, "step checkpoints to keep", low=1, resume_may_differ=True),
    Option("diagnostics", "bool", True, "per-epoch weight/gradient norms, update ratios, dead ReLUs",
           resume_may_differ=True),
    Option("tensorboard", "bool", False, "also write TensorBoard event files to <run>/tensorboard: scalars, weight "
           "and gradient histograms, first-layer images (needs tensorboardX: pip install 'chainrule[interop]')",
           resume_may_differ=True),
)
RUN_BY_KEY = {o.key: o for o in RUN_OPTIONS}
# The defaults of an estimator that can ``select`` (kNN): validation chooses k and the metric (the lectures' 1-NN
# figures: L1 beats L2 on CIFAR-10), unless the parameter itself is given. {run setting: (candidates, the parameters that turn it off when given)}.
KNN_SELECTION: dict[str, Any] = {"select_k": [1, 3, 5, 10, 20], "select_metric": ["l1", "l2"]}
_KNN_FIXED_BY = {"select_k": ("k",), "select_metric": ("metric",)}


def add_model_argument(parser: Any) -> None:
    """``--model``: a registered model (``chainrule.classifiers.model_names``); default None (given or not)."""
    from chainrule.classifiers import specs

    parser.add_argument("--model", default=None, metavar="|".join(P.model_names()),
                        help="the estimator: " + ", ".join(f"{s.name} ({s.class_name})" for s in specs())
                             + f" (default: {DEFAULT_MODEL})")


def add_option(parser: Any, o: Option) -> None:
    """The flag of run setting ``o`` (default None: "given on the command line" can be told apart)."""
    default_text = "" if o.default is None else f" (default: {values.show(o.default)})"
    if o.kind == "bool":
        parser.add_argument(o.flag, dest=o.key, action=argparse.BooleanOptionalAction, default=None,
                            help=o.help + default_text)
    else:
        parser.add_argument(o.flag, dest=o.key, default=None, metavar=o.key.upper(), help=o.help + default_text)


def check_model(value: Any, where: str = "--model") -> str:
    """A registered model name (lower case); UsageError with a suggestion otherwise."""
    model = str(value).strip().lower()
    models = P.model_names()
    if model not in models:
        close = difflib.get_close_matches(model, models, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(f"{where} must be one of {', '.join(models)}; got {value!r}{hint}")
    return model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model``, one flag per run setting and one per estimator parameter (with ``params.ALIASES``); every
    default is None so that "given on the command line" can be told apart."""
    add_model_argument(parser)
    run = parser.add_argument_group("run settings")
    for o in RUN_OPTIONS:
        add_option(run, o)
    est = parser.add_argument_group(
        "estimator parameters", "the estimators' own parameters (chainrule.classifiers; [the models that have each, "
        "with their defaults]); short names: " + ", ".join(f"--{a} = --{n.replace('_', '-')}"
                                                          for a, n in P.ALIASES.items()))
    aliases = {name: alias for alias, name in P.ALIASES.items()}
    for name in (n for n in P.all_parameters() if n not in P.NOT_FLAGS):
        flags = [f"--{name.replace('_', '-')}"] + ([f"--{aliases[name]}"] if name in aliases else [])
        est.add_argument(*flags, dest=f"param:{name}", default=None, metavar="VALUE", help=P.flag_help(name))


def from_flags(args: argparse.Namespace) -> dict[str, tuple[Any, str]]:
    """{key: (raw value, where)} of the settings and parameters given on the command line."""
    out: dict[str, tuple[Any, str]] = {}
    if getattr(args, "model", None) is not None:
        out["model"] = (args.model, "--model")
    for o in RUN_OPTIONS:
        if getattr(args, o.key, None) is not None:
            out[o.key] = (getattr(args, o.key), o.flag)
    aliases = {name: alias for alias, name in P.ALIASES.items()}
    for name in (n for n in P.all_parameters() if n not in P.NOT_FLAGS):
        value = getattr(args, f"param:{name}", None)
        if value is not None:
            out[name] = (value, f"--{name.replace('_', '-')}" + (f"/--{aliases[name]}" if name in aliases else ""))
    return out


def from_table(table: Mapping[str, Any], source: str) -> dict[str, tuple[Any, str]]:
    """{key: (value, where)} of a TOML table (``--config``, a saved config.toml, a search's best configuration);
    unknown keys are usage errors with a suggestion."""
    known = ["model", *RUN_BY_KEY, *P.all_parameters(), *P.ALIASES]
    out: dict[str, tuple[Any, str]] = {}
    for raw_key, value in table.items():
        key = str(raw_key).replace("-", "_")
        if key in INFO_KEYS:
            continue
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UsageError(f"unknown setting {raw_key!r} in {source}{hint}; valid keys: model, "
                             f"{', '.join(RUN_BY_KEY)} and the estimator parameters {', '.join(P.all_parameters())}")
        name = P.canonical(key)
        out[name] = (value, f"{raw_key} (in {source})" if raw_key == name else f"{raw_key} = {name} (in {source})")
    return out


def resolve(*layers: Mapping[str, tuple[Any, str]]) -> dict[str, Any]:
    """The run configuration from layers (later wins): ``model``, every run setting and every parameter of the
    model's estimator, converted and checked (the estimator validates its parameters). A usage error names the key
    and the layer it came from."""
    merged: dict[str, tuple[Any, str]] = {}
    for layer in layers:
        merged.update(layer)
    model_value, where = merged.pop("model", (DEFAULT_MODEL, "the default"))
    model = check_model(model_value)
    config: dict[str, Any] = {"model": model}
    for o in RUN_OPTIONS:
        default = o.default
        if o.key in KNN_SELECTION and can_select(model) and not set(_KNN_FIXED_BY[o.key]) & set(merged):
            default = KNN_SELECTION[o.key]
        value, where = merged.pop(o.key, (default, "the default"))
        config[o.key] = o.default if value is None else run_value(o, value, where)
    P.check_names(model, merged, "--model " + model)
    from chainrule.data.registry import flips_keep_labels

    params = P.defaults(model, flips=flips_keep_labels(config["data"] or "digits"))
    for name, (value, where) in merged.items():
        params[name] = P.coerce(model, name, value, where)
    _check_run(config)
    P.build(model, params)  # the estimator checks its parameters: usage errors before anything is written
    if config["select_k"] is not None and not can_select_k(model):
        raise UsageError(f"--select-k chooses a kNN's k; --model {model} has no k")
    if config["select_metric"] is not None and not can_select(model):
        raise UsageError(f"--select-metric chooses a kNN's metric; --model {model} has no metric")
    config.update(params)
    return config


def can_select(model: str) -> bool:
    """Whether the estimator chooses its k and metric on validation data (``select``, kNN's): then that is the
    command line's default (``KNN_SELECTION``)."""
    return hasattr(P.estimator_class(model), "select")


def can_select_k(model: str) -> bool:
    """Whether ``--select-k`` applies: the estimator scores several k in one pass (``predict_many``, kNN's)."""
    return hasattr(P.estimator_class(model), "predict_many")


_KINDS = {"str": frozenset({"text", "None"}), "int": frozenset({"int", "None"}),
          "float": frozenset({"float", "None"}), "bool": frozenset({"bool"}), "ints": frozenset({"ints", "None"})}


def run_value(o: Option, value: Any, where: str) -> Any:
    """A run setting's value (a flag's text or a TOML value), coerced as every value is
    (``chainrule.commands.values``) and checked against the setting's bound."""
    if o.kind == "ints":
        return values.int_list(value, where)
    if o.kind == "strs":  # kNN metrics: "l1,l2" / ["l1", "l2"] / "none"
        from chainrule.classifiers.distances import METRICS

        items = value if isinstance(value, (list, tuple)) else str(value).strip().lower().split(",")
        items = [str(i).strip().lower() for i in items if str(i).strip().lower() not in ("", "none")]
        bad = [i for i in items if i not in METRICS]
        if bad:
            raise UsageError(f"{where} must list metrics among {', '.join(METRICS)}, got {value!r}")
        return list(dict.fromkeys(items))
    out = values.coerce(_KINDS[o.kind], value, where)
    if o.kind in ("int", "float") and out is not None \
            and (not math.isfinite(out) or (o.low is not None and out < o.low)):
        raise UsageError(f"{where} must be a finite number >= {o.low:g}, got {value!r}")
    return out


def _check_run(config: dict[str, Any]) -> None:
    if config["image_size"] is not None:
        from chainrule.data import parse_image_size

        try:
            height, width = parse_image_size(config["image_size"])
        except ValueError as e:
            raise UsageError(f"--image-size: {e}") from None
        config["image_size"] = f"{height}x{width}"
        data = str(config["data"] or "digits").strip()
        if not data.lower().removeprefix("test:").startswith("folder:"):
            raise UsageError(f"--image-size resizes the images of folder:PATH data; --data {data} is not an image "
                             "folder (drop --image-size)")
    val = config["val_size"]
    if val >= 1 and not float(val).is_integer():
        raise UsageError(f"--val-size must be a fraction in (0, 1) or a whole count, got {val}")
    if val >= 1:
        config["val_size"] = int(val)
    if val == 0:
        raise UsageError("--val-size must be > 0: the validation split scores every epoch (and picks k with "
                         "--select-k)")


def params_of(config: Mapping[str, Any]) -> dict[str, Any]:
    """The estimator parameters of a resolved configuration."""
    return {name: config[name] for name in P.signature(config["model"])}


def run_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: config[k] for k in ("model", *RUN_BY_KEY)}


def to_toml(config: Mapping[str, Any]) -> dict[str, Any]:
    """The table config.toml holds: run settings, then the estimator's parameters (None as "none")."""
    out = {"format": RUN_FORMAT, "estimator": P.class_name(config["model"])}
    out.update({k: v for k, v in run_settings(config).items() if v is not None and k != "out"})
    out.update({k: P.to_toml_value(v) for k, v in params_of(config).items()})
    return out


def differing_keys(saved: Mapping[str, Any], requested: Mapping[str, Any], may_differ: tuple[str, ...] = ()
                   ) -> list[str]:
    """Keys whose values differ between a saved and a requested configuration (except the run settings that may
    change on resume and ``may_differ``)."""
    keys = [k for k in dict.fromkeys([*saved, *requested]) if k != "out"]
    out = []
    for k in keys:
        if k in RUN_BY_KEY and RUN_BY_KEY[k].resume_may_differ or k in may_differ:
            continue
        a, b = (list(v) if isinstance(v, tuple) else v for v in (saved.get(k), requested.get(k)))
        same = (float(a) == float(b) if isinstance(a, (int, float)) and isinstance(b, (int, float))
                and not isinstance(a, bool) and not isinstance(b, bool) else a == b)
        if not same:
            out.append(f"{k} (run has {values.show(a)}, requested {values.show(b)})")
    return out


