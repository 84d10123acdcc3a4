"""k-nearest-neighbour classifier (CS231n lecture 2): memorise the training set, vote among the k closest.

    knn = KNearestNeighbor(k=5, metric="l1").fit(X_train, y_train)   # X: uint8 images (N, 32, 32, 3) or (N, D)
    knn.predict(X_val)                                               # labels (N,)
    knn.predict_many(X_val, ks=[1, 3, 5, 10, 20])                    # {k: labels}, one distance pass
    dist, idx = knn.kneighbors(X_val, k=3)                           # (N, 3) each, nearest first

Distances are computed in chunks of test rows (``chunk_size``), so memory stays O(chunk_size * n_train) whatever
the number of queries: see ``chainrule.classifiers.distances`` for the L2 GEMM trick, the exact uint8 L1 kernel
and the precision argument. Votes count each of the k neighbours once; a tie between classes goes to the smallest
label (the first in ``classes_``), and neighbours at equal distance are ordered by training index.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from chainrule.classifiers.base import BaseClassifier, check_choice, check_int_param, check_X
from chainrule.classifiers.distances import METRICS, NeighborIndex


class KNearestNeighbor(BaseClassifier):
    """k-NN classifier with L2 or L1 distance, chunked for bounded memory.

    Parameters
    ----------
    k : number of neighbours that vote (can be changed after ``fit``; ``predict_many`` tries several at once).
    metric : "l2" (Euclidean) or "l1" (Manhattan).
    chunk_size : test rows per block of distances, or "auto" (~128 MiB of float32 distances per block).

    Attributes
    ----------
    classes_ : (C,) the sorted distinct labels.
    n_features_in_ : D, features per sample (H*W*C for images).
    sample_shape_ : shape of one training sample, e.g. (32, 32, 3).
    X_fit_ : (M, D) the memorised training rows (uint8 kept as uint8, other inputs as float32).
    y_fit_ : (M,) their labels as indices into ``classes_``.
    n_samples_fit_ : M.
    """

    def __init__(self, k: int = 1, metric: str = "l2", chunk_size: int | str = "auto"):
        self.k = k
        self.metric = metric
        self.chunk_size = chunk_size

    def fit(self, X: Any, y: Any) -> "KNearestNeighbor":
        """Memorise X (N, D) or images (N, H, W, C) and labels y (N,); prepare the distance engine."""
        metric = check_choice(self, "metric", METRICS)
        self._check_chunk_size()
        check_int_param(self, "k", 1)
        X = check_X(X, self, reset=True, keep_uint8=True)
        y_index = self._fit_labels(y, len(X))
        self.X_fit_ = X
        self.y_fit_ = y_index
        self.n_samples_fit_ = len(X)
        self._index = NeighborIndex(X, metric)
        return self

    def _check_chunk_size(self) -> None:
        if self.chunk_size != "auto":
            check_int_param(self, "chunk_size", 1)

    def _engine(self) -> NeighborIndex:
        """The index for the current metric (rebuilt, not cached, if ``metric`` changed after fit)."""
        metric = check_choice(self, "metric", METRICS)
        if self._index.metric == metric:
            return self._index
        return NeighborIndex(self.X_fit_, metric)

    def _check_k(self, k: Any) -> int:
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"{type(self).__name__}: k must be an integer >= 1, got {k!r}")
        if k > self.n_samples_fit_:
            raise ValueError(
                f"k={k} is larger than the number of training samples ({self.n_samples_fit_}); "
                f"use k <= {self.n_samples_fit_} or fit on more data"
            )
        return int(k)

    def kneighbors(self, X: Any, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(dists, idx), each (N, k): distances to and indices (into the training set) of the k nearest rows,
        nearest first. ``k`` defaults to ``self.k``."""
        self._check_is_fitted()
        self._check_chunk_size()
        k = self._check_k(self.k if k is None else k)
        X = check_X(X, self, reset=False, keep_uint8=True)
        return self._engine().query(X, k, self.chunk_size)

    def _votes(self, idx: np.ndarray, k: int) -> np.ndarray:
        """(N, C) vote counts of the first k neighbours in ``idx`` (N, >=k)."""
        n = idx.shape[0]
        C = len(self.classes_)
        labels = self.y_fit_[idx[:, :k]]
        flat = (np.arange(n)[:, None] * C + labels).ravel()
        return np.bincount(flat, minlength=n * C).reshape(n, C)

    def predict(self, X: Any) -> np.ndarray:
        """Labels (N,): the majority label among the k nearest training rows (ties: the smallest label)."""
        _, idx = self.kneighbors(X)
        return self.classes_[np.argmax(self._votes(idx, idx.shape[1]), axis=1)]

    def predict_proba(self, X: Any) -> np.ndarray:
        """(N, C): the fraction of the k neighbours in each class (columns in ``classes_`` order)."""
        _, idx = self.kneighbors(X)
        return self._votes(idx, idx.shape[1]) / float(idx.shape[1])

    def predict_many(self, X: Any, ks: Iterable[int]) -> dict[int, np.ndarray]:
        """{k: labels (N,)} for every k in ``ks`` from one distance pass (the neighbours of the largest k)."""
        self._check_is_fitted()
        ks = [self._check_k(k) for k in ks]
        if not ks:
            raise ValueError("predict_many needs at least one k, got an empty list")
        _, idx = self.kneighbors(X, max(ks))
        return {k: self.classes_[np.argmax(self._votes(idx, k), axis=1)] for k in ks}

    def score_many(self, X: Any, y: Any, ks: Iterable[int]) -> dict[int, float]:
        """{k: accuracy} for every k in ``ks`` from one distance pass (for choosing k on validation data)."""
        y = np.asarray(y).reshape(-1)
        return {k: float(np.mean(pred == y)) for k, pred in self.predict_many(X, ks).items()}

    # ---- persistence ----------------------------------------------------------------------------------------------

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {}, {"X_fit_": self.X_fit_, "y_fit_": self.y_fit_}

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        X, y = arrays["X_fit_"], arrays["y_fit_"]
        if X.ndim != 2 or X.shape[1] != self.n_features_in_ or y.shape != (len(X),):
            raise ValueError(f"saved kNN arrays have inconsistent shapes: X_fit_ {X.shape}, y_fit_ {y.shape}")
        if len(y) and (y.min() < 0 or y.max() >= len(self.classes_)):
            raise ValueError(f"saved y_fit_ holds class indices outside [0, {len(self.classes_)})")
        self.X_fit_ = np.ascontiguousarray(X)
        self.y_fit_ = y.astype(np.int64)
        self.n_samples_fit_ = len(X)
        self._index = NeighborIndex(self.X_fit_, check_choice(self, "metric", METRICS))
