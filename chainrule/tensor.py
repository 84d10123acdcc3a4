"""``Tensor``: a NumPy array that remembers how it was computed.

A Tensor holds ``data`` (the array), ``grad`` and, if an op made it, ``_ctx``: the op's node on the graph.
``backward`` hands the graph to ``chainrule.engine``, which walks it in reverse topological order multiplying each
upstream gradient by the node's local gradient (``Function.backward``). The ops live in ``chainrule.ops``; the
methods and operators below are thin wrappers over them, under NumPy's names and, where PyTorch users look for
another, PyTorch's too (``docs/engine.md`` has the table).

In-place changes go through methods that bump the tensor's version counter (``chainrule.inplace``), so that backward
refuses a graph whose saved values changed after the forward pass. A change made by hand through ``t.data[...]``
is invisible to the counter, as with PyTorch's ``.data``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from chainrule import engine
from chainrule.inplace import InPlaceMethods


class Tensor(InPlaceMethods):
    """An n-dimensional array on the autograd graph.

    ``data`` is the NumPy array (shared, not copied, when you pass one); ``grad`` is ``None`` or an array of the same
    shape and dtype (a Tensor after ``backward(create_graph=True)``). Python floats and lists of floats become
    float32 (the training default); NumPy arrays keep their dtype. Only floating-point tensors can require grad.
    ``Tensor(t)`` of a Tensor shares its data and its version counter (``chainrule.tensor(t)`` copies).
    """

    # _vc: the version counter [version, clock at the last in-place change], one list shared by a tensor and its
    # views; None until needed (chainrule.engine.counter)
    __slots__ = ("data", "grad", "requires_grad", "_ctx", "name", "_vc", "__weakref__")
    __array_priority__ = 1000  # ndarray <op> Tensor defers to Tensor's reflected operators

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None, name: str | None = None):
        source = None
        if isinstance(data, Tensor):
            source, data = data, data.data
        if dtype is not None:
            arr = np.asarray(data, dtype=dtype)
        elif isinstance(data, np.ndarray):
            arr = data
        else:
            arr = np.asarray(data)
            if arr.dtype == np.float64 and not isinstance(data, np.generic):
                arr = arr.astype(np.float32)
        self.data = arr
        self.grad: Any = None
        self._ctx = None
        self.name = name
        self._vc = engine.counter(source) if source is not None and arr is source.data else None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _from_op(cls, data: np.ndarray, ctx: Any, vc: list[int] | None) -> "Tensor":
        """Fast constructor (no validation; ``Function.apply`` inlines it); ``vc`` is the version counter."""
        t = Tensor.__new__(Tensor)
        t.data = data
        t.grad = None
        t._ctx = ctx
        t.name = None
        t._vc = vc
        t.requires_grad = ctx is not None
        return t

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        """Set ``requires_grad`` in place; only floating-point tensors can require grad."""
        if requires_grad and not np.issubdtype(self.data.dtype, np.floating):
            raise TypeError(
                f"only floating-point tensors can require grad, got dtype {self.data.dtype}; "
                "convert first, e.g. Tensor(x, dtype=np.float32, requires_grad=True)"
            )
        self.requires_grad = bool(requires_grad)
        return self

    # ---- backward ------------------------------------------------------------------------------------------

    def backward(self, grad: Any = None, retain_graph: bool | None = None, create_graph: bool = False, *,
                 gradient: Any = None) -> None:
        """Accumulate d(self)/d(leaf) * grad into the ``.grad`` of every leaf that requires grad.

        ``grad`` (PyTorch's ``gradient=``) defaults to 1 for a single-element tensor. With ``create_graph=True`` the
        backward pass is recorded as a graph too, so the gradients can be differentiated again: ``.grad`` becomes a
        Tensor on that graph (accumulated out of place: ``.grad`` is rebound to the sum, never changed in place),
        and ``grad`` may be a Tensor that requires grad. The saved arrays of the graph are released afterwards
        unless ``retain_graph`` is True (its default is ``create_graph``). Raises before computing anything if an
        array the graph saved was changed in place since the forward pass (see ``chainrule.engine``).

        ``backward(create_graph=True)`` makes a reference cycle between a leaf and its ``.grad`` (whose graph holds
        the leaf), as in PyTorch: Python's cycle collector frees it, or setting ``.grad = None`` (``zero_grad()``)
        does; ``chainrule.autograd.grad`` returns the gradients instead and makes no cycle.
        """
        if gradient is not None:
            if grad is not None:
                raise TypeError("backward: got grad and gradient, two names of one argument; pass one")
            grad = gradient
        if not self.requires_grad:
            raise RuntimeError(
                "backward: this tensor does not require grad, so it has no graph; "
                "create the inputs with requires_grad=True (and not inside no_grad())"
            )
        grad = _seed_gradient("backward", self, grad, create_graph, "gradient")
        engine.run_backward([(self, grad)], create_graph if retain_graph is None else bool(retain_graph),
                            create_graph)

    def _accumulate(self, g: np.ndarray, owned: bool) -> None:
        """Add the array ``g`` into ``self.grad``; ``owned`` says nothing else references ``g``, so it can be kept as
        is. A ``.grad`` that is a Tensor (left by a create_graph backward) is replaced by the sum, not changed."""
        grad = self.grad
        if grad is None:
            if owned and g.dtype == self.data.dtype and g.flags.writeable:
                self.grad = g
            else:
                self.grad = np.array(g, dtype=self.data.dtype, copy=True)
        elif type(grad) is _ndarray:
            grad += g
        else:
            self.grad = Tensor(grad.data + g)

    def _accumulate_on_graph(self, g: "Tensor", owned: bool) -> None:
        """Add the Tensor ``g`` (a gradient on the graph) to ``self.grad``, out of place: the old ``.grad`` may be
        saved by the nodes of a graph, so it is never changed in place (and nothing needs a version bump)."""
        grad = self.grad
        if grad is None:
            self.grad = g if owned else _ops.clone(g)
        else:
            self.grad = (grad if isinstance(grad, Tensor) else Tensor(grad)) + g

    def retain_grad(self) -> "Tensor":
        """Keep the gradient of this intermediate (non-leaf) tensor in ``.grad`` after backward."""
        if self._ctx is not None:
            import weakref

            self._ctx._retained = weakref.ref(self)
        return self

    def zero_grad(self) -> None:
        self.grad = None

    # ---- array-like properties -----------------------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> "_Size":
        """The number of elements, as NumPy's ``a.size``; called, ``t.size()`` is the shape and ``t.size(d)`` one
        dimension, as PyTorch's."""
        return _Size(self.data)

    def numel(self) -> int:
        """The number of elements (PyTorch's name for ``size``)."""
        return self.data.size

    def dim(self) -> int:
        """The number of dimensions (PyTorch's name for ``ndim``)."""
        return self.data.ndim

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def grad_fn(self) -> Any:
        """The node that produced this tensor (None for leaves)."""
        return self._ctx

    @property
    def _version(self) -> int:
        """How many times the data was changed in place through the library (PyTorch's ``t._version``)."""
        return 0 if self._vc is None else self._vc[0]

    def item(self) -> Any:
        return self.data.item()

    def numpy(self) -> np.ndarray:
        return self.data

    def tolist(self) -> Any:
        return self.data.tolist()

    def clone(self) -> "Tensor":
        """A copy of the data, on the graph (gradients pass through unchanged), as PyTorch's ``clone``."""
        return _ops.clone(self)

    def detach(self) -> "Tensor":
        """The same data (and version counter), cut from the graph."""
        return Tensor._from_op(self.data, None, engine.counter(self))

    def astype(self, dtype: Any) -> "Tensor":
        """A differentiable dtype conversion (float32 <-> float64); the tensor itself if it has that dtype."""
        return self if self.data.dtype == dtype else _ops.astype(self, dtype)

    def float(self) -> "Tensor":
        """``astype(np.float32)`` (PyTorch's name)."""
        return self.astype(np.float32)

    def double(self) -> "Tensor":
        """``astype(np.float64)`` (PyTorch's name)."""
        return self.astype(np.float64)

    def __len__(self) -> int:
        return len(self.data)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if engine.grad_mode.building:  # a create_graph backward: the array would be a silent constant
            from chainrule.function import _ArrayOfTensorError

            raise _ArrayOfTensorError(f"a NumPy function converted a {self.data.dtype} Tensor of shape "
                                      f"{self.data.shape} to an array")
        return self.data if dtype is None else self.data.astype(dtype)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="Tensor(", threshold=50)
        extra = f", dtype={self.data.dtype}"
        if self._ctx is not None:
            extra += f", grad_fn={type(self._ctx).__name__}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"Tensor({body}{extra})"

    def _repr_svg_(self) -> str | None:
        from chainrule.viz import repr_svg

        return repr_svg(self)

    # ---- operators and methods: thin wrappers over chainrule.ops ------------------------------------------
    # (the elementwise ones call their Function directly, ``_ops.Mul.apply`` being what ``ops.mul`` does, one
    # Python call less per op on the hot path)

    def __add__(self, other: Any) -> "Tensor":
        return _ops.Add.apply(self, other)

    def __radd__(self, other: Any) -> "Tensor":
        return _ops.Add.apply(other, self)

    def __sub__(self, other: Any) -> "Tensor":
        return _ops.Sub.apply(self, other)

    def __rsub__(self, other: Any) -> "Tensor":
        return _ops.Sub.apply(other, self)

    def __mul__(self, other: Any) -> "Tensor":
        return _ops.Mul.apply(self, other)

    def __rmul__(self, other: Any) -> "Tensor":
        return _ops.Mul.apply(other, self)

    def __truediv__(self, other: Any) -> "Tensor":
        return _ops.Div.apply(self, other)

    def __rtruediv__(self, other: Any) -> "Tensor":
        return _ops.Div.apply(other, self)

    def __pow__(self, other: Any) -> "Tensor":
        return _ops.Pow.apply(self, other)

    def __rpow__(self, other: Any) -> "Tensor":
        return _ops.Pow.apply(other, self)

    def __matmul__(self, other: Any) -> "Tensor":
        return _ops.MatMul.apply(self, other)

    def __rmatmul__(self, other: Any) -> "Tensor":
        return _ops.MatMul.apply(other, self)

    matmul = __matmul__

    def __neg__(self) -> "Tensor":
        return _ops.Neg.apply(self)

    def __abs__(self) -> "Tensor":
        return _ops.Abs.apply(self)

    def __getitem__(self, index: Any) -> "Tensor":
        return _ops.getitem(self, index)

    # Comparisons give boolean tensors off the graph (masks); == and != keep Python's identity semantics.
    def __lt__(self, other: Any) -> "Tensor":
        return Tensor(self.data < _data(other))

    def __le__(self, other: Any) -> "Tensor":
        return Tensor(self.data <= _data(other))

    def __gt__(self, other: Any) -> "Tensor":
        return Tensor(self.data > _data(other))

    def __ge__(self, other: Any) -> "Tensor":
        return Tensor(self.data >= _data(other))

    __hash__ = object.__hash__

    def exp(self) -> "Tensor":
        return _ops.Exp.apply(self)

    def log(self) -> "Tensor":
        return _ops.Log.apply(self)

    def sqrt(self) -> "Tensor":
        return _ops.Sqrt.apply(self)

    def abs(self) -> "Tensor":
        return _ops.Abs.apply(self)

    def tanh(self) -> "Tensor":
        return _ops.Tanh.apply(self)

    def sigmoid(self) -> "Tensor":
        return _ops.Sigmoid.apply(self)

    def relu(self) -> "Tensor":
        return _ops.Relu.apply(self)

    def clip(self, min: Any = None, max: Any = None) -> "Tensor":
        return _ops.clip(self, min, max)

    clamp = clip

    # Reductions take NumPy's axis= / keepdims= or PyTorch's dim= / keepdim= (see chainrule.ops).
    def sum(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None,
            keepdim: bool | None = None) -> "Tensor":
        return _ops.sum(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def mean(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None,
             keepdim: bool | None = None) -> "Tensor":
        return _ops.mean(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def max(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: bool | None = None) -> Any:
        """The maximum over ``axis`` (NumPy); with PyTorch's ``dim=``, PyTorch's ``(values, indices)``."""
        return _ops.max(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def min(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: bool | None = None) -> Any:
        """The minimum over ``axis`` (NumPy); with PyTorch's ``dim=``, PyTorch's ``(values, indices)``."""
        return _ops.min(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def amax(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None,
             keepdim: bool | None = None) -> "Tensor":
        return _ops.amax(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def amin(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None,
             keepdim: bool | None = None) -> "Tensor":
        return _ops.amin(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def argmax(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None,
               keepdim: bool | None = None) -> "Tensor":
        """Indices of the maxima (an int64 tensor, off the graph)."""
        return _ops.argmax(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def argmin(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None,
               keepdim: bool | None = None) -> "Tensor":
        """Indices of the minima (an int64 tensor, off the graph)."""
        return _ops.argmin(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def var(self, axis: Any = None, keepdims: bool = False, ddof: int = 0, *, dim: Any = None,
            keepdim: bool | None = None, correction: int | None = None) -> "Tensor":
        return _ops.var(self, axis, keepdims, ddof, dim=dim, keepdim=keepdim, correction=correction)

    def logsumexp(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None,
                  keepdim: bool | None = None) -> "Tensor":
        return _ops.logsumexp(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def softmax(self, axis: int = -1, *, dim: int | None = None) -> "Tensor":
        return _ops.softmax(self, axis, dim=dim)

    def log_softmax(self, axis: int = -1, *, dim: int | None = None) -> "Tensor":
        return _ops.log_softmax(self, axis, dim=dim)

    def reshape(self, *shape: Any) -> "Tensor":
        return _ops.reshape(self, _varargs(shape))

    def view(self, *shape: Any) -> "Tensor":
        """``reshape`` that never copies, as PyTorch's ``view``: raises where the memory layout needs a copy."""
        out = _ops.reshape(self, _varargs(shape))
        if out.data.size and not np.shares_memory(out.data, self.data):
            raise ValueError(
                f"view: a tensor of shape {self.shape} with strides {self.data.strides} cannot be viewed as shape "
                f"{out.shape} without copying; use reshape() (which copies when it must)"
            )
        return out

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> "Tensor":
        """Merge the axes ``start_dim`` .. ``end_dim`` into one (PyTorch's ``flatten``; all axes by default)."""
        return _ops.flatten(self, start_dim, end_dim)

    def transpose(self, *axes: Any) -> "Tensor":
        return _ops.transpose(self, axes[0] if len(axes) == 1 and not isinstance(axes[0], int) else (axes or None))

    def permute(self, *axes: Any) -> "Tensor":
        return _ops.permute(self, _varargs(axes))

    @property
    def T(self) -> "Tensor":
        return _ops.transpose(self, None)

    def broadcast_to(self, shape: tuple[int, ...]) -> "Tensor":
        return _ops.broadcast_to(self, shape)

    def squeeze(self, axis: Any = None, *, dim: Any = None) -> "Tensor":
        return _ops.squeeze(self, axis, dim=dim)

    def unsqueeze(self, axis: int | None = None, *, dim: int | None = None) -> "Tensor":
        return _ops.unsqueeze(self, axis, dim=dim)


class _Size(int):
    """``Tensor.size``: the number of elements (an int, as NumPy's), callable as PyTorch's ``size()``."""

    def __new__(cls, data: np.ndarray) -> "_Size":
        self = super().__new__(cls, data.size)
        self._shape = data.shape
        return self

    def __call__(self, dim: int | None = None) -> Any:
        if dim is None:
            return self._shape
        if not -len(self._shape) <= dim < len(self._shape):
            raise IndexError(f"size: dimension {dim} is out of range for a tensor of shape {self._shape}")
        return self._shape[dim]


class ValuesIndices(NamedTuple):
    """What PyTorch's ``max(dim=...)`` / ``min(dim=...)`` return: the values (on the graph) and their indices."""

    values: Tensor
    indices: Tensor


_ndarray = np.ndarray


def _seed_gradient(op: str, t: Tensor, grad: Any, create_graph: bool, name: str = "grad") -> Any:
    """The gradient to start backpropagation from at ``t``: ones for a single element if ``grad`` is None, else
    ``grad`` checked for ``t``'s shape and cast to its dtype; an array, or with ``create_graph`` a Tensor. ``name``
    is the argument as the caller knows it (``grad_outputs[1]``), for errors: a complex or non-numeric ``grad``
    is refused (casting would drop the imaginary part silently)."""
    if grad is not None:
        kind = np.asarray(grad.data if isinstance(grad, Tensor) else grad).dtype.kind
        if kind == "c":
            raise TypeError(f"{op}: {name} is complex, but the output is real ({t.data.dtype}); chainrule's "
                            "autograd is real-valued: pass a real array (e.g. grad.real)")
        if kind not in "biuf":
            raise TypeError(f"{op}: {name} must be a Tensor, a NumPy array or a number of the output's shape "
                            f"{t.shape}, got {type(grad).__name__} {grad!r:.60}")
    if grad is None:
        if t.data.size != 1:
            raise ValueError(
                f"{op}: grad can be omitted only for a single-element output, got shape {t.shape}; "
                f"pass grad= an array of shape {t.shape} (e.g. np.ones) or reduce the output first"
            )
        grad = np.ones_like(t.data)
    elif not (create_graph and isinstance(grad, Tensor)):
        grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=t.data.dtype)
    if grad.shape != t.data.shape:
        raise ValueError(f"{op}: grad has shape {grad.shape}, expected the output's shape {t.shape}")
    if create_graph:
        grad = grad.astype(t.data.dtype) if isinstance(grad, Tensor) else Tensor(grad)
    return grad


def _varargs(args: tuple) -> Any:
    """``f(2, 3)`` and ``f((2, 3))`` alike: the one tuple or list argument, or the arguments."""
    return args[0] if len(args) == 1 and not isinstance(args[0], (int, np.integer)) else args


def _data(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


from chainrule import ops as _ops  # noqa: E402  (ops import Tensor; imported last to break the cycle)
