"""Dtype promotion follows PyTorch's rule for every binary op: numbers (Python or NumPy scalars) and 0-d tensors do
not promote a float tensor, integer tensors take the floating dtype of the other operand, and gradients have
their inputs' dtypes. Checked against ``torch.result_type`` / the torch op itself on a grid of operand kinds."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import chainrule as cr
from chainrule import Tensor, nn
from chainrule.ops._util import result_dtype

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch (the oracle) is not installed")

# operand kinds: name -> numpy value (a Tensor's data, or a number)
TENSORS = {
    "f32": np.full(3, 2.0, dtype=np.float32),
    "f64": np.full(3, 2.0, dtype=np.float64),
    "f16": np.full(3, 2.0, dtype=np.float16),
    "i64": np.full(3, 2, dtype=np.int64),
    "i32": np.full(3, 2, dtype=np.int32),
    "u8": np.full(3, 2, dtype=np.uint8),
    "bool": np.array([True, False, True]),
    "f64 0-d": np.array(2.0, dtype=np.float64),
    "f32 0-d": np.array(2.0, dtype=np.float32),
    "i64 0-d": np.array(2, dtype=np.int64),
}
NUMBERS = {"python float": 2.5, "python int": 2, "numpy float64": np.float64(2.5), "numpy int32": np.int32(2)}

BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "div": (lambda a, b: a / b, lambda a, b: a / b),
    "pow": (lambda a, b: a**b, lambda a, b: a**b),
    "maximum": (cr.maximum, torch.maximum if torch else None),
    "minimum": (cr.minimum, torch.minimum if torch else None),
    "where": (lambda a, b: cr.where(np.array(True), a, b), lambda a, b: torch.where(torch.tensor(True), a, b)),
    "clip min": (lambda a, b: cr.clip(a, b), lambda a, b: torch.clamp(a, min=b)),
    "clip max": (lambda a, b: cr.clip(a, None, b), lambda a, b: torch.clamp(a, max=b)),
    "matmul": (lambda a, b: a @ b, lambda a, b: a @ b),
    "concatenate": (lambda a, b: cr.concatenate([a, b]), lambda a, b: torch.cat([a, b])),
    "stack": (lambda a, b: cr.stack([a, b]), lambda a, b: torch.stack([a, b])),
}


def ours(x):
    return Tensor(x) if isinstance(x, np.ndarray) else x


def theirs(x):
    return torch.from_numpy(np.array(x)) if isinstance(x, np.ndarray) else x


def torch_dtype_name(dtype) -> str:
    return str(dtype).replace("torch.", "")


def pairs(op: str):
    """Operand-kind pairs for ``op``: at least one tensor; ops that need tensors of ndim >= 1 get only those."""
    kinds = {**TENSORS, **NUMBERS}
    for ka, kb in itertools.product(kinds, kinds):
        a, b = kinds[ka], kinds[kb]
        if not isinstance(a, np.ndarray) and not isinstance(b, np.ndarray):
            continue
        if op in ("matmul", "concatenate", "stack") and (np.ndim(a) == 0 or np.ndim(b) == 0):
            continue
        if op in ("clip min", "clip max") and not isinstance(a, np.ndarray):
            continue
        yield ka, kb, a, b


def expected(op: str, a, b):
    """PyTorch's result dtype for the op (its ``result_type`` where the op itself takes only tensors), or None
    where PyTorch refuses the operands (e.g. bool - bool)."""
    ta, tb = theirs(a), theirs(b)
    if op in ("maximum", "minimum", "where") and not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
        return torch.result_type(ta, tb)
    try:
        return BINARY[op][1](ta, tb).dtype
    except (RuntimeError, TypeError):
        if op == "matmul":  # torch refuses mixed dtypes; chainrule promotes as for the other binary ops
            return torch.result_type(ta, tb)
        return None


@needs_torch
@pytest.mark.parametrize("op", list(BINARY))
def test_result_dtype_matches_torch_for_every_operand_kind(op: str) -> None:
    checked = 0
    for ka, kb, a, b in pairs(op):
        want = expected(op, a, b)
        if want is None:
            continue
        with np.errstate(all="ignore"):
            got = BINARY[op][0](ours(a), ours(b)).dtype
        assert torch_dtype_name(want) == np.dtype(got).name, f"{op}({ka}, {kb}): torch {want}, chainrule {got}"
        checked += 1
    assert checked >= 40


@pytest.mark.parametrize("a, b, dtype", [
    (np.ones(2, np.float32), np.float64(3.0), np.float32),      # NumPy scalar: no promotion
    (np.ones(2, np.float32), np.array(3.0), np.float32),         # 0-d float64 tensor: none
    (np.ones(2, np.float32), 3.0, np.float32),
    (np.ones(2, np.int64), np.ones(2, np.float32), np.float32),  # an integer tensor takes the float dtype
    (np.ones(2, np.int64), 3.0, np.float32),                     # a Python float counts as float32
    (np.ones(2, np.int64), np.array(3.0), np.float64),           # a 0-d float64 of a higher category does
    (np.ones(2, np.float32), np.ones(2, np.float64), np.float64),  # dimensioned floats: the wider
    (np.ones(2, np.int32), np.array(3, np.int64), np.int32),     # 0-d of the same category: no
    (np.ones(2, bool), 3, np.int64),
])
def test_the_rule(a, b, dtype) -> None:
    assert result_dtype(a, b) == dtype
    assert (Tensor(a) * ours(b)).dtype == dtype


def test_float32_model_on_input_divided_by_a_numpy_scalar_stays_float32() -> None:
    """The issue's reproducer: x / np.sqrt(3.0) used to become float64 and nn.Linear then refused it."""
    x = Tensor(np.ones((4, 3), dtype=np.float32))
    out = nn.Linear(3, 2, seed=0)(x / np.sqrt(3.0))
    assert out.dtype == np.float32
    for y in (x * np.float64(2.0), x + Tensor(np.array(1.0)), x - Tensor(np.array([1, 2, 3])), 2.0**x,
              np.float64(2.0) / x, cr.maximum(x, np.float64(0.5)), cr.where(np.ones(3, bool), x, np.float64(1))):
        assert y.dtype == np.float32


def test_gradients_have_their_inputs_dtypes() -> None:
    x = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    s = Tensor(np.array(2.0, dtype=np.float64), requires_grad=True)   # 0-d float64: the result is float32...
    w = Tensor(np.ones(3, dtype=np.float64), requires_grad=True)      # ...and float32 * float64 (3,) is float64
    y = (x * s).sum() + (x * w).sum().astype(np.float32) + cr.clip(x, s * 0.0, None).sum()
    assert y.dtype == np.float32
    y.backward()
    assert (x.grad.dtype, s.grad.dtype, w.grad.dtype) == (np.float32, np.float64, np.float64)
    np.testing.assert_allclose(x.grad, [4.0, 4.0, 4.0])
    assert s.grad.item() == 3.0


def test_integer_inputs_of_floating_functions_compute_in_float32() -> None:
    i = Tensor(np.array([1, 2, 3]))
    for y in (i.exp(), i.log(), i.sqrt(), i.tanh(), i.sigmoid(), i / i, i / 2, i * 0.5):
        assert y.dtype == np.float32
    assert (i * 2).dtype == np.int64 and (i + i).dtype == np.int64
