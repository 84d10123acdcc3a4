"""Stochastic gradient descent, with momentum, dampening, Nesterov momentum and L2 weight decay.

The update (``torch.optim.SGD``'s documented rule), for gradient g of parameter x at step t:

    g <- g + weight_decay * x                         (if weight_decay != 0)
    b <- g                                            (t = 1, if momentum != 0)
    b <- momentum * b + (1 - dampening) * g           (t > 1)
    d <- g + momentum * b   if nesterov   else   b    (d = g without momentum)
    x <- x - lr * d

The Nesterov update of float32 parameters runs as one compiled pass (``chainrule.backend.fused``, where numba is
installed) from the second step on, bit for bit the NumPy code's result.

This is the "velocity" form of CS231n's ``v = mu * v - lr * dx; x += v`` with the learning rate moved outside the
velocity; the two agree exactly while lr is constant.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np

from chainrule.backend import fused
from chainrule.optim.optimizer import Optimizer, check_bool, check_real


class SGD(Optimizer):
    """SGD with optional (Nesterov) momentum and weight decay.

    Parameters
    ----------
    params : iterable of parameters, or of param-group dicts with per-group options.
    lr : learning rate (>= 0).
    momentum : momentum factor mu (>= 0); 0 is plain SGD.
    dampening : scales the gradient's contribution to the momentum buffer by (1 - dampening); in [0, 1].
    nesterov : Nesterov momentum (needs momentum > 0 and dampening = 0).
    weight_decay : L2 penalty coefficient (adds weight_decay * x to the gradient).

    State per parameter: ``momentum_buffer`` (only when momentum != 0).
    """

    option_names = ("lr", "momentum", "dampening", "nesterov", "weight_decay")

    def __init__(
        self, params: Iterable[Any], lr: float, momentum: float = 0.0, dampening: float = 0.0,
        nesterov: bool = False, weight_decay: float = 0.0,
    ):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov, weight_decay=weight_decay)
        super().__init__(params, defaults)

    def _check_options(self, options: dict[str, Any], where: str) -> dict[str, Any]:
        out = super()._check_options(options, where)
        out["momentum"] = check_real("momentum", options["momentum"], where, low=0.0)
        out["dampening"] = check_real("dampening", options["dampening"], where, low=0.0, high=1.0)
        out["nesterov"] = check_bool("nesterov", options["nesterov"], where)
        out["weight_decay"] = check_real("weight_decay", options["weight_decay"], where, low=0.0)
        if out["nesterov"] and (out["momentum"] <= 0 or out["dampening"] != 0):
            raise ValueError(
                f"{where}nesterov=True needs momentum > 0 and dampening = 0, got momentum={out['momentum']!r} "
                f"and dampening={out['dampening']!r}"
            )
        return out

    def _state_spec(self, group: Mapping[str, Any]) -> dict[str, str]:
        return {"momentum_buffer": "array"} if group["momentum"] != 0 else {}

    def _update(self, x: np.ndarray, g: np.ndarray, state: dict[str, Any], hp: Mapping[str, Any]) -> None:
        lr, mu, damp, wd = hp["lr"], hp["momentum"], hp["dampening"], hp["weight_decay"]
        buf = state.get("momentum_buffer")
        if hp["nesterov"] and buf is not None and fused.sgd_nesterov_update(x, g, buf, lr, mu, wd):
            return  # the same update as below in one compiled pass (float32, numba installed)
        # Work arrays: slot 0 holds the decayed gradient when weight_decay != 0, so temporaries go to `free`.
        g, free = self._decayed_grad(x, g, wd)
        d_is_scratch = free == 1  # d = g lives in slot 0 and may be overwritten
        d = g
        if mu != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(g, dtype=x.dtype, copy=True)
            else:
                np.multiply(buf, mu, out=buf)
                if damp == 0:
                    np.add(buf, g, out=buf)
                else:
                    t = self._scratch(x, free)
                    np.multiply(g, 1.0 - damp, out=t)
                    np.add(buf, t, out=buf)
            if hp["nesterov"]:
                d = self._scratch(x, free)
                np.multiply(buf, mu, out=d)
                np.add(g, d, out=d)
                d_is_scratch = True
            else:
                d, d_is_scratch = buf, False
        t = d if d_is_scratch else self._scratch(x, 0)  # slot 0 is free again unless d is in it
        np.multiply(d, lr, out=t)
        np.subtract(x, t, out=x)
