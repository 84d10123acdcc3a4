"""Optimizers, gradient clipping and learning-rate schedules.

    from chainrule.optim import SGD, Adam, clip_grad_norm
    from chainrule.optim.schedules import make_schedule

    opt = Adam(model.parameters(), lr=1e-3)
    sched = make_schedule("cosine", opt, total_steps=10_000, warmup=500)
    for x, y in batches:
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        clip_grad_norm(model.parameters(), 1.0)
        opt.step()
        sched.step()

Update rules follow ``torch.optim``'s documented equations (see each class); updates are in place on ``p.data``.
PyTorch's names work too: ``RMSprop`` (with PyTorch's argument order), ``lr_scheduler.StepLR``,
``lr_scheduler.CosineAnnealingLR`` and ``lr_scheduler.ReduceLROnPlateau`` (with PyTorch's arguments and
semantics); see docs/engine.md for the table.
"""

from chainrule.optim import lr_scheduler, schedules
from chainrule.optim.adam import Adam, AdamW
from chainrule.optim.clip import clip_grad_norm, clip_grad_value
from chainrule.optim.groups import param_groups
from chainrule.optim.optimizer import Optimizer
from chainrule.optim.rmsprop import RMSProp, RMSprop
from chainrule.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "RMSProp", "RMSprop", "Adam", "AdamW", "clip_grad_norm", "clip_grad_value", "schedules",
           "lr_scheduler", "param_groups"]
