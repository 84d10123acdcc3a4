"""``chainrule schedule``: preview a learning-rate schedule before training with it.

    chainrule schedule cosine --lr 0.1 --steps 1000 --warmup 100 --plot lr.png
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from chainrule.commands.common import UsageError, say, usage_errors
from chainrule.commands.values import int_list
from chainrule.optim.schedules import SCHEDULES


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("schedule", parents=[common], help="preview a learning-rate schedule (table and plot)",
                       description="Print the learning rate at evenly spaced steps of a schedule and optionally "
                                   "plot it.")
    p.add_argument("name", metavar="NAME", help=f"schedule: {', '.join(s for s in SCHEDULES if s != 'plateau')}")
    p.add_argument("--lr", type=float, default=0.1, help="base learning rate (default: 0.1)")
    p.add_argument("--steps", type=int, default=1000, help="length of the run in steps (default: 1000)")
    p.add_argument("--warmup", type=int, default=0, help="linear warmup steps (default: 0)")
    p.add_argument("--min-lr", type=float, default=0.0, help="floor of cosine / end of linear (default: 0)")
    p.add_argument("--gamma", type=float, default=None,
                   help="decay factor: step (default 0.1) and exponential (default: down to 1%% at the end)")
    p.add_argument("--milestones", default=None, help="step schedule: steps where the rate is multiplied by gamma "
                                                      "(default: 50%% and 75%% of --steps)")
    p.add_argument("--timescale", type=float, default=None, help="invsqrt: timescale (default: warmup or 1)")
    p.add_argument("--points", type=int, default=11, help="rows of the printed table (default: 11)")
    p.add_argument("--plot", metavar="FILE.png", help="save a plot of the schedule")
    p.set_defaults(func=run)


def schedule_kwargs(name: str, steps: int, warmup: int, min_lr: float, gamma: float | None,
                    milestones: list[int] | None, timescale: float | None) -> dict[str, Any]:
    if name == "cosine":
        return {"total_steps": steps, "min_lr": min_lr}
    if name == "linear":
        return {"total_steps": steps, "end_lr": min_lr}
    if name == "step":
        ms = milestones if milestones else sorted({max(1, steps // 2), max(2, 3 * steps // 4)})
        return {"milestones": ms, "gamma": 0.1 if gamma is None else gamma}
    if name == "exponential":
        return {"gamma": gamma if gamma is not None else 0.01 ** (1.0 / max(steps - warmup, 1))}
    if name == "invsqrt":
        return {"timescale": timescale}
    return {}


def run(args: argparse.Namespace) -> int:
    from chainrule.optim.schedules import make_schedule

    name = args.name.strip().lower()
    if name == "plateau":
        raise UsageError("the plateau schedule depends on validation results, so it cannot be previewed; "
                         f"choose one of {', '.join(s for s in SCHEDULES if s != 'plateau')}")
    if args.steps < 1:
        raise UsageError(f"--steps must be >= 1, got {args.steps}")
    if args.points < 2:
        raise UsageError(f"--points must be >= 2, got {args.points}")
    milestones = int_list(args.milestones, "--milestones") if args.milestones else None
    with usage_errors():
        kwargs = schedule_kwargs(name, args.steps, args.warmup, args.min_lr, args.gamma, milestones, args.timescale)
        sched = make_schedule(name, base_lr=args.lr, warmup=args.warmup, **kwargs)
    lrs = sched.values(args.steps)[:, 0]
    settings = ", ".join(f"{k}={v}" for k, v in sched.config().items() if k != "interval")
    say(f"{name} schedule: base lr {args.lr:g}, {settings}")
    say(f"{'step':>8}  learning rate")
    for t in np.unique(np.linspace(0, args.steps - 1, args.points).round().astype(int)):
        say(f"{t:>8}  {lrs[t]:.6g}")
    say(f"min {lrs.min():.6g}, max {lrs.max():.6g}, mean {lrs.mean():.6g} over {args.steps} steps")
    if args.plot:
        from chainrule.train.plots import plot_lr

        warm = f", {args.warmup} warmup steps" if args.warmup else ""
        with usage_errors("--plot: "):
            plot_lr(np.arange(args.steps), lrs, args.plot, title=f"{name} schedule (base lr {args.lr:g}{warm})")
        say(f"plot: {args.plot}")
    return 0
