"""The fitted input steps as a ``Module`` of ops, so that an estimator's whole prediction is one graph
(``estimator.as_module()``, which ``chainrule.onnx.export`` traces).

    InputModule(preprocessor_, network_input) : raw rows x (N, D) float32 -> what the network takes
        Standardize: (x - mean) / std      MeanImage: x - mean image      ZCAWhiten: (x - mean) @ components
        None: x
        then ``network_input`` (a network estimator's ``_network_input`` run on the Tensor: rows -> (N, C, H, W)
        images for a conv net), if given

The statistics are float32 buffers of the fitted step. Hand-designed features (HOG + colour histograms) are NumPy
code outside the autograd graph and are refused, saying so.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from chainrule import nn
from chainrule.data.preprocessing import MeanImage, Standardize
from chainrule.data.whitening import ZCAWhiten
from chainrule.tensor import Tensor


class InputModule(nn.Module):
    """x (N, D) or (N, *sample_shape) -> preprocessed rows (N, D) -> ``network_input`` of them, as ops on the
    graph."""

    def __init__(self, preprocessor: Any, network_input: Callable[[Tensor], Tensor] | None = None):
        super().__init__()
        self.network_input = network_input
        self.kind = None if preprocessor is None else type(preprocessor).__name__
        if isinstance(preprocessor, Standardize):
            self.register_buffer("mean", np.asarray(preprocessor.mean_, np.float32).reshape(-1))
            self.register_buffer("std", np.asarray(preprocessor.std_, np.float32).reshape(-1))
        elif isinstance(preprocessor, MeanImage):
            self.register_buffer("mean", np.asarray(preprocessor.mean_image_, np.float32).reshape(-1))
        elif isinstance(preprocessor, ZCAWhiten):
            self.register_buffer("mean", np.asarray(preprocessor.mean_, np.float32).reshape(-1))
            self.register_buffer("components", np.asarray(preprocessor.components_, np.float32))
        elif preprocessor is not None:
            raise ValueError(f"no graph form for the preprocessing step {type(preprocessor).__name__}")

    def forward(self, x: Tensor) -> Tensor:
        rows = self.preprocess(x.reshape((x.shape[0], -1)) if x.ndim > 2 else x)
        return rows if self.network_input is None else self.network_input(rows)

    def preprocess(self, x: Tensor) -> Tensor:
        if self.kind is None:
            return x
        if self.kind == "ZCAWhiten":
            return (x - self.mean) @ self.components
        x = x - self.mean
        return x / self.std if self.kind == "Standardize" else x

    def extra_repr(self) -> str:
        return f"{self.kind}"


def input_module(estimator: Any, network_input: Callable[[Tensor], Tensor] | None = None) -> InputModule:
    """The InputModule of a fitted estimator with ``features_`` and ``preprocessor_``; refuses hand-made features."""
    if estimator.features_ is not None:
        raise ValueError(
            f"{type(estimator).__name__} with features={estimator.features!r} computes HOG and colour histograms in "
            "NumPy, outside the computational graph, so its prediction cannot be one graph; fit with features=None "
            "to export the whole pipeline"
        )
    return InputModule(estimator.preprocessor_, network_input)
