"""``Tensor``: a NumPy array that remembers how it was computed, and the backward engine.

Backpropagation is the recursive application of the chain rule along the computational graph: walk the nodes in
reverse topological order, and at each node multiply the upstream gradient by the node's local gradient
(``Function.backward``). The ops themselves live in ``chainrule.ops``; this file is only the engine.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Tensor:
    """An n-dimensional array on the autograd graph.

    ``data`` is the NumPy array (shared, not copied, when you pass one); ``grad`` is ``None`` or an array of the same
    shape and dtype. Python floats and lists of floats become float32 (the training default); NumPy arrays keep
    their dtype. Only floating-point tensors can require grad.
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "name", "__weakref__")
    __array_priority__ = 1000  # ndarray <op> Tensor defers to Tensor's reflected operators

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None, name: str | None = None):
        if isinstance(data, Tensor):
            data = data.data
        if dtype is not None:
            arr = np.asarray(data, dtype=dtype)
        elif isinstance(data, np.ndarray):
            arr = data
        else:
            arr = np.asarray(data)
            if arr.dtype == np.float64 and not isinstance(data, np.generic):
                arr = arr.astype(np.float32)
        self.data = arr
        self.grad: np.ndarray | None = None
        self._ctx = None
        self.name = name
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _from_op(cls, data: np.ndarray, ctx: Any) -> "Tensor":
        """Fast constructor used by ``Function.apply`` (no validation)."""
        t = Tensor.__new__(Tensor)
        t.data = data
        t.grad = None
        t._ctx = ctx
        t.name = None
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

    # ---- the backward engine -------------------------------------------------------------------------------

    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) * grad into the ``.grad`` of every leaf that requires grad.

        ``grad`` defaults to 1 for a single-element tensor. The saved arrays of the graph are released afterwards
        unless ``retain_graph=True``.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward: this tensor does not require grad, so it has no graph; "
                "create the inputs with requires_grad=True (and not inside no_grad())"
            )
        if grad is None:
            if self.data.size != 1:
                raise ValueError(
                    f"backward: grad can be omitted only for a single-element output, got shape {self.shape}; "
                    f"pass grad= an array of shape {self.shape} (e.g. np.ones) or reduce the output first"
                )
            grad = np.ones_like(self.data)
        else:
            grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=self.data.dtype)
            if grad.shape != self.data.shape:
                raise ValueError(f"backward: grad has shape {grad.shape}, expected the output's shape {self.shape}")
        if self._ctx is None:
            self._accumulate(grad, owned=False)
            return
        grads = {self._ctx: grad}
        for node in reversed(_topological_order(self._ctx)):
            g = grads.pop(node, None)
            if g is None:  # every gradient sent to this node was None: nothing flows through it (nor is released)
                continue
            if node._saved is None:
                raise RuntimeError(
                    f"backward: the graph through {type(node).__name__} was already released by an earlier "
                    "backward(); call backward(retain_graph=True) the first time to backpropagate twice"
                )
            _backward_node(node, g, grads)
            if not retain_graph:
                node._saved = None

    def _accumulate(self, g: np.ndarray, owned: bool) -> None:
        """Add ``g`` into ``self.grad``; ``owned`` says nothing else references ``g``, so it can be kept as is."""
        if self.grad is None:
            if owned and g.dtype == self.data.dtype and g.flags.writeable:
                self.grad = g
            else:
                self.grad = np.array(g, dtype=self.data.dtype, copy=True)
        else:
            self.grad += g

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
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def grad_fn(self) -> Any:
        """The node that produced this tensor (None for leaves)."""
        return self._ctx

    def item(self) -> Any:
        return self.data.item()

    def numpy(self) -> np.ndarray:
        return self.data

    def detach(self) -> "Tensor":
        """The same data, cut from the graph."""
        return Tensor._from_op(self.data, None)

    def astype(self, dtype: Any) -> "Tensor":
        """A differentiable dtype conversion (float32 <-> float64)."""
        return _ops.astype(self, dtype)

    def __len__(self) -> int:
        return len(self.data)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
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

    def __add__(self, other: Any) -> "Tensor":
        return _ops.add(self, other)

    def __radd__(self, other: Any) -> "Tensor":
        return _ops.add(other, self)

    def __sub__(self, other: Any) -> "Tensor":
        return _ops.sub(self, other)

    def __rsub__(self, other: Any) -> "Tensor":
        return _ops.sub(other, self)

    def __mul__(self, other: Any) -> "Tensor":
        return _ops.mul(self, other)

    def __rmul__(self, other: Any) -> "Tensor":
        return _ops.mul(other, self)

    def __truediv__(self, other: Any) -> "Tensor":
        return _ops.div(self, other)

    def __rtruediv__(self, other: Any) -> "Tensor":
        return _ops.div(other, self)

    def __pow__(self, other: Any) -> "Tensor":
        return _ops.pow(self, other)

    def __rpow__(self, other: Any) -> "Tensor":
        return _ops.pow(other, self)

    def __matmul__(self, other: Any) -> "Tensor":
        return _ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> "Tensor":
        return _ops.matmul(other, self)

    def __neg__(self) -> "Tensor":
        return _ops.neg(self)

    def __abs__(self) -> "Tensor":
        return _ops.abs(self)

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
        return _ops.exp(self)

    def log(self) -> "Tensor":
        return _ops.log(self)

    def sqrt(self) -> "Tensor":
        return _ops.sqrt(self)

    def abs(self) -> "Tensor":
        return _ops.abs(self)

    def tanh(self) -> "Tensor":
        return _ops.tanh(self)

    def sigmoid(self) -> "Tensor":
        return _ops.sigmoid(self)

    def relu(self) -> "Tensor":
        return _ops.relu(self)

    def clip(self, min: Any = None, max: Any = None) -> "Tensor":
        return _ops.clip(self, min, max)

    def sum(self, axis: Any = None, keepdims: bool = False) -> "Tensor":
        return _ops.sum(self, axis, keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> "Tensor":
        return _ops.mean(self, axis, keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> "Tensor":
        return _ops.max(self, axis, keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> "Tensor":
        return _ops.min(self, axis, keepdims)

    def var(self, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> "Tensor":
        return _ops.var(self, axis, keepdims, ddof)

    def reshape(self, *shape: Any) -> "Tensor":
        return _ops.reshape(self, shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape)

    def transpose(self, *axes: Any) -> "Tensor":
        return _ops.transpose(self, axes[0] if len(axes) == 1 and not isinstance(axes[0], int) else (axes or None))

    def permute(self, *axes: Any) -> "Tensor":
        return _ops.permute(self, axes[0] if len(axes) == 1 and not isinstance(axes[0], int) else axes)

    @property
    def T(self) -> "Tensor":
        return _ops.transpose(self, None)

    def broadcast_to(self, shape: tuple[int, ...]) -> "Tensor":
        return _ops.broadcast_to(self, shape)

    def squeeze(self, axis: Any = None) -> "Tensor":
        return _ops.squeeze(self, axis)

    def unsqueeze(self, axis: int) -> "Tensor":
        return _ops.unsqueeze(self, axis)

    def softmax(self, axis: int = -1) -> "Tensor":
        return _ops.softmax(self, axis)

    def log_softmax(self, axis: int = -1) -> "Tensor":
        return _ops.log_softmax(self, axis)

    def logsumexp(self, axis: Any = None, keepdims: bool = False) -> "Tensor":
        return _ops.logsumexp(self, axis, keepdims)


def _data(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


def _backward_node(node: Any, g: np.ndarray, grads: dict) -> None:
    """Run one node's backward with upstream gradient ``g``: accumulate into leaves, pass the rest on in ``grads``."""
    retained = node._retained
    if retained is not None and retained() is not None:
        retained()._accumulate(g, owned=False)
    in_grads = type(node).backward(node, g)
    if type(in_grads) is not tuple:
        in_grads = (in_grads,)
    parents = node.parents
    if len(in_grads) != len(parents):
        raise RuntimeError(
            f"{type(node).__name__}.backward returned {len(in_grads)} gradients for "
            f"{len(parents)} forward arguments; return one per argument (None if not differentiable)"
        )
    for i, parent in enumerate(parents):
        pg = in_grads[i]
        if pg is None or parent is None or not parent.requires_grad:
            continue
        if getattr(pg, "shape", None) != parent.data.shape:
            what = f"shape {pg.shape}" if hasattr(pg, "shape") else f"a {type(pg).__name__}"
            raise RuntimeError(
                f"{type(node).__name__}.backward returned {what} as the gradient of argument {i}, which has "
                f"shape {parent.data.shape}; return a NumPy array of the input's shape"
            )
        ctx = parent._ctx
        if ctx is None:
            # A leaf may keep pg itself (no copy) only if no one else can see it: not a view, not the upstream
            # gradient, not returned for another argument too. Later accumulation is in place.
            owned = pg.base is None and pg is not g and _count_identical(pg, in_grads) == 1
            parent._accumulate(pg, owned)
        else:
            prev = grads.get(ctx)
            grads[ctx] = pg if prev is None else prev + pg


def _count_identical(x: Any, items: tuple) -> int:
    n = 0
    for item in items:
        if item is x:
            n += 1
    return n


def _topological_order(root: Any) -> list[Any]:
    """Nodes reachable from ``root``, each once, every node after the nodes it depends on (iterative DFS).

    A node is pushed once to be expanded (its parents' nodes pushed above it) and once more, marked done, to be
    emitted after all of them; in a DAG a parent is never both expanded and unfinished when met again.
    """
    order = []
    visited = set()
    stack = [(root, False)]
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


from chainrule import ops as _ops  # noqa: E402  (ops import Tensor; imported last to break the cycle)
