"""The training settings of every ``NeuralNetClassifier``: their allowed values, and the one function that checks
them all (the leaf checks its architecture: ``_validate_architecture``).

    hp = validated(net)          # {name: checked value}; ValueError naming the parameter, the value and the fix

``fit``, ``partial_fit`` and ``_validate_params`` call it, so ``chainrule train`` and ``tune`` refuse a bad value
before anything is written or trained.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule import backend
from chainrule.classifiers._inputs import FEATURES, PREPROCESSING
from chainrule.classifiers.base import BaseClassifier, check_choice, check_int_param, check_real_param
from chainrule.optim.factory import OPTIMIZERS
from chainrule.optim.schedules import RUN_SCHEDULES

BUDGET_SCHEDULES = ("constant", "cosine", "linear")  # the shapes a time_budget run can anneal over
AUGMENT = (False, True, "flip")
# matmul_precision -> chainrule.backend's float32 matmul precision of the network's products
# ("auto": "bf16" where this machine has bfloat16 products, else "float32"; see matmul_precision below)
MATMUL_PRECISIONS = {"float32": "highest", "bf16": "medium"}


def validated(est: BaseClassifier) -> dict[str, Any]:
    """Every hyperparameter of ``est`` (a ``NeuralNetClassifier``) checked and normalised (numbers as floats / ints),
    its architecture first (``est._validate_architecture()``); ValueError for the first bad one."""
    name = type(est).__name__
    hp: dict[str, Any] = {
        **est._validate_architecture(),
        "optimizer": check_choice(est, "optimizer", tuple(OPTIMIZERS)),
        "lr": check_real_param(est, "lr", 0.0, strict=True),
        "momentum": check_real_param(est, "momentum", 0.0),
        "weight_decay": check_real_param(est, "weight_decay", 0.0),
        "batch_size": check_int_param(est, "batch_size", 1),
        "epochs": check_int_param(est, "epochs", 1),
        "schedule": check_choice(est, "schedule", RUN_SCHEDULES),
        "warmup_epochs": check_real_param(est, "warmup_epochs", 0.0),
        "label_smoothing": check_real_param(est, "label_smoothing", 0.0),
        "preprocessing": check_choice(est, "preprocessing", PREPROCESSING),
        "features": check_choice(est, "features", FEATURES),
        "hog_cell": check_int_param(est, "hog_cell", 1),
        "augment": check_choice(est, "augment", AUGMENT),
        "test_time_flip": check_flag(est, "test_time_flip"),
        "matmul_precision": matmul_precision(est),
        "n_iter_no_change": check_int_param(est, "n_iter_no_change", 1),
        "tol": check_real_param(est, "tol", 0.0),
        "eval_batch_size": check_int_param(est, "eval_batch_size", 1),
        "early_stopping": check_flag(est, "early_stopping"),
    }
    if hp["momentum"] >= 1:
        raise ValueError(f"{name}: momentum must be in [0, 1), got {est.momentum!r}")
    if est.optimizer == "sgd" and est.nesterov and hp["momentum"] == 0:
        raise ValueError(f"{name}: nesterov=True needs momentum > 0; set momentum=0.9 or nesterov=False")
    if hp["label_smoothing"] > 1:
        raise ValueError(f"{name}: label_smoothing must be in [0, 1], got {est.label_smoothing!r}")
    fraction = check_real_param(est, "validation_fraction", 0.0, strict=True)
    if fraction >= 1:
        raise ValueError(f"{name}: validation_fraction must be in (0, 1), got {est.validation_fraction!r}")
    hp["validation_fraction"] = fraction
    hp["time_budget"] = None if est.time_budget is None else check_real_param(est, "time_budget", 0.0, strict=True)
    hp["clip_grad_norm"] = (None if est.clip_grad_norm is None
                            else check_real_param(est, "clip_grad_norm", 0.0, strict=True))
    if hp["time_budget"] is not None and hp["schedule"] not in BUDGET_SCHEDULES:
        raise ValueError(f"{name}: time_budget anneals schedule {list(BUDGET_SCHEDULES)} over the budget, got "
                         f"schedule={est.schedule!r}")
    if hp["augment"] is not False and hp["features"] is not None:
        raise ValueError(f"{name}: augment={est.augment!r} transforms images, but features={est.features!r} "
                         "replaces them by feature vectors; use augment=False with features")
    return hp


def matmul_precision(est: BaseClassifier) -> str:
    """``est.matmul_precision`` resolved to "float32" or "bf16", checked. "bf16" needs oneDNN with a bfloat16 matmul
    for this CPU, and the error says why there is none and how to get it (the estimator refuses before fitting
    anything, so ``chainrule train`` reports it as a usage error); "auto" is "bf16" where that holds and "float32"
    elsewhere (a config that runs on any machine: the answer can differ between machines, not within one)."""
    value = check_choice(est, "matmul_precision", (*MATMUL_PRECISIONS, "auto"))
    if value == "float32":
        return value
    why = backend.bf16_unavailable()
    if value == "auto":
        return "float32" if why else "bf16"
    if why:
        raise ValueError(f"{type(est).__name__}: matmul_precision='bf16' runs the network's products in bfloat16 "
                         f"on oneDNN, which cannot here ({why}); {backend.BF16_INSTALL} on a CPU with AVX-512, or "
                         "use matmul_precision='float32' (or 'auto': bfloat16 where available)")
    return value


def check_flag(est: BaseClassifier, name: str) -> bool:
    """The hyperparameter ``name``, which must be True or False."""
    value = getattr(est, name)
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{type(est).__name__}: {name} must be True or False, got {value!r}")
    return bool(value)
