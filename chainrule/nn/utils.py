"""``chainrule.nn.utils``: PyTorch's names for gradient clipping (``torch.nn.utils.clip_grad_norm_`` and
``clip_grad_value_``). They are ``chainrule.optim.clip_grad_norm`` and ``clip_grad_value``, the same functions
(one implementation): the trailing underscore is PyTorch's mark of an in-place change of the gradients.
``clip_grad_norm_`` returns the total norm as a Python float (PyTorch returns a 0-d tensor; ``float(norm)`` works
for both)."""

from chainrule.optim.clip import clip_grad_norm as clip_grad_norm_
from chainrule.optim.clip import clip_grad_value as clip_grad_value_

__all__ = ["clip_grad_norm_", "clip_grad_value_"]
