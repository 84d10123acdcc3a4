"""A trained classifier as the CLI uses it: raw inputs -> features -> preprocessing -> model -> class scores.

``Pipeline`` holds the input description (image shape and value range, for ``predict`` on image files), the
feature extractor (raw pixels or HOG + colour histograms), the preprocessing fitted on the training split
(``chainrule.data`` steps), and the model: a ``chainrule.nn.MLP`` (a linear classifier is ``MLP([D, C])``
with the hinge or cross-entropy loss) or a k-nearest-neighbour classifier. ``metadata()`` is what a checkpoint
stores to rebuild it; ``Pipeline.from_checkpoint(state)`` rebuilds it.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

import numpy as np

from chainrule.commands.common import UsageError

KNN_KIND = "chainrule.knn"


def input_spec(X: np.ndarray) -> dict[str, Any]:
    """How raw inputs look: kind "image" (N, H, W, C) or "vector" (N, D), dtype and the largest value."""
    kind = "image" if X.ndim == 4 else "vector"
    max_value = 255.0 if X.dtype == np.uint8 else float(np.max(X)) if X.size else 1.0
    if X.dtype != np.uint8 and kind == "image":  # e.g. digits: 0..16; keep the nominal range
        max_value = float(np.ceil(max_value))
    return {"kind": kind, "shape": list(X.shape[1:]), "dtype": str(X.dtype), "max_value": max_value}


def _feature_fns(sample_shape: tuple[int, ...]) -> list[Any]:
    from functools import partial

    from chainrule.features import color_histogram_hsv, hog

    h = sample_shape[0]
    cell = 8 if h >= 16 else max(2, h // 2)
    fns: list[Any] = [partial(hog, cell=cell)]
    if len(sample_shape) == 3 and sample_shape[2] == 3:
        fns.append(color_histogram_hsv)
    return fns


class Pipeline:
    def __init__(self, config: Mapping[str, Any], input_info: Mapping[str, Any], classes: tuple[str, ...]):
        from chainrule.data import Compose, Flatten, MeanImage, Standardize

        self.config = dict(config)
        self.input = dict(input_info)
        self.classes = tuple(classes)
        if self.config["features"] != "raw" and self.input["kind"] != "image":
            raise UsageError(f"--features {self.config['features']} needs image data; this dataset has "
                             f"{self.input['shape']}-dimensional vectors")
        steps: list[Any] = []
        if self.config["preprocess"] == "standardize":
            steps.append(Standardize())
        elif self.config["preprocess"] == "mean":
            steps.append(MeanImage())
        steps.append(Flatten())
        self.prep = Compose(steps)
        self.model: Any = None
        self.knn_k: int | None = None
        self.knn_y: np.ndarray | None = None  # training labels, indexed by the kNN's neighbour indices
        self.feature_time_s = 0.0

    # ---- inputs -> features ----

    def features(self, X: np.ndarray) -> np.ndarray:
        """Raw inputs -> the model's feature space before preprocessing (identity for raw pixels)."""
        if self.config["features"] == "raw":
            return X
        from chainrule.features import extract_features

        t0 = time.perf_counter()
        out = extract_features(X, _feature_fns(tuple(self.input["shape"])))
        self.feature_time_s += time.perf_counter() - t0
        return out

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self.prep.fit_transform(self.features(X)), dtype=np.float32)

    def transform(self, X: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self.prep.transform(self.features(X)), dtype=np.float32)

    @property
    def num_features(self) -> int:
        shape = self.prep.steps[-1].sample_shape_
        return int(np.prod(shape))

    # ---- models ----

    def build_model(self, num_features: int) -> Any:
        """The nn model for this config (weights from ``seed``)."""
        from chainrule import nn

        c = self.config
        sizes = [num_features, *c["hidden"], len(self.classes)]
        try:
            self.model = nn.MLP(sizes, activation=c["activation"], dropout=c["dropout"],
                                norm=None if c["norm"] == "none" else c["norm"], seed=c["seed"])
        except ValueError as e:
            raise UsageError(str(e)) from e
        return self.model

    @property
    def is_knn(self) -> bool:
        return self.config["model"] == "knn"

    def scores(self, X: np.ndarray, transformed: bool = False) -> np.ndarray:
        """(N, C) class scores for raw inputs X (or already transformed ones)."""
        Xt = X if transformed else self.transform(X)
        if self.is_knn:
            return knn_vote_fractions(self.model, self.knn_y, Xt, self.knn_k, len(self.classes))
        from chainrule.train import predict_scores

        return predict_scores(self.model, Xt)

    def probabilities(self, X: np.ndarray) -> tuple[np.ndarray, str]:
        """(N, C) class probabilities and what they are (softmax of scores, or kNN vote fractions)."""
        s = self.scores(X)
        if self.is_knn:
            return s, f"fraction of the k={self.knn_k} nearest training samples in each class"
        z = s - s.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        what = "softmax of the SVM scores (not calibrated)" if self.config["model"] == "svm" else "softmax"
        return p, what

    def predict(self, X: np.ndarray, transformed: bool = False) -> np.ndarray:
        return self.scores(X, transformed).argmax(axis=1)

    # ---- checkpoints ----

    def metadata(self) -> dict[str, Any]:
        return {
            "input": dict(self.input),
            "classes": list(self.classes),
            "prep": self.prep.state_dict(),
            "knn_k": self.knn_k,
        }

    @classmethod
    def from_checkpoint(cls, state: Mapping[str, Any], use_best: bool = True) -> "Pipeline":
        """Rebuild from a trainer or kNN checkpoint (``load_checkpoint`` output)."""
        kind = state.get("kind")
        meta = state.get("metadata", {})
        if kind not in ("chainrule.Trainer", KNN_KIND) or "input" not in meta:
            raise ValueError(f"this checkpoint (kind {kind!r}) was not written by `chainrule train`; "
                             "evaluate and predict need a run folder or one of its checkpoints")
        from chainrule.commands.config import OPTIONS

        config = {o.key: o.default for o in OPTIONS}
        config.update(state["config"])
        pipe = cls(config, meta["input"], tuple(meta["classes"]))
        pipe.prep.load_state_dict(meta["prep"])
        pipe.knn_k = meta.get("knn_k")
        if kind == KNN_KIND:
            pipe.knn_y = np.asarray(state["train_y"])
            pipe.model = fit_knn(config, pipe.transform(state["train_X"]), pipe.knn_y)
            return pipe
        model = pipe.build_model(pipe.num_features)
        weights = state["best_model"] if use_best and state.get("best_model") is not None else state["model"]
        try:
            model.load_state_dict(weights)
        except ValueError as e:
            raise ValueError("the checkpoint's weights do not fit the model its config describes: "
                             + str(e).replace("\n", " ")) from e
        model.eval()
        return pipe


# ---- kNN ---------------------------------------------------------------------------------------------------


def require_knn() -> Any:
    """The ``KNearestNeighbor`` class, or RuntimeError saying it is unavailable."""
    try:
        from chainrule.classifiers import KNearestNeighbor
    except ImportError as e:  # pragma: no cover - until chainrule.classifiers exists
        raise RuntimeError("--model knn needs chainrule.classifiers.KNearestNeighbor, which is not available "
                           f"in this installation ({e})") from e
    return KNearestNeighbor


def fit_knn(config: Mapping[str, Any], X: np.ndarray, y: np.ndarray) -> Any:
    return require_knn()(k=1, metric=config["metric"]).fit(X, y)


def knn_neighbour_labels(knn: Any, y_train: np.ndarray, X: np.ndarray, k: int) -> np.ndarray:
    """(N, k) labels of the k nearest training samples of each row of X, nearest first."""
    _, idx = knn.kneighbors(X, k)
    return np.asarray(y_train)[np.asarray(idx)]


def vote(neighbour_labels: np.ndarray, k: int, num_classes: int) -> np.ndarray:
    """(N, C) vote counts among the first k neighbours (argmax breaks ties by the smallest label)."""
    labels = neighbour_labels[:, :k]
    counts = np.zeros((len(labels), num_classes), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(len(labels)), labels.shape[1]), labels.ravel()), 1)
    return counts


def knn_vote_fractions(knn: Any, y_train: np.ndarray, X: np.ndarray, k: int | None, num_classes: int) -> np.ndarray:
    k = int(k or 1)
    return vote(knn_neighbour_labels(knn, y_train, X, k), k, num_classes) / k


# ---- loading a trained run ---------------------------------------------------------------------------------


def load_trained(target: str) -> tuple[Pipeline, dict[str, Any], Any, Any]:
    """(pipeline, checkpoint state, RunFolder or None, checkpoint path) for a run folder or a checkpoint file.

    A run folder gives its ``best.npz`` (best validation accuracy), else its latest step checkpoint (falling
    back past a corrupt one with a warning).
    """
    from pathlib import Path

    from chainrule.train import CheckpointError, RunFolder, load_checkpoint

    path = Path(target)
    folder = None
    if path.is_dir():
        folder = RunFolder(path)
        if not folder.checkpoint_dir.is_dir():
            raise UsageError(f"{target} is not a run folder (it has no checkpoints/ directory)")
        state = None
        ckpt = folder.checkpoint_dir / "best.npz"
        if ckpt.is_file():
            try:
                state = load_checkpoint(ckpt)
            except CheckpointError as e:
                import warnings

                warnings.warn(f"{e}; using the latest step checkpoint instead", stacklevel=2)
        if state is None:
            latest = folder.checkpoints().load_latest()
            if latest is None:
                raise UsageError(f"{folder.checkpoint_dir} holds no checkpoint")
            state, ckpt = latest
    elif path.is_file():
        ckpt = path
        state = load_checkpoint(path)
        parent = path.parent.parent
        if path.parent.name == "checkpoints" and (parent / "config.toml").is_file():
            folder = RunFolder(parent)
    else:
        raise UsageError(f"{target} does not exist; give a run folder (runs/NAME) or a checkpoint file")
    return Pipeline.from_checkpoint(state), state, folder, ckpt
