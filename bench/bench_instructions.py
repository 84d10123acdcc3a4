"""Per-op cost of the engine in CPU instructions (valgrind's callgrind): a measure the machine's load cannot move.

Runs the chain of ``bench_engine.py`` (``y = y * w; y = y + b; y = tanh(y); y = y * 0.5``, 16-element float32
tensors) under ``valgrind --tool=callgrind`` twice, with ``--small`` and ``--large`` ops, and reports the difference
divided by the difference in ops: the instructions per op of the forward pass, and of forward + backward, with
interpreter start-up and imports cancelled out. ``PYTHONHASHSEED=0`` makes the runs repeatable.

``--root`` points at another checkout (e.g. a copy of the previous commit), so two versions of chainrule can be
compared in one session:

    python bench/bench_instructions.py                       # this checkout
    python bench/bench_instructions.py --root /tmp/old-copy  # another one
    python bench/bench_instructions.py --second-order        # also: one create_graph backward of the chain

Needs ``valgrind`` on PATH. Each run takes about a minute.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHAIN = r"""
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import chainrule as cr
n_ops, mode = int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
x = cr.Tensor(rng.standard_normal(16).astype(np.float32), requires_grad=True)
w = cr.Tensor(np.full(16, 1.5, dtype=np.float32), requires_grad=True)
b = cr.Tensor(np.full(16, 0.1, dtype=np.float32), requires_grad=True)
y = x
for _ in range(n_ops // 4):
    y = y * w
    y = y + b
    y = y.tanh()
    y = y * 0.5
loss = y.sum()
if mode == "both":
    loss.backward()
elif mode == "second":
    (gx,) = cr.autograd.grad(loss, [x], create_graph=True)
    gx.sum().backward()
"""


def instructions(root: Path, n_ops: int, mode: str) -> int:
    """Total instructions (Ir) of one run of the chain under callgrind."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "chain.py"
        script.write_text(CHAIN)
        out = Path(tmp) / "callgrind.out"
        env = dict(os.environ, PYTHONHASHSEED="0", OPENBLAS_NUM_THREADS="1")
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, str(script), str(root),
               str(n_ops), mode]
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        match = re.search(r"^(?:summary|totals):\s+(\d+)", out.read_text(), re.MULTILINE)
        if match is None:
            raise SystemExit(f"no instruction total in {out}")
        return int(match.group(1))


def per_op(root: Path, small: int, large: int, mode: str) -> float:
    return (instructions(root, large, mode) - instructions(root, small, mode)) / (large - small)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose chainrule is measured")
    parser.add_argument("--small", type=int, default=8000, help="ops in the shorter run")
    parser.add_argument("--large", type=int, default=24000, help="ops in the longer run")
    parser.add_argument("--second-order", action="store_true", help="also measure a create_graph backward")
    args = parser.parse_args(argv)
    modes = ["forward", "both"] + (["second"] if args.second_order else [])
    print(f"chainrule at {args.root.resolve()}; instructions per op (callgrind, {args.large} - {args.small} ops)")
    for mode in modes:
        label = {"forward": "forward", "both": "forward + backward",
                 "second": "forward + create_graph grad + backward of it"}[mode]
        print(f"{label:<46} {per_op(args.root, args.small, args.large, mode) / 1000:8.1f}k")


if __name__ == "__main__":
    main()
