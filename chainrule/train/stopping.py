"""Why a ``Trainer`` stopped before its last epoch: a kind (``StopReason``) and a message for people.

    trainer.stop is StopReason.EARLY_STOPPING        # the kind: what the loop and ``finished`` act on
    trainer.stop_reason                              # "early stopping: no validation-accuracy gain above 0 for 3 ..."

A run paused by a callback (``StopReason.CALLBACK``: a time budget, a signal, ``stop_training`` set by user code) is
not finished: calling ``fit()`` again continues it. Early stopping and a non-finite value end it for good.
"""

from __future__ import annotations

import enum


class StopReason(enum.Enum):
    CALLBACK = "callback"              # a callback set stop_training: paused, fit() again continues
    EARLY_STOPPING = "early_stopping"  # no validation gain for early_stopping_patience epochs: final
    NON_FINITE = "non_finite"          # a non-finite loss or gradient under nan_policy="stop": final

    @property
    def final(self) -> bool:
        """Whether a run stopped this way is over (not merely paused)."""
        return self is not StopReason.CALLBACK

    @classmethod
    def from_message(cls, message: str) -> "StopReason":
        """The kind of a message written by a checkpoint from before the kinds were stored."""
        if message.startswith("early stopping"):
            return cls.EARLY_STOPPING
        if message.startswith("non-finite"):
            return cls.NON_FINITE
        return cls.CALLBACK


CALLBACK_MESSAGE = "stopped by a callback"
