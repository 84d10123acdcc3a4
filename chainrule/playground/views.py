"""What the page draws, computed from a fitted estimator: the decision surface, the network and the graph of one
training point. Arrays travel as base64 bytes (uint8 probabilities, int8 activations) to keep frames small.
"""

from __future__ import annotations

import base64
from typing import Any, Sequence

import numpy as np

from chainrule.function import no_grad
from chainrule.nn import Linear, Maxout
from chainrule.nn import functional as F
from chainrule.playground.features import FEATURES, input_features
from chainrule.playground.protocol import PLANE
from chainrule.tensor import Tensor
from chainrule.viz import graph_data

MAX_SHOWN = 16  # neurons drawn per layer in the network view (the rest are counted)


def grid_points(size: int) -> np.ndarray:
    """(size * size, 2) centres of a size x size grid over [-PLANE, PLANE]^2, row-major from the top row (y = PLANE)
    down, as an image is stored."""
    c = -PLANE + (np.arange(size) + 0.5) * (2 * PLANE / size)
    xx, yy = np.meshgrid(c, c[::-1])
    return np.stack([xx.ravel(), yy.ravel()], axis=1)


def grid_features(names: Sequence[str], size: int) -> np.ndarray:
    return input_features(grid_points(size), names)


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii")


def _softmax(s: np.ndarray) -> np.ndarray:
    s = s - s.max(axis=1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(axis=1, keepdims=True)


def probabilities(est: Any, X: np.ndarray, rows: int = 2500) -> np.ndarray:
    """(N, C) class probabilities of a fitted estimator (its ``probabilities``: for LinearSVM, whose scores are not
    probabilities, the softmax of its scores; the page uses them only to shade the map by how clearly one class
    wins). Computed ``rows`` at a time, so that what a reply holds besides the result is bounded by the block, not
    by N."""
    if len(X) > rows:
        return np.concatenate([probabilities(est, X[i:i + rows], rows) for i in range(0, len(X), rows)])
    with np.errstate(over="ignore", invalid="ignore"):  # a diverged model's last weights may overflow: shown as 0
        p = np.asarray(est.probabilities(X)[0])
    return np.nan_to_num(p, nan=0.0, posinf=0.0, neginf=0.0)


def surface(est: Any, grid: np.ndarray, size: int, n_classes: int) -> dict[str, Any]:
    """The decision surface: {"size", "classes", "probs"}, probs base64 uint8 (C, size, size), p * 255 rounded."""
    p = probabilities(est, grid)
    if p.shape[1] != n_classes:  # fewer classes in the training data than the dataset has (e.g. after a clear)
        full = np.zeros((len(p), n_classes))
        full[:, np.asarray(est.classes_, dtype=np.int64)] = p
        p = full
    q = np.rint(np.clip(p, 0.0, 1.0) * 255).astype(np.uint8).T.reshape(n_classes, size, size)
    return {"size": size, "classes": n_classes, "probs": _b64(q)}


def score_lines(est: Any, features: Sequence[str]) -> list[list[float]] | None:
    """For a linear model on exactly the x, y inputs, each class's score line w_c . (x, y) + b_c = 0 as
    [w_x, w_y, b_c] (the CS231n linear-classifier demo); None otherwise."""
    if not hasattr(est, "W_") or sorted(features) != ["x", "y"]:
        return None
    W = est.W_[[list(features).index("x"), list(features).index("y")]]  # rows in (x, y) order
    return [[float(W[0, c]), float(W[1, c]), float(est.b_[c])] for c in range(W.shape[1])]


def last_loss(est: Any) -> float | None:
    """The estimator's mean training loss over its latest epoch (None for kNN)."""
    curve = getattr(est, "loss_curve_", None)
    return float(curve[-1]) if curve is not None and len(curve) else None


# ---- the network -------------------------------------------------------------------------------------------------

def _maps(values: np.ndarray, size: int) -> dict[str, Any]:
    """values (M, n) on the size x size grid -> the first MAX_SHOWN columns as int8 maps scaled by each one's
    max |value| (``scales``)."""
    shown = values[:, :MAX_SHOWN].astype(np.float64)
    scales = np.abs(shown).max(axis=0)
    q = np.rint(127 * shown / np.where(scales > 0, scales, 1.0)).astype(np.int8).T.reshape(-1, size, size)
    return {"n": int(values.shape[1]), "shown": int(shown.shape[1]), "maps": _b64(q),
            "scales": [round(float(s), 4) for s in scales]}


def _weights(W: np.ndarray) -> dict[str, Any]:
    shown = W[:MAX_SHOWN, :MAX_SHOWN]
    return {"shape": list(shown.shape), "data": np.round(shown.astype(np.float64), 4).ravel().tolist()}


def _layer_weights(module: Any) -> np.ndarray:
    """(in, out) weights of a Linear; for a Maxout, per connection the piece's weight of largest magnitude."""
    W = module.weight.data
    if isinstance(module, Maxout):
        W = W.reshape(W.shape[0], module.pieces, module.out_features)
        pick = np.abs(W).argmax(axis=1)[:, None, :]
        W = np.take_along_axis(W, pick, axis=1)[:, 0, :]
    return W


def network(est: Any, grid: np.ndarray, size: int, features: Sequence[str]) -> dict[str, Any] | None:
    """The network view: per layer (inputs, hidden, outputs) each neuron's value over the plane (small maps), and
    the weights between consecutive layers. None for kNN (no weights)."""
    inputs = {"kind": "input", "labels": [FEATURES[f][0] for f in features], **_maps(grid, size)}
    if hasattr(est, "model_"):
        model = est.model_
        layers, weights = [inputs], []
        was_training = model.training
        model.eval()
        try:
            with no_grad():
                h = Tensor(grid)
                for module in model:
                    if isinstance(module, (Linear, Maxout)):
                        if weights:  # the input of every weighted layer but the first is a hidden layer's output
                            layers.append({"kind": "hidden", **_maps(h.data, size)})
                        weights.append(_weights(_layer_weights(module)))
                    h = module(h)
                scores = h.data
        finally:
            model.train(was_training)
        kind = model.activation
    elif hasattr(est, "W_"):
        weights = [_weights(est.W_)]
        layers, kind = [inputs], "linear"
        scores = grid @ est.W_ + est.b_
    else:
        return None
    probs = _softmax(scores.astype(np.float64))
    layers.append({"kind": "output", **_maps(probs, size)})
    return {"size": size, "activation": kind, "layers": layers, "weights": weights}


# ---- the computational graph of one training point ----------------------------------------------------------------

def point_graph(est: Any, x: np.ndarray, label: int, features: Sequence[str]) -> dict[str, Any] | None:
    """Forward and backward of the loss of one training point (inputs x (D,), class ``label``) through a copy of the
    estimator's parameters, as ``chainrule.viz.graph_data``: values and gradients on every wire. None for kNN."""
    if hasattr(est, "model_"):
        return _mlp_graph(est, x, label)
    if hasattr(est, "W_"):
        return _linear_graph(est, x, label)
    return None


def _leaf(a: np.ndarray, name: str) -> Tensor:
    return Tensor(np.array(a, dtype=np.float64), requires_grad=True, name=name)


def _mlp_graph(est: Any, x: np.ndarray, label: int) -> dict[str, Any]:
    h = _leaf(x[None, :], "x")
    kept, matrices, layer = [], [], 0
    for module in est.model_:
        if isinstance(module, (Linear, Maxout)):
            layer += 1
            W = _leaf(module.weight.data, f"W{layer}")
            b = _leaf(module.bias.data, f"b{layer}")
            matrices.append(W)
            h = F.linear(h, W, b) if isinstance(module, Linear) else F.maxout(h, W, b, module.pieces)
        else:
            h = module(h)  # a stateless activation (the playground's MLPs have no dropout or normalisation)
        kept.append(h.retain_grad())
    h.name = "scores"
    loss = F.cross_entropy(h, np.array([label]))
    loss.name = "data loss"
    kept.append(loss.retain_grad())
    wd = float(est.weight_decay)
    note = "loss = cross-entropy of the scores"
    if wd > 0 and est.optimizer != "adamw":  # adamw decays the weights directly: no term in the loss
        loss = loss + F.l2_penalty(matrices, wd / 2)
        note += f" + weight_decay/2 · ΣW² (weight_decay = {wd:g}: its gradient weight_decay · W is what the " \
                "optimizer adds)"
    loss.name = "loss"
    loss.backward()
    return {**graph_data(loss, max_elements=64), "label": int(label), "note": note}


def _linear_graph(est: Any, x: np.ndarray, label: int) -> dict[str, Any]:
    X, W, b = _leaf(x[None, :], "x"), _leaf(est.W_, "W"), _leaf(est.b_, "b")
    scores = F.linear(X, W, b).retain_grad()
    scores.name = "scores"
    hinge = hasattr(est, "margin")
    data = (F.multiclass_hinge(scores, np.array([label]), margin=float(est.margin)) if hinge
            else F.cross_entropy(scores, np.array([label])))
    data.name = "data loss"
    data.retain_grad()
    note = f"loss = {'multiclass hinge' if hinge else 'cross-entropy'} of the scores"
    loss = data
    if float(est.reg) > 0:
        loss = data + F.l2_penalty([W], float(est.reg))
        note += f" + reg · ΣW² (reg = {float(est.reg):g})"
    loss.name = "loss"
    loss.backward()
    return {**graph_data(loss, max_elements=64), "label": int(label), "note": note}
