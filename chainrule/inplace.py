"""In-place Tensor methods (PyTorch's trailing-underscore names): each changes ``t.data`` and bumps its version.

They are plain data updates, not recorded on the graph, so they refuse a tensor that requires grad while the graph
is being recorded; use them inside ``no_grad()`` (a hand-written parameter update, an initialisation) or on tensors
that do not require grad. A graph that saved the old values then refuses to backpropagate (``chainrule.engine``),
instead of silently using the new ones. Each returns the tensor itself, so calls chain.

    with cr.no_grad():
        w.sub_(lr * w.grad)       # what an optimizer step does
        w[0] = 0.0                # indexed assignment, also counted
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.engine import bump, grad_mode


def _array(x: Any) -> Any:
    return x.data if isinstance(x, InPlaceMethods) else x


class InPlaceMethods:
    """Mixed into ``Tensor``: zero_, fill_, copy_, add_, sub_, mul_, div_, clamp_ and ``t[index] = value``."""

    __slots__ = ()

    def _write(self, op: str, fn: Any, *args: Any) -> Any:
        if self.requires_grad and grad_mode.enabled:
            raise RuntimeError(
                f"{op}: in-place changes of a tensor that requires grad are not recorded on the graph; do it "
                "inside `with chainrule.no_grad():` (e.g. a hand-written parameter update), or use the out-of-place "
                "op (y = y + x instead of y.add_(x))"
            )
        try:
            fn(self.data, *(_array(a) for a in args))
        except TypeError as e:  # NumPy refuses to cast, e.g. a float result into an integer tensor
            raise TypeError(f"{op}: cannot store the result in this {self.data.dtype} tensor in place ({e}); "
                            "convert the tensor first (t = t.astype(...)) or use the out-of-place op") from None
        bump(self)
        return self

    def zero_(self) -> Any:
        """Set every element to 0."""
        return self._write("zero_", lambda d: d.fill(0))

    def fill_(self, value: Any) -> Any:
        """Set every element to ``value``."""
        return self._write("fill_", lambda d, v: d.fill(v), value)

    def copy_(self, src: Any) -> Any:
        """Copy ``src`` (broadcast to this shape, cast to this dtype) into the tensor."""
        return self._write("copy_", lambda d, s: np.copyto(d, s, casting="unsafe"), src)

    def add_(self, other: Any, alpha: Any = 1) -> Any:
        """self += alpha * other."""
        return self._write("add_", lambda d, o: np.add(d, o if alpha == 1 else np.multiply(o, alpha), out=d), other)

    def sub_(self, other: Any, alpha: Any = 1) -> Any:
        """self -= alpha * other."""
        return self._write("sub_", lambda d, o: np.subtract(d, o if alpha == 1 else np.multiply(o, alpha), out=d),
                           other)

    def mul_(self, other: Any) -> Any:
        """self *= other."""
        return self._write("mul_", lambda d, o: np.multiply(d, o, out=d), other)

    def div_(self, other: Any) -> Any:
        """self /= other."""
        return self._write("div_", lambda d, o: np.divide(d, o, out=d), other)

    def clamp_(self, min: Any = None, max: Any = None) -> Any:
        """Limit every element to [min, max] (either may be None)."""
        if min is None and max is None:
            raise ValueError("clamp_: pass min, max or both")
        return self._write("clamp_", lambda d, lo, hi: np.clip(d, lo, hi, out=d), min, max)

    clip_ = clamp_

    def __setitem__(self, index: Any, value: Any) -> None:
        """``t[index] = value`` with PyTorch's indexing rule (``chainrule.ops.indexing``; ``index`` may hold
        Tensors): ``value`` broadcasts to the shape ``t[index]`` has."""
        from chainrule.ops.indexing import plan

        p = plan(self.data.ndim, index)
        self._write("t[index] = value", lambda d, v: p.assign(d, v), value)
