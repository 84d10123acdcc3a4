"""The extension API: every op is a ``Function`` node, in the shape of ``torch.autograd.Function``.

A Function has two static methods::

    class Exp(Function):
        @staticmethod
        def forward(ctx, x):            # x: np.ndarray
            out = np.exp(x)
            ctx.save_for_backward(out)  # what backward needs
            return out                  # np.ndarray

        @staticmethod
        def backward(ctx, grad):        # grad: dL/d(out), same shape as out
            (out,) = ctx.saved_tensors
            return grad * out           # dL/dx: upstream times local gradient

    y = Exp.apply(x)                    # x: Tensor -> y: Tensor on the graph

``forward`` receives the NumPy arrays inside the Tensor arguments (other arguments as they are) and returns one
NumPy array. ``backward`` returns one gradient per positional argument of ``forward`` (a tuple, or a bare array when
there is one argument), ``None`` for arguments that are not differentiable. Keyword arguments of ``apply`` are
options (axis, keepdims, ...) and get no gradient. ``backward`` must not modify ``grad`` in place, and must
return new arrays or views, never an array it keeps (a saved or cached one): the engine may adopt a returned
array as a leaf's ``.grad`` and add into it later. A ``None`` gradient counts as zero.

The ``ctx`` object *is* the graph node: an instance of the Function subclass holding its parents (the input
Tensors), ``needs_input_grad`` and the saved arrays. It never references its output Tensor, so graphs hold no
reference cycles and are freed by reference counting alone.

Saved arrays and in-place changes: save the input arrays themselves (or views of them) when backward needs their
values; the engine then checks that they were not changed in place between forward and backward (see
``chainrule.engine``) and raises naming your op if they were. An output that is a view of an input (a reshape, a
slice) shares that input's version counter, as PyTorch's views do. Mixed dtypes are your op's choice; the engine
casts each returned gradient to its input's dtype.

Higher derivatives (``backward(create_graph=True)``, ``chainrule.autograd.grad``). The same ``backward`` then runs
a second way: ``grad`` is a Tensor, grad mode is on, and ``ctx.saved_tensors`` hands back Tensors on the graph for
the saved arrays that were an input Tensor's array (that input) or the output array (the output); NumPy arrays
passed as arguments, like those of a Tensor that does not require grad, are constants. Write ``backward`` with
Python operators, the methods arrays and Tensors share (``sum``, ``reshape``, ``transpose``, ``.T``, ...) and the
functions of ``chainrule.ops.xp`` (``xp.exp``, ``xp.where``, ``xp.gemm``, ...), and it works both ways: on arrays
it is the NumPy code it was, on Tensors every step is an op recorded on the graph, differentiable again (``Exp``
above needs nothing more). Masks and other piecewise-constant values are constants of the second derivative:
compute them from ``xp.value(t)`` (the array), or save them as boolean/integer arrays, which are handed back as
they are.

A saved floating-point array that is neither an input's array nor the output (an intermediate such as batch
norm's normalised input) has no Tensor to stand for, and would be a silent constant; ``create_graph`` then raises
naming your op, unless the op says what stands for its saved values on the graph: a static method
``saved_on_graph(ctx, *saved)`` returning them as Tensors (recomputed from ``ctx.parents``, the input Tensors, with
ops). Arrays kept as ``ctx`` attributes are constants by your op's declaration. A backward that cannot be
differentiated this way is marked ``@once_differentiable`` (under ``@staticmethod``): it then runs on arrays even
with ``create_graph``, and differentiating its result raises an error naming the op, never a silent zero.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, Iterator, TypeVar

import numpy as np

from chainrule.engine import CLOCK as _CLOCK
from chainrule.engine import counter as _counter
from chainrule.engine import grad_mode as _grad_mode
from chainrule.tensor import Tensor

F = TypeVar("F", bound=Callable[..., Any])


def is_grad_enabled() -> bool:
    """True unless inside ``no_grad()``."""
    return _grad_mode.enabled


class _SetGradMode:
    mode = True

    def __enter__(self) -> None:
        self._prev = _grad_mode.enabled
        _grad_mode.enabled = self.mode

    def __exit__(self, *exc: object) -> None:
        _grad_mode.enabled = self._prev

    def __call__(self, fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class no_grad(_SetGradMode):
    """Context manager and decorator: ops inside record no graph (inference, optimizer updates)."""

    mode = False


class enable_grad(_SetGradMode):
    """Context manager and decorator: re-enables recording inside a ``no_grad`` block."""

    mode = True


def once_differentiable(backward: F) -> F:
    """Mark a ``Function.backward`` as differentiable once only (PyTorch's name); put it under ``@staticmethod``.

    With ``create_graph=True`` the marked backward runs on NumPy arrays as usual, and its gradients come back as
    Tensors whose own backward raises an error naming the op, so a second derivative through it fails loudly
    instead of being silently zero."""
    backward.once_differentiable = True  # type: ignore[attr-defined]
    return backward


# Callbacks (node, args, kwargs) told of every node recorded, innermost last: ``record_nodes``. Empty except while
# a model is traced for export, so the hot path pays one truthiness test.
_RECORDERS: list[Callable[..., None]] = []


@contextlib.contextmanager
def record_nodes(callback: Callable[..., None]) -> Iterator[None]:
    """Within the block, call ``callback(node, args, kwargs)`` for every node recorded on a graph: the arguments of
    its ``apply`` (Tensors, arrays, numbers and keyword options), which a node keeps only as far as its backward
    needs them. ``chainrule.onnx`` traces a forward pass with it."""
    _RECORDERS.append(callback)
    try:
        yield
    finally:
        _RECORDERS.remove(callback)


class Function:
    """Base class of every op; see the module docstring. Subclass it and call ``YourOp.apply(...)``."""

    # The engine's fields live in slots, so a node that stores nothing else needs no instance dict (less
    # allocation and less work for Python's garbage collector per op); ``ctx.anything = ...`` still works.
    # For the version check (chainrule.engine): the forward's output array, its version counter (None until one is
    # needed) and the in-place clock when the node was recorded.
    __slots__ = ("parents", "needs_input_grad", "_saved", "_retained", "_out", "_out_vc", "_clock", "__dict__")
    parents: tuple[Tensor | None, ...]
    needs_input_grad: tuple[bool, ...]
    _saved: tuple[Any, ...] | None
    _retained: Any
    _out: np.ndarray
    _out_vc: list[int] | None
    _clock: int

    # Optional: a static method (ctx, *saved arrays) -> the saved values as Tensors on the graph (create_graph)
    saved_on_graph: Callable[..., tuple] | None = None
    _constants: tuple[np.ndarray, ...] = ()  # the NumPy arrays passed as arguments (constants of every derivative)

    @staticmethod
    def forward(ctx: "Function", *args: Any, **kwargs: Any) -> np.ndarray:
        raise NotImplementedError("a Function subclass must define a static forward(ctx, *args)")

    @staticmethod
    def backward(ctx: "Function", grad: np.ndarray) -> Any:
        raise NotImplementedError("a Function subclass must define a static backward(ctx, grad)")

    def save_for_backward(self, *arrays: Any) -> None:
        """Keep arrays for backward; they are released after backward unless ``retain_graph=True``."""
        self._saved = arrays

    @property
    def saved_tensors(self) -> tuple[Any, ...]:
        if self._saved is None:
            raise RuntimeError(
                f"{type(self).__name__}: its saved arrays were released by an earlier backward(); "
                "call backward(retain_graph=True) the first time to backpropagate through a graph twice"
            )
        return self._saved

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Tensor:
        """Run ``forward`` on the arrays of ``args`` and, if any input requires grad, record a node.

        Only floating-point outputs are recorded (an integer or boolean result has no gradient). An output that
        is an input Tensor's array, or a NumPy view of it, shares that tensor's version counter.
        """
        ctx = _new(cls)
        ctx._saved = ()
        ctx._retained = None
        arrays = []
        needs = []
        parents = []
        for a in args:
            if isinstance(a, Tensor):
                arrays.append(a.data)
                needs.append(a.requires_grad)
                parents.append(a)
            else:
                arrays.append(a)
                needs.append(False)
                parents.append(None)
                if type(a) is _ndarray:  # a constant, if create_graph finds it saved (rare: no cost otherwise)
                    ctx._constants += (a,)
        ctx.needs_input_grad = tuple(needs)
        out = cls.forward(ctx, *arrays, **kwargs)
        if type(out) is not _ndarray:
            out = np.asarray(out)
        vc = None if out.base is None and not (arrays and out is arrays[0]) else _view_counter(out, parents)
        if _grad_mode.enabled and True in needs and out.dtype.kind == "f":
            ctx.parents = tuple(parents)
            ctx._out = out
            ctx._out_vc = vc
            ctx._clock = _CLOCK[0]
            if _RECORDERS:  # a trace for export (chainrule.onnx): the node's arguments, which it need not keep
                _RECORDERS[-1](ctx, args, kwargs)
        else:
            ctx = None
        t = _new(Tensor)  # Tensor._from_op, inlined: this is the hot path of every op
        t.data = out
        t.grad = None
        t._ctx = ctx
        t.name = None
        t._vc = vc
        t.requires_grad = ctx is not None
        return t

    def _backward_on_graph(self, grad: Tensor) -> Any:
        """This node's backward for ``create_graph``: on the Tensor ``grad`` and the saved values as Tensors."""
        cls = type(self)
        if getattr(cls.backward, "once_differentiable", False):
            return _once_differentiable(self, grad)
        arrays = self._saved
        self._saved = _saved_on_graph(self, arrays)
        try:
            return cls.backward(self, grad)
        except _ArrayOfTensorError as e:
            raise RuntimeError(
                f"{cls.__name__}.backward, run with create_graph=True, called a NumPy function on a Tensor ({e}), "
                "which would make that value a constant of the second derivative. Write the backward with "
                "operators, Tensor methods and chainrule.ops.xp functions (see chainrule.function), or mark it "
                "@once_differentiable"
            ) from None
        finally:
            self._saved = arrays  # the Tensors include this node's output: holding them would be a cycle


class _ArrayOfTensorError(TypeError):
    """Raised by ``Tensor.__array__`` while a create_graph backward runs (see ``Function._backward_on_graph``)."""


def output_of(node: Function) -> Tensor:
    """A Tensor for the output of ``node``, on the graph (the node never references its output Tensor: this is a
    new Tensor object with the same array, node and version counter)."""
    vc = node._out_vc
    if vc is None:
        vc = node._out_vc = [0, 0]
    return Tensor._from_op(node._out, node, vc)


def _saved_on_graph(node: Function, arrays: tuple[Any, ...]) -> tuple[Any, ...]:
    """The saved values of ``node`` for a create_graph backward: its ``saved_on_graph``, or each floating-point
    array replaced by the input whose array it is (the one at its own position first, so ``x * x.detach()`` keeps
    its constant) or by the output; NumPy arrays passed as arguments, and other values (masks, indices, numbers),
    as they are."""
    hook = type(node).saved_on_graph
    if hook is not None:
        return tuple(hook(node, *arrays))
    parents = node.parents
    out = None
    resolved = []
    for i, s in enumerate(arrays):
        if type(s) is not _ndarray or s.dtype.kind != "f":
            resolved.append(s)
            continue
        p = parents[i] if i < len(parents) else None
        if p is None or p.data is not s:
            p = next((q for q in parents if q is not None and q.data is s), None)
        if p is None:
            if any(s is c for c in node._constants):  # an array argument: a constant
                resolved.append(s)
                continue
            if s is not node._out:
                name = type(node).__name__
                raise RuntimeError(
                    f"{name}: create_graph=True needs the values {name} saved for backward as Tensors on the graph, "
                    f"but saved value {i} (a {s.dtype} array of shape {s.shape}) is neither one of its inputs' arrays "
                    f"nor its output, so its dependence on the inputs is unknown. Fix: give {name} a static method "
                    "saved_on_graph(ctx, *saved) that recomputes it from ctx.parents with ops, keep it as a ctx "
                    "attribute if it is a constant, or mark the backward @once_differentiable"
                )
            p = out = output_of(node) if out is None else out
        resolved.append(p)
    return tuple(resolved)


def _once_differentiable(node: Function, grad: Tensor) -> tuple[Any, ...]:
    """Run a once-differentiable backward on arrays; its gradients, as Tensors, raise if differentiated again."""
    in_grads = type(node).backward(node, grad.data)
    if type(in_grads) is not tuple:
        in_grads = (in_grads,)
    deps = [t for t in (grad, *node.parents) if t is not None and t.requires_grad]
    name = type(node).__name__
    return tuple(None if g is None else OnceDifferentiable.apply(np.asarray(g), *deps, op=name) for g in in_grads)


class OnceDifferentiable(Function):
    """Stands for the gradient of a once-differentiable op on the graph: its backward raises naming the op."""

    @staticmethod
    def forward(ctx, value, *deps, op=""):
        ctx.op = op
        return value

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError(
            f"{ctx.op}.backward is marked once_differentiable: its gradient cannot be differentiated again (a higher "
            f"derivative through {ctx.op} was asked for). Compute this derivative without differentiating through "
            f"{ctx.op}'s gradient, or give {ctx.op} a backward written with differentiable ops (see "
            "chainrule.function)"
        )


_new = object.__new__
_ndarray = np.ndarray


def _view_counter(out: np.ndarray, parents: list[Tensor | None]) -> list[int] | None:
    """The version counter of the input tensor whose memory ``out`` is or views (None, a fresh one, if none)."""
    base = out.base
    for p in parents:
        if p is not None and (p.data is out or base is not None and (p.data is base or p.data.base is base)):
            return _counter(p)
    return None
