"""``Optimizer``: the base class of chainrule's optimizers: parameter groups, per-parameter state, checkpoints.

An optimizer owns a list of *parameter groups*. Each group is a dict with the key ``"params"`` (a list of
parameters) and one value for every hyperparameter of the optimizer (``lr``, ``momentum``, ...); options missing
from a group are taken from the constructor's keyword arguments, as in ``torch.optim``::

    opt = SGD([{"params": model.body.parameters()},
               {"params": model.head.parameters(), "lr": 1e-3}], lr=1e-2, momentum=0.9)

A parameter is anything with a floating-point NumPy array in ``.data`` and ``None`` or a same-shaped array in
``.grad`` (``chainrule.Tensor``, ``chainrule.nn.Parameter``). ``step()`` updates ``p.data`` in place, bumps the
version counter of each Tensor it updates (so a graph recorded before the step refuses to backpropagate with the
new values) and skips parameters whose ``.grad`` is None. Per-parameter state (moment estimates, step counts) lives in
``optimizer.state[p]``, as arrays of the parameter's dtype, created at the parameter's first update.

Checkpoint format (``state_dict()``), storable as one ``.npz`` plus one JSON document without pickle::

    {"type": "Adam",                               # str: the optimizer class; checked on load
     "param_groups": [{"lr": 0.001, "betas": [0.9, 0.999], ..., "params": [0, 1]},
                      {..., "params": [2]}],       # JSON: options of each group; params are parameter indices
     "state": {"0.step": array(12),                # npz: "<index>.<name>" -> ndarray (copies)
               "0.exp_avg": array([...], dtype=float32), ...}}

Parameter indices count the parameters of all groups in order (group 0 first). Per-parameter integers (``step``)
are stored as 0-d int64 arrays so that ``"state"`` holds nothing but arrays: save it with
``np.savez(f, **sd["state"])`` and the rest with ``json.dump``. ``load_state_dict`` restores group options and
state into an optimizer built over the same parameters, in the same group structure, and the continuation is
bit-for-bit identical to never having stopped.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any, Callable, ClassVar, Iterable, Mapping

import numpy as np

from chainrule.engine import bump
from chainrule.function import enable_grad
from chainrule.tensor import Tensor


class Optimizer:
    """Base class: holds parameter groups and state; subclasses implement ``_update`` (one parameter, one step).

    Subclasses declare ``option_names`` (the hyperparameters a group carries), implement ``_check_options``
    (validate and normalise one group's options; raise ValueError naming the rule and the value) and
    ``_state_spec`` (the state entries a stepped parameter has under a group's options).
    """

    option_names: ClassVar[tuple[str, ...]] = ()
    checkpoint_name: ClassVar[str | None] = None  # the "type" in state_dict(); None: the class name

    def __init__(self, params: Iterable[Any], defaults: Mapping[str, Any]):
        self.defaults = self._check_options(dict(defaults), where="")
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[Any, dict[str, Any]] = {}
        self._scratch_buffers: dict[tuple[str, int], np.ndarray] = {}
        if _looks_like_param(params) or isinstance(params, np.ndarray):
            raise TypeError(
                f"params must be an iterable of parameters or of param-group dicts, got a single "
                f"{type(params).__name__}; wrap it in a list: [{type(params).__name__.lower()}]"
            )
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list; pass model.parameters() or a list of tensors")
        if all(isinstance(g, Mapping) for g in groups):
            for g in groups:
                self.add_param_group(g)
        elif any(isinstance(g, Mapping) for g in groups):
            raise TypeError("params mixes tensors and param-group dicts; pass either only tensors or only dicts")
        else:
            self.add_param_group({"params": groups})

    # ---- groups --------------------------------------------------------------------------------------------

    def add_param_group(self, param_group: Mapping[str, Any]) -> None:
        """Append a group ``{"params": [...], option: value, ...}``; missing options come from ``defaults``."""
        where = f"param group {len(self.param_groups)}: "
        if "params" not in param_group:
            raise ValueError(f"{where}a param group needs a 'params' key holding its parameters")
        unknown = sorted(set(param_group) - set(self.option_names) - {"params", "name"})
        if unknown:
            raise ValueError(
                f"{where}unknown option(s) {unknown} for {type(self).__name__}; "
                f"valid options are {list(self.option_names)} (and 'name')"
            )
        params = param_group["params"]
        params = [params] if _looks_like_param(params) else list(params)
        if not params:
            raise ValueError(f"{where}'params' is empty; every group needs at least one parameter")
        seen = {id(p): (gi, k) for gi, g in enumerate(self.param_groups) for k, p in enumerate(g["params"])}
        for k, p in enumerate(params):
            if not _looks_like_param(p):
                raise TypeError(
                    f"{where}parameter {k} is a {type(p).__name__}; expected a Tensor/Parameter with a NumPy "
                    "'.data' array and a '.grad' attribute"
                )
            if not np.issubdtype(p.data.dtype, np.floating):
                raise TypeError(
                    f"{where}parameter {k} has dtype {p.data.dtype}; optimizers update floating-point "
                    "parameters in place, so create it with a float dtype (e.g. np.float32)"
                )
            try:
                hash(p)
            except TypeError:
                raise TypeError(
                    f"{where}parameter {k} ({type(p).__name__}) is unhashable; optimizer state is keyed by the "
                    "parameter object, so keep Python's identity hash (do not set __hash__ = None)"
                ) from None
            if id(p) in seen:
                gi, j = seen[id(p)]
                raise ValueError(
                    f"{where}parameter {k} already appears as parameter {j} of param group {gi}; "
                    "each parameter may belong to only one group"
                )
            seen[id(p)] = (len(self.param_groups), k)
        options = {name: param_group.get(name, self.defaults[name]) for name in self.option_names}
        group: dict[str, Any] = {"params": params, **self._check_options(options, where=where)}
        if "name" in param_group:
            group["name"] = str(param_group["name"])
        self.param_groups.append(group)

    def _check_options(self, options: dict[str, Any], where: str) -> dict[str, Any]:
        """Validate and normalise (floats, bools, tuples) one group's options; subclasses extend."""
        return {"lr": check_real("lr", options["lr"], where, low=0.0)}

    def _state_spec(self, group: Mapping[str, Any]) -> dict[str, str]:
        """State entries a stepped parameter has under ``group``'s options: name -> "int" or "array"."""
        return {}

    # ---- the update loop -----------------------------------------------------------------------------------

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients: drop them (default; backward allocates anew) or fill them with zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif isinstance(p.grad, Tensor):  # a gradient on a graph: replaced by zeros off the graph
                    p.grad = np.zeros_like(p.grad.data)
                elif p.grad is not None:
                    p.grad.fill(0)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a ``.grad``, in place. Returns ``closure()`` if one is given.

        ``closure`` re-evaluates the model and returns the loss (zeroing grads and calling backward itself).
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for gi, group in enumerate(self.param_groups):
            hp = self._step_options(group)
            for k, p in enumerate(group["params"]):
                g = p.grad
                if g is None:
                    continue
                if isinstance(g, Tensor):  # left by backward(create_graph=True): the step uses its values
                    g = g.data
                x = p.data
                if g.shape != x.shape:
                    raise ValueError(
                        f"param group {gi}, parameter {k}: .grad has shape {g.shape} but .data has shape {x.shape}; "
                        "a gradient must have its parameter's shape"
                    )
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = {}
                self._update(x, g, state, hp)
                if isinstance(p, Tensor):
                    bump(p)
        return loss

    def _step_options(self, group: Mapping[str, Any]) -> dict[str, Any]:
        """The group's options as plain Python scalars (a NumPy float64 lr would upcast float32 arithmetic)."""
        return {name: _plain(group[name]) for name in self.option_names}

    def _update(self, x: np.ndarray, g: np.ndarray, state: dict[str, Any], hp: Mapping[str, Any]) -> None:
        """Update one parameter ``x`` in place from its gradient ``g``; subclasses implement."""
        raise NotImplementedError(f"{type(self).__name__} must implement _update")

    def _decayed_grad(self, x: np.ndarray, g: np.ndarray, weight_decay: float) -> tuple[np.ndarray, int]:
        """(g + weight_decay * x, the first free scratch slot): the L2 opening of every update (PyTorch's
        ``weight_decay``); with weight_decay = 0 the gradient itself and slot 0. The sum is written to scratch slot 0
        (``_scratch``), never into the gradient."""
        if weight_decay == 0:
            return g, 0
        s = self._scratch(x, 0)
        np.multiply(x, weight_decay, out=s)
        np.add(s, g, out=s)
        return s, 1

    def _scratch(self, x: np.ndarray, slot: int) -> np.ndarray:
        """A work array shaped and typed like ``x``, shared by all parameters (one per dtype and slot).

        Allocated on first use and sized for the largest parameter of that dtype, so later steps allocate
        nothing. Not part of the state: its contents are garbage between calls.
        """
        key = (x.dtype.str, slot)
        buf = self._scratch_buffers.get(key)
        if buf is None or buf.size < x.size:
            largest = max(
                (p.data.size for g in self.param_groups for p in g["params"] if p.data.dtype == x.dtype),
                default=x.size,
            )
            buf = self._scratch_buffers[key] = np.empty(max(largest, x.size), dtype=x.dtype)
        return buf[: x.size].reshape(x.shape)

    # ---- checkpoints ---------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Options and state as JSON-able values plus a flat dict of arrays (format in the module docstring)."""
        groups = []
        state: dict[str, np.ndarray] = {}
        index = 0
        for group in self.param_groups:
            saved = {k: _jsonable(v) for k, v in group.items() if k != "params"}
            saved["params"] = list(range(index, index + len(group["params"])))
            groups.append(saved)
            for p in group["params"]:
                for name, value in self.state.get(p, {}).items():
                    if isinstance(value, np.ndarray):
                        state[f"{index}.{name}"] = value.copy()
                    else:
                        state[f"{index}.{name}"] = np.asarray(value, dtype=np.int64)
                index += 1
        return {"type": self._checkpoint_type(), "param_groups": groups, "state": state}

    def _checkpoint_type(self) -> str:
        return self.checkpoint_name or type(self).__name__

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore options and state saved by ``state_dict()`` (possibly after an npz + JSON round trip).

        The optimizer must hold the same parameters in the same group structure. Everything is checked before
        anything is changed: on error the optimizer is left as it was.
        """
        missing = [k for k in ("type", "param_groups", "state") if k not in state_dict]
        if missing:
            raise ValueError(f"optimizer state_dict lacks key(s) {missing}; expected the output of state_dict()")
        if state_dict["type"] != self._checkpoint_type():
            raise ValueError(
                f"state_dict was saved by a {state_dict['type']} optimizer; cannot load it into {type(self).__name__}"
            )
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"state_dict has {len(saved_groups)} param group(s) but this optimizer has "
                f"{len(self.param_groups)}; build the optimizer with the same groups as when it was saved"
            )
        index_to_param: dict[int, Any] = {}
        new_options = []
        for gi, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            where = f"state_dict param group {gi}: "
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"{where}{len(saved['params'])} parameter(s) saved, but this optimizer's group {gi} has "
                    f"{len(group['params'])}"
                )
            absent = [name for name in self.option_names if name not in saved]
            if absent:
                raise ValueError(f"{where}missing option(s) {absent}")
            options = self._check_options({name: saved[name] for name in self.option_names}, where=where)
            new_options.append((options, saved.get("name")))
            for i, p in zip(saved["params"], group["params"]):
                index_to_param[int(i)] = (p, options)
        by_index: dict[int, dict[str, Any]] = {}
        for key, value in state_dict["state"].items():
            i_str, _, name = str(key).partition(".")
            if not i_str.isdigit() or int(i_str) not in index_to_param:
                raise ValueError(f"state_dict state key {key!r} does not name a parameter index of this optimizer")
            p, options = index_to_param[int(i_str)]
            spec = self._state_spec(options)
            if name not in spec:
                raise ValueError(
                    f"state_dict state key {key!r}: {type(self).__name__} has no state {name!r} under these "
                    f"options; expected one of {sorted(spec)}"
                )
            arr = np.asarray(value)
            if spec[name] == "int":
                if arr.shape != () or not np.issubdtype(arr.dtype, np.integer):
                    raise ValueError(f"state_dict state key {key!r}: expected an integer scalar, got {arr!r}")
                by_index.setdefault(int(i_str), {})[name] = int(arr)
            else:
                if arr.shape != p.data.shape:
                    raise ValueError(
                        f"state_dict state key {key!r}: shape {arr.shape} does not match the parameter's shape "
                        f"{p.data.shape}"
                    )
                by_index.setdefault(int(i_str), {})[name] = np.array(arr, dtype=p.data.dtype, copy=True)
        for i, entries in by_index.items():
            lacking = sorted(set(self._state_spec(index_to_param[i][1])) - set(entries))
            if lacking:
                raise ValueError(
                    f"state_dict state of parameter {i} lacks {lacking}; it is incomplete or was saved under "
                    "different options"
                )
        for group, (options, name) in zip(self.param_groups, new_options):
            group.update(options)
            if name is not None:
                group["name"] = str(name)
        self.state = {index_to_param[i][0]: entries for i, entries in by_index.items()}

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}("]
        for gi, group in enumerate(self.param_groups):
            opts = ", ".join(f"{k}={group[k]!r}" for k in self.option_names)
            label = f" {group['name']!r}" if "name" in group else ""
            lines.append(f"  group {gi}{label}: {len(group['params'])} params, {opts}")
        lines.append(")")
        return "\n".join(lines)


# ---- validation helpers (shared by the optimizers) --------------------------------------------------------


def lerp_(avg: np.ndarray, g: np.ndarray, weight: float, scratch: np.ndarray) -> None:
    """avg <- avg + weight (g - avg) in place (torch's lerp: an exponential moving average of g)."""
    np.subtract(g, avg, out=scratch)
    np.multiply(scratch, weight, out=scratch)
    np.add(avg, scratch, out=avg)


def ema_square_(avg: np.ndarray, g: np.ndarray, decay: float, scratch: np.ndarray) -> None:
    """avg <- decay avg + (1 - decay) g^2 in place: the running mean of squared gradients (RMSProp, Adam)."""
    np.multiply(avg, decay, out=avg)
    np.multiply(g, g, out=scratch)
    np.multiply(scratch, 1.0 - decay, out=scratch)
    np.add(avg, scratch, out=avg)


def check_real(
    name: str, value: Any, where: str = "", *, low: float | None = None, high: float | None = None,
    high_open: bool = False,
) -> float:
    """``value`` as a finite float in [low, high] (or [low, high) with ``high_open``), else ValueError."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise ValueError(f"{where}{name} must be a finite real number, got {value!r}")
    value = float(value)
    if low is not None and value < low:
        raise ValueError(f"{where}{name} must be >= {low:g}, got {value!r}")
    if high is not None and (value >= high if high_open else value > high):
        rule = f"< {high:g}" if high_open else f"<= {high:g}"
        raise ValueError(f"{where}{name} must be {rule}, got {value!r}")
    return value


def check_bool(name: str, value: Any, where: str = "") -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{where}{name} must be True or False, got {value!r}")
    return bool(value)


def _looks_like_param(p: Any) -> bool:
    return isinstance(getattr(p, "data", None), np.ndarray) and hasattr(p, "grad")


def _plain(v: Any) -> Any:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, Integral):
        return int(v)
    if isinstance(v, Real):
        return float(v)
    if isinstance(v, (tuple, list)):
        return tuple(_plain(x) for x in v)
    return v


def _jsonable(v: Any) -> Any:
    v = _plain(v)
    return list(v) if isinstance(v, tuple) else v

