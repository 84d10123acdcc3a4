"""Runs: the concept behind ``chainrule train``, ``compare``, ``evaluate`` and ``predict`` in one place.

    from chainrule.runs import train_run, load_trained
    result = train_run(config, RunFolder("runs/digits-mlp"))   # fit a resolved configuration into a run folder
    trained = load_trained("runs/digits-mlp")                 # a finished (or stopped) run, loaded back
    trained.predict(X); trained.probabilities(X)

- ``chainrule.runs.training``: ``train_run`` (build the estimator of a configuration, fit it with the run-folder
  hooks, write config.toml, model.npz, summary.json, plots and report.html), ``RunResult``, ``split_seed``;
- ``chainrule.runs.loading``: ``load_trained`` and ``Trained`` (a run folder, its model.npz or a checkpoint);
- ``chainrule.runs.outputs``: the plots, summary tables and report a run writes.

The folder itself (its files, the lock, atomic writes) is ``chainrule.train.RunFolder``; the configuration a run is
resolved from is ``chainrule.commands.config``; the metrics are ``chainrule.train`` 's.
"""

from chainrule.runs.loading import OldRunFormatError, Trained, input_spec, load_trained
from chainrule.runs.training import RunResult, run_settings, split_seed, train_run

__all__ = ["train_run", "RunResult", "split_seed", "run_settings", "load_trained", "Trained", "input_spec",
           "OldRunFormatError"]
