"""One playground session (one browser tab): its data, its estimator and its training, as plain Python.

    from chainrule.playground import Session
    s = Session()                                   # 3-class spiral, a 2-8-8-3 ReLU MLPClassifier
    s.apply({"type": "set", "params": {"weight_decay": 0.01}})   # a protocol message (validated)
    s.step()                                        # one est.partial_fit over the training points (one epoch)
    frame = s.frame()                               # step, loss, accuracies, the decision surface, ...

The session drives the registered estimators of ``chainrule.classifiers`` that take 2-D points
(``chainrule.classifiers.model_names("points")``: kNN, the linear SVM and softmax, the MLP, and any model registered
so) with their own parameters, starting from their playground rows (``ModelSpec.playground``): it computes the input features
(``chainrule.playground.features``) of the 2-D points (``chainrule.data.make_2d``) and calls ``partial_fit`` once
per training step; every number it reports comes from the estimator. Changing the data, the input features, the
model or its architecture starts a new estimator; λ, the learning rate, the optimizer, momentum and the batch
size are ``set_params`` on the running one (the next ``partial_fit`` trains on with them, as in the demos); a point
added by a click joins the training data of the running model (as in ConvNetJS). A step that diverges (a non-finite
loss) stops the session with an error until ``reset``.

Not thread-safe: the server runs all of one session's calls on one worker thread.
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any

import numpy as np

from chainrule.classifiers import get_spec
from chainrule.data.splits import train_val_indices
from chainrule.data.toy import TOY_2D, make_2d
from chainrule.playground import views
from chainrule.playground.features import DEFAULT_FEATURES, input_features
from chainrule.playground.protocol import MAX_POINTS, ProtocolError, models, parse_message

DEFAULT_DATA = {"dataset": "spiral", "classes": 3, "noise": 0.2, "n_points": 300, "train_fraction": 0.7, "seed": 0}
DEFAULT_MODEL = "mlp"
# Parameters that apply to a running model (set_params, then the next partial_fit uses them).
LIVE_PARAMS = frozenset({"reg", "weight_decay", "lr", "optimizer", "momentum", "nesterov", "batch_size"})
# What the playground fixes: the session computes the inputs itself (so the views can read model_ and W_ directly)
# and trains at a constant learning rate for as long as the learner lets it run.
# kNN's distance blocks: 1,024 query rows x at most 5,000 training points in float32 is 20 MB per block (its "auto"
# is 128 MiB). With k <= protocol.MAX_K, one reply's neighbour lists (the 100 x 100 surface) are at most 16 MB.
KNN_CHUNK_ROWS = 1024
# (each estimator gets those of these parameters it takes: chainrule.classifiers.ModelSpec.build)
FIXED_PARAMS = {"preprocessing": None, "schedule": "constant", "chunk_size": KNN_CHUNK_ROWS}
# One step's training: at most this many minibatch updates and weight x example products (about 0.1-1 s on one
# core for the largest networks the protocol allows); a longer epoch is trained in slices, one per step.
MAX_STEP_UPDATES = 100
MAX_STEP_WORK = 100_000_000


def make_estimator(model: str, params: dict[str, Any], seed: int) -> Any:
    """The estimator registered as ``model``, with ``params``, ``FIXED_PARAMS`` and ``random_state=seed`` (those of
    them it takes)."""
    return get_spec(model).build(**params, **FIXED_PARAMS, random_state=seed)


class _ParamsByModel(dict):
    """{model: its parameters in this session}, each starting from the model's playground row."""

    def __missing__(self, model: str) -> dict[str, Any]:
        params = self[model] = copy.deepcopy(get_spec(model).playground_params())
        return params


class Playing:
    """What the 2-D and the images sessions share: ``advance`` runs ``step`` for a while; ``_stop`` ends play with
    an error the page shows (with its fix). A subclass has ``step() -> bool``, ``running`` and ``error``."""

    def advance(self, seconds: float) -> int:
        """Train for about ``seconds`` (at least one step, when there is anything to do); returns the steps run."""
        end = time.perf_counter() + seconds
        n = 0
        while self.step():
            n += 1
            if time.perf_counter() >= end:
                break
        return n

    def _stop(self, reason: str, message: str) -> None:
        self.running = False
        hint = "lower the learning rate and press reset" if reason == "diverged" else "change the parameters"
        self.error = {"field": "training", "rule": reason, "value": None, "message": f"{message} ({hint})"}


class Session(Playing):
    """Data, features, estimator, training history and views of one playground tab."""

    def __init__(self, surface_size: int = 100, map_size: int = 24):
        self.data = dict(DEFAULT_DATA)
        self.features: tuple[str, ...] = DEFAULT_FEATURES
        self.model = DEFAULT_MODEL
        self.params: dict[str, dict[str, Any]] = _ParamsByModel()
        for model in models():  # every model's parameters, for the page's controls
            self.params[model]
        self.surface_size, self.map_size = surface_size, map_size
        self.inspect: int | None = None
        self.running = False
        self.run = 0  # counts resets: a new run starts new curves on the page
        self._make_data()

    # ---- messages -------------------------------------------------------------------------------------------------

    def parse(self, raw: str | bytes) -> dict[str, Any]:
        """A message from the page, validated against this session's model (``protocol.parse_message``)."""
        return parse_message(raw, self.model)

    def apply(self, msg: dict[str, Any] | str) -> str:
        """Apply a protocol message (a parsed dict, or the JSON text) other than play / pause (the server's).

        Returns what changed: "data" (new points and a new model), "model" (a new model), "live" (parameters of
        the running model), "step", "inspect" or "none". Raises ProtocolError for a bad message.
        """
        if isinstance(msg, str):
            msg = parse_message(msg, self.model)
        kind = msg["type"]
        if kind == "set":
            saved, params = dict(self.__dict__), copy.deepcopy(self.params)
            try:
                return self._set(msg)
            except BaseException:  # (the checks come first; this keeps the session whole should anything fail later)
                self.__dict__.update(saved)
                self.params = params
                raise
        if kind == "step":
            self.step()
            return "step"
        if kind == "reset":
            self.running = False
            self.reset()
            return "model"
        if kind == "clear":
            self.X_train, self.y_train = self.X_train[:0], self.y_train[:0]
            self.X_test, self.y_test = self.X_test[:0], self.y_test[:0]
            self._data_changed()
            return "data"
        if kind == "add_point":
            return self._add_point(msg["x"], msg["y"], msg["label"])
        if kind == "inspect":
            index = msg["index"]
            if index is not None and index >= len(self.y_train):
                raise ProtocolError("index", f"must be below the number of training points ({len(self.y_train)})",
                                    index)
            self.inspect = index
            return "inspect"
        if kind in ("play", "pause"):
            self.running = kind == "play"
            return "none"
        if kind == "ping":
            return "none"
        raise ProtocolError("type", "not handled by the session", kind)

    def _set(self, msg: dict[str, Any]) -> str:
        """All or nothing: the whole new combination (data, features, model, parameters) is checked, and its data
        made, before anything of the session changes."""
        data = {**self.data, **msg.get("data", {})}
        supported = TOY_2D[data["dataset"]]
        if data["classes"] not in supported:
            if "classes" in msg.get("data", {}):
                raise ProtocolError("data.classes", f"{data['dataset']} has {' or '.join(map(str, supported))} "
                                    "classes", data["classes"])
            data["classes"] = min(supported, key=lambda c: abs(c - data["classes"]))  # the new dataset's nearest
        model = msg.get("model", self.model)
        features = msg.get("features", self.features)
        params = {**self.params[model], **msg.get("params", {})}
        new_data = data != self.data
        split = self._split(data) if new_data else None
        given = msg.get("params", {})  # (a value kept from before is capped in reset, with a notice)
        if given:
            n_train = len(split[1]) if split is not None else len(self.y_train)
            for name in make_estimator(model, params, 0).capped_to(max(n_train, 1)):
                if name in given:
                    raise ProtocolError(f"params.{name}", f"must be at most the number of training points "
                                        f"({n_train})", params[name])
        old = self.params[model]
        new_model = (model != self.model or features != self.features
                     or any(params[k] != old[k] for k in params if k not in LIVE_PARAMS))
        live = {k: v for k, v in params.items() if k in LIVE_PARAMS and v != old[k]}
        self.data, self.model, self.features, self.params[model] = data, model, features, params
        if split is not None:
            self.X_train, self.y_train, self.X_test, self.y_test = split
            self._data_changed()
            return "data"
        if new_model:
            self.reset()
            return "model"
        if live:
            self.est.set_params(**live)
            return "live"
        return "none"

    def _add_point(self, x: float, y: float, label: int) -> str:
        if label >= self.data["classes"]:
            raise ProtocolError("label", f"must be below the number of classes ({self.data['classes']})", label)
        if len(self.y_train) + len(self.y_test) >= MAX_POINTS:
            raise ProtocolError("add_point", f"at most {MAX_POINTS} points", len(self.y_train) + len(self.y_test))
        self.X_train = np.concatenate([self.X_train, np.array([[x, y]], np.float32)])
        self.y_train = np.concatenate([self.y_train, np.array([label], np.int64)])
        self._F_train = input_features(self.X_train, self.features)
        if not self.est.has_training_curve or not self._trained():
            self.reset()
        return "data"

    # ---- data ---------------------------------------------------------------------------------------------------

    def _make_data(self) -> None:
        self.X_train, self.y_train, self.X_test, self.y_test = self._split(self.data)
        self._data_changed()

    @staticmethod
    def _split(d: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The points of the data settings ``d``, split: (X_train, y_train, X_test, y_test). A combination the
        dataset cannot make (a 5-arm spiral of 4 points) raises ProtocolError naming the settings."""
        try:
            X, y = make_2d(d["dataset"], d["n_points"], d["classes"], d["noise"], d["seed"])
        except ValueError as e:
            raise ProtocolError("data", f"this combination cannot be made ({e})",
                                {k: d[k] for k in ("dataset", "classes", "n_points")}) from None
        n_test = len(y) - _train_count(len(y), d["train_fraction"])
        train, test = train_val_indices(y, n_test, stratify=True, seed=d["seed"])
        return X[train], y[train], X[test], y[test]

    def _data_changed(self) -> None:
        self.inspect = None
        self.reset()

    # ---- the model ------------------------------------------------------------------------------------------------

    def reset(self) -> None:
        """A new estimator on the current data, features and parameters; clears history and any error."""
        self._F_train = input_features(self.X_train, self.features)
        self._F_test = input_features(self.X_test, self.features)
        self._grid = views.grid_features(self.features, self.surface_size)
        self._map_grid = views.grid_features(self.features, self.map_size)
        self.classes = np.arange(self.data["classes"])
        self.est = make_estimator(self.model, self.params[self.model], self.data["seed"])
        self._fitted = False  # True once a fit / partial_fit of this estimator has finished
        self._order, self._cursor, self._passes = None, 0, 0  # the shuffle of long epochs' slices (step_rows)
        self.run += 1
        self.history: list[dict[str, Any]] = []
        self.error: dict[str, Any] | None = None
        self._step_times: list[tuple[float, int]] = []
        self.notice: str | None = None
        if self.est.has_training_curve:
            return
        # A model without a training loop (kNN) is fitted at once, its data-bound parameters capped to the data.
        if len(np.unique(self.y_train)) < 2:
            label = get_spec(self.model).label
            self.notice = f"{label} needs training points of at least two classes" if len(self.y_train) else None
            return
        caps = self.est.capped_to(len(self.y_train))
        if caps:
            self.notice = "; ".join(f"{k} = {getattr(self.est, k)} is more than the {len(self.y_train)} training "
                                    f"points: using {k} = {v}" for k, v in caps.items())
            self.est.set_params(**caps)
        self.est.fit(self._F_train, self.y_train)
        self._fitted = True
        self._record()

    def _trained(self) -> bool:
        """Whether the estimator has finished a fit: a first step that diverged leaves it without weights."""
        return self._fitted

    @property
    def n_steps(self) -> int:
        """Optimizer steps taken by the estimator (0 without a training loop, as for kNN, and before the first
        step)."""
        return int(getattr(self.est, "n_steps_", 0)) if self._trained() else 0

    def step_rows(self) -> int:
        """Training points one step trains on: all of them (one epoch), unless that epoch would take more than
        ``MAX_STEP_UPDATES`` minibatch updates or ``MAX_STEP_WORK`` weight x example products; then a slice of
        them, so that one reply's training time is bounded whatever the settings."""
        p = self.params[self.model]
        widths = [len(self.features), *p.get("hidden_sizes", ()), len(self.classes)]
        weights = sum(a * b for a, b in zip(widths, widths[1:]))
        batch = int(p.get("batch_size", 1))
        return max(1, min(len(self.y_train), batch * MAX_STEP_UPDATES, max(batch, MAX_STEP_WORK // weights)))

    def _next_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The next step's training points: all, or the next slice of a fresh shuffle of them per pass."""
        n, rows = len(self.y_train), self.step_rows()
        if rows >= n:
            return self._F_train, self.y_train
        if self._order is None or len(self._order) != n or self._cursor >= n:
            self._order = np.random.default_rng([self.data["seed"], self.run, self._passes]).permutation(n)
            self._cursor, self._passes = 0, self._passes + 1
        idx = self._order[self._cursor:self._cursor + rows]
        self._cursor += rows
        return self._F_train[idx], self.y_train[idx]

    def step(self) -> bool:
        """One training step: ``partial_fit`` over the training points (one epoch of minibatch updates; a slice of
        them when an epoch would be long, see ``step_rows``).

        Returns False (and does nothing) when there is nothing to do: a model without a training loop (kNN: its fit
        is instant), no training points, or a stopped run (see ``error``). A non-finite loss stops the session with
        an error.
        """
        if not self.est.has_training_curve or self.error is not None or not len(self.y_train):
            return False
        try:
            self.est.partial_fit(*self._next_rows(), classes=self.classes)
        except FloatingPointError as e:  # the estimators' divergence error (the Trainer's NonFiniteError too)
            self._stop("diverged", str(e))
            return False
        except ValueError as e:  # a parameter combination the estimator rejects
            self._stop("rejected", str(e))
            return False
        self._fitted = True
        self._step_times.append((time.perf_counter(), self.n_steps))
        del self._step_times[:-20]
        self._record()
        if self.history and self.history[-1]["loss"] is not None and not math.isfinite(self.history[-1]["loss"]):
            self._stop("diverged", f"the training loss became {self.history[-1]['loss']}")
            return False
        return True

    def _record(self) -> None:
        est = self.est
        loss = views.last_loss(est)
        train_acc = float(est.score(self._F_train, self.y_train)) if len(self.y_train) else None
        test_acc = float(est.score(self._F_test, self.y_test)) if len(self.y_test) else None
        self.history.append({"step": self.n_steps, "epoch": len(getattr(est, "loss_curve_", ())), "loss": loss,
                             "train_accuracy": train_acc, "test_accuracy": test_acc})
        del self.history[:-5000]

    def steps_per_second(self) -> float | None:
        if len(self._step_times) < 2:
            return None
        (t0, s0), (t1, s1) = self._step_times[0], self._step_times[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else None

    # ---- what the page shows --------------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything but the pictures: settings, the latest metrics, running, error."""
        last = self.history[-1] if self.history else {}
        return {"type": "state", "mode": "points", "data": dict(self.data), "features": list(self.features),
                "model": self.model,
                "params": {m: _jsonable(p) for m, p in self.params.items()}, "running": self.running,
                "error": self.error, "step": self.n_steps, "epoch": last.get("epoch", 0), "loss": last.get("loss"),
                "train_accuracy": last.get("train_accuracy"), "test_accuracy": last.get("test_accuracy"),
                "steps_per_s": self.steps_per_second(), "inspect": self.inspect, "notice": self.notice,
                "run": self.run}

    def data_message(self) -> dict[str, Any]:
        """What the page needs once per data change: the points."""
        return self.points()

    def points(self) -> dict[str, Any]:
        """The training and test points: {"type": "points", "train": [[x, y, label], ...], "test": [...]}."""
        def rows(X: np.ndarray, y: np.ndarray) -> list[list[float]]:
            return [[round(float(a), 4), round(float(b), 4), int(c)] for (a, b), c in zip(X, y)]

        return {"type": "points", "classes": self.data["classes"], "train": rows(self.X_train, self.y_train),
                "test": rows(self.X_test, self.y_test)}

    def frame(self, network: bool = True) -> dict[str, Any]:
        """state() plus the decision surface, the latest history row, and (``network``) the network view and the
        inspected point's graph."""
        out = self.state()
        out["type"] = "frame"
        out["history"] = self.history[-1] if self.history else None
        fitted = self._trained() and len(self.y_train) > 0
        out["surface"] = views.surface(self.est, self._grid, self.surface_size, len(self.classes)) if fitted else None
        healthy = fitted and self.error is None  # a diverged model's weights may be inf / nan: surface only
        out["lines"] = views.score_lines(self.est, self.features) if healthy else None
        if network:
            out["network"] = views.network(self.est, self._map_grid, self.map_size, self.features) if healthy else None
            out["graph"] = (views.point_graph(self.est, self._F_train[self.inspect], int(self.y_train[self.inspect]),
                                              self.features)
                            if healthy and self.inspect is not None else None)
        return out


def _train_count(n: int, train_fraction: float) -> int:
    """Training points of a split of n (at least one of each side when n >= 2)."""
    return max(1, min(n - 1, int(round(train_fraction * n))))


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
