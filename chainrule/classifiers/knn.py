"""k-nearest-neighbour classifier (CS231n lecture 2): memorise the training set, vote among the k closest.

    knn = KNearestNeighbor(k=5, metric="l1").fit(X_train, y_train)   # X: uint8 images (N, 32, 32, 3) or (N, D)
    knn.predict(X_val)                                               # labels (N,)
    knn.predict_many(X_val, ks=[1, 3, 5, 10, 20])                    # {k: labels}, one distance pass
    table, pred = knn.select(X_val, y_val, [1, 3, 5], ["l1", "l2"])  # sets the best k and metric (CLI default)
    dist, idx = knn.kneighbors(X_val, k=3)                           # (N, 3) each, nearest first

Distances are computed in chunks of test rows (``chunk_size``), and ``predict``, ``predict_proba`` and
``predict_many`` turn each chunk's neighbours into votes at once, so memory stays O(chunk_size * n_train) whatever
the number of queries and k: see ``chainrule.classifiers.distances`` for the L2 GEMM trick, the exact uint8 L1 kernel
and the precision argument. Votes count each of the k neighbours once; a tie between classes goes to the smallest
label (the first in ``classes_``), and neighbours at equal distance are ordered by training index.

``augment="flip"`` memorises every training image and its left-right mirror image (2N rows), so a test image can
match a training image seen the other way round; on CIFAR-10 this moves L1 1-NN accuracy from 38.1% to 39.8%
(leave-one-out over all 50,000 training images, bench/bench_knn.py) for twice the distance computations.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from chainrule.classifiers._flip import mirror_rows
from chainrule.classifiers.base import BaseClassifier, check_choice, check_int_param, check_X
from chainrule.classifiers.distances import METRICS, NeighborIndex, _check_metric

AUGMENT = (False, "flip")


class KNearestNeighbor(BaseClassifier):
    """k-NN classifier with L2 or L1 distance, chunked for bounded memory.

    Parameters
    ----------
    k : number of neighbours that vote (can be changed after ``fit``; ``predict_many`` tries several at once).
    metric : "l2" (Euclidean) or "l1" (Manhattan).
    chunk_size : test rows per block of distances, or "auto" (~128 MiB of float32 distances per block).
    augment : False, or "flip" to also memorise each training image mirrored left-right (images (N, H, W[, C])
        only; twice the memory and distance work).

    Attributes
    ----------
    classes_ : (C,) the sorted distinct labels.
    n_features_in_ : D, features per sample (H*W*C for images).
    sample_shape_ : shape of one training sample, e.g. (32, 32, 3).
    X_fit_ : (M, D) the memorised training rows (uint8 kept as uint8, other inputs as float32); with
        ``augment="flip"`` M = 2N: the N training rows, then their mirror images in the same order (row N + i is
        row i mirrored, so ``idx % n_train_`` maps a neighbour index back to the training sample).
    y_fit_ : (M,) their labels as indices into ``classes_``.
    n_samples_fit_ : M; n_train_ : N, the number of training samples passed to ``fit``.
    """

    def __init__(self, k: int = 1, metric: str = "l2", chunk_size: int | str = "auto", augment: bool | str = False):
        self.k = k
        self.metric = metric
        self.chunk_size = chunk_size
        self.augment = augment

    def _validate_params(self) -> None:
        check_choice(self, "metric", METRICS)
        check_choice(self, "augment", AUGMENT)
        self._check_chunk_size()
        check_int_param(self, "k", 1)

    def fit(self, X: Any, y: Any) -> "KNearestNeighbor":
        """Memorise X (N, D) or images (N, H, W, C) and labels y (N,); prepare the distance engine."""
        self._validate_params()
        metric, augment = self.metric, self.augment
        X = check_X(X, self, reset=True, keep_uint8=True)
        y_index = self._fit_labels(y, len(X))
        self._memorise(X, y_index, augment)
        self._index = NeighborIndex(self.X_fit_, metric)
        return self

    def _memorise(self, X: np.ndarray, y_index: np.ndarray, augment: bool | str) -> None:
        """Set X_fit_, y_fit_, n_train_ and n_samples_fit_ from the N training rows (adding mirrors if asked)."""
        self.n_train_ = len(X)
        if augment == "flip":
            X = np.concatenate([X, mirror_rows(X, self.sample_shape_, type(self).__name__)])
            y_index = np.concatenate([y_index, y_index])
        self.X_fit_ = X
        self.y_fit_ = y_index
        self.n_samples_fit_ = len(X)

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

    def _chunked_votes(self, X: Any, ks: list[int]) -> dict[int, np.ndarray]:
        """{k: (N, C) vote counts} for every k in ``ks``, from one chunked pass: each chunk's neighbours are
        reduced to votes at once, so memory is O(chunk_size * M) plus the (N, C) results, whatever N and k are."""
        self._check_is_fitted()
        self._check_chunk_size()
        k_max = max(ks)
        X = check_X(X, self, reset=False, keep_uint8=True)
        votes = {k: np.empty((len(X), len(self.classes_)), dtype=np.int64) for k in ks}
        for start, stop, _, idx in self._engine().query_chunks(X, k_max, self.chunk_size):
            for k in ks:
                votes[k][start:stop] = self._votes(idx, k)
        return votes

    def predict(self, X: Any) -> np.ndarray:
        """Labels (N,): the majority label among the k nearest training rows (ties: the smallest label)."""
        self._check_is_fitted()
        k = self._check_k(self.k)
        return self.classes_[np.argmax(self._chunked_votes(X, [k])[k], axis=1)]

    def predict_proba(self, X: Any) -> np.ndarray:
        """(N, C): the fraction of the k neighbours in each class (columns in ``classes_`` order)."""
        self._check_is_fitted()
        k = self._check_k(self.k)
        return self._chunked_votes(X, [k])[k] / float(k)

    def probabilities(self, X: Any) -> tuple[np.ndarray, str]:
        return self.predict_proba(X), f"fraction of the k={self.k} nearest training samples in each class"

    def describe(self) -> str:
        return f"kNN, k={self.k}, {self.metric}"

    def capped_to(self, n_samples: int) -> dict[str, Any]:
        return {"k": n_samples} if isinstance(self.k, int) and self.k > n_samples else {}

    def predict_many(self, X: Any, ks: Iterable[int]) -> dict[int, np.ndarray]:
        """{k: labels (N,)} for every k in ``ks`` from one distance pass (the neighbours of the largest k)."""
        self._check_is_fitted()
        ks = [self._check_k(k) for k in ks]
        if not ks:
            raise ValueError("predict_many needs at least one k, got an empty list")
        votes = self._chunked_votes(X, sorted(set(ks)))
        return {k: self.classes_[np.argmax(votes[k], axis=1)] for k in ks}

    def select(self, X: Any, y: Any, ks: Iterable[int], metrics: Iterable[str] | None = None
               ) -> tuple[dict[str, dict[int, float]], np.ndarray]:
        """Choose k and the metric on validation data X, y: one distance pass per metric scores every k in ``ks``.
        Sets ``k`` and ``metric`` to the best (highest accuracy; ties: the smaller k, then the metric listed
        first; ``metrics`` defaults to the current one) and returns ({metric: {k: accuracy}}, the predictions (N,)
        of the chosen setting). The index of the chosen metric is kept, so later predictions reuse it."""
        self._check_is_fitted()
        ks = sorted({self._check_k(k) for k in ks})
        metrics = list(dict.fromkeys([self.metric] if metrics is None else metrics))
        if not ks or not metrics:
            raise ValueError(f"select needs at least one k and one metric, got ks={ks}, metrics={metrics}")
        for metric in metrics:
            _check_metric(metric)
        y = np.asarray(y).reshape(-1)
        table: dict[str, dict[int, float]] = {}
        best: tuple[float, int, int] | None = None
        best_pred = np.empty(0)
        for rank, metric in enumerate(metrics):
            self.metric = metric
            index = self._index = self._engine()
            predictions = self.predict_many(X, ks)
            table[metric] = {k: float(np.mean(p == y)) for k, p in predictions.items()}
            for k in ks:
                key = (table[metric][k], -k, -rank)
                if best is None or key > best:
                    best, best_pred, best_index = key, predictions[k], index
        self.k, self.metric = -best[1], metrics[-best[2]]
        self._index = best_index
        return table, best_pred

    def score_many(self, X: Any, y: Any, ks: Iterable[int]) -> dict[int, float]:
        """{k: accuracy} for every k in ``ks`` from one distance pass (for choosing k on validation data)."""
        y = np.asarray(y).reshape(-1)
        return {k: float(np.mean(pred == y)) for k, pred in self.predict_many(X, ks).items()}

    # ---- persistence ----------------------------------------------------------------------------------------------

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        n = self.n_train_  # the mirrored rows are rebuilt on load, not stored
        return {"augmented": self.n_samples_fit_ != n}, {"X_fit_": self.X_fit_[:n], "y_fit_": self.y_fit_[:n]}

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        X, y = arrays["X_fit_"], arrays["y_fit_"]
        augment = check_choice(self, "augment", AUGMENT)
        if bool(meta.get("augmented", False)) != (augment == "flip"):
            raise ValueError(f"saved kNN metadata (augmented={meta.get('augmented')!r}) contradicts its "
                             f"augment={augment!r}; the file is corrupt")
        if X.ndim != 2 or X.shape[1] != self.n_features_in_ or y.shape != (len(X),):
            raise ValueError(f"saved kNN arrays have inconsistent shapes: X_fit_ {X.shape}, y_fit_ {y.shape}")
        if len(y) and (y.min() < 0 or y.max() >= len(self.classes_)):
            raise ValueError(f"saved y_fit_ holds class indices outside [0, {len(self.classes_)})")
        self._memorise(np.ascontiguousarray(X), y.astype(np.int64), self.augment)
        self._index = NeighborIndex(self.X_fit_, check_choice(self, "metric", METRICS))
