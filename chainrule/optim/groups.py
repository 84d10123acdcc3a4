"""Parameter groups by kind, so that one optimizer gives norms, biases and weights their own settings.

    groups = param_groups(model, {"norm": {"lr": 64 * lr, "weight_decay": 0.0}})
    opt = SGD(groups, lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)

Each trainable parameter (``requires_grad``) gets a kind from ``parameter_kind``: ``"norm"`` for the parameters of
normalisation layers (``chainrule.nn.normalization``: batch norm's beta and gamma, layer norm's), ``"bias"`` for
other parameters named ``bias``, ``"weight"`` for the rest. One group per kind present, in the order weight, bias,
norm (``"name"`` holds the kind; reports show group 0's learning rate, the base one), with the options ``rules`` gives for the kind; options a rule leaves out come from the
optimizer's keyword arguments, as for any param group. Frozen parameters are left out. The estimators build their
optimizers this way (e.g. ``ConvNetClassifier``'s ``norm_lr_scale`` and ``norm_weight_decay``), and the
optimizer's checkpoint records the group structure, so a resume checks it.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

KINDS = ("weight", "bias", "norm")


def _norm_types() -> tuple[type, ...]:
    """The normalisation layers: the Module classes defined in ``chainrule.nn.normalization``."""
    from chainrule.nn import normalization
    from chainrule.nn.module import Module

    return tuple(c for c in vars(normalization).values()
                 if isinstance(c, type) and issubclass(c, Module) and c.__module__ == normalization.__name__)


def parameter_kind(module: Any, name: str) -> str:
    """"norm", "bias" or "weight" for the parameter ``name`` owned directly by ``module``."""
    if isinstance(module, _norm_types()):
        return "norm"
    return "bias" if name == "bias" else "weight"


def param_groups(model: Any, rules: Mapping[str, Mapping[str, Any]] | None = None,
                 kind: Callable[[Any, str], str] = parameter_kind) -> list[dict[str, Any]]:
    """``model``'s trainable parameters as optimizer param groups, one per kind (see the module docstring)."""
    rules = dict(rules or {})
    unknown = sorted(set(rules) - set(KINDS))
    if unknown:
        raise ValueError(f"param_groups: unknown parameter kind(s) {unknown} in rules; the kinds are {list(KINDS)}")
    by_kind: dict[str, list[Any]] = {k: [] for k in KINDS}
    seen: set[int] = set()
    for _, module in model.named_modules():
        for name, p in module.named_parameters(recurse=False):
            if id(p) in seen or not getattr(p, "requires_grad", True):
                continue
            seen.add(id(p))
            k = kind(module, name)
            if k not in by_kind:
                raise ValueError(f"param_groups: kind() returned {k!r} for parameter {name!r}; expected one of "
                                 f"{list(KINDS)}")
            by_kind[k].append(p)
    groups = [{"params": ps, "name": k, **rules.get(k, {})} for k, ps in by_kind.items() if ps]
    if not groups:
        raise ValueError("param_groups: the model has no trainable parameters")
    return groups
