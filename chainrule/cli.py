"""The ``chainrule`` command: ``chainrule <command> [options]`` (``python -m chainrule`` works too).

Commands (one module each in ``chainrule.commands``):

    train       train a classifier and write a run folder (resumable)
    evaluate    accuracy, per-class accuracy and confusion matrix of a trained run on a split
    predict     top-3 classes of image files
    compare     kNN, linear SVM, softmax and MLP (and random search) on one dataset, one report
    gradcheck   numerical vs analytic gradients of a model's loss, per parameter
    schedule    preview a learning-rate schedule
    tune        search hyperparameters (grid / random / halving), locally or on a Dask cluster
    playground  the lectures' interactive 2-D classification demo in a browser (needs the [playground] extra)

Errors are one line on stderr, ``chainrule <command>: error: ...``; the exit code is 2 for a usage error (bad flag
or value, unknown dataset, missing path, incompatible resume) and 1 for a failure while running (a run folder in
use by another process included), 130 / 143 when stopped by SIGINT (Ctrl-C) / SIGTERM. ``--debug``
prints the traceback too.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import Sequence

from chainrule.commands.common import UsageError, configure_logging
from chainrule.train.interrupt import Interrupted

_COMMANDS = ("train", "evaluate", "predict", "compare", "gradcheck", "schedule", "tune", "playground")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error raises UsageError (printed as one line by main) instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    from chainrule import __version__

    common = _Parser(add_help=False)
    group = common.add_argument_group("output")
    group.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                       help="only results and warnings: no progress bar, no log lines")
    group.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug log lines")
    group.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the traceback of an error")

    parser = _Parser(prog="chainrule", description="Neural networks and backpropagation the way CS231n teaches "
                     "them: train, evaluate and compare image classifiers.",
                     epilog="Run 'chainrule <command> --help' for a command's options.")
    parser.add_argument("--version", action="version", version=f"chainrule {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", default=False, help=argparse.SUPPRESS)
    parser.add_argument("-v", "--verbose", action="store_true", default=False, help=argparse.SUPPRESS)
    parser.add_argument("--debug", action="store_true", default=False, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in _COMMANDS:
        importlib.import_module(f"chainrule.commands.{name}").add_parser(sub, common)
    return parser


def _one_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 failure, 2 usage error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    prog = "chainrule"
    try:
        command = next((a for a in argv if not a.startswith("-")), None)
        if command in _COMMANDS:
            prog = f"chainrule {command}"
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        prog = f"chainrule {args.command}"
        if extra:
            raise UsageError(f"unrecognized arguments: {' '.join(extra)} (see '{prog} --help')")
        debug = args.debug
        restore = configure_logging(quiet=args.quiet, verbose=args.verbose)
        try:
            return int(args.func(args) or 0)
        finally:
            restore()
    except SystemExit as e:  # --help / --version
        return int(e.code or 0) if isinstance(e.code, int) or e.code is None else 2
    except UsageError as e:
        _print_error(prog, e, debug)
        return 2
    except BrokenPipeError:  # e.g. `chainrule evaluate RUN | head`: the reader left; stop quietly
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1
    except Interrupted as e:  # SIGINT / SIGTERM where the command handles them (train: after a checkpoint)
        print(f"{prog}: {_one_line(e)}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the CLI's job is to turn any failure into one line
        _print_error(prog, e, debug)
        return 1


def _print_error(prog: str, e: BaseException, debug: bool) -> None:
    if debug:
        traceback.print_exc()
    name = "" if isinstance(e, (UsageError, RuntimeError, ValueError, OSError)) else f"{type(e).__name__}: "
    print(f"{prog}: error: {name}{_one_line(e)}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
