"""Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019): momentum plus RMSProp, bias-corrected.

The update (``torch.optim.Adam`` / ``AdamW``'s documented rule), for gradient g of parameter x at step t = 1, 2, ...:

    x <- x * (1 - lr * weight_decay)                      (AdamW: decoupled weight decay)
    g <- g + weight_decay * x                             (Adam: L2 penalty in the gradient)
    m <- beta1 * m + (1 - beta1) * g                      (first moment; m, v start at 0)
    v <- beta2 * v + (1 - beta2) * g^2                    (second moment)
    v_max <- max(v_max, v);  use v_max for v below        (amsgrad only)
    x <- x - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

which is CS231n's ``mt = m / (1 - beta1**t); vt = v / (1 - beta2**t); x += -lr * mt / (sqrt(vt) + eps)``,
rearranged so that the bias corrections are scalar factors rather than extra passes over the arrays.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import numpy as np

from chainrule.optim.optimizer import Optimizer, check_bool, check_real, ema_square_, lerp_


class Adam(Optimizer):
    """Adam with bias correction, optional AMSGrad and L2 weight decay (added to the gradient).

    Parameters
    ----------
    params : iterable of parameters, or of param-group dicts with per-group options.
    lr : learning rate (>= 0).
    betas : (beta1, beta2), decay rates of the first and second moment estimates, each in [0, 1).
    eps : added to the denominator for stability (>= 0).
    weight_decay : L2 penalty coefficient (>= 0). For decoupled decay use ``AdamW``.
    amsgrad : use the running maximum of the second moment (Reddi et al., 2018).

    State per parameter: ``step``, ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq`` (amsgrad).
    """

    option_names = ("lr", "betas", "eps", "weight_decay", "amsgrad")
    _decoupled = False

    def __init__(
        self, params: Iterable[Any], lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
        weight_decay: float = 0.0, amsgrad: bool = False,
    ):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad))

    def _check_options(self, options: dict[str, Any], where: str) -> dict[str, Any]:
        out = super()._check_options(options, where)
        betas = options["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{where}betas must be a pair (beta1, beta2), got {betas!r}")
        out["betas"] = tuple(
            check_real(f"betas[{i}]", b, where, low=0.0, high=1.0, high_open=True) for i, b in enumerate(betas)
        )
        out["eps"] = check_real("eps", options["eps"], where, low=0.0)
        out["weight_decay"] = check_real("weight_decay", options["weight_decay"], where, low=0.0)
        out["amsgrad"] = check_bool("amsgrad", options["amsgrad"], where)
        return out

    def _state_spec(self, group: Mapping[str, Any]) -> dict[str, str]:
        spec = {"step": "int", "exp_avg": "array", "exp_avg_sq": "array"}
        if group["amsgrad"]:
            spec["max_exp_avg_sq"] = "array"
        return spec

    def _update(self, x: np.ndarray, g: np.ndarray, state: dict[str, Any], hp: Mapping[str, Any]) -> None:
        lr, (beta1, beta2), eps, wd = hp["lr"], hp["betas"], hp["eps"], hp["weight_decay"]
        if wd != 0 and self._decoupled:
            np.multiply(x, 1.0 - lr * wd, out=x)
        g, free = self._decayed_grad(x, g, 0.0 if self._decoupled else wd)
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(x)
            state["exp_avg_sq"] = np.zeros_like(x)
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        w = self._scratch(x, free)
        lerp_(m, g, 1.0 - beta1, w)
        ema_square_(v, g, beta2, w)
        if hp["amsgrad"]:
            vmax = state.get("max_exp_avg_sq")
            if vmax is None:
                vmax = state["max_exp_avg_sq"] = np.zeros_like(x)
            np.maximum(vmax, v, out=vmax)
            v = vmax
        step_size = lr / (1.0 - beta1**t)
        np.sqrt(v, out=w)
        np.divide(w, math.sqrt(1.0 - beta2**t), out=w)
        np.add(w, eps, out=w)
        np.divide(m, w, out=w)
        np.multiply(w, step_size, out=w)
        np.subtract(x, w, out=x)


class AdamW(Adam):
    """Adam with decoupled weight decay: ``x <- x * (1 - lr * weight_decay)`` before the Adam step.

    Same parameters and state as ``Adam``; ``weight_decay`` defaults to 0.01 as in ``torch.optim.AdamW``.
    """

    _decoupled = True

    def __init__(
        self, params: Iterable[Any], lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
        weight_decay: float = 0.01, amsgrad: bool = False,
    ):
        super().__init__(params, lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
