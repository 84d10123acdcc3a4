"""Gradient checking: compare backward() with centered numerical differences, as CS231n teaches.

    df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / 2h        (error O(h^2), unlike the one-sided O(h))

Checks run in float64: in float32 the rounding error of f swamps the difference quotient. ``gradcheck`` checks first
derivatives; ``gradgradcheck`` checks second derivatives the same way, by gradient-checking the backward pass
itself (PyTorch's meaning).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np

from chainrule.function import enable_grad, is_grad_enabled, no_grad
from chainrule.tensor import Tensor


def numerical_gradient(f: Callable[[np.ndarray], Any], x: np.ndarray, h: float = 1e-5,
                       df: np.ndarray | None = None) -> np.ndarray:
    """Centered-difference gradient of ``f`` at ``x`` (an ndarray, perturbed in place and restored).

    ``f(x)`` returns a number, or an array whose gradient is then taken of ``sum(f(x) * df)`` (the vector-Jacobian
    product with the upstream gradient ``df``, CS231n's ``eval_numerical_gradient_array``).
    """
    x = np.asarray(x)
    grad = np.zeros(x.shape, dtype=np.float64)
    for idx in np.ndindex(*x.shape):
        old = x[idx]
        x[idx] = old + h
        f_plus = np.asarray(f(x), dtype=np.float64)
        x[idx] = old - h
        f_minus = np.asarray(f(x), dtype=np.float64)
        x[idx] = old
        diff = f_plus - f_minus
        grad[idx] = (diff * df).sum() / (2 * h) if df is not None else diff.sum() / (2 * h)
    return grad


def rel_error(a: Any, b: Any) -> float:
    """max_i |a_i - b_i| / max(|a_i| + |b_i|, 1e-8): CS231n's relative error (below ~1e-7 is a pass in float64)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


class GradcheckError(AssertionError):
    """Raised by ``gradcheck`` when an analytic gradient disagrees with the numerical one."""


def _inputs(inputs: tuple) -> tuple:
    """``fn(*inputs)``'s arguments: chainrule's ``gradcheck(fn, x, y)`` or PyTorch's ``gradcheck(fn, (x, y))``
    (one tuple or list of inputs)."""
    if len(inputs) == 1 and isinstance(inputs[0], (tuple, list)):
        return tuple(inputs[0])
    return inputs


def gradcheck(fn: Callable[..., Tensor], *inputs: Any, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              samples: int | None = None, seed: int = 0) -> bool:
    """Check ``fn``'s backward against centered differences at ``inputs``, in float64.

    ``inputs`` as PyTorch's ``gradcheck(fn, (x, y))`` (one tuple or list, or one Tensor) or ``gradcheck(fn, x, y)``.

    Every Tensor input with ``requires_grad=True`` is checked (other inputs are constants). For a non-scalar output
    the check is of ``sum(fn(*inputs) * R)`` for a fixed random ``R``, which exercises the whole backward pass.
    ``samples=k`` checks k random coordinates per input instead of all of them (for large inputs). A coordinate
    passes when ``|analytic - numeric| <= atol + rtol * |numeric|``. Returns True or raises ``GradcheckError`` naming
    the input, the coordinate and both values.
    """
    rng = np.random.default_rng(seed)
    xs = [_as_float64(x) for x in _inputs(inputs)]
    checked = [i for i, x in enumerate(xs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad; pass Tensors created with requires_grad=True")

    out = fn(*xs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    upstream = rng.standard_normal(out.shape) if out.size > 1 else np.ones(out.shape)
    out.backward(upstream)

    def objective() -> float:
        with no_grad():
            return float(np.sum(fn(*xs).data * upstream))

    for i in checked:
        x = xs[i]
        analytic = np.zeros(x.shape) if x.grad is None else x.grad
        coords = list(np.ndindex(*x.shape))
        if samples is not None and samples < len(coords):
            coords = [coords[j] for j in rng.choice(len(coords), size=samples, replace=False)]
        for idx in coords:
            old = x.data[idx]
            x.data[idx] = old + eps
            f_plus = objective()
            x.data[idx] = old - eps
            f_minus = objective()
            x.data[idx] = old
            numeric = (f_plus - f_minus) / (2 * eps)
            if not abs(analytic[idx] - numeric) <= atol + rtol * abs(numeric):
                raise GradcheckError(
                    f"gradcheck: input {i} (shape {x.shape}) at {idx}: analytic {analytic[idx]:.10g} vs numerical "
                    f"{numeric:.10g} (rel_error {rel_error(analytic[idx], numeric):.3g}, atol={atol}, rtol={rtol})"
                )
    return True


def gradgradcheck(fn: Callable[..., Tensor], *inputs: Any, grad_outputs: Any = None, eps: float = 1e-6,
                  atol: float = 1e-5, rtol: float = 1e-3, samples: int | None = None, seed: int = 0) -> bool:
    """Check ``fn``'s second derivatives at ``inputs`` against centered differences of its gradients, in float64.
    ``inputs`` as PyTorch's ``gradgradcheck(fn, (x, y))`` or as ``gradgradcheck(fn, x, y)``.

    As PyTorch's ``gradgradcheck``: the backward pass of ``fn`` is a function g(inputs, v) = v . d fn / d inputs
    (the gradients ``autograd.grad(fn(*inputs), inputs, v)``, for an upstream gradient ``v``: ``grad_outputs``, or a
    fixed random one), and ``gradcheck`` checks g's own backward, built with ``create_graph=True``, against
    numerical differences of g, with respect to every input that requires grad and to ``v``. (The gradients of g
    are weighted by fixed random arrays to make one scalar, as ``gradcheck`` does for a non-scalar output.) Returns
    True or raises ``GradcheckError`` naming the input and coordinate whose second derivative is wrong.
    """
    from chainrule.autograd import grad

    rng = np.random.default_rng(seed)
    xs = [_as_float64(x) for x in _inputs(inputs)]
    checked = [i for i, x in enumerate(xs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradgradcheck: no input requires grad; pass Tensors created with requires_grad=True")
    with enable_grad():
        out = fn(*xs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradgradcheck: fn must return a Tensor, got {type(out).__name__}")
    v = rng.standard_normal(out.shape) if grad_outputs is None else np.array(getattr(grad_outputs, "data",
                                                                                     grad_outputs), np.float64)
    weights = [rng.standard_normal(xs[i].shape) for i in checked]

    def backward_pass(*args: Tensor) -> Tensor:
        """g(inputs, v), weighted into one number; differentiable when called with grad mode on."""
        create_graph = is_grad_enabled()  # gradcheck's numerical passes run in no_grad(): only values needed
        with enable_grad():
            *xs_, v_ = args
            grads = grad(fn(*xs_), [xs_[i] for i in checked], v_, create_graph=create_graph, allow_unused=True)
            total = Tensor(np.zeros(()))
            for g, w in zip(grads, weights):
                if g is not None:
                    total = total + (g * w).sum()
            return total

    try:
        return gradcheck(backward_pass, *xs, Tensor(v, requires_grad=True), eps=eps, atol=atol, rtol=rtol,
                         samples=samples, seed=seed)
    except GradcheckError as e:
        raise GradcheckError(f"gradgradcheck (second derivatives; the last input is grad_outputs): {e}") from None


@dataclass(frozen=True)
class ParameterCheck:
    """One parameter's result in ``check_parameters``: entries checked, the largest relative and absolute errors."""

    name: str
    shape: tuple[int, ...]
    checked: int
    max_rel_error: float
    max_abs_error: float
    ok: bool


def check_parameters(loss_fn: Callable[[], Tensor], params: Iterable[tuple[str, Any]], *, eps: float = 1e-5,
                     tol: float = 1e-5, atol: float = 1e-8, samples: int | None = None,
                     rng: np.random.Generator | None = None) -> tuple[float, list[ParameterCheck]]:
    """CS231n's gradient check of a model's loss, parameter by parameter (float64 parameters).

    ``loss_fn()`` evaluates the scalar loss (it must be deterministic: restore dropout masks inside it); one
    backward pass gives the analytic gradients, then each entry of each named parameter (or ``samples`` random
    entries of a larger one, drawn from ``rng``) is compared with the centered difference (L(w + h) - L(w - h)) / 2h.
    An entry passes when its ``rel_error`` is at most ``tol`` or its absolute error at most ``atol`` (gradients
    that are zero in exact arithmetic have meaningless relative errors). Returns (the loss, one ``ParameterCheck``
    per parameter)."""
    params = list(params)
    rng = np.random.default_rng(0) if rng is None else rng
    for _, p in params:
        p.grad = None
    loss = loss_fn()
    loss.backward()
    results = []
    for name, p in params:
        analytic = np.zeros_like(p.data) if p.grad is None else p.grad.copy()
        coords = list(np.ndindex(*p.shape))
        if samples is not None and len(coords) > samples:
            coords = [coords[i] for i in rng.choice(len(coords), size=samples, replace=False)]
        worst = worst_abs = 0.0
        ok = True
        for idx in coords:
            old = p.data[idx]
            p.data[idx] = old + eps
            plus = float(loss_fn().data)
            p.data[idx] = old - eps
            minus = float(loss_fn().data)
            p.data[idx] = old
            numeric = (plus - minus) / (2 * eps)
            rel, diff = rel_error(analytic[idx], numeric), abs(float(analytic[idx]) - numeric)
            worst, worst_abs = max(worst, rel), max(worst_abs, diff)
            ok = ok and (rel <= tol or diff <= atol)
        results.append(ParameterCheck(name, tuple(p.shape), len(coords), worst, worst_abs, ok))
    return float(loss.data), results


def _as_float64(x: Any) -> Any:
    """A float64 copy of a floating-point Tensor (keeping requires_grad); other inputs unchanged."""
    if isinstance(x, Tensor) and np.issubdtype(x.dtype, np.floating):
        return Tensor(np.array(x.data, dtype=np.float64), requires_grad=x.requires_grad)
    return x
