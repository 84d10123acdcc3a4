"""The subcommands of the ``chainrule`` command line, one module each (see ``chainrule.cli``).

Each module has ``add_parser(subparsers, common)`` and the function it registers as ``func``. The code that does
the work (``chainrule.runs.train_run``, ``chainrule.runs.load_trained``) takes plain values, so it can be called
without argparse.
"""
