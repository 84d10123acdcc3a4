"""RMSProp: per-coordinate step sizes from a leaky average of squared gradients (Tieleman & Hinton, 2012).

The update (``torch.optim.RMSprop``'s documented rule), for gradient g of parameter x:

    g <- g + weight_decay * x                            (if weight_decay != 0)
    v <- alpha * v + (1 - alpha) * g^2                   (v starts at 0)
    a <- alpha * a + (1 - alpha) * g                     (centered only; a starts at 0)
    r <- sqrt(v - a^2) + eps   if centered   else   sqrt(v) + eps
    b <- momentum * b + g / r;   x <- x - lr * b         (if momentum > 0; b starts at 0)
    x <- x - lr * g / r                                  (otherwise)

CS231n's ``cache = decay_rate * cache + (1 - decay_rate) * dx**2; x += -lr * dx / (sqrt(cache) + eps)`` is the
default (momentum=0, centered=False).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np

from chainrule.optim.optimizer import Optimizer, check_bool, check_real, ema_square_, lerp_


class RMSProp(Optimizer):
    """RMSProp with optional momentum, centering and L2 weight decay.

    Parameters
    ----------
    params : iterable of parameters, or of param-group dicts with per-group options.
    lr : learning rate (>= 0).
    alpha : decay rate of the squared-gradient average, in [0, 1).
    eps : added to the root mean square for stability (>= 0).
    momentum : momentum factor on the normalised step (>= 0).
    centered : divide by an estimate of the gradient's standard deviation instead of its root mean square.
    weight_decay : L2 penalty coefficient (adds weight_decay * x to the gradient).

    State per parameter: ``step``, ``square_avg``, ``momentum_buffer`` (momentum > 0), ``grad_avg`` (centered).
    """

    option_names = ("lr", "alpha", "eps", "momentum", "centered", "weight_decay")

    def __init__(
        self, params: Iterable[Any], lr: float, alpha: float = 0.99, eps: float = 1e-8, momentum: float = 0.0,
        centered: bool = False, weight_decay: float = 0.0,
    ):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, momentum=momentum, centered=centered, weight_decay=weight_decay)
        super().__init__(params, defaults)

    def _check_options(self, options: dict[str, Any], where: str) -> dict[str, Any]:
        out = super()._check_options(options, where)
        out["alpha"] = check_real("alpha", options["alpha"], where, low=0.0, high=1.0, high_open=True)
        out["eps"] = check_real("eps", options["eps"], where, low=0.0)
        out["momentum"] = check_real("momentum", options["momentum"], where, low=0.0)
        out["centered"] = check_bool("centered", options["centered"], where)
        out["weight_decay"] = check_real("weight_decay", options["weight_decay"], where, low=0.0)
        return out

    def _state_spec(self, group: Mapping[str, Any]) -> dict[str, str]:
        spec = {"step": "int", "square_avg": "array"}
        if group["momentum"] > 0:
            spec["momentum_buffer"] = "array"
        if group["centered"]:
            spec["grad_avg"] = "array"
        return spec

    def _update(self, x: np.ndarray, g: np.ndarray, state: dict[str, Any], hp: Mapping[str, Any]) -> None:
        lr, alpha, eps, mu, wd = hp["lr"], hp["alpha"], hp["eps"], hp["momentum"], hp["weight_decay"]
        g, free = self._decayed_grad(x, g, wd)
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(x)
        state["step"] += 1
        w = self._scratch(x, free)
        v = state["square_avg"]
        ema_square_(v, g, alpha, w)
        if hp["centered"]:
            a = state.get("grad_avg")
            if a is None:
                a = state["grad_avg"] = np.zeros_like(x)
            lerp_(a, g, 1.0 - alpha, w)
            np.multiply(a, a, out=w)
            np.subtract(v, w, out=w)
            np.maximum(w, 0, out=w)  # v - a^2 >= 0 in exact arithmetic; rounding can make it -tiny
            np.sqrt(w, out=w)
        else:
            np.sqrt(v, out=w)
        np.add(w, eps, out=w)
        np.divide(g, w, out=w)  # w = g / r
        if mu > 0:
            b = state.get("momentum_buffer")
            if b is None:
                b = state["momentum_buffer"] = np.zeros_like(x)
            np.multiply(b, mu, out=b)
            np.add(b, w, out=b)
            np.multiply(b, lr, out=w)
        else:
            np.multiply(w, lr, out=w)
        np.subtract(x, w, out=x)


class RMSprop(RMSProp):
    """``torch.optim.RMSprop``: the same optimizer under PyTorch's name, argument order and default ``lr=0.01``.

    PyTorch's order is (params, lr, alpha, eps, weight_decay, momentum, centered): weight_decay comes before
    momentum, unlike ``RMSProp``'s, so a positional call means what it means in PyTorch. Checkpoints are
    interchangeable with ``RMSProp``'s.
    """

    checkpoint_name = "RMSProp"

    def __init__(
        self, params: Iterable[Any], lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
        weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
    ):
        super().__init__(params, lr=lr, alpha=alpha, eps=eps, momentum=momentum, centered=centered,
                         weight_decay=weight_decay)
