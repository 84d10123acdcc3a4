"""The messages of the playground's images mode (ConvNetJS's digit and CIFAR-10 demos), and their validation.

The same conventions as the 2-D mode (``chainrule.playground.protocol``: one JSON object per message, validated,
a bad one answered with an error naming the field, the rule and the value):

    {"type": "mode", "mode": "images"}          (both modes: which session the tab talks to)
    {"type": "set", "data": {"dataset": "digits"}, "model": "mlp",
     "params": {"hidden_sizes": [64], "lr": 0.003, "batch_size": 20}, "view": {"gradients": false}}
    {"type": "play"} {"type": "pause"} {"type": "step"} {"type": "reset"} {"type": "ping"}
    {"type": "inspect", "index": 7}             (a held-out image: its activations are shown)

``params`` are the estimators' own parameters under their own names (``chainrule.classifiers``).
"""

from __future__ import annotations

from typing import Any

from chainrule.classifiers import mlp
from chainrule.optim.factory import OPTIMIZERS
from chainrule.playground.protocol import (Bool, Choice, Float, Int, Layers, ProtocolError, check_fields,
                                           decode_message, describe_rules)

MAX_HIDDEN_LAYERS = 4
MAX_HIDDEN_WIDTH = 512
MAX_BATCH = 256
MAX_HELD_OUT = 1000

_LR = Float(0.0, 10.0, lo_open=True)
_L2 = Float(0.0, 10.0)
_BATCH = Int(1, MAX_BATCH)
_MOMENTUM = Float(0.0, 1.0, hi_open=True)
_LINEAR = {"reg": _L2, "lr": _LR, "batch_size": _BATCH, "momentum": _MOMENTUM, "optimizer": Choice(tuple(OPTIMIZERS))}

# model -> the estimator parameters the page may set (the estimators' own names)
IMAGE_PARAM_RULES: dict[str, dict[str, Any]] = {
    "softmax": dict(_LINEAR),
    "svm": dict(_LINEAR),
    "mlp": {"hidden_sizes": Layers(MAX_HIDDEN_LAYERS, MAX_HIDDEN_WIDTH), "activation": Choice(mlp.ACTIVATIONS),
            "weight_decay": _L2, "lr": _LR, "optimizer": Choice(tuple(OPTIMIZERS)), "momentum": _MOMENTUM,
            "batch_size": _BATCH},
}
IMAGE_MODELS = tuple(IMAGE_PARAM_RULES)
_SET_FIELDS = ("data", "model", "params", "view")
_NO_FIELDS = ("play", "pause", "step", "reset", "ping")
TYPES = ("set", "inspect", "mode", *_NO_FIELDS)
MODES = ("points", "images")


def parse_image_message(text: str | bytes, model: str, datasets: tuple[str, ...]) -> dict[str, Any]:
    """One images-mode message -> a validated dict; ``model`` is the session's current model (``params`` without
    a new ``model`` are checked against it), ``datasets`` the image datasets this server has. Raises
    ProtocolError."""
    msg = decode_message(text)
    kind = msg.get("type")
    if kind not in TYPES:
        raise ProtocolError("type", f"must be one of {', '.join(TYPES)}", kind)
    body = {k: v for k, v in msg.items() if k != "type"}
    if kind in _NO_FIELDS:
        for key, v in body.items():
            raise ProtocolError(key, f"unknown field; a {kind} message has only a type", v)
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
        model = out["model"] = Choice(IMAGE_MODELS).check("model", body["model"])
    if "params" in body:
        out["params"] = check_fields("params", body["params"], IMAGE_PARAM_RULES[model])
    if "view" in body:
        out["view"] = check_fields("view", body["view"], {"gradients": Bool()})
    return out


def _required(fields: dict[str, Any], name: str) -> dict[str, Any]:
    if name not in fields:
        raise ProtocolError(name, "required", None)
    return fields


def image_public_rules(datasets: tuple[str, ...]) -> dict[str, Any]:
    """The images mode's limits and choices, for the page to build its controls from."""
    return {"datasets": list(datasets), "models": list(IMAGE_MODELS),
            "params": {m: describe_rules(r) for m, r in IMAGE_PARAM_RULES.items()}}
