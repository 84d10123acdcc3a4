"""The training configuration: every setting of ``chainrule train``, its type, default and help, in one table.

A resolved configuration is built as  defaults (per model) < ``--config file.toml`` < command-line flags,
validated (types, choices, ranges; errors are usage errors naming the key), and written to the run's
``config.toml``. Resuming compares the saved configuration with the requested one and names the keys that differ.
"""

from __future__ import annotations

import argparse
import difflib
import math
from dataclasses import dataclass
from typing import Any, Mapping

from chainrule.commands.common import UsageError, parse_int_list

MODELS = ("knn", "svm", "softmax", "mlp")
OPTIMIZERS = ("sgd", "nesterov", "rmsprop", "adam", "adamw")
SCHEDULES = ("constant", "step", "exponential", "cosine", "linear", "invsqrt", "plateau")
ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "gelu_tanh", "tanh", "sigmoid", "maxout")


@dataclass(frozen=True)
class Option:
    key: str
    kind: str                      # "int" "float" "str" "bool" "ints"
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    low: float | None = None       # inclusive lower bound for numbers
    high: float | None = None      # exclusive upper bound
    resume_may_differ: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.key.replace("_", "-")


OPTIONS: tuple[Option, ...] = (
    Option("data", "str", None, "dataset: cifar10 | cifar10:PATH | folder:PATH | digits | spiral (default: digits, "
           "offline)"),
    Option("model", "str", "mlp", "classifier", choices=MODELS),
    Option("hidden", "ints", [100], "hidden layer sizes of the MLP, e.g. 1024,1024"),
    Option("activation", "str", "relu", "hidden-layer activation (mlp)", choices=ACTIVATIONS),
    Option("dropout", "float", 0.0, "dropout probability after each hidden layer (mlp)", low=0.0, high=1.0),
    Option("norm", "str", "none", "normalisation after each hidden affine layer (mlp)",
           choices=("none", "batch", "layer")),
    Option("optimizer", "str", None, "update rule (default: adam for mlp, sgd with momentum for svm/softmax)",
           choices=OPTIMIZERS),
    Option("lr", "float", None, "learning rate (default depends on the model)", low=0.0),
    Option("momentum", "float", 0.9, "momentum of sgd and nesterov (0: vanilla SGD)", low=0.0, high=1.0),
    Option("weight_decay", "float", 0.0, "decoupled weight decay (adamw) or L2 in the update (others)", low=0.0),
    Option("schedule", "str", "cosine", "learning-rate schedule over the whole run", choices=SCHEDULES),
    Option("warmup", "int", 0, "linear warmup steps", low=0),
    Option("min_lr", "float", 0.0, "floor of the cosine schedule / end of the linear one", low=0.0),
    Option("epochs", "int", None, "passes over the training data (default depends on the model)", low=1),
    Option("batch_size", "int", None, "minibatch size (default depends on the model)", low=1),
    Option("reg", "float", None, "L2 regularisation strength: loss += reg * sum(W**2) over weight matrices",
           low=0.0),
    Option("features", "str", "raw", "inputs: raw pixels, or HOG + colour-histogram features",
           choices=("raw", "hog+color")),
    Option("preprocess", "str", "standardize", "input normalisation fitted on the training split",
           choices=("standardize", "mean", "none")),
    Option("augment", "bool", False, "random flips and padded crops of training images"),
    Option("val_size", "float", 0.1, "validation split: a fraction (0.1) or a count (5000)", low=0.0),
    Option("seed", "int", 0, "seed of the split, initialisation, shuffling, dropout and augmentation", low=0),
    Option("k", "ints", [1, 3, 5, 10, 20], "kNN: candidate k values; the best on validation is kept"),
    Option("metric", "str", "l2", "kNN distance", choices=("l2", "l1")),
    Option("clip_grad", "float", 0.0, "clip the gradient norm to this value (0: off)", low=0.0),
    Option("early_stopping", "int", 0, "stop after this many epochs without validation gain (0: off)", low=0),
    Option("min_delta", "float", 0.0, "validation-accuracy gain that counts for early stopping", low=0.0),
    Option("nan_policy", "str", "stop", "on a non-finite loss or gradient: stop (keep the run, exit 1) or raise",
           choices=("stop", "raise")),
    Option("checkpoint_every", "int", 0, "also checkpoint every N steps (0: at epoch ends only)", low=0,
           resume_may_differ=True),
    Option("keep_checkpoints", "int", 3, "step checkpoints to keep (plus best.npz)", low=1, resume_may_differ=True),
    Option("diagnostics", "bool", True, "per-epoch weight/gradient norms, update ratios, dead ReLUs",
           resume_may_differ=True),
)
OPTION_BY_KEY = {o.key: o for o in OPTIONS}

# Defaults that depend on the model (tuned so that `chainrule compare` on digits runs in well under a minute,
# and that are sensible starting points on CIFAR-10).
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "mlp": {"optimizer": "adam", "lr": 1e-3, "epochs": 20, "batch_size": 64, "reg": 1e-4},
    "softmax": {"optimizer": "sgd", "lr": 1e-2, "epochs": 20, "batch_size": 64, "reg": 5e-2},
    "svm": {"optimizer": "sgd", "lr": 1e-2, "epochs": 20, "batch_size": 64, "reg": 5e-2},
    "knn": {"optimizer": "adam", "lr": 0.0, "epochs": 1, "batch_size": 1, "reg": 0.0},
}


def add_arguments(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """One flag per option; every default is None so that "given on the command line" can be told apart."""
    for o in OPTIONS:
        if o.key in skip:
            continue
        default_text = "" if o.default is None else f" (default: {_show(o.default)})"
        if o.kind == "bool":
            parser.add_argument(o.flag, dest=o.key, action=argparse.BooleanOptionalAction, default=None,
                                help=o.help + default_text)
        else:
            metavar = "|".join(o.choices) if o.choices else o.key.upper()
            parser.add_argument(o.flag, dest=o.key, default=None, metavar=metavar, help=o.help + default_text)


def _show(v: Any) -> str:
    return ",".join(map(str, v)) if isinstance(v, list) else str(v)


def coerce(key: str, value: Any, source: str) -> Any:
    """Convert and check one value (from a flag string or a TOML value) for option ``key``."""
    o = OPTION_BY_KEY[key]
    where = f"{o.flag}" if source == "flag" else f"{key} (in {source})"
    if o.kind == "ints":
        return parse_int_list(value, where)
    if o.kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
            return value.lower() in ("true", "yes", "1")
        raise UsageError(f"{where} must be true or false, got {value!r}")
    if o.kind == "str":
        if not isinstance(value, str):
            raise UsageError(f"{where} must be a string, got {value!r}")
        text = value.strip()
        if o.choices:
            text = text.lower()
            if text not in o.choices:
                close = difflib.get_close_matches(text, o.choices, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise UsageError(f"{where} must be one of {', '.join(o.choices)}; got {value!r}{hint}")
        return text
    # numbers
    try:
        if isinstance(value, bool):
            raise ValueError
        number: float | int = int(value) if o.kind == "int" else float(value)
        if o.kind == "int" and isinstance(value, float) and not value.is_integer():
            raise ValueError
    except (TypeError, ValueError):
        kind = "an integer" if o.kind == "int" else "a number"
        raise UsageError(f"{where} must be {kind}, got {value!r}") from None
    if o.kind == "float" and not math.isfinite(number):
        raise UsageError(f"{where} must be finite, got {value!r}")
    if o.low is not None and number < o.low:
        raise UsageError(f"{where} must be >= {o.low:g}, got {value!r}")
    if o.high is not None and number >= o.high:
        raise UsageError(f"{where} must be < {o.high:g}, got {value!r}")
    return number


def from_file(table: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Options from a TOML table (keys with '_' or '-'); unknown keys are usage errors with suggestions."""
    out = {}
    for raw_key, value in table.items():
        key = str(raw_key).replace("-", "_")
        if key in ("chainrule_version", "command", "run_name"):  # written into config.toml for information
            continue
        if key not in OPTION_BY_KEY:
            close = difflib.get_close_matches(key, list(OPTION_BY_KEY), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UsageError(f"unknown setting {raw_key!r} in {source}{hint}; valid settings: "
                             f"{', '.join(OPTION_BY_KEY)}")
        out[key] = coerce(key, value, source)
    return out


def from_flags(args: argparse.Namespace) -> dict[str, Any]:
    """Options given explicitly on the command line."""
    return {o.key: coerce(o.key, getattr(args, o.key), "flag") for o in OPTIONS
            if getattr(args, o.key, None) is not None}


def resolve(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Merge layers (later wins) over the defaults, fill model-dependent defaults, check cross-field rules."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(layer)
    model = merged.get("model", OPTION_BY_KEY["model"].default)
    config: dict[str, Any] = {}
    for o in OPTIONS:
        if o.key in merged:
            config[o.key] = merged[o.key]
        elif o.key in MODEL_DEFAULTS[model]:
            config[o.key] = MODEL_DEFAULTS[model][o.key]
        else:
            config[o.key] = o.default
    if model in ("svm", "softmax"):
        config["hidden"] = []
    if config["val_size"] >= 1 and not float(config["val_size"]).is_integer():
        raise UsageError(f"--val-size must be a fraction in (0, 1) or a whole count, got {config['val_size']}")
    if config["val_size"] >= 1:
        config["val_size"] = int(config["val_size"])
    if config["val_size"] == 0:
        raise UsageError("--val-size must be > 0: the validation split picks the best epoch and k")
    if model == "mlp" and not config["hidden"]:
        raise UsageError("--hidden is empty for --model mlp; give layer sizes like 100 or 1024,1024 "
                         "(or use --model softmax for a linear classifier)")
    if config["augment"] and config["features"] != "raw":
        raise UsageError("--augment works on raw images; it cannot be combined with --features hog+color")
    if model != "knn" and config["lr"] <= 0:
        raise UsageError(f"--lr must be > 0, got {config['lr']}")
    return config


def differing_keys(saved: Mapping[str, Any], requested: Mapping[str, Any]) -> list[str]:
    """Keys whose values differ between a saved and a requested config (ignoring those allowed to differ)."""
    out = []
    for o in OPTIONS:
        if o.resume_may_differ:
            continue
        a, b = saved.get(o.key), requested.get(o.key)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
            same = float(a) == float(b)
        else:
            same = a == b
        if not same:
            out.append(f"{o.key} (run has {_show(a)!s}, requested {_show(b)!s})")
    return out
