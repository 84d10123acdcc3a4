"""The messages a playground page sends over its WebSocket, and their validation.

Every message is one JSON object with a ``type``; anything else (oversized or malformed JSON, an unknown type or
field, a wrong type, a value out of range, more than ``MAX_DEPTH`` levels of nesting) raises ``ProtocolError``
naming the field, the rule and the value, which the server sends back to the page as ``{"type": "error", ...}``
and then carries on.

    {"type": "set", "data": {"dataset": "spiral", "classes": 3}, "features": ["x", "y"],
     "model": "mlp", "params": {"hidden_sizes": [8, 8], "weight_decay": 0.01, "lr": 0.01}}
    {"type": "play"} {"type": "pause"} {"type": "step"} {"type": "reset"} {"type": "clear"}
    {"type": "add_point", "x": 0.2, "y": -0.5, "label": 1}
    {"type": "inspect", "index": 12}            (a training point for the graph view; null: none)
    {"type": "ping"}                            (the page is open: keeps an idle session from timing out; no reply)

``model`` is one of the registered models that take 2-D points (``chainrule.classifiers.model_names("points")``).
``params`` are the estimators' own parameters (``chainrule.classifiers``), under their own names: λ is
``weight_decay`` for ``MLPClassifier`` and ``reg`` for ``LinearSVM`` / ``SoftmaxClassifier``. The page may set the
parameters of a model's playground row (``ModelSpec.playground``) that have a rule in ``PARAM_RULES`` (one rule per
parameter name). Limits that depend on the data (k at most the number of training points, a label below the number
of classes) are the session's.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from chainrule.classifiers import get_spec, mlp, model_names
from chainrule.data.toy import TOY_2D
from chainrule.optim.factory import OPTIMIZERS
from chainrule.playground.features import FEATURES

MAX_MESSAGE_BYTES = 64 * 1024
MAX_DEPTH = 8  # JSON nesting: the deepest valid message ({"params": {"hidden_sizes": [...]}}) has 3 levels
MAX_POINTS = 5000
MAX_K = 100  # kNN's k: each reply scores the 100 x 100 surface; its cost grows with k (see Session)
MAX_LAYERS = 8
MAX_NEURONS = 256
PLANE = 1.25  # the page shows [-PLANE, PLANE]^2; points are accepted inside it


class ProtocolError(ValueError):
    """A message broke a rule: ``field`` (dotted path), ``rule`` (what is allowed) and the offending ``value``."""

    def __init__(self, field: str, rule: str, value: Any):
        self.field, self.rule, self.value = field, rule, value
        super().__init__(f"{field}: {rule}, got {_show(value)}")

    def to_message(self) -> dict[str, Any]:
        return {"type": "error", "field": self.field, "rule": self.rule, "value": _show(self.value),
                "message": str(self)}


def _show(value: Any) -> str:
    try:
        text = json.dumps(value) if isinstance(value, (dict, list, str, int, float, bool, type(None))) else repr(value)
    except (RecursionError, ValueError):  # never raised for the checked messages: nesting is limited first
        text = f"<a {type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


def nesting_depth(value: Any, limit: int) -> int:
    """The nesting depth of a parsed JSON value (a scalar: 0), counted without recursion and only up to
    ``limit + 1``."""
    depth, level = 0, [value]
    while level and depth <= limit:
        level = [v for c in level if isinstance(c, (dict, list)) for v in (c.values() if isinstance(c, dict) else c)
                 if isinstance(v, (dict, list))] if depth else [c for c in level if isinstance(c, (dict, list))]
        depth += bool(level)
    return depth


# ---- field rules ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Int:
    lo: int
    hi: int

    def check(self, field: str, v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ProtocolError(field, "expected an integer", v)
        if not self.lo <= v <= self.hi:
            raise ProtocolError(field, f"must be between {self.lo} and {self.hi}", v)
        return v


@dataclass(frozen=True)
class Float:
    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False

    def check(self, field: str, v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ProtocolError(field, "expected a finite number", v)
        if (v <= self.lo if self.lo_open else v < self.lo) or (v >= self.hi if self.hi_open else v > self.hi):
            left, right = "(" if self.lo_open else "[", ")" if self.hi_open else "]"
            raise ProtocolError(field, f"must be in {left}{self.lo:g}, {self.hi:g}{right}", v)
        return float(v)


@dataclass(frozen=True)
class Choice:
    values: tuple

    def check(self, field: str, v: Any) -> Any:
        if not any(type(v) is type(x) and v == x for x in self.values):  # True is not 1, 1.0 is not "1"
            raise ProtocolError(field, f"must be one of {', '.join(json.dumps(x) for x in self.values)}", v)
        return v


@dataclass(frozen=True)
class Nullable:
    rule: Any

    def check(self, field: str, v: Any) -> Any:
        return None if v is None else self.rule.check(field, v)


@dataclass(frozen=True)
class Bool:
    def check(self, field: str, v: Any) -> bool:
        if not isinstance(v, bool):
            raise ProtocolError(field, "expected true or false", v)
        return v


@dataclass(frozen=True)
class Layers:
    """hidden_sizes (or a conv net's channels): a list of at most ``max_layers`` widths, each in [1, max_width];
    ``layer`` and ``unit`` name them in the errors, ``min_layers`` the fewest."""
    max_layers: int
    max_width: int
    layer: str = "layer"
    unit: str = "neurons"
    min_layers: int = 0

    def check(self, field: str, v: Any) -> tuple[int, ...]:
        if not isinstance(v, list):
            raise ProtocolError(field, f"expected a list of {self.layer} widths, e.g. [8, 8]", v)
        if len(v) > self.max_layers:
            raise ProtocolError(field, f"at most {self.max_layers} hidden {self.layer}s"
                                if self.layer == "layer" else f"at most {self.max_layers} {self.layer}s", v)
        if len(v) < self.min_layers:
            raise ProtocolError(field, f"at least {self.min_layers} {self.layer}", v)
        for i, w in enumerate(v):
            if isinstance(w, bool) or not isinstance(w, int):
                raise ProtocolError(f"{field}[{i}]", "expected an integer", w)
            if not 1 <= w <= self.max_width:
                raise ProtocolError(f"{field}[{i}]", f"a {self.layer} has 1 to {self.max_width} {self.unit}", w)
        return tuple(v)


@dataclass(frozen=True)
class Subset:
    """A non-empty list of distinct names from ``names``."""
    names: tuple[str, ...]

    def check(self, field: str, v: Any) -> tuple[str, ...]:
        if not isinstance(v, list) or not v:
            raise ProtocolError(field, f"expected a non-empty list of {', '.join(self.names)}", v)
        for i, name in enumerate(v):
            if name not in self.names or not isinstance(name, str):
                raise ProtocolError(f"{field}[{i}]", f"must be one of {', '.join(self.names)}", name)
        if len(set(v)) != len(v):
            raise ProtocolError(field, "names must not repeat", v)
        return tuple(v)


def check_fields(field: str, value: Any, rules: dict[str, Any]) -> dict[str, Any]:
    """Validate the object ``value`` whose keys must be among ``rules`` (all optional)."""
    if not isinstance(value, dict):
        raise ProtocolError(field, "expected an object", value)
    out = {}
    for key, v in value.items():
        path = f"{field}.{key}" if field else key
        if key not in rules:
            raise ProtocolError(path, f"unknown field; expected one of {', '.join(rules)}", v)
        out[key] = rules[key].check(path, v)
    return out


# ---- what each message may hold ---------------------------------------------------------------------------------

DATA_RULES = {
    "dataset": Choice(tuple(TOY_2D)),
    "classes": Int(2, 5),
    "noise": Float(0.0, 1.0),
    "n_points": Int(4, MAX_POINTS),
    "train_fraction": Float(0.1, 0.9),
    "seed": Int(0, 2**31 - 1),
}

_LR = Float(0.0, 10.0, lo_open=True)
_L2 = Float(0.0, 10.0)
_BATCH = Int(1, MAX_POINTS)
_MOMENTUM = Float(0.0, 1.0, hi_open=True)

# estimator parameter -> what the page may set it to (the estimators' own names and values)
PARAM_RULES: dict[str, Any] = {
    "k": Int(1, MAX_K), "metric": Choice(("l1", "l2")), "hidden_sizes": Layers(MAX_LAYERS, MAX_NEURONS),
    "activation": Choice(mlp.ACTIVATIONS), "reg": _L2, "weight_decay": _L2, "lr": _LR,
    "optimizer": Choice(tuple(OPTIMIZERS)), "momentum": _MOMENTUM, "nesterov": Bool(), "batch_size": _BATCH,
}


def models() -> tuple[str, ...]:
    """The models the playground offers: the registered ones that take 2-D points."""
    return model_names("points")


def model_rules(model: str) -> dict[str, Any]:
    """{parameter: rule} of the parameters the page may set for ``model``: those of its playground row that have a
    rule."""
    return {k: PARAM_RULES[k] for k in get_spec(model).playground_params() if k in PARAM_RULES}

_SET_RULES = ("data", "features", "model", "params")
_NO_FIELDS = ("play", "pause", "step", "reset", "clear", "ping")
TYPES = ("set", "add_point", "inspect", "mode", *_NO_FIELDS)
_POINT_RULES = {"x": Float(-PLANE, PLANE), "y": Float(-PLANE, PLANE), "label": Int(0, 4)}
_INSPECT_RULES = {"index": Nullable(Int(0, MAX_POINTS - 1))}
_MODE_RULES = {"mode": Choice(("points", "images"))}  # which session (2-D points, images) the tab talks to


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def decode_message(text: str | bytes) -> dict[str, Any]:
    """The JSON object of one message, checked for size, syntax and nesting (either mode's first step)."""
    if isinstance(text, bytes):
        raise ProtocolError("message", "expected a text (JSON) message, not binary", f"{len(text)} bytes")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_MESSAGE_BYTES:
        raise ProtocolError("message", f"at most {MAX_MESSAGE_BYTES} bytes", f"{size} bytes")
    try:
        msg = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError; so are NaN and huge ints
        raise ProtocolError("message", "malformed JSON", str(e)) from None
    depth = nesting_depth(msg, MAX_DEPTH)
    if depth > MAX_DEPTH:
        raise ProtocolError("message", f"at most {MAX_DEPTH} levels of nesting", f"more than {MAX_DEPTH} levels")
    if not isinstance(msg, dict):
        raise ProtocolError("message", "expected a JSON object with a \"type\"", msg)
    return msg


def typed_message(text: str | bytes, types: tuple[str, ...], no_fields: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    """A message's ``type`` (one of ``types``) and its other fields; a type in ``no_fields`` must have no others.
    The first checks of both modes' parsers. Raises ProtocolError."""
    msg = decode_message(text)
    kind = msg.get("type")
    if kind not in types:
        raise ProtocolError("type", f"must be one of {', '.join(types)}", kind)
    body = {k: v for k, v in msg.items() if k != "type"}
    if kind in no_fields:
        for key, v in body.items():
            raise ProtocolError(key, f"unknown field; a {kind} message has only a type", v)
    return kind, body


def parse_message(text: str | bytes, model: str) -> dict[str, Any]:
    """One message from the page -> a validated dict with its ``type``; ``model`` is the session's current model
    (``params`` of a ``set`` without a new ``model`` are checked against it). Raises ProtocolError."""
    kind, body = typed_message(text, TYPES, _NO_FIELDS)
    if kind in _NO_FIELDS:
        return {"type": kind}
    rules = {"add_point": _POINT_RULES, "inspect": _INSPECT_RULES, "mode": _MODE_RULES}.get(kind)
    if kind in ("add_point", "inspect", "mode"):
        fields = check_fields("", body, rules)
        missing = [k for k in rules if k not in fields]
        if missing:
            raise ProtocolError(missing[0], "required", None)
        return {"type": kind, **fields}
    return _parse_set(body, model)


def _parse_set(body: dict[str, Any], model: str) -> dict[str, Any]:
    for key in body:
        if key not in _SET_RULES:
            raise ProtocolError(key, f"unknown field; expected one of {', '.join(_SET_RULES)}", body[key])
    out: dict[str, Any] = {"type": "set"}
    if "data" in body:
        out["data"] = check_fields("data", body["data"], DATA_RULES)
    if "features" in body:
        out["features"] = Subset(tuple(FEATURES)).check("features", body["features"])
    if "model" in body:
        model = out["model"] = Choice(models()).check("model", body["model"])
    if "params" in body:
        out["params"] = check_fields("params", body["params"], model_rules(model))
    return out


def _describe(rule: Any) -> dict[str, Any]:
    if isinstance(rule, Choice):
        return {"kind": "choice", "values": list(rule.values)}
    if isinstance(rule, Layers):
        return {"kind": "layers", "max_layers": rule.max_layers, "max_width": rule.max_width}
    if isinstance(rule, Bool):
        return {"kind": "bool"}
    return {"kind": type(rule).__name__.lower(), "min": rule.lo, "max": rule.hi}


def describe_rules(rules: dict[str, Any]) -> dict[str, Any]:
    """{field: its rule as the page reads it (kind, choices or limits)}."""
    return {k: _describe(r) for k, r in rules.items()}


def public_rules() -> dict[str, Any]:
    """The limits and choices, for the page to build its controls from (so that page and server agree)."""
    return {"data": describe_rules(DATA_RULES), "params": {m: describe_rules(model_rules(m)) for m in models()},
            "models": [{"name": m, "label": get_spec(m).label, "estimator": get_spec(m).class_name} for m in models()],
            "features": {name: label for name, (label, _) in FEATURES.items()},
            "datasets": {name: list(classes) for name, classes in TOY_2D.items()}, "plane": PLANE}
