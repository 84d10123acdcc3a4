"""The backward engine: walk the graph in reverse topological order, upstream gradient times local gradient.

``run_backward(seeds, retain_graph, create_graph, inputs)`` is what ``Tensor.backward`` and
``chainrule.autograd.grad`` call once they have checked their arguments:

1. order the nodes reachable from the seeds' tensors (each after every node it depends on);
2. check, for every node, that the arrays it saved for backward still hold the values of the forward pass
   (``check_versions``), so a graph that an in-place change made stale raises before any gradient is computed;
3. visit the nodes from the outputs down: each node's ``backward`` turns the gradient of its output into gradients of
   its inputs, which are summed per node ("the copy gate adds") and, at the leaves, accumulated into ``.grad``
   (``backward()``) or returned (``autograd.grad``, which also skips the nodes that lead to none of its inputs).

The backward pass is itself a computation, and with ``create_graph=True`` it is recorded as one more graph: the
gradients are Tensors, each node's backward runs on them with grad mode on, its saved arrays handed over as the
Tensors they came from (``chainrule.function.saved_on_graph``), so the ops it calls record their own nodes. Without
``create_graph`` the very same backward code runs on NumPy arrays (the fast path training uses); see
``chainrule.function`` for how one backward serves both.

Version counters. Every Tensor has one, ``t._vc = [version, clock]`` (made on first need by ``counter``; None
until then, which reads as version 0): ``version`` counts its in-place changes and ``clock`` is the value of the
global ``CLOCK`` at the last one. A view (reshape, transpose, basic indexing,
``detach``...) shares the list of the tensor it views, so changing either is seen through both. ``bump`` is the one
function every in-place path calls (the in-place Tensor methods, optimizer steps, ``Module.load_state_dict``). A node
records ``CLOCK`` when it is created (``ctx._clock``); while no in-place change has happened since, checking it
costs one integer comparison. Otherwise ``stale_input`` looks at each tensor whose counter moved after the node was
recorded and asks whether one of the saved arrays overlaps that tensor's memory (``np.may_share_memory``). Nodes
recorded by a ``create_graph`` backward save arrays like any other node and are checked the same way. Accumulating
into a ``.grad`` that is a Tensor never changes it in place (``.grad`` is rebound to the sum), so it bumps nothing.

One case is not seen: an in-place change of a tensor followed by replacing its array (``t.data = other``, as
``Module.to`` does) before the backward of a graph recorded earlier; the node then compares its saved arrays with the
new array. Keeping every node's input arrays to close that gap cost ~5% of the per-op time, mostly in Python's
garbage collector (the extra list per node), for a sequence no training loop produces.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

_ndarray = np.ndarray
CLOCK = [0]  # the number of in-place changes of any tensor so far (a list, so that other modules share it)


class _GradMode(threading.local):
    """Per thread (as in PyTorch): whether ops record the graph (``enabled``: False inside ``no_grad()``;
    ``chainrule.function`` has the context managers), and whether a ``create_graph`` backward is running
    (``building``: then ``Tensor.__array__`` refuses, so that no NumPy function turns a graph Tensor into a
    constant array unnoticed)."""

    enabled = True
    building = False


grad_mode = _GradMode()


def counter(t: Any) -> list[int]:
    """Tensor ``t``'s version counter, made on first need: most tensors never need one (no view of them is taken,
    nothing changes them), so an op's output starts with ``_vc = None``, read as version 0. The counter of an op's
    output is kept by the node that produced it too (``_out_vc``), which checks it if it saved that array and shares
    it with the other Tensors of that output (``output_of``)."""
    vc = t._vc
    if vc is None:
        ctx = t._ctx
        if ctx is None:
            vc = t._vc = [0, 0]
        else:
            vc = ctx._out_vc
            if vc is None:
                vc = ctx._out_vc = [0, 0]
            t._vc = vc
    return vc


def bump(t: Any) -> None:
    """Record an in-place change of the data of Tensor ``t`` (and of every view sharing its counter)."""
    CLOCK[0] += 1
    vc = counter(t)
    vc[0] += 1
    vc[1] = CLOCK[0]


def run_backward(seeds: list[tuple[Any, Any]], retain_graph: bool, create_graph: bool = False,
                 inputs: list[Any] | None = None) -> list[Any] | None:
    """Backpropagate from ``seeds``, pairs (tensor, gradient of that tensor: an array of its shape and dtype, or with
    ``create_graph`` a Tensor). ``inputs`` None: accumulate into the leaves' ``.grad``; else return the gradients
    of the tensors ``inputs`` (None where no gradient reached one) and touch no ``.grad``."""
    from chainrule.tensor import Tensor

    wanted = None if inputs is None else _Wanted(inputs)
    # what reaching a leaf does: (leaf, gradient, whether the engine owns that gradient array) -> None
    to_leaf = wanted.leaf if wanted is not None else (
        Tensor._accumulate_on_graph if create_graph else Tensor._accumulate)
    grads: dict[Any, Any] = {}
    for t, g in seeds:
        ctx = t._ctx
        if ctx is None:
            to_leaf(t, g, False)
        else:
            grads[ctx] = g if ctx not in grads else grads[ctx] + g
    order = topological_order(*grads)
    check_versions(order)  # before any gradient is computed: no wrong number reaches a .grad
    if wanted is not None:
        wanted.prune(order)
    mode = (grad_mode.enabled, grad_mode.building)
    if create_graph:
        grad_mode.enabled = grad_mode.building = True
    try:
        for node in reversed(order):
            g = grads.pop(node, None)
            if g is None:  # every gradient sent to this node was None: nothing flows through it (nor is released)
                continue
            if node._saved is None:
                raise RuntimeError(
                    f"backward: the graph through {type(node).__name__} was already released by an earlier "
                    "backward(); call backward(retain_graph=True) the first time to backpropagate twice"
                )
            if wanted is None:
                retained = node._retained  # retain_grad(): the node's output keeps its gradient (not autograd.grad)
                if retained is not None and retained() is not None:
                    to_leaf(retained(), g, False)
                _backward_node(node, g, grads, create_graph, to_leaf)
            elif not wanted.visit(node, g, grads, create_graph):
                continue
            if not retain_graph:
                node._saved = None
    finally:
        grad_mode.enabled, grad_mode.building = mode
    return None if wanted is None else wanted.found


def _backward_node(node: Any, g: Any, grads: dict, create_graph: bool, to_leaf: Any) -> None:
    """Run one node's backward with upstream gradient ``g``: hand leaves their share, pass the rest on in ``grads``."""
    in_grads = node._backward_on_graph(g) if create_graph else type(node).backward(node, g)
    if type(in_grads) is not tuple:
        in_grads = (in_grads,)
    parents = node.parents
    if len(in_grads) != len(parents):
        raise RuntimeError(
            f"{type(node).__name__}.backward returned {len(in_grads)} gradients for "
            f"{len(parents)} forward arguments; return one per argument (None if not differentiable)"
        )
    for parent, pg in zip(parents, in_grads):
        if pg is None or parent is None or not parent.requires_grad:
            continue
        data = parent.data
        if create_graph or type(pg) is not _ndarray or pg.shape != data.shape or pg.dtype is not data.dtype:
            pg = _conform(node, parents.index(parent), pg, data, create_graph)
        ctx = parent._ctx
        if ctx is None:
            # A leaf may keep pg itself (no copy) only if no one else can see it: not a view, not the upstream
            # gradient, not returned for another argument too. Later accumulation is in place.
            to_leaf(parent, pg, (create_graph or pg.base is None) and pg is not g and
                    _count_identical(pg, in_grads) == 1)
        else:
            prev = grads.get(ctx)
            grads[ctx] = pg if prev is None else prev + pg


def _conform(node: Any, i: int, pg: Any, data: np.ndarray, create_graph: bool) -> Any:
    """The gradient ``pg`` of argument ``i`` with the input's shape and dtype (as PyTorch's engine casts a gradient to
    its input's dtype: a float32 input of a float64 op gets a float32 gradient); a wrong shape raises. An array,
    or with ``create_graph`` a Tensor (the cast recorded on the graph)."""
    if getattr(pg, "shape", None) != data.shape:
        what = f"shape {pg.shape}" if hasattr(pg, "shape") else f"a {type(pg).__name__}"
        raise RuntimeError(
            f"{type(node).__name__}.backward returned {what} as the gradient of argument {i}, which has "
            f"shape {data.shape}; return a NumPy array of the input's shape"
        )
    if create_graph:
        from chainrule.tensor import Tensor

        return (pg if isinstance(pg, Tensor) else Tensor(np.asarray(pg))).astype(data.dtype)
    return np.asarray(pg, dtype=data.dtype)


def _count_identical(x: Any, items: tuple) -> int:
    n = 0
    for item in items:
        if item is x:
            n += 1
    return n


class _Wanted:
    """``autograd.grad``'s bookkeeping: the tensors whose gradients it returns (leaves or not), the gradients found
    so far, and which nodes lead to one of them. The others are not run, and a node runs only the part of its
    backward that leads to one (its ``needs_input_grad`` is narrowed while it runs)."""

    def __init__(self, inputs: list[Any]):
        self.found: list[Any] = [None] * len(inputs)
        self.leaves = {id(t): i for i, t in enumerate(inputs) if t._ctx is None}
        self.nodes = {t._ctx: i for i, t in enumerate(inputs) if t._ctx is not None}
        self.needs: dict[Any, tuple[bool, ...]] = {}

    def prune(self, order: list[Any]) -> None:
        """For every node (dependencies first), which of its inputs lead to a wanted tensor."""
        leads = set(self.nodes)
        for node in order:
            needs = tuple(p is not None and p.requires_grad and
                          (id(p) in self.leaves if p._ctx is None else p._ctx in leads) for p in node.parents)
            if True in needs:
                leads.add(node)
            self.needs[node] = needs

    def visit(self, node: Any, g: Any, grads: dict, create_graph: bool) -> bool:
        """Record ``g`` if ``node`` made a wanted tensor, and run the node's backward if it leads to another one;
        False if it did not run."""
        i = self.nodes.get(node)
        if i is not None:
            self.found[i] = g if self.found[i] is None else self.found[i] + g
        needs = self.needs[node]
        if True not in needs:
            return False
        own, node.needs_input_grad = node.needs_input_grad, needs
        try:
            _backward_node(node, g, grads, create_graph, self.leaf)
        finally:
            node.needs_input_grad = own
        return True

    def leaf(self, t: Any, g: Any, owned: bool) -> None:
        i = self.leaves.get(id(t))
        if i is not None:
            self.found[i] = g if self.found[i] is None else self.found[i] + g


def check_versions(order: list[Any]) -> None:
    """Raise if a node's saved arrays were changed in place after the node was recorded (see the module doc)."""
    now = CLOCK[0]
    for node in order:
        if node._clock != now and node._saved:
            problem = stale_input(node)
            if problem is not None:
                raise RuntimeError(_stale_message(node, *problem))


def stale_input(node: Any) -> tuple[str, Any] | None:
    """(which argument, its version counter) of the first tensor, input or output of ``node``, that was changed in
    place after ``node`` was recorded while an array ``node`` saved shares its memory; None if there is none."""
    t0 = node._clock
    saved = [s for s in node._saved if isinstance(s, np.ndarray)]
    for i, parent in enumerate(node.parents):
        vc = None if parent is None else parent._vc
        if vc is not None and vc[1] > t0 and any(np.may_share_memory(s, parent.data) for s in saved):
            return f"input {i} (a {parent.data.dtype} tensor of shape {parent.data.shape})", vc
    vc = node._out_vc
    if vc is not None and vc[1] > t0 and any(np.may_share_memory(s, node._out) for s in saved):
        return f"output (a {node._out.dtype} tensor of shape {node._out.shape})", vc
    return None


def _stale_message(node: Any, which: str, vc: list[int]) -> str:
    op = type(node).__name__
    return (
        f"backward: {op} saved its {which} for the backward pass, and that tensor was modified in place after "
        f"{op} was computed (it is now at version {vc[0]}), so the gradient would be computed from the new values. "
        "In-place changes are optimizer steps, in-place methods (add_, mul_, zero_, copy_, t[...] = ...) and "
        "load_state_dict. Fix: call backward() before the change (e.g. before optimizer.step()), or run the "
        "forward pass again after it."
    )


def topological_order(*roots: Any) -> list[Any]:
    """Nodes reachable from the nodes ``roots``, each once, every node after the nodes it depends on (iterative DFS).

    A node is pushed once to be expanded (its parents' nodes pushed above it) and once more, marked done, to be
    emitted after all of them; in a DAG a parent is never both expanded and unfinished when met again.
    """
    order = []
    visited = set()
    stack = [(root, False) for root in reversed(roots)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
        elif node not in visited:
            visited.add(node)
            stack.append((node, True))
            for parent in node.parents:
                if parent is not None and parent._ctx is not None and parent._ctx not in visited:
                    stack.append((parent._ctx, False))
    return order
