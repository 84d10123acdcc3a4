"""``chainrule.autograd.grad``: the gradients of outputs with respect to chosen inputs, returned instead of
accumulated into ``.grad`` (PyTorch's ``torch.autograd.grad``).

    >>> import numpy as np, chainrule as cr
    >>> x = cr.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    >>> y = (x ** 3).sum()
    >>> (g,) = cr.autograd.grad(y, x, create_graph=True)   # 3 x^2, itself on a graph
    >>> g.data
    array([ 3., 12.])
    >>> (h,) = cr.autograd.grad(g.sum(), x)                # its gradient: 6 x
    >>> h.data
    array([ 6., 12.])

With ``create_graph=True`` the backward pass is recorded as a graph of its own (see ``chainrule.engine``), so the
gradients it returns can be differentiated again: Hessian-vector products, gradient penalties, Newton steps.
``docs/autograd.md`` has worked examples.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from chainrule import engine
from chainrule.function import Function, once_differentiable
from chainrule.tensor import Tensor, _seed_gradient

__all__ = ["grad", "Function", "once_differentiable"]


def grad(outputs: Tensor | Sequence[Tensor], inputs: Tensor | Sequence[Tensor],
         grad_outputs: Any = None, retain_graph: bool | None = None, create_graph: bool = False,
         allow_unused: bool = False) -> tuple[Tensor | None, ...]:
    """The sum over ``outputs`` of d(output)/d(input) times its ``grad_outputs`` entry, for each of ``inputs``.

    ``outputs``: a Tensor or a sequence of them, each requiring grad. ``inputs``: a Tensor or a sequence of them,
    each requiring grad (leaves or intermediate results). ``grad_outputs``: the gradient to start from for each
    output (arrays or Tensors of its shape; None or a None entry means 1, for single-element outputs only).

    Returns a tuple with one Tensor per input, of the input's shape and dtype; no ``.grad`` is changed. An input
    that the outputs do not depend on raises, unless ``allow_unused=True``, which gives None for it instead. With
    ``create_graph=True`` the returned Tensors are on a graph (differentiable again), and ``grad_outputs`` may
    require grad. The graph's saved arrays are released unless ``retain_graph`` is True (its default is
    ``create_graph``). Only the parts of the graph that lead to ``inputs`` are run.
    """
    outputs = _tensors("outputs", outputs)
    inputs = _tensors("inputs", inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, (Tensor, np.ndarray)) or np.isscalar(grad_outputs):
        grad_outputs = [grad_outputs]
    else:
        grad_outputs = list(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs; pass one per output")
    for i, t in enumerate(outputs):
        if not t.requires_grad:
            raise RuntimeError(f"grad: outputs[{i}] does not require grad, so it has no graph to differentiate; "
                               "compute it from tensors created with requires_grad=True (not inside no_grad())")
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"grad: inputs[{i}] does not require grad, so no gradient can reach it; create it with "
                               "requires_grad=True")
    seeds = [(t, _seed_gradient("grad", t, g, create_graph, f"grad_outputs[{i}]" if len(outputs) > 1 else
                                "grad_outputs")) for i, (t, g) in enumerate(zip(outputs, grad_outputs))]
    # one entry per distinct input (a tensor listed twice, or two Tensors of one node's output, get one gradient each)
    keys = [id(t) if t._ctx is None else t._ctx for t in inputs]
    distinct: dict[Any, Tensor] = {}
    for key, t in zip(keys, inputs):
        distinct.setdefault(key, t)
    found = engine.run_backward(seeds, create_graph if retain_graph is None else bool(retain_graph), create_graph,
                                inputs=list(distinct.values()))
    by_key = dict(zip(distinct, found))
    found = [by_key[key] for key in keys]
    results = []
    for i, (t, g) in enumerate(zip(inputs, found)):
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    f"grad: inputs[{i}] (shape {t.shape}) was not used to compute the outputs, so it has no "
                    "gradient; pass allow_unused=True to get None for it"
                )
            results.append(None)
        elif isinstance(g, Tensor):
            results.append(g)
        else:
            results.append(Tensor(np.array(g, dtype=t.dtype, copy=True)))
    return tuple(results)


def _tensors(what: str, x: Any) -> list[Tensor]:
    items = [x] if isinstance(x, Tensor) else list(x)
    if not items:
        raise ValueError(f"grad: {what} is empty; pass at least one Tensor")
    for i, t in enumerate(items):
        if not isinstance(t, Tensor):
            raise TypeError(f"grad: {what}[{i}] is a {type(t).__name__}, expected a chainrule Tensor")
    return items
