"""Weight initialisation: arrays drawn so each layer's outputs keep a sensible scale.

Every initialiser returns a new array of ``shape`` and ``dtype`` (float32 by default) and takes ``rng``: a
``numpy.random.Generator`` (use one generator for a whole model) or an integer seed. There is no global random
state. Assign the result into a parameter with ``layer.weight.data[...] = init.kaiming_normal(layer.weight.shape,
rng=rng)``.

Fans follow chainrule's weight layout (in_features, out_features): for a shape (a, b, *k), fan_in = a * prod(k)
and fan_out = b * prod(k) (for a 1-D shape both are its length).

    Xavier/Glorot: Var[W] = gain^2 * 2 / (fan_in + fan_out)     (keeps variance forward and backward, for tanh)
    Kaiming/He:    Var[W] = gain^2 / fan                         (gain sqrt(2) for ReLU: "He et al.", lecture 6)
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from chainrule.utils.seeding import as_generator

__all__ = [
    "calculate_gain", "fans", "uniform", "normal", "xavier_uniform", "xavier_normal", "kaiming_uniform",
    "kaiming_normal", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "dirac",
]

Shape = Sequence[int]
RNG = Any  # np.random.Generator or int seed


def _generator(rng: RNG) -> np.random.Generator:
    return as_generator(rng, name="rng", allow_none=False)


def _float_dtype(dtype: Any) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"expected dtype float32 or float64, got {dtype}")
    return dtype


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The gain for weights feeding ``nonlinearity``: the factor that keeps the activations' second moment.

    linear/identity/sigmoid/maxout: 1; tanh: 5/3; relu: sqrt(2); leaky_relu: sqrt(2 / (1 + slope^2)) (``param`` is
    the slope, default 0.01); selu: 3/4. ELU and GELU use ReLU's sqrt(2): like ReLU they pass positive inputs and
    (nearly) zero negative ones, which is what the gain corrects for. Maxout's max of 2 symmetric pieces keeps
    E[y^2] = E[z^2], hence 1.
    """
    name = nonlinearity.lower()
    if name in ("linear", "identity", "sigmoid", "maxout"):
        return 1.0
    if name == "tanh":
        return 5.0 / 3.0
    if name in ("relu", "elu", "gelu", "gelu_tanh"):
        return math.sqrt(2.0)
    if name == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + slope * slope))
    if name == "selu":
        return 0.75
    raise ValueError(
        f"calculate_gain: unknown nonlinearity {nonlinearity!r}; expected one of linear, identity, sigmoid, tanh, "
        "relu, leaky_relu, elu, gelu, gelu_tanh, maxout, selu"
    )


def fans(shape: Shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of ``shape`` in the (in_features, out_features, *kernel) layout."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 0:
        raise ValueError("fans: a scalar has no fan-in or fan-out; expected a shape with at least 1 dimension")
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[2:])
    return shape[0] * receptive, shape[1] * receptive


def uniform(shape: Shape, low: float = 0.0, high: float = 1.0, *, rng: RNG, dtype: Any = np.float32) -> np.ndarray:
    """U(low, high) samples."""
    if not low <= high:
        raise ValueError(f"uniform: expected low <= high, got low={low}, high={high}")
    dtype = _float_dtype(dtype)
    u = _generator(rng).random(tuple(shape), dtype=dtype)
    u *= high - low
    u += low
    return u


def normal(shape: Shape, mean: float = 0.0, std: float = 1.0, *, rng: RNG, dtype: Any = np.float32) -> np.ndarray:
    """N(mean, std^2) samples (CS231n's ``weight_scale * randn`` is ``normal(shape, 0, weight_scale, rng=...)``)."""
    if std < 0:
        raise ValueError(f"normal: expected std >= 0, got {std}")
    dtype = _float_dtype(dtype)
    z = _generator(rng).standard_normal(tuple(shape), dtype=dtype)
    z *= std
    z += mean
    return z


def xavier_uniform(shape: Shape, gain: float = 1.0, *, rng: RNG, dtype: Any = np.float32) -> np.ndarray:
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010)."""
    fan_in, fan_out = fans(shape)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform(shape, -a, a, rng=rng, dtype=dtype)


def xavier_normal(shape: Shape, gain: float = 1.0, *, rng: RNG, dtype: Any = np.float32) -> np.ndarray:
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(shape)
    return normal(shape, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), rng=rng, dtype=dtype)


def _kaiming_std(shape: Shape, nonlinearity: str, mode: str, param: float | None) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming: expected mode 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = fans(shape)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, param) / math.sqrt(fan)


def kaiming_uniform(shape: Shape, nonlinearity: str = "relu", mode: str = "fan_in", param: float | None = None, *,
                    rng: RNG, dtype: Any = np.float32) -> np.ndarray:
    """U(-b, b) with b = gain * sqrt(3 / fan) (He et al., 2015); ``mode="fan_in"`` keeps the forward variance,
    ``"fan_out"`` the backward one."""
    bound = math.sqrt(3.0) * _kaiming_std(shape, nonlinearity, mode, param)
    return uniform(shape, -bound, bound, rng=rng, dtype=dtype)


def kaiming_normal(shape: Shape, nonlinearity: str = "relu", mode: str = "fan_in", param: float | None = None, *,
                   rng: RNG, dtype: Any = np.float32) -> np.ndarray:
    """N(0, std^2) with std = gain / sqrt(fan): for ReLU, ``randn(fan_in, fan_out) * sqrt(2 / fan_in)``."""
    return normal(shape, 0.0, _kaiming_std(shape, nonlinearity, mode, param), rng=rng, dtype=dtype)


glorot_uniform = xavier_uniform
glorot_normal = xavier_normal
he_uniform = kaiming_uniform
he_normal = kaiming_normal


def dirac(shape: Shape, dtype: Any = np.float32) -> np.ndarray:
    """Identity filters of a conv weight (out, in, *kernel) (PyTorch's ``dirac_``): filter i is 1 at the kernel's
    centre on input channel i (for i < min(out, in)) and 0 elsewhere, so the conv ("same" padding) copies its first
    channels through."""
    shape = tuple(int(s) for s in shape)
    if len(shape) < 3:
        raise ValueError(f"dirac: expected a conv weight shape (out, in, *kernel), got {shape}")
    w = np.zeros(shape, dtype=_float_dtype(dtype))
    n = min(shape[0], shape[1])
    w[(np.arange(n), np.arange(n), *(np.full(n, k // 2) for k in shape[2:]))] = 1
    return w


def uniform_fan_in_(weight: Any, bias: Any, fan_in: int, seed: Any = None) -> None:
    """Redraw ``weight`` and ``bias`` (Parameters; bias may be None) in place from U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    PyTorch's default for ``nn.Linear`` (and chainrule's ``Maxout``), from ``seed``."""
    rng = as_generator(seed)
    bound = 1.0 / math.sqrt(fan_in)
    weight.data[...] = uniform(weight.shape, -bound, bound, rng=rng, dtype=weight.dtype)
    if bias is not None:
        bias.data[...] = uniform(bias.shape, -bound, bound, rng=rng, dtype=bias.dtype)
