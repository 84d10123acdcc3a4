"""``chainrule gradcheck``: compare backprop's gradients with centered differences, per parameter (CS231n).

    chainrule gradcheck --model mlp --hidden 10,10 --activation tanh --norm batch --reg 1e-3

The model is built in float64 on a small random batch; for each parameter the analytic gradient (one backward
pass) is compared with (L(w + h) - L(w - h)) / 2h at every entry (or ``--samples`` random entries of large
parameters) and the largest relative error |a - n| / max(|a| + |n|, 1e-8) is printed. Below ~1e-7 is a pass in
float64; ReLU and hinge kinks can occasionally give larger errors at single entries. An entry whose analytic and
numerical values differ by less than ``--atol`` passes too (gradients that are exactly zero, such as a bias
followed by batch norm, have meaningless relative errors).
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from chainrule.commands.common import UsageError, say, usage_errors
from chainrule.commands.values import int_list
from chainrule.nn.activations import ACTIVATION_NAMES as ACTIVATIONS


# --model: the network whose loss is checked (hidden layers from --hidden or none) and its data loss
MODELS = {"mlp": ("a fully-connected net, softmax loss", True, "cross_entropy"),
          "softmax": ("a linear classifier, softmax loss", False, "cross_entropy"),
          "svm": ("a linear classifier, multiclass hinge loss", False, "multiclass_hinge")}


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("gradcheck", parents=[common], help="numerical gradient check of a model's loss",
                       description="Check a model's backward pass against numerical gradients (float64), printing "
                                   "the relative error of each parameter. Exit code 1 if any exceeds --tol.")
    p.add_argument("--model", choices=tuple(MODELS), default="mlp",
                   help="; ".join(f"{k}: {v[0]}" for k, v in MODELS.items()) + " (default: mlp)")
    p.add_argument("--hidden", default="10,10", help="hidden sizes of the MLP (default: 10,10)")
    p.add_argument("--activation", choices=ACTIVATIONS, default="relu", metavar="|".join(ACTIVATIONS),
                   help="default: relu")
    p.add_argument("--norm", choices=("none", "batch", "layer"), default="none", help="default: none")
    p.add_argument("--dropout", type=float, default=0.0, help="dropout probability (masks are held fixed)")
    p.add_argument("--reg", type=float, default=1e-3, help="L2 regularisation strength (default: 1e-3)")
    p.add_argument("--inputs", type=int, default=8, help="input features D (default: 8)")
    p.add_argument("--classes", type=int, default=4, help="classes C (default: 4)")
    p.add_argument("--batch", type=int, default=6, help="samples N (default: 6)")
    p.add_argument("--samples", type=int, default=50,
                   help="entries checked per parameter; parameters this small or smaller are checked fully "
                        "(default: 50)")
    p.add_argument("--eps", type=float, default=1e-5, help="finite-difference step h (default: 1e-5)")
    p.add_argument("--tol", type=float, default=1e-5, help="largest relative error that passes (default: 1e-5)")
    p.add_argument("--atol", type=float, default=1e-8,
                   help="an entry also passes when |analytic - numerical| is below this: gradients that are zero "
                        "in exact arithmetic (a bias before batch norm) have meaningless relative errors "
                        "(default: 1e-8)")
    p.add_argument("--seed", type=int, default=0, help="default: 0")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import chainrule.nn.functional as F
    from chainrule import Tensor, nn
    from chainrule.gradcheck import check_parameters

    for name in ("inputs", "classes", "batch", "samples"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.classes < 2:
        raise UsageError(f"--classes must be >= 2, got {args.classes}")
    if not (args.eps > 0 and args.tol > 0 and args.atol >= 0 and args.reg >= 0):
        raise UsageError("--eps and --tol must be > 0, --atol and --reg >= 0")
    _, has_hidden, loss_name = MODELS[args.model]
    hidden = int_list(args.hidden, "--hidden") if has_hidden else []
    if has_hidden and not hidden:
        raise UsageError(f"--hidden is empty for --model {args.model}; give sizes like 10,10")
    sizes = [args.inputs, *hidden, args.classes]
    with usage_errors():
        model = nn.MLP(sizes, activation=args.activation, dropout=args.dropout,
                       norm=None if args.norm == "none" else args.norm, seed=args.seed, dtype=np.float64)
    rng = np.random.default_rng(args.seed + 1)
    X = Tensor(rng.standard_normal((args.batch, args.inputs)))
    y = rng.integers(0, args.classes, size=args.batch)
    data_loss = getattr(F, loss_name)
    rng_states = model.rng_states()

    def loss_value() -> Any:
        model.load_rng_states(rng_states)  # the same dropout masks at every evaluation
        loss = data_loss(model(X), y)
        if args.reg > 0:
            loss = loss + F.l2_penalty(model, args.reg)
        return loss

    model.train()
    loss, checks = check_parameters(loss_value, model.named_parameters(), eps=args.eps, tol=args.tol,
                                    atol=args.atol, samples=args.samples, rng=rng)
    say(f"gradient check of {args.model} {' -> '.join(map(str, sizes))} ({args.activation}, norm {args.norm}, "
        f"dropout {args.dropout:g}, reg {args.reg:g}) in float64 on {args.batch} random samples; "
        f"loss {loss:.6f}")
    say(f"{'parameter':<14} {'shape':<12} {'checked':>8}  {'max rel error':>13}  {'max abs error':>13}  result")
    for c in checks:
        shape = "x".join(map(str, c.shape))
        say(f"{c.name:<14} {shape:<12} {c.checked:>8}  {c.max_rel_error:>13.3e}  {c.max_abs_error:>13.3e}  "
            f"{'ok' if c.ok else 'FAIL'}")
    failed = sum(not c.ok for c in checks)
    if failed:
        raise RuntimeError(f"{failed} parameter(s) have a relative error above --tol {args.tol:g} and an absolute "
                           f"error above --atol {args.atol:g} (a single "
                           "large error at a ReLU/hinge kink can be benign: rerun with another --seed)")
    say(f"all {len(checks)} parameters pass (relative error <= {args.tol:g} or absolute error "
        f"<= {args.atol:g} at every checked entry)")
    return 0
