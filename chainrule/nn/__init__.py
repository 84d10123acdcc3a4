"""Neural-network layers on the autograd core: modules, activations, losses, initialisation.

    >>> import numpy as np
    >>> from chainrule import nn
    >>> import chainrule.nn.functional as F
    >>> model = nn.MLP([2, 100, 3], seed=0)          # Linear(2, 100) - ReLU - Linear(100, 3)
    >>> x = np.zeros((5, 2), dtype=np.float32)
    >>> loss = F.cross_entropy(model(x), np.array([0, 1, 2, 0, 1]))
    >>> loss.backward()
    >>> model[0].weight.grad.shape                      # weights are (in_features, out_features)
    (2, 100)
"""

from chainrule.nn import functional, init, utils
from chainrule.nn.activations import (
    ELU, GELU, GLU, Hardtanh, Identity, LeakyReLU, LogSigmoid, Maxout, ReLU, RReLU, Sigmoid, Softplus, Softshrink,
    Tanh,
)
from chainrule.nn.conv import Conv2d, ConvTranspose2d, Fold, Unfold
from chainrule.nn.dropout import Dropout, Dropout2d
from chainrule.nn.linear import Linear
from chainrule.nn.losses import (
    BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, MultiClassHingeLoss, MultiLabelMarginLoss, NLLLoss,
    SmoothL1Loss, SoftMarginLoss,
)
from chainrule.nn.mlp import MLP
from chainrule.nn.convnet import ConvNet
from chainrule.nn.module import IncompatibleKeys, Module, Parameter, Sequential
from chainrule.nn.normalization import BatchNorm1d, BatchNorm2d, LayerNorm
from chainrule.nn.padding import CircularPad2d, ConstantPad2d, ReflectionPad2d, ReplicationPad2d, ZeroPad2d
from chainrule.nn.pooling import AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, MaxPool2d
from chainrule.nn.shape import Flatten
from chainrule.nn.tta import TestTimeAugment
from chainrule.nn.softmax import LogSoftmax, Softmax
from chainrule.nn.upsampling import Upsample

__all__ = [
    "functional", "init", "utils",
    "Module", "Parameter", "Sequential", "IncompatibleKeys",
    "Linear", "Conv2d", "ConvTranspose2d", "Unfold", "Fold", "MLP", "Dropout", "BatchNorm1d", "LayerNorm",
    "Flatten", "TestTimeAugment", "Softmax", "LogSoftmax", "Dropout2d", "BatchNorm2d", "MaxPool2d", "AvgPool2d",
    "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "Upsample", "ZeroPad2d", "ConstantPad2d", "ReflectionPad2d",
    "ReplicationPad2d", "CircularPad2d",
    "Identity", "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "ELU", "GELU", "Maxout",
    "Hardtanh", "Softplus", "LogSigmoid", "GLU", "Softshrink", "RReLU",
    "CrossEntropyLoss", "MultiClassHingeLoss", "MSELoss", "BCEWithLogitsLoss", "NLLLoss",
    "L1Loss", "SmoothL1Loss", "SoftMarginLoss", "BCELoss", "MultiLabelMarginLoss",
    "ConvNet",
]
