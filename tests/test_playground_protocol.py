"""Validation of the playground's WebSocket messages (chainrule.playground.protocol): every bad message names the
field, the rule and the value."""

import json

import pytest

from chainrule.classifiers import mlp
from chainrule.optim.factory import OPTIMIZERS
from chainrule.playground.protocol import (MAX_MESSAGE_BYTES, ProtocolError, parse_message, public_rules)


def error(text, model="mlp"):
    with pytest.raises(ProtocolError) as info:
        parse_message(text if isinstance(text, (str, bytes)) else json.dumps(text), model)
    return info.value


def test_valid_messages_come_back_typed():
    msg = parse_message(json.dumps({"type": "set", "data": {"dataset": "circles", "n_points": 5000, "noise": 0},
                                    "features": ["x", "y", "xy"], "model": "mlp",
                                    "params": {"hidden_sizes": [256] * 8, "lr": 10, "weight_decay": 0.1,
                                               "nesterov": True, "activation": "maxout"}}), "knn")
    assert msg["data"] == {"dataset": "circles", "n_points": 5000, "noise": 0.0}
    assert msg["features"] == ("x", "y", "xy") and msg["params"]["hidden_sizes"] == (256,) * 8
    assert msg["params"]["lr"] == 10.0 and isinstance(msg["params"]["lr"], float)
    assert parse_message('{"type": "set", "params": {"hidden_sizes": []}}', "mlp")["params"]["hidden_sizes"] == ()
    assert parse_message('{"type": "play"}', "mlp") == {"type": "play"}
    assert parse_message('{"type": "add_point", "x": 0.5, "y": -1, "label": 2}', "mlp") == \
        {"type": "add_point", "x": 0.5, "y": -1.0, "label": 2}
    assert parse_message('{"type": "inspect", "index": null}', "mlp") == {"type": "inspect", "index": None}
    # params are checked against the model of the message, or else the session's
    assert parse_message('{"type": "set", "params": {"k": 3}}', "knn")["params"] == {"k": 3}
    assert parse_message('{"type": "set", "params": {"reg": 0.1}}', "svm")["params"] == {"reg": 0.1}


@pytest.mark.parametrize("msg, model, field, rule, value", [
    ({"type": "set", "params": {"hidden_sizes": [8] * 9}}, "mlp", "params.hidden_sizes", "at most 8 hidden layers",
     json.dumps([8] * 9)),
    ({"type": "set", "params": {"hidden_sizes": [8, 257]}}, "mlp", "params.hidden_sizes[1]",
     "a layer has 1 to 256 neurons", "257"),
    ({"type": "set", "params": {"hidden_sizes": [0]}}, "mlp", "params.hidden_sizes[0]",
     "a layer has 1 to 256 neurons", "0"),
    ({"type": "set", "params": {"hidden_sizes": 8}}, "mlp", "params.hidden_sizes",
     "expected a list of layer widths, e.g. [8, 8]", "8"),
    ({"type": "set", "data": {"n_points": 5001}}, "mlp", "data.n_points", "must be between 4 and 5000", "5001"),
    ({"type": "set", "params": {"lr": 0}}, "mlp", "params.lr", "must be in (0, 10]", "0"),
    ({"type": "set", "params": {"lr": -1e-3}}, "svm", "params.lr", "must be in (0, 10]", "-0.001"),
    ({"type": "set", "params": {"lr": 10.5}}, "mlp", "params.lr", "must be in (0, 10]", "10.5"),
    ({"type": "set", "params": {"lr": "0.1"}}, "mlp", "params.lr", "expected a finite number", '"0.1"'),
    ({"type": "set", "params": {"k": 0}}, "knn", "params.k", "must be between 1 and 100", "0"),
    ({"type": "set", "params": {"k": 2.5}}, "knn", "params.k", "expected an integer", "2.5"),
    ({"type": "set", "params": {"k": True}}, "knn", "params.k", "expected an integer", "true"),
    ({"type": "set", "params": {"weight_decay": 0.1}}, "svm", "params.weight_decay",
     "unknown field; expected one of reg, lr, batch_size, momentum, optimizer", "0.1"),
    ({"type": "set", "params": {"momentum": 1}}, "mlp", "params.momentum", "must be in [0, 1)", "1"),
    ({"type": "set", "params": {"nesterov": 1}}, "mlp", "params.nesterov", "expected true or false", "1"),
    ({"type": "set", "params": {"activation": "swish"}}, "mlp", "params.activation",
     "must be one of " + ", ".join(json.dumps(a) for a in mlp.ACTIVATIONS), '"swish"'),
    ({"type": "set", "params": {"optimizer": "lbfgs"}}, "svm", "params.optimizer",
     "must be one of " + ", ".join(json.dumps(a) for a in OPTIMIZERS), '"lbfgs"'),
    ({"type": "set", "model": "cnn"}, "mlp", "model", 'must be one of "knn", "svm", "softmax", "mlp"', '"cnn"'),
    ({"type": "set", "data": {"dataset": "swiss roll"}}, "mlp", "data.dataset",
     'must be one of "spiral", "circles", "xor", "blobs", "moons"', '"swiss roll"'),
    ({"type": "set", "data": {"colour": 1}}, "mlp", "data.colour",
     "unknown field; expected one of dataset, classes, noise, n_points, train_fraction, seed", "1"),
    ({"type": "set", "data": []}, "mlp", "data", "expected an object", "[]"),
    ({"type": "set", "features": []}, "mlp", "features",
     "expected a non-empty list of x, y, x2, y2, xy, sinx, siny", "[]"),
    ({"type": "set", "features": ["x", "z"]}, "mlp", "features[1]",
     "must be one of x, y, x2, y2, xy, sinx, siny", '"z"'),
    ({"type": "set", "features": ["x", "x"]}, "mlp", "features", "names must not repeat", '["x", "x"]'),
    ({"type": "set", "speed": 3}, "mlp", "speed", "unknown field; expected one of data, features, model, params",
     "3"),
    ({"type": "fly"}, "mlp", "type",
     "must be one of set, add_point, inspect, mode, play, pause, step, reset, clear, ping",
     '"fly"'),
    ({"type": "play", "fast": True}, "mlp", "fast", "unknown field; a play message has only a type", "true"),
    ({"type": "add_point", "x": 0, "y": 0}, "mlp", "label", "required", "null"),
    ({"type": "add_point", "x": 2, "y": 0, "label": 0}, "mlp", "x", "must be in [-1.25, 1.25]", "2"),
    ({"type": "inspect", "index": -1}, "mlp", "index", "must be between 0 and 4999", "-1"),
    ([1, 2], "mlp", "message", 'expected a JSON object with a "type"', "[1, 2]"),
])
def test_bad_messages_name_field_rule_and_value(msg, model, field, rule, value):
    e = error(msg, model)
    assert (e.field, e.rule) == (field, rule)
    reply = e.to_message()
    assert reply == {"type": "error", "field": field, "rule": rule, "value": value,
                     "message": f"{field}: {rule}, got {value}"}


def test_malformed_oversized_and_non_standard_json():
    for text in ['{"type": "set", "params": {"lr": NaN}}', '{"type": "set", "params": {"lr": Infinity}}',
                 '{"type": "play"', "", "play", '{"type": "play"} trailing']:
        e = error(text)
        assert (e.field, e.rule) == ("message", "malformed JSON"), text
    e = error('{"type": "set", "params": {"lr": 1e999}}')  # parses to inf
    assert (e.field, e.rule) == ("params.lr", "expected a finite number")
    e = error("[" * 50_000 + "]" * 50_000)  # deeper than the parser goes, but not larger than the limit
    assert e.field == "message" and e.rule in ("malformed JSON", f"at most {MAX_MESSAGE_BYTES} bytes")
    e = error(json.dumps({"type": "set", "data": {"dataset": "x" * MAX_MESSAGE_BYTES}}))
    assert (e.field, e.rule) == ("message", f"at most {MAX_MESSAGE_BYTES} bytes")
    assert e.value.endswith(" bytes")
    e = error(b'{"type": "play"}')
    assert (e.field, e.rule) == ("message", "expected a text (JSON) message, not binary")
    e = error('{"type": "set", "data": {"seed": ' + "9" * 5000 + "}}")  # beyond Python's int-parsing limit
    assert e.field in ("message", "data.seed")


def test_public_rules_describe_every_control():
    rules = public_rules()
    json.dumps(rules)  # sent to the page as is
    assert rules["params"]["mlp"]["hidden_sizes"] == {"kind": "layers", "max_layers": 8, "max_width": 256}
    assert rules["params"]["mlp"]["lr"] == {"kind": "float", "min": 0.0, "max": 10.0}
    assert rules["params"]["mlp"]["optimizer"]["values"] == list(OPTIMIZERS)
    assert rules["datasets"]["spiral"] == [2, 3, 4, 5] and rules["features"]["x2"] == "x²"
