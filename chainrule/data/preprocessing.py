"""Preprocessing fitted on training data and carried with a model (CS231n's data pipeline).

    prep = Compose([MeanImage(), Flatten(), AppendBias()])
    X_train_p = prep.fit_transform(X_train)   # statistics from the training split only
    X_val_p = prep.transform(X_val)
    state = prep.state_dict()                 # dict of arrays: save it beside the weights
    Compose([MeanImage(), Flatten(), AppendBias()]).load_state_dict(state)

Every step has ``fit(X) -> self``, ``transform(X)``, ``fit_transform(X)``, ``state_dict()`` /
``load_state_dict(state)`` (learned arrays only; hyperparameters live in ``__init__``), and is
callable: ``step(X) == step.transform(X)``. Integer inputs (uint8 images) come out float32;
float inputs keep their dtype (float64 stays float64 for gradient checks). Inputs are never
modified in place.

Statistics are accumulated in float64, and float inputs whose magnitude is far from 1 (beyond
2^+-400, possible only in float64) are first scaled by a power of two, which changes no rounding:
sums and squares never overflow or underflow, so data x 1e30 (or x 1e-30, or float64 x 1e300)
standardises exactly like the data itself.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

_CHUNK = 1024  # rows per pass when reducing large uint8 arrays (bounds float64 temporaries)
_RANGE = (2.0**-400, 2.0**400)  # float64 magnitudes whose squares (and sums of them) stay in range


class NotFittedError(RuntimeError):
    """transform() was called before fit() / load_state_dict()."""


def _as_float(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X)
    return X if X.dtype.kind == "f" else X.astype(np.float32)


def _float_copy(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X)
    return X.astype(X.dtype if X.dtype.kind == "f" else np.float32, copy=True)


def _check_state(owner: object, state: Mapping[str, np.ndarray], keys: Sequence[str]) -> None:
    missing = [k for k in keys if k not in state]
    unexpected = [k for k in state if k not in keys]
    if missing or unexpected:
        raise KeyError(f"{type(owner).__name__}.load_state_dict: expected keys {list(keys)}, "
                       f"missing {missing}, unexpected {unexpected}")


class _Step:
    """Shared plumbing: fit_transform, __call__, fitted check."""

    _learned: tuple[str, ...] = ()

    def fit(self, X: np.ndarray) -> "_Step":
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        return self.fit(X).transform(X)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return self.transform(X)

    def _check_fitted(self) -> None:
        if any(getattr(self, name) is None for name in self._learned):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit(X_train) or "
                                 "load_state_dict(state) first")

    def state_dict(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        return {name.rstrip("_"): np.array(getattr(self, name)) for name in self._learned}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> "_Step":
        _check_state(self, state, [name.rstrip("_") for name in self._learned])
        for name in self._learned:
            setattr(self, name, np.array(state[name.rstrip("_")]))
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _range_scale(X: np.ndarray) -> float:
    """A power of two s (1 for integer data and ordinary magnitudes) with max |X| * s well inside float64's
    range, so that sums of squares of X * s neither overflow nor underflow."""
    if X.dtype.kind != "f" or X.size == 0:
        return 1.0
    amax = max(max(float(np.max(X[i:i + _CHUNK])), -float(np.min(X[i:i + _CHUNK])))
               for i in range(0, len(X), _CHUNK))
    if amax == 0 or _RANGE[0] <= amax <= _RANGE[1]:
        return 1.0
    return float(np.ldexp(1.0, -np.frexp(amax)[1]))


def _chunked_mean(X: np.ndarray, axis: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    """float64 mean of X * scale over ``axis`` (which must include axis 0), summed in row chunks."""
    total = sum(np.sum(X[i:i + _CHUNK].astype(np.float64) * scale if scale != 1.0 else X[i:i + _CHUNK],
                       axis=axis, dtype=np.float64)
                for i in range(0, len(X), _CHUNK))
    count = int(np.prod([X.shape[a] for a in axis]))
    return total / count


def _stat_dtype(X: np.ndarray) -> type:
    """Learned statistics are float64 for float64 inputs (whose values may exceed float32), else float32."""
    return np.float64 if X.dtype == np.float64 else np.float32


class MeanImage(_Step):
    """Subtract the mean training image: (N, ...) -> (N, ...) float, X - mean_image_.

    Learned: ``mean_image_`` with the shape of one sample (e.g. (32, 32, 3)), float32.
    """

    _learned = ("mean_image_",)

    def __init__(self) -> None:
        self.mean_image_: np.ndarray | None = None

    def fit(self, X: np.ndarray) -> "MeanImage":
        X = np.asarray(X)
        if X.ndim < 2 or len(X) == 0:
            raise ValueError(f"MeanImage.fit expects a non-empty (N, ...) array, got shape {X.shape}")
        scale = _range_scale(X)
        self.mean_image_ = (_chunked_mean(X, (0,), scale) / scale).astype(_stat_dtype(X))
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        self._check_fitted()
        X = np.asarray(X)
        if X.shape[1:] != self.mean_image_.shape:
            raise ValueError(f"MeanImage was fitted on samples of shape {self.mean_image_.shape}, "
                             f"got {X.shape[1:]}")
        out = _float_copy(X)
        out -= self.mean_image_
        return out

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        """Add the mean image back (e.g. to show preprocessed images)."""
        self._check_fitted()
        return _as_float(X) + self.mean_image_


class Standardize(_Step):
    """Per-channel standardisation: (X - mean_) / std_ with statistics over all axes but the last.

    For images (N, H, W, C) the statistics are per colour channel (C,); for features (N, D)
    they are per feature (D,). A channel whose std is at most ``eps`` times the largest
    magnitude in X is constant (up to rounding): it is centred and divided by that magnitude
    instead (``std_`` = max |X|, or 1 if X is all zeros), so it comes out ~0. The test is
    relative, so X * 1e-30 is standardised like X, not taken for constant. Learned statistics
    are float32 (float64 when X is float64).
    """

    _learned = ("mean_", "std_")

    def __init__(self, eps: float = 1e-6) -> None:
        self.eps = eps
        self.mean_: np.ndarray | None = None
        self.std_: np.ndarray | None = None

    def fit(self, X: np.ndarray) -> "Standardize":
        X = np.asarray(X)
        if X.ndim < 2 or len(X) == 0:
            raise ValueError(f"Standardize.fit expects a non-empty (N, ..., C) array, got shape "
                             f"{X.shape}")
        if not np.isfinite(self.eps) or self.eps < 0:
            raise ValueError(f"Standardize: eps must be a finite number >= 0, got {self.eps!r}")
        axis = tuple(range(X.ndim - 1))
        count = X.size / X.shape[-1]
        scale = _range_scale(X)  # statistics of X * scale, then divided back
        mean = _chunked_mean(X, axis, scale)
        # Corrected two-pass variance: the deviations' own mean fixes the rounding of the first pass (a constant
        # channel gets its exact value, so it comes out exactly 0).
        dev_sum = np.zeros_like(mean)
        dev_sq = np.zeros_like(mean)
        amax = 0.0
        for i in range(0, len(X), _CHUNK):
            dev = X[i:i + _CHUNK].astype(np.float64)
            if scale != 1.0:
                dev *= scale
            dev -= mean
            dev_sum += dev.sum(axis=axis)
            dev_sq += np.square(dev, out=dev).sum(axis=axis)
            amax = max(amax, float(np.max(X[i:i + _CHUNK])) * scale, -float(np.min(X[i:i + _CHUNK])) * scale)
        mean += dev_sum / count
        std = np.sqrt(np.maximum(dev_sq - dev_sum * dev_sum / count, 0.0) / count)
        # Constant channels are divided by the data's scale, not by ~0 (nor by 1: their rounding residue would then
        # be as large as the data), so they come out ~0 at any scale.
        std = np.where(std <= self.eps * amax, amax if amax > 0 else 1.0, std)
        dtype = _stat_dtype(X)
        self.mean_ = (mean / scale).astype(dtype)
        self.std_ = (std / scale).astype(dtype)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        self._check_fitted()
        X = np.asarray(X)
        if X.ndim < 2 or X.shape[-1] != self.mean_.shape[0]:
            raise ValueError(f"Standardize was fitted on {self.mean_.shape[0]} channels (last "
                             f"axis), got shape {X.shape}")
        out = _float_copy(X)
        out -= self.mean_
        out /= self.std_
        return out

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return _as_float(X) * self.std_ + self.mean_

    def __repr__(self) -> str:
        return f"Standardize(eps={self.eps})"


class Flatten(_Step):
    """(N, d1, d2, ...) -> (N, d1*d2*...), e.g. images (N, 32, 32, 3) -> (N, 3072).

    Learned: ``sample_shape_`` (the shape it was fitted on), checked by transform and used by
    `inverse_transform`. A view when the input is contiguous and already float.
    """

    _learned = ("sample_shape_",)

    def __init__(self) -> None:
        self.sample_shape_: np.ndarray | None = None

    def fit(self, X: np.ndarray) -> "Flatten":
        X = np.asarray(X)
        if X.ndim < 2:
            raise ValueError(f"Flatten expects (N, ...) samples, got shape {X.shape}")
        self.sample_shape_ = np.array(X.shape[1:], dtype=np.int64)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        self._check_fitted()
        X = np.asarray(X)
        if X.shape[1:] != tuple(self.sample_shape_.tolist()):
            raise ValueError(f"Flatten was fitted on samples of shape "
                             f"{tuple(self.sample_shape_.tolist())}, got {X.shape[1:]}")
        return _as_float(X).reshape(len(X), -1)

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return np.asarray(X).reshape(len(X), *self.sample_shape_.tolist())


class AppendBias(_Step):
    """The bias trick: (N, D) -> (N, D + 1) with a last column of ones, so W x + b = W' x'."""

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = _as_float(X)
        if X.ndim != 2:
            raise ValueError(f"AppendBias expects a 2-D (N, D) array (use Flatten first), got "
                             f"shape {X.shape}")
        out = np.empty((X.shape[0], X.shape[1] + 1), dtype=X.dtype)
        out[:, :-1] = X
        out[:, -1] = 1.0
        return out


class Compose(_Step):
    """A sequence of steps fitted in order; its state_dict nests theirs under "<index>.<key>"."""

    def __init__(self, steps: Sequence[_Step]) -> None:
        self.steps = list(steps)

    def fit(self, X: np.ndarray) -> "Compose":
        self.fit_transform(X)
        return self

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        for step in self.steps:
            X = step.fit_transform(X)
        return X

    def transform(self, X: np.ndarray) -> np.ndarray:
        for step in self.steps:
            X = step.transform(X)
        return X

    def state_dict(self) -> dict[str, np.ndarray]:
        return {f"{i}.{key}": value for i, step in enumerate(self.steps)
                for key, value in step.state_dict().items()}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> "Compose":
        prefixes = {f"{i}" for i in range(len(self.steps))}
        unexpected = [k for k in state if k.split(".", 1)[0] not in prefixes]
        if unexpected:
            raise KeyError(f"Compose.load_state_dict: keys {unexpected} do not belong to any of "
                           f"the {len(self.steps)} steps (expected '<index>.<key>')")
        for i, step in enumerate(self.steps):
            prefix = f"{i}."
            step.load_state_dict({k[len(prefix):]: v for k, v in state.items()
                                  if k.startswith(prefix)})
        return self

    def __repr__(self) -> str:
        return f"Compose({self.steps!r})"
