"""The messages of the playground's images mode (ConvNetJS's digit and CIFAR-10 demos), and their validation.

The same conventions as the 2-D mode (``chainrule.playground.protocol``: one JSON object per message, validated,
a bad one answered with an error naming the field, the rule and the value):

    {"type": "mode", "mode": "images"}          (both modes: which session the tab talks to)
    {"type": "set", "data": {"dataset": "digits"}, "model": "mlp",
     "params": {"hidden_sizes": [64], "lr": 0.003, "batch_size": 20}, "view": {"gradients": false}}
    {"type": "play"} {"type": "pause"} {"type": "step"} {"type": "reset"} {"type": "ping"}
    {"type": "inspect", "index": 7}             (a held-out image: its activations are shown)

The models are the registry's (``chainrule.classifiers.model_names("images")`` that have ``partial_fit``);
``params`` are their estimators' own parameters under their own names.
"""

from __future__ import annotations

from typing import Any

from chainrule.classifiers import get_spec, model_names
from chainrule.nn.activations import ACTIVATION_NAMES
from chainrule.optim.factory import OPTIMIZERS
from chainrule.playground.protocol import (Bool, Choice, Float, Int, Layers, ProtocolError, check_fields,
                                           describe_rules, typed_message)

MAX_HIDDEN_LAYERS = 4
MAX_HIDDEN_WIDTH = 512
MAX_BLOCKS = 4
MAX_CHANNELS = 64
MAX_BATCH = 256
MAX_HELD_OUT = 1000

# The estimator parameters the page may set, by the estimators' own names: a model offers those its estimator
# takes (``image_param_rules``), so a new registered model gets its controls without a change here.
PARAM_RULES: dict[str, Any] = {
    "hidden_sizes": Layers(MAX_HIDDEN_LAYERS, MAX_HIDDEN_WIDTH),
    "channels": Layers(MAX_BLOCKS, MAX_CHANNELS, layer="block", unit="channels", min_layers=1),
    "kernel_size": Choice((1, 3, 5)),
    "pool": Choice(("max", "avg")),
    "activation": Choice(tuple(ACTIVATION_NAMES)),
    "reg": Float(0.0, 10.0),
    "weight_decay": Float(0.0, 10.0),
    "lr": Float(0.0, 10.0, lo_open=True),
    "optimizer": Choice(tuple(OPTIMIZERS)),
    "momentum": Float(0.0, 1.0, hi_open=True),
    "batch_size": Int(1, MAX_BATCH),
}


def image_models() -> tuple[str, ...]:
    """The registry's models that take images and train step by step (``partial_fit``), in registration order."""
    return tuple(n for n in model_names("images") if hasattr(get_spec(n).estimator_class, "partial_fit"))


def image_param_rules(model: str) -> dict[str, Any]:
    """{parameter: rule} for the parameters of ``PARAM_RULES`` that ``model``'s estimator takes."""
    names = set(get_spec(model).estimator_class._get_param_names())
    return {k: r for k, r in PARAM_RULES.items() if k in names}


_SET_FIELDS = ("data", "model", "params", "view")
_NO_FIELDS = ("play", "pause", "step", "reset", "ping")
TYPES = ("set", "inspect", "mode", *_NO_FIELDS)
MODES = ("points", "images")


def parse_image_message(text: str | bytes, model: str, datasets: tuple[str, ...]) -> dict[str, Any]:
    """One images-mode message -> a validated dict; ``model`` is the session's current model (``params`` without
    a new ``model`` are checked against it), ``datasets`` the image datasets this server has. Raises
    ProtocolError."""
    kind, body = typed_message(text, TYPES, _NO_FIELDS)
    if kind in _NO_FIELDS:
        return {"type": kind}
    if kind == "mode":
        return {"type": "mode", **_required(check_fields("", body, {"mode": Choice(MODES)}), "mode")}
    if kind == "inspect":
        return {"type": "inspect", **_required(check_fields("", body, {"index": Int(0, MAX_HELD_OUT - 1)}), "index")}
    for key in body:
        if key not in _SET_FIELDS:
            raise ProtocolError(key, f"unknown field; expected one of {', '.join(_SET_FIELDS)}", body[key])
    out: dict[str, Any] = {"type": "set"}
    if "data" in body:
        out["data"] = check_fields("data", body["data"], {"dataset": Choice(datasets)})
    if "model" in body:
        model = out["model"] = Choice(image_models()).check("model", body["model"])
    if "params" in body:
        out["params"] = check_fields("params", body["params"], image_param_rules(model))
    if "view" in body:
        out["view"] = check_fields("view", body["view"], {"gradients": Bool()})
    return out


def _required(fields: dict[str, Any], name: str) -> dict[str, Any]:
    if name not in fields:
        raise ProtocolError(name, "required", None)
    return fields


def image_public_rules(datasets: tuple[str, ...]) -> dict[str, Any]:
    """The images mode's limits and choices, for the page to build its controls from."""
    models = image_models()
    return {"datasets": list(datasets), "models": list(models),
            "labels": {m: f"{get_spec(m).label} ({get_spec(m).class_name})" for m in models},
            "params": {m: describe_rules(image_param_rules(m)) for m in models}}
