"""chainrule: neural networks and backpropagation the way they are taught, on NumPy, fast.

    >>> import chainrule as cr
    >>> x = cr.Tensor([[1.0, -2.0]], requires_grad=True)
    >>> y = (x * x).sum()
    >>> y.backward()
    >>> x.grad
    array([[ 2., -4.]], dtype=float32)
"""

from chainrule.tensor import Tensor
from chainrule.function import Function, enable_grad, is_grad_enabled, no_grad
from chainrule import ops
from chainrule.ops import (
    abs, add, amax, amin, argmax, argmin, astype, broadcast_to, cat, clamp, clip, clone, concatenate, div, exp, flatten,
    getitem, log, log_softmax, logsumexp, matmul, max, maximum, mean, min, minimum, mul, neg, permute, pow, relu,
    reshape, sigmoid, softmax, sqrt, squeeze, stack, sub, sum, tanh, transpose, unsqueeze, var, where,
)
from chainrule.creation import arange, manual_seed, ones, randn, tensor, zeros
from chainrule.gradcheck import GradcheckError, gradcheck, gradgradcheck, numerical_gradient, rel_error
from chainrule import autograd
from chainrule.value import Value
from chainrule.viz import draw_graph

__version__ = "0.1.0"

__all__ = [
    "Tensor", "Function", "no_grad", "enable_grad", "is_grad_enabled", "ops",
    "gradcheck", "gradgradcheck", "numerical_gradient", "rel_error", "GradcheckError", "Value", "draw_graph",
    "__version__", "autograd",
    "abs", "add", "amax", "amin", "argmax", "argmin", "astype", "broadcast_to", "cat", "clamp", "clip", "clone",
    "concatenate",
    "div", "exp", "flatten", "getitem", "log", "log_softmax", "logsumexp", "matmul", "max", "maximum", "mean", "min",
    "minimum", "mul", "neg", "permute", "pow", "relu", "reshape", "sigmoid", "softmax", "sqrt", "squeeze", "stack",
    "sub", "sum", "tanh", "transpose", "unsqueeze", "var", "where",
    "tensor", "zeros", "ones", "randn", "arange", "manual_seed",
]

