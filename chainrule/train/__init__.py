"""Training: the ``Trainer`` loop, exact checkpoints, time budgets, metrics, run folders, plots, reports, diagnostics.

    from chainrule.train import Trainer, CheckpointManager
    trainer = Trainer(model, F.cross_entropy, opt, loader, val_data=(X_val, y_val), epochs=10,
                      checkpoints=CheckpointManager("runs/demo/checkpoints"), checkpoint_every=100)
    trainer.fit()

Plots (``chainrule.train.plots``) and reports (``chainrule.train.report``) need matplotlib; they are imported on
use, not here.
"""

from chainrule.train.budget import BudgetSchedule, TimeBudget
from chainrule.train.checkpoint import (
    FORMAT_VERSION, CheckpointError, CheckpointIntegrityError, CheckpointManager, CheckpointWarning, load_checkpoint,
    save_checkpoint,
)
from chainrule.train.history import History, MetricsWriter, read_metrics_csv
from chainrule.train.progress import ProgressBar
from chainrule.train.runfolder import RunFolder, dumps_toml, load_toml
from chainrule.train.evaluation import confusion_matrix, per_class_accuracy
from chainrule.train.trainer import NonFiniteError, Trainer, predict_scores

__all__ = [
    "Trainer", "NonFiniteError", "predict_scores", "confusion_matrix", "per_class_accuracy", "TimeBudget", "BudgetSchedule",
    "CheckpointManager", "CheckpointError", "CheckpointIntegrityError", "CheckpointWarning", "save_checkpoint",
    "load_checkpoint",
    "FORMAT_VERSION", "History", "MetricsWriter", "read_metrics_csv", "ProgressBar",
    "RunFolder", "load_toml", "dumps_toml",
]
