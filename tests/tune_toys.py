"""Small, fast estimators and data for the chainrule.tune tests (scikit-learn's estimator contract).

``ToySoftmax`` is full-batch gradient descent on the softmax loss, slow reference style but tiny; a large ``lr``
makes it diverge (the weights overflow), which is what the divergence tests need. ``ToyKNN`` is brute-force
k-nearest-neighbour voting. ``FITS`` counts fits made in this process (resume tests check none is redone).
"""

from __future__ import annotations

from typing import Any

import numpy as np

FITS = {"count": 0}


class _Params:
    _names: tuple[str, ...] = ()

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {n: getattr(self, n) for n in self._names}

    def set_params(self, **params: Any) -> "_Params":
        for k, v in params.items():
            if k not in self._names:
                raise ValueError(f"invalid parameter {k!r} for {type(self).__name__}")
            setattr(self, k, v)
        return self

    def score(self, X: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(self.predict(X) == y))


class ToySoftmax(_Params):
    _names = ("lr", "reg", "epochs", "random_state")

    def __init__(self, lr: float = 0.5, reg: float = 1e-3, epochs: int = 30, random_state: int | None = None):
        self.lr, self.reg, self.epochs, self.random_state = lr, reg, epochs, random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> "ToySoftmax":
        FITS["count"] += 1
        X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
        self.classes_ = np.unique(y)
        yi = np.searchsorted(self.classes_, y)
        rng = np.random.default_rng(self.random_state)
        W = 0.01 * rng.standard_normal((X.shape[1], len(self.classes_)))
        self.loss_history_ = []
        for _ in range(int(self.epochs)):
            s = X @ W
            s = s - s.max(axis=1, keepdims=True)
            p = np.exp(s)
            p /= p.sum(axis=1, keepdims=True)
            loss = -np.mean(np.log(np.maximum(p[np.arange(len(X)), yi], 1e-300))) + self.reg * np.sum(W * W)
            self.loss_history_.append(float(loss))
            p[np.arange(len(X)), yi] -= 1
            W = W - self.lr * (X.T @ p / len(X) + 2 * self.reg * W)
        self.coef_ = W
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
        return self.classes_[np.argmax(X @ self.coef_, axis=1)]


class ToyKNN(_Params):
    _names = ("k",)

    def __init__(self, k: int = 1):
        self.k = k

    def fit(self, X: np.ndarray, y: np.ndarray) -> "ToyKNN":
        FITS["count"] += 1
        self.X_ = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
        self.y_ = np.asarray(y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
        d = (X * X).sum(1)[:, None] + (self.X_ * self.X_).sum(1)[None] - 2 * X @ self.X_.T
        nn = np.argsort(d, axis=1, kind="stable")[:, :self.k]
        labels = self.y_[nn]
        classes = np.unique(self.y_)
        votes = (labels[:, :, None] == classes[None, None, :]).sum(1)
        return classes[np.argmax(votes, axis=1)]


class KillsItsWorker(ToyKNN):
    """ToyKNN whose fit with ``k == kill_k`` SIGKILLs its own process: the first ``kills`` times only (counted in
    files ``marker.N``), or always with kills=-1. A worker process lost mid-trial, for real."""

    _names = ("k", "kill_k", "marker", "kills")

    def __init__(self, k: int = 1, kill_k: int = 0, marker: str = "", kills: int = 1):
        self.k, self.kill_k, self.marker, self.kills = k, kill_k, marker, kills

    def fit(self, X: np.ndarray, y: np.ndarray) -> "KillsItsWorker":
        import os
        import signal
        from pathlib import Path

        if self.k == self.kill_k:
            done = len(list(Path(self.marker).parent.glob(Path(self.marker).name + ".*")))
            if self.kills < 0 or done < self.kills:
                Path(f"{self.marker}.{done}").touch()
                os.kill(os.getpid(), signal.SIGKILL)
        return super().fit(X, y)


class Failing(_Params):
    _names = ("when",)

    def __init__(self, when: str = "fit"):
        self.when = when

    def fit(self, X: np.ndarray, y: np.ndarray) -> "Failing":
        if self.when == "fit":
            raise RuntimeError("broken on purpose")
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.zeros(len(X), dtype=np.int64)


def blobs(n_per_class: int = 30, n_classes: int = 3, dim: int = 4, seed: int = 0,
          spread: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(N, dim) float32 Gaussian blobs around random centres, (N,) int64 labels, shuffled (``conftest.make_blobs``)."""
    from conftest import make_blobs

    X, y = make_blobs(n_per_class=n_per_class, d=dim, classes=n_classes, seed=seed, spread=spread)
    return X, y.astype(np.int64)
