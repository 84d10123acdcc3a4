"""The one builder of optimizers by name (the estimators, the CLI and the playground use it).

    opt = make_optimizer("sgd", groups, lr=0.1, momentum=0.9, nesterov=True)
    opt = make_optimizer("adamw", model.parameters(), lr=1e-3, weight_decay=1e-2)
    set_options(opt, lr=0.05, momentum=0.5)     # change a running optimizer's options in every group

Names (``OPTIMIZERS``): "sgd" (``SGD``: ``momentum``, Nesterov with ``nesterov=True``), "adam" (``Adam``),
"adamw" (``AdamW``: decoupled weight decay), "rmsprop" (``RMSProp``). ``weight_decay`` is each optimizer's own
(L2 added to the gradient; decoupled for "adamw"); a group that sets its own ``weight_decay`` keeps it.
``momentum`` and ``nesterov`` are SGD's.
Options an optimizer does not have (``momentum`` for Adam) are ignored, so one set of hyperparameters builds any
of them.
"""

from __future__ import annotations

import difflib
from typing import Any, Iterable

from chainrule.optim.adam import Adam, AdamW
from chainrule.optim.optimizer import Optimizer
from chainrule.optim.rmsprop import RMSProp
from chainrule.optim.sgd import SGD

__all__ = ["OPTIMIZERS", "NO_DECAY", "make_optimizer", "set_options"]

NO_DECAY = "no_decay"  # the name of a param group that set_options never gives weight decay

OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSProp}


def make_optimizer(name: str, params: Iterable[Any], *, lr: float, momentum: float = 0.0, nesterov: bool = False,
                   weight_decay: float = 0.0) -> Optimizer:
    """The optimizer ``name`` (one of ``OPTIMIZERS``) over ``params`` (parameters or param-group dicts)."""
    cls = _lookup(name)
    options: dict[str, Any] = {"lr": lr, "weight_decay": weight_decay}
    if cls is SGD:
        options.update(momentum=momentum, nesterov=bool(nesterov))
    return cls(params, **options)


def set_options(optimizer: Optimizer, **options: Any) -> None:
    """Set options (e.g. ``lr``, ``momentum``, ``weight_decay``) in every param group of a running optimizer;
    options it does not have are ignored. Values are validated like the constructor's, and per-parameter state
    that the new options make meaningless (SGD's momentum buffers when momentum becomes 0) is dropped. Groups named
    ``NO_DECAY`` ("no_decay": biases and normalisation parameters) keep their ``weight_decay``."""
    known = {k: v for k, v in options.items() if k in optimizer.option_names}
    for gi, group in enumerate(optimizer.param_groups):
        update = dict(known)
        if group.get("name") == NO_DECAY:
            update.pop("weight_decay", None)
        merged = {name: update.get(name, group[name]) for name in optimizer.option_names}
        group.update(optimizer._check_options(merged, where=f"param group {gi}: "))
        spec = optimizer._state_spec(group)
        for p in group["params"]:
            state = optimizer.state.get(p)
            if state:
                for key in [k for k in state if k not in spec]:
                    del state[key]


def _lookup(name: str) -> type[Optimizer]:
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in OPTIMIZERS:
        close = difflib.get_close_matches(str(name), list(OPTIMIZERS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown optimizer {name!r}{hint}; valid names: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[key]
