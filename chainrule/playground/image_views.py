"""What the images mode draws, computed from a fitted estimator: first-layer weights as images (a linear model's
class templates, an MLP's hidden units, a conv net's filters), one image's activations (or their gradients) per
layer, and the held-out images' top-3 predictions.

Pictures travel as base64 PNG sprites: n tiles of h x w pixels side by side in rows of ``cols``, 1 pixel apart,
each tile scaled on its own (weights and activations: 0 is grey 128, the tile's largest |value| black or white).
Sizes are bounded: at most ``MAX_TILES`` tiles per picture and ``MAX_LAYERS`` layers, whatever the model.
"""

from __future__ import annotations

import base64
import io
import math
from typing import Any

import numpy as np

from chainrule.nn import Linear, Maxout
from chainrule.nn import functional as F
from chainrule.playground.views import probabilities
from chainrule.tensor import Tensor

MAX_TILES = 32
MAX_LAYERS = 12

__all__ = ["probabilities", "sprite", "filters", "activations", "strip"]


def _png(a: np.ndarray) -> str:
    from PIL import Image

    img = Image.fromarray(a if a.ndim == 2 else a[..., 0] if a.shape[-1] == 1 else a)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=6)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _signed(tiles: np.ndarray) -> np.ndarray:
    """float tiles (n, h, w, c) -> uint8, each tile on its own symmetric scale (0 -> 128)."""
    t = np.nan_to_num(tiles.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    m = np.abs(t).reshape(len(t), -1).max(axis=1)
    m = np.where(m > 0, m, 1.0).reshape(-1, 1, 1, 1)
    return np.rint(127.5 + 127.5 * t / m).clip(0, 255).astype(np.uint8)


def sprite(tiles: np.ndarray, normalize: bool = True, cols: int | None = None) -> dict[str, Any]:
    """tiles (n, h, w, c) (c = 1 or 3; uint8 as they are, float scaled by ``_signed`` when ``normalize``) -> one
    PNG {"png", "n", "h", "w", "c", "cols"}."""
    n, h, w, c = tiles.shape
    q = _signed(tiles) if normalize else tiles.astype(np.uint8)
    cols = cols or max(1, min(n, math.ceil(math.sqrt(n * h / w))))
    rows = math.ceil(n / cols)
    sheet = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1, c), 255, np.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        sheet[r * (h + 1):r * (h + 1) + h, k * (w + 1):k * (w + 1) + w] = q[i]
    return {"png": _png(sheet), "n": int(n), "h": int(h), "w": int(w), "c": int(c), "cols": int(cols)}


def filters(est: Any, sample_shape: tuple[int, ...]) -> dict[str, Any] | None:
    """The first layer's weights as images, from the estimator's ``weight_images()``: a linear model's templates
    (one per class, lecture 2), an MLP's first hidden units, a conv net's first filters (``filter_shape()``), the
    first ``MAX_TILES``. None when the model has no such weights."""
    got = est.weight_images() if hasattr(est, "weight_images") else None
    if got is None:
        return None
    W, is_linear = got
    shape = tuple(est.filter_shape()) if hasattr(est, "filter_shape") else tuple(sample_shape)
    if W.shape[0] != int(np.prod(shape)):
        return None
    shown = np.asarray(W)[:, :MAX_TILES].T.reshape(-1, *shape)
    kind = "templates" if is_linear else "units" if shape == tuple(sample_shape) else "filters"
    return {**sprite(shown), "total": int(W.shape[1]), "kind": kind}


def _as_tiles(a: np.ndarray) -> tuple[np.ndarray, str]:
    """One example's layer output -> tiles: (C, H, W) maps as C tiles, a vector of F as one square-ish tile."""
    if a.ndim == 3:
        return a[:MAX_TILES, :, :, None], "maps"
    v = a.ravel()
    side = math.ceil(math.sqrt(len(v)))
    tile = np.zeros(side * side)
    tile[:len(v)] = v
    return tile.reshape(1, side, side, 1), "vector"


def _conv_layers(model: Any, x: np.ndarray) -> tuple[list[tuple[str, Tensor]], Tensor, None]:
    """A conv net (``features(x)``: its maps after each block; ``head`` and ``scale``: its scores, as its forward
    computes them): the input (1, C, H, W), each block's maps, and the scores."""
    t = Tensor(np.ascontiguousarray(x.transpose(0, 3, 1, 2)), requires_grad=True)
    maps = model.features(t)
    layers = [("input", t)] + [(f"block {i + 1}", m.retain_grad()) for i, m in enumerate(maps)]
    scores = (model.head(maps[-1].amax(axis=(2, 3))) * model.scale).retain_grad()
    return layers + [("scores", scores)], scores, None


def _dense_layers(est: Any, x: np.ndarray) -> tuple[list[tuple[str, Tensor]], Tensor, Tensor | None]:
    """An MLP (``model_`` a sequence of layers) or a linear model (``W_``, ``b_``), in float64: the input (1, D),
    each layer's output, the scores, and the first layer's weights (the one weight Tensor that requires grad)."""
    h = Tensor(x.reshape(1, -1).astype(np.float64), requires_grad=True)
    layers, first = [("input", h)], None
    if hasattr(est, "model_"):
        for module in est.model_:
            if isinstance(module, (Linear, Maxout)):
                W = Tensor(module.weight.data.astype(np.float64), requires_grad=first is None)
                first = W if first is None else first
                b = Tensor(module.bias.data.astype(np.float64))
                h = F.linear(h, W, b) if isinstance(module, Linear) else F.maxout(h, W, b, module.pieces)
            else:
                h = module(h)
            layers.append((type(module).__name__, h.retain_grad()))
    else:
        first = Tensor(est.W_.astype(np.float64), requires_grad=True)
        h = F.linear(h, first, Tensor(est.b_.astype(np.float64)))
        layers.append(("scores", h.retain_grad()))
    return layers, h, first


def _weight_gradient(est: Any, first: Tensor | None, conv: bool, shape: tuple[int, ...]) -> np.ndarray | None:
    """(n, h, w, c) tiles of the example's loss gradient with respect to the first layer's weights (the weights
    ``filters`` draws): ``first`` (a dense model's, as ``_dense_layers`` made it) or a conv net's first conv."""
    if conv:
        conv1 = next((m for m in est.model_.modules() if getattr(m, "weight", None) is not None
                      and m.weight.data.ndim == 4 and m.weight.grad is not None), None)
        return None if conv1 is None else np.asarray(conv1.weight.grad)[:MAX_TILES].transpose(0, 2, 3, 1)
    if first is None or first.grad is None or first.grad.ndim != 2 or first.grad.shape[0] != int(np.prod(shape)):
        return None
    return np.asarray(first.grad)[:, :MAX_TILES].T.reshape(-1, *shape)


def activations(est: Any, x: np.ndarray, pixels: np.ndarray, label: int, gradients: bool) -> dict[str, Any] | None:
    """The forward pass of one image x (1, H, W, C) (model inputs) through the model (in evaluation mode; dense
    models through a float64 copy): each layer's output as tiles, or with ``gradients`` the gradient of the
    example's loss (cross-entropy with its label; the hinge loss for the SVM) with respect to it (lecture 4), the
    input's summed over its channels, and (``weight_gradient``) with respect to the first layer's weights, drawn as
    ``filters`` draws the weights. Also the class probabilities."""
    model = getattr(est, "model_", None)
    if model is None and not hasattr(est, "W_"):
        return None
    conv = model is not None and all(hasattr(model, a) for a in ("features", "head", "scale"))
    was_training = model.training if model is not None else False
    if model is not None:
        model.eval()
    try:
        layers, scores, first = _conv_layers(model, x) if conv else _dense_layers(est, x)
        hinge = hasattr(est, "margin")
        loss = (F.multiclass_hinge(scores, np.array([label]), margin=float(est.margin)) if hinge
                else F.cross_entropy(scores, np.array([label])))
        with np.errstate(all="ignore"):
            loss.backward()
        weight_grad = _weight_gradient(est, first, conv, pixels.shape) if gradients else None
    finally:
        if model is not None:
            model.train(was_training)
            if conv:
                model.zero_grad()  # the view's backward ran through the model's own parameters
    out = []
    for i, (name, t) in enumerate(layers[:MAX_LAYERS]):
        if i == 0:
            if gradients:
                g = t.grad.reshape(pixels.shape) if not conv else t.grad[0].transpose(1, 2, 0)
                out.append({"name": "input image (gradient)", "kind": "image", **sprite(g.sum(-1)[None, :, :, None])})
            else:
                out.append({"name": "input image", "kind": "image", **sprite(pixels[None], normalize=False)})
            continue
        a = np.asarray((t.grad if gradients else t.data)[0])
        tiles, kind = _as_tiles(a)
        out.append({"name": name, "kind": kind, "size": int(a.size), **sprite(tiles),
                    "max": float(np.nan_to_num(np.abs(a)).max())})
    s = np.asarray(scores.data[0], np.float64)
    p = np.exp(s - s.max())
    p /= p.sum()
    return {"layers": out, "probs": [round(float(v), 4) for v in p], "label": int(label),
            "loss": float(loss.data), "gradients": bool(gradients),
            "weight_gradient": None if weight_grad is None else sprite(weight_grad)}


def strip(probs: np.ndarray, y: np.ndarray, n: int) -> dict[str, Any]:
    """The held-out strip: ``n`` held-out images, mistakes first (most confident mistakes first), then the least
    confident correct ones; each with its top-3 classes and probabilities."""
    pred = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    wrong = pred != y
    order = np.lexsort((np.where(wrong, -conf, conf), ~wrong))[:n]
    top = np.argsort(-probs[order], axis=1)[:, :3]
    return {"index": order.tolist(), "top": top.tolist(),
            "p": np.round(np.take_along_axis(probs[order], top, axis=1), 3).tolist(),
            "mistakes": int(wrong.sum())}
