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
"""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

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


_new = object.__new__
_ndarray = np.ndarray


def _view_counter(out: np.ndarray, parents: list[Tensor | None]) -> list[int] | None:
    """The version counter of the input tensor whose memory ``out`` is or views (None, a fresh one, if none)."""
    base = out.base
    for p in parents:
        if p is not None and (p.data is out or base is not None and (p.data is base or p.data.base is base)):
            return _counter(p)
    return None
