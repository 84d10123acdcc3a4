"""``Module``, ``Parameter`` and ``Sequential``: the containers every layer of ``chainrule.nn`` is built from.

A ``Module`` registers the ``Parameter``s, sub-modules and buffers you assign to its attributes, in assignment
order, as ``torch.nn.Module`` does::

    class TwoLayerNet(nn.Module):
        def __init__(self, d, h, c):
            super().__init__()                      # must come first
            self.fc1 = nn.Linear(d, h)              # a sub-module: its parameters are ours too
            self.fc2 = nn.Linear(h, c)

        def forward(self, x):                       # x (N, D) -> scores (N, C)
            return self.fc2(F.relu(self.fc1(x)))

Registered objects also live in the instance ``__dict__``, so reading ``self.fc1`` is a plain attribute lookup
(no ``__getattr__`` on the hot path). ``state_dict()`` holds plain NumPy arrays: parameters and persistent buffers
(e.g. BatchNorm's running statistics), keyed by dotted path (``"fc1.weight"``). Modules that own a random
generator (``Dropout``) expose it as ``.generator``; ``rng_states()`` / ``load_rng_states()`` checkpoint them.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, NamedTuple

import numpy as np

from chainrule.engine import bump
from chainrule.tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a ``Module`` registers as a learnable parameter (``requires_grad=True`` by default).

    ``data`` must be floating point. NumPy arrays keep their dtype (and are not copied); lists become float32.
    """

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True, dtype: Any = None, name: str | None = None):
        super().__init__(data, requires_grad=False, dtype=dtype, name=name)
        if not np.issubdtype(self.data.dtype, np.floating):
            raise TypeError(
                f"Parameter: expected a floating-point array, got dtype {self.data.dtype}; "
                "convert it first, e.g. Parameter(w.astype(np.float32))"
            )
        self.requires_grad = bool(requires_grad)

    def __repr__(self) -> str:
        return "Parameter" + super().__repr__()[len("Tensor"):]


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(strict=False)`` did not match."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of layers and models: subclass it, call ``super().__init__()``, define ``forward``."""

    training: bool

    def __init__(self) -> None:
        d = self.__dict__
        d["_parameters"] = {}
        d["_modules"] = {}
        d["_buffers"] = {}
        d["_non_persistent"] = set()
        d["training"] = True

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward(self, ...)")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # ---- registration --------------------------------------------------------------------------------------

    def _registries(self) -> tuple[dict, dict, dict]:
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError(
                f"cannot assign to {type(self).__name__} before Module.__init__() ran; "
                "call super().__init__() first in your __init__"
            )
        return d["_parameters"], d["_modules"], d["_buffers"]

    def __setattr__(self, name: str, value: Any) -> None:
        params, modules, buffers = self._registries()
        if isinstance(value, Parameter):
            modules.pop(name, None)
            buffers.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params.pop(name, None)
            buffers.pop(name, None)
            modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign a {type(value).__name__} to parameter {name!r} of {type(self).__name__}; "
                    "assign an nn.Parameter (or None to remove it)"
                )
            del params[name]
        elif name in modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign a {type(value).__name__} to sub-module {name!r} of {type(self).__name__}; "
                    "assign an nn.Module (or None to remove it)"
                )
            del modules[name]
        elif name in buffers:
            if value is not None and not isinstance(value, np.ndarray):
                raise TypeError(f"buffer {name!r} of {type(self).__name__} must be a NumPy array or None")
            buffers[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        params, modules, buffers = self._registries()
        params.pop(name, None)
        modules.pop(name, None)
        buffers.pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name: str, array: np.ndarray | None, persistent: bool = True) -> None:
        """Register state that is not learned (e.g. running statistics): saved in ``state_dict`` if persistent,
        converted by ``to(dtype)`` if floating point, never returned by ``parameters()``."""
        if array is not None and not isinstance(array, np.ndarray):
            raise TypeError(f"register_buffer({name!r}): expected a NumPy array or None, got {type(array).__name__}")
        params, modules, buffers = self._registries()
        if name in params or name in modules:
            raise KeyError(f"register_buffer: {name!r} is already a parameter or sub-module of {type(self).__name__}")
        buffers[name] = array
        if not persistent:
            self.__dict__["_non_persistent"].add(name)
        object.__setattr__(self, name, array)

    # ---- traversal -----------------------------------------------------------------------------------------

    def children(self) -> Iterator["Module"]:
        """The direct sub-modules, in registration order."""
        return iter(list(self._modules.values()))

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        """(dotted name, module) for this module ("" or ``prefix``) and every sub-module, each module once."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            yield name, m
            children = [(f"{name}.{k}" if name else k, c) for k, c in m._modules.items()]
            stack.extend(reversed(children))

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) for every parameter, each shared parameter once."""
        seen: set[int] = set()
        mods = self.named_modules(prefix) if recurse else iter([(prefix, self)])
        for mname, m in mods:
            for k, p in m._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mname}.{k}" if mname else k), p

    def parameters(self, recurse: bool = True) -> list[Parameter]:
        """All parameters as a list (pass it to an optimizer)."""
        return [p for _, p in self.named_parameters(recurse=recurse)]

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for mname, m in self.named_modules(prefix):
            for k, b in m._buffers.items():
                if b is not None:
                    yield (f"{mname}.{k}" if mname else k), b

    def buffers(self) -> list[np.ndarray]:
        return [b for _, b in self.named_buffers()]

    def num_parameters(self) -> int:
        """Total number of learnable scalars."""
        return int(sum(p.size for p in self.parameters()))

    def apply(self, fn: Callable[["Module"], Any]) -> "Module":
        """Call ``fn`` on every sub-module (children first) and then on self; returns self."""
        for m in self._modules.values():
            m.apply(fn)
        fn(self)
        return self

    # ---- modes and gradients -------------------------------------------------------------------------------

    def train(self, mode: bool = True) -> "Module":
        """Training mode (Dropout drops, BatchNorm uses batch statistics) for self and all sub-modules."""
        for m in self.modules():
            m.__dict__["training"] = bool(mode)
        return self

    def eval(self) -> "Module":
        """Evaluation mode: Dropout is the identity, BatchNorm uses its running statistics."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Drop every parameter's gradient (``.grad = None``; the next backward allocates fresh ones)."""
        for p in self.parameters():
            p.grad = None

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        """Freeze (False) or unfreeze (True) every parameter."""
        for p in self.parameters():
            p.requires_grad = bool(requires_grad)
        return self

    def to(self, dtype: Any) -> "Module":
        """Convert every parameter and floating-point buffer to ``dtype`` in place (e.g. ``np.float64`` for
        gradient checks); the Parameter objects stay the same, their gradients are dropped. Create the optimizer
        after converting. Returns self."""
        dtype = np.dtype(dtype)
        if not np.issubdtype(dtype, np.floating):
            raise TypeError(f"to: expected a floating-point dtype, got {dtype}")
        for p in self.parameters():
            if p.data.dtype != dtype:
                p.data = p.data.astype(dtype)
                p.grad = None
        for m in self.modules():
            for k, b in list(m._buffers.items()):
                if b is not None and np.issubdtype(b.dtype, np.floating) and b.dtype != dtype:
                    setattr(m, k, b.astype(dtype))
        return self

    astype = to

    # ---- checkpoints ---------------------------------------------------------------------------------------

    def _state_entries(self, prefix: str = "") -> Iterator[tuple[str, "Module", str, str]]:
        """(key, owning module, attribute, "param"|"buffer") for every saved entry, recursively."""
        for k in self._parameters:
            yield prefix + k, self, k, "param"
        for k, b in self._buffers.items():
            if b is not None and k not in self._non_persistent:
                yield prefix + k, self, k, "buffer"
        for k, m in self._modules.items():
            yield from m._state_entries(prefix + k + ".")

    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every parameter and persistent buffer as plain NumPy arrays, keyed by dotted path."""
        out = {}
        for key, m, attr, kind in self._state_entries():
            value = m._parameters[attr].data if kind == "param" else m._buffers[attr]
            out[key] = np.array(value, copy=True)
        return out

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy arrays from ``state_dict`` into this module's parameters and buffers (cast to their dtypes).

        Parameters are overwritten in place (their version counters are bumped, see ``chainrule.engine``). Shapes
        must match. With ``strict=True`` the keys must match exactly too. Every problem is reported in one
        ``ValueError`` listing the missing keys, unexpected keys and shape mismatches, and nothing is loaded.
        Returns ``IncompatibleKeys(missing_keys, unexpected_keys)``.
        """
        entries = {key: (m, attr, kind) for key, m, attr, kind in self._state_entries()}
        missing = [k for k in entries if k not in state_dict]
        unexpected = [k for k in state_dict if k not in entries]
        arrays, mismatched = {}, []
        for key, (m, attr, kind) in entries.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            value = np.asarray(value.data if isinstance(value, Tensor) else value)
            target = m._parameters[attr].data if kind == "param" else m._buffers[attr]
            if value.shape != target.shape or value.dtype.kind not in "biuf":
                mismatched.append(f"{key}: checkpoint has shape {value.shape} dtype {value.dtype}, "
                                  f"model has shape {target.shape} dtype {target.dtype}")
            arrays[key] = value
        if mismatched or (strict and (missing or unexpected)):
            lines = [f"load_state_dict: cannot load into {type(self).__name__}; nothing was loaded"]
            if missing:
                lines.append(f"  missing keys ({len(missing)}): {', '.join(missing)}")
            if unexpected:
                lines.append(f"  unexpected keys ({len(unexpected)}): {', '.join(unexpected)}")
            if mismatched:
                lines.append(f"  shape mismatches ({len(mismatched)}):")
                lines.extend(f"    {s}" for s in mismatched)
            if not mismatched:
                lines.append("  pass strict=False to load the matching keys only")
            raise ValueError("\n".join(lines))
        for key, value in arrays.items():
            m, attr, kind = entries[key]
            if kind == "param":
                p = m._parameters[attr]
                if p.data.flags.writeable:
                    np.copyto(p.data, value, casting="unsafe")
                    bump(p)  # a graph recorded before the load must not backpropagate with the loaded values
                else:
                    p.data = np.array(value, dtype=p.data.dtype)
            else:
                b = m._buffers[attr]
                if b.flags.writeable:
                    np.copyto(b, value, casting="unsafe")
                else:
                    setattr(m, attr, np.array(value, dtype=b.dtype))
        return IncompatibleKeys(missing, unexpected)

    # Entries this layer stores transposed relative to PyTorch's layout (Linear's weight is (in, out), PyTorch's
    # (out, in)); ``to_torch_state_dict`` / ``load_torch_state_dict`` transpose exactly these.
    _torch_transposed: tuple[str, ...] = ()

    def to_torch_state_dict(self) -> dict[str, np.ndarray]:
        """``state_dict()`` in PyTorch's key names and layouts (NumPy arrays, C-contiguous): a PyTorch model of the
        same architecture loads it with ``load_state_dict`` (after ``torch.from_numpy``, or through a
        ``.safetensors`` file: ``chainrule.safetensors.save_file``, then ``safetensors.torch.load_file``)."""
        out = {}
        for key, m, attr, kind in self._state_entries():
            value = m._parameters[attr].data if kind == "param" else m._buffers[attr]
            out[key] = np.array(value.T if attr in m._torch_transposed else value, order="C", copy=True)
        return out

    def load_torch_state_dict(self, state_dict: dict[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Load a PyTorch ``state_dict`` (torch tensors or NumPy arrays, PyTorch's layouts): the inverse of
        ``to_torch_state_dict``, then ``load_state_dict`` (same checks; shapes in its message are chainrule's)."""
        transposed = {key for key, m, attr, _ in self._state_entries() if attr in m._torch_transposed}
        converted = {}
        for key, value in state_dict.items():
            if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch.Tensor, without importing torch
                value = value.detach().cpu().numpy()
            value = np.asarray(value.data if isinstance(value, Tensor) else value)
            if key in transposed:
                if value.ndim != 2:
                    raise ValueError(f"load_torch_state_dict: {key} must be 2-D (PyTorch's (out_features, "
                                     f"in_features)), got shape {value.shape}; nothing was loaded")
                value = value.T
            converted[key] = value
        return self.load_state_dict(converted, strict=strict)

    def rng_states(self) -> dict[str, dict]:
        """The state of every sub-module's random generator (``.generator``, e.g. Dropout's), by dotted module
        name. The values are ``bit_generator.state`` dicts (JSON-serialisable) for exact resume."""
        return {
            name: m.generator.bit_generator.state
            for name, m in self.named_modules()
            if isinstance(m.__dict__.get("generator"), np.random.Generator)
        }

    def load_rng_states(self, states: dict[str, dict], strict: bool = True) -> None:
        """Restore generator states saved by ``rng_states()``; with ``strict`` the module names must match."""
        owners = {
            name: m for name, m in self.named_modules()
            if isinstance(m.__dict__.get("generator"), np.random.Generator)
        }
        if strict and set(owners) != set(states):
            raise ValueError(
                f"load_rng_states: modules with generators {sorted(owners)} do not match the saved "
                f"{sorted(states)}; pass strict=False to restore the matching ones only"
            )
        for name, state in states.items():
            if name in owners:
                owners[name].generator.bit_generator.state = state

    # ---- printing ------------------------------------------------------------------------------------------

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr``; override in layers."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        children = [f"({name}): {_indent(repr(m))}" for name, m in self._modules.items()]
        if not children:
            return f"{type(self).__name__}({extra})"
        lines = ([extra] if extra else []) + children
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"


def _indent(text: str) -> str:
    return text.replace("\n", "\n  ")


class Sequential(Module):
    """Modules applied one after another: ``Sequential(Linear(2, 100), ReLU(), Linear(100, 3))``.

    Sub-modules are named "0", "1", ...; index, slice, iterate and ``append`` like a list.
    """

    def __init__(self, *modules: Module):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> "Sequential":
        if not isinstance(module, Module):
            raise TypeError(f"Sequential: expected Modules, got a {type(module).__name__}")
        setattr(self, str(len(self._modules)), module)
        return self

    def forward(self, x: Any) -> Any:
        for m in self._modules.values():
            x = m(x)
        return x

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._modules.values()))

    def __getitem__(self, index: int | slice) -> Any:
        mods = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*mods[index])
        return mods[index]
