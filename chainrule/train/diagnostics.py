"""Learner diagnostics: the lecture's sanity numbers for a network that is (or is not) learning.

Per parameter, over an epoch (``UpdateRatios``: measured on up to ``samples`` optimizer steps spread evenly over
the epoch, first and last included, so the numbers describe the whole epoch at any point of a schedule, not
just its last step, which a cosine schedule makes ~0 at the end of a run):
    weight_norm         ||W|| at the end of the epoch
    grad_norm           mean ||dL/dW|| over the measured steps
    update_ratio        mean ||W_after - W_before|| / ||W_before|| over the measured steps: about 1e-3 is
                        healthy; much larger means the learning rate is too high, much smaller that it is too low
                        (CS231n lecture 3, "babysitting the learning process")
    update_ratio_max    the largest of them (one bad step hides in a mean)
    lr                  the learning rate of the epoch's last step

Per activation layer (on a probe batch, evaluation mode):
    ReLU            dead_fraction: units that output 0 for every sample of the batch (they get no gradient)
    sigmoid / tanh  saturated_fraction: outputs within 0.01 of the asymptotes (sigmoid < 0.01 or > 0.99,
                    |tanh| > 0.99), where the local gradient is nearly zero

Activations are found by walking the autograd graph of one forward pass: each tensor made by a ``Relu``,
``Sigmoid`` or ``Tanh`` node is an activation, numbered from the input side. So any model built from
chainrule ops works, with no hooks.

``warnings_for`` turns the numbers into the messages the trainer logs. "Learning rate too high?" needs the
epoch's mean update ratio above ``TOO_HIGH_UPDATE_RATIO`` (0.1, 100x the healthy value: every step moves the
weights by a tenth of their size) *after the first epoch and the first ``GROWTH_STEPS`` steps* (weights grow fast
from a small initialisation, which is not a problem: a linear model on digits has epochs of 6 steps), and "too
low?" a mean below 1e-5 while the schedule has not lowered the rate.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from chainrule.function import enable_grad
from chainrule.tensor import Tensor

HEALTHY_UPDATE_RATIO = 1e-3
TOO_HIGH_UPDATE_RATIO = 100 * HEALTHY_UPDATE_RATIO
TOO_LOW_UPDATE_RATIO = HEALTHY_UPDATE_RATIO / 100
GROWTH_STEPS = 50  # optimizer steps in which fast growth from the initial weights is expected
SATURATION_MARGIN = 0.01


def snapshot(named_params: Iterable[tuple[str, Any]]) -> dict[str, np.ndarray]:
    """Copies of the parameter arrays (before a step), by name."""
    return {name: np.array(p.data, copy=True) for name, p in named_params}


def _norm(a: np.ndarray) -> float:
    flat = a.reshape(-1).astype(np.float64, copy=False)
    return float(math.sqrt(np.dot(flat, flat)))


def parameter_stats(named_params: Iterable[tuple[str, Any]],
                    before: Mapping[str, np.ndarray] | None = None,
                    grads: Mapping[str, np.ndarray] | None = None) -> list[dict[str, Any]]:
    """One dict per parameter: name, shape, weight_norm, grad_norm, update_ratio (None where unknown).

    ``before`` holds the arrays before the step (``snapshot``); ``grads`` the gradients used by that step
    (default: each parameter's current ``.grad``).
    """
    rows = []
    for name, p in named_params:
        w = p.data
        g = grads.get(name) if grads is not None else p.grad
        w_norm = _norm(w)
        row: dict[str, Any] = {"name": name, "shape": list(w.shape), "weight_norm": w_norm,
                               "grad_norm": _norm(g) if g is not None else None, "update_ratio": None}
        if before is not None and name in before:
            b_norm = _norm(before[name])
            if b_norm > 0:
                row["update_ratio"] = _norm(w.astype(np.float64) - before[name]) / b_norm
        rows.append(row)
    return rows


class UpdateRatios:
    """Update/weight ratios and gradient norms of each parameter over one epoch, from a sample of its steps.

    The trainer calls ``before_step(i, n, params)`` just before the optimizer step ``i`` (0-based) of an epoch
    of ``n`` steps and ``after_step(params)`` just after it; ``rows(params)`` summarises the epoch (see the
    module docstring) and ``reset()`` starts the next one. Which steps are measured depends only on ``i`` and
    ``n``; the running sums are in ``state_dict()``, so a run resumed inside an epoch reports the same numbers.
    Cost: one copy of the parameters on each measured step.
    """

    def __init__(self, samples: int = 16):
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ValueError(f"samples must be an integer >= 1, got {samples!r}")
        self.samples = samples
        self.reset()

    def reset(self) -> None:
        self.steps = 0
        self.sums: dict[str, list[float]] = {}  # name -> [sum of ratios, max ratio, sum of grad norms, count]
        self._before: dict[str, np.ndarray] | None = None
        self._grads: dict[str, float] = {}

    def measured(self, i: int, n: int) -> bool:
        """Whether step ``i`` of an epoch of ``n`` steps is one of the (up to ``samples``) measured ones."""
        if n <= self.samples:
            return True
        picks = np.unique(np.rint(np.linspace(0, n - 1, self.samples)).astype(np.int64))
        return bool(np.isin(i, picks))

    def before_step(self, i: int, n: int, named_params: Iterable[tuple[str, Any]]) -> None:
        if not self.measured(i, n):
            self._before = None
            return
        params = list(named_params)
        self._before = snapshot(params)
        self._grads = {name: _norm(p.grad) for name, p in params if p.grad is not None}

    def after_step(self, named_params: Iterable[tuple[str, Any]]) -> None:
        if self._before is None:
            return
        for name, p in named_params:
            b = self._before.get(name)
            if b is None:
                continue
            b_norm = _norm(b)
            if b_norm == 0:  # a zero-initialised parameter (biases): no ratio for this step
                continue
            r = _norm(p.data.astype(np.float64) - b) / b_norm
            acc = self.sums.setdefault(name, [0.0, 0.0, 0.0, 0])
            acc[0] += r
            acc[1] = max(acc[1], r)
            acc[2] += self._grads.get(name, 0.0)
            acc[3] += 1
        self.steps += 1
        self._before = None

    def rows(self, named_params: Iterable[tuple[str, Any]], lr: float | None = None) -> list[dict[str, Any]]:
        """One dict per parameter: name, shape, weight_norm, grad_norm, update_ratio, update_ratio_max,
        steps_measured (None where not measured)."""
        out = []
        for name, p in named_params:
            acc = self.sums.get(name)
            n = acc[3] if acc else 0
            out.append({"name": name, "shape": list(p.data.shape), "weight_norm": _norm(p.data),
                        "grad_norm": acc[2] / n if n else None, "update_ratio": acc[0] / n if n else None,
                        "update_ratio_max": acc[1] if n else None, "steps_measured": n, "lr": lr})
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"samples": self.samples, "steps": self.steps, "sums": {k: list(v) for k, v in self.sums.items()}}

    def load_state_dict(self, state: Mapping[str, Any] | None) -> None:
        self.reset()
        if state:
            self.samples = int(state["samples"])
            self.steps = int(state["steps"])
            self.sums = {k: [float(v[0]), float(v[1]), float(v[2]), int(v[3])] for k, v in state["sums"].items()}


def _activation_kind(op_name: str) -> str | None:
    name = op_name.lower()
    if name == "relu" or (name.endswith("relu") and "leaky" not in name):
        return "relu"
    if name == "sigmoid":
        return "sigmoid"
    if name == "tanh" or (name.endswith("tanh") and "gelu" not in name):
        return "tanh"
    return None


def find_activations(output: Tensor) -> list[tuple[str, np.ndarray]]:
    """(kind, output array) of every ReLU / sigmoid / tanh node in ``output``'s graph, input side first."""
    found = []
    seen: set[int] = set()
    order: list[Tensor] = []
    stack = [output]
    while stack:  # iterative DFS over tensors; record each tensor once
        t = stack.pop()
        if id(t) in seen or t._ctx is None:
            continue
        seen.add(id(t))
        order.append(t)
        stack.extend(p for p in t._ctx.parents if isinstance(p, Tensor))
    depth: dict[int, int] = {}

    def get_depth(t: Tensor) -> int:  # longest path from an input: orders layers from the input side
        pending = [t]
        while pending:
            u = pending[-1]
            if id(u) in depth:
                pending.pop()
                continue
            parents = [p for p in (u._ctx.parents if u._ctx is not None else ()) if isinstance(p, Tensor)]
            todo = [p for p in parents if id(p) not in depth]
            if todo:
                pending.extend(todo)
                continue
            depth[id(u)] = 1 + max((depth[id(p)] for p in parents), default=0)
            pending.pop()
        return depth[id(t)]

    for t in order:
        kind = _activation_kind(type(t._ctx).__name__)
        if kind is not None:
            found.append((get_depth(t), kind, t.data))
    found.sort(key=lambda r: r[0])
    return [(kind, data) for _, kind, data in found]


def activation_stats(forward: Callable[[Tensor], Tensor], x: np.ndarray) -> list[dict[str, Any]]:
    """Run ``forward`` on the probe batch ``x`` (N, D) with the graph recorded and summarise each activation.

    The model should be in evaluation mode (so the probe draws no dropout randomness and leaves batch-norm
    statistics alone); parameters' gradients are not touched.
    """
    with enable_grad():
        out = forward(Tensor(x))
        acts = find_activations(out) if isinstance(out, Tensor) else []
    counts: dict[str, int] = {}
    rows = []
    for kind, a in acts:
        counts[kind] = counts.get(kind, 0) + 1
        a2 = a.reshape(a.shape[0], -1) if a.ndim > 1 else a.reshape(1, -1)
        row: dict[str, Any] = {"name": f"{kind} {counts[kind]}", "kind": kind, "units": int(a2.shape[1])}
        if kind == "relu":
            row["dead_fraction"] = float(np.mean(np.all(a2 <= 0, axis=0)))
            row["zero_fraction"] = float(np.mean(a2 <= 0))
        elif kind == "sigmoid":
            row["saturated_fraction"] = float(np.mean((a2 < SATURATION_MARGIN) | (a2 > 1 - SATURATION_MARGIN)))
        else:
            row["saturated_fraction"] = float(np.mean(np.abs(a2) > 1 - SATURATION_MARGIN))
        rows.append(row)
    del out, acts
    return rows


def warnings_for(diag: Mapping[str, Any], lr_decayed: bool = False, epoch: int | None = None,
                 step: int | None = None) -> list[str]:
    """Human-readable warnings for numbers far from healthy (see the module docstring for the rules).

    ``epoch`` (1-based) is the epoch the numbers are from and ``step`` the optimizer steps done by its end: the "too
    high" rule skips the first epoch and the first ``GROWTH_STEPS`` steps. With ``lr_decayed`` (the schedule has
    lowered the rate) a small update ratio is expected and not reported.
    """
    out = []
    for row in diag.get("parameters", []):
        r = row.get("update_ratio")
        if r is not None and len(row.get("shape", [])) >= 2 and r > 0:
            if r > TOO_HIGH_UPDATE_RATIO and (epoch is None or epoch > 1) and (step is None or step > GROWTH_STEPS):
                out.append(f"{row['name']}: update/weight ratio {r:.1e} (mean over the epoch) is far above ~1e-3: "
                           "each step moves these weights by over a tenth of their size (learning rate too high?)")
            elif r < TOO_LOW_UPDATE_RATIO and not lr_decayed:
                out.append(f"{row['name']}: update/weight ratio {r:.1e} (mean over the epoch) is far below ~1e-3 "
                           "(learning rate too low?)")
    for row in diag.get("activations", []):
        if row.get("dead_fraction", 0.0) > 0.5:
            out.append(f"{row['name']}: {row['dead_fraction']:.0%} of the ReLU units are dead on the probe batch")
        if row.get("saturated_fraction", 0.0) > 0.5:
            out.append(f"{row['name']}: {row['saturated_fraction']:.0%} of the {row['kind']} outputs are saturated")
    return out
