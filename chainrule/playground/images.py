"""One images-mode session (ConvNetJS's digit and CIFAR-10 demos): a chainrule estimator training on images in
small batches, held-out images scored as it trains, and the pictures of what it learns.

    from chainrule.playground.image_data import ImageDatasets
    from chainrule.playground.images import ImageSession
    s = ImageSession(ImageDatasets())               # the 8x8 digits, a 64-unit ReLU MLPClassifier
    s.apply({"type": "step"})                       # partial_fit on the next few minibatches of training images
    frame = s.frame()                               # step, loss, accuracies, throughput, filters, activations, ...

As in the 2-D mode, every number comes from the estimator (``chainrule.classifiers``, built by
``session.make_estimator`` with its own parameters). A step is one ``partial_fit`` on the next
``UPDATES_PER_STEP`` minibatches of a shuffled pass over the training images; the training loss and accuracy are
windowed over the last ``WINDOW`` steps (as ConvNetJS shows them); held-out accuracy is over all held-out images,
scored every ``HELD_OUT_EVERY`` seconds while training, or less often when scoring is slow (at most a quarter of
the time: a conv net scores 500 CIFAR-10 images in about the time it trains on 300), and whenever it stops.
A run stops with an error when its loss is not finite, when its windowed loss exceeds ``DIVERGED`` times the first
step's (CS231n's rule of thumb: a learning rate that high only makes things worse), or when, having halved, it
climbs back to the first step's for a whole window (a too-high learning rate that killed the units), until
``reset``.

Not thread-safe: the server runs all of one session's calls on one worker thread.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from chainrule.classifiers import get_spec
from chainrule.playground import image_views
from chainrule.playground.image_data import ImageData
from chainrule.playground.image_protocol import image_models, image_param_rules, parse_image_message
from chainrule.playground.protocol import ProtocolError
from chainrule.playground.session import LIVE_PARAMS, Playing
from chainrule.playground.views import last_loss

DEFAULT_MODEL = "mlp"
# Where a model starts, by parameter name (each model takes those its estimator has): small and quick to train
# on one CPU core, as ConvNetJS's demos are.
DEFAULTS: dict[str, Any] = {"hidden_sizes": (64,), "channels": (8, 16), "kernel_size": 3, "pool": "max",
                            "activation": "relu", "reg": 0.0001, "weight_decay": 0.0001, "lr": 0.003,
                            "optimizer": "adam", "momentum": 0.9, "batch_size": 20}
# What the images mode fixes: the session makes the model inputs itself (pixels in [0, 1] minus the mean image), the
# learning rate is constant, and a conv net is the plain one of the lecture (no frozen whitening layer, whose
# filters would not learn, no augmentation, averaging or test-time tricks, one conv per block).
FIXED: dict[str, Any] = {"preprocessing": None, "schedule": "constant", "whiten": False, "augment": False,
                         "lookahead": False, "test_time_flip": False, "test_time_shift": 0, "label_smoothing": 0.0,
                         "convs_per_block": 1, "norm_lr_scale": 1.0, "warmup_epochs": 0.0,
                         "matmul_precision": "float32"}


def make_image_estimator(model: str, params: dict[str, Any], seed: int = 0) -> Any:
    """The registry's estimator for ``model`` with ``params`` and the images mode's fixed settings."""
    return get_spec(model).build(**FIXED, **params, random_state=seed)
UPDATES_PER_STEP = 5
HELD_OUT_EVERY = 0.25  # seconds between scorings of the held-out images while training (and for every picture)
DIVERGED = 3.0  # CS231n's early stop for a learning rate that is too high: the loss above 3 x its first value
WINDOW = 20
STRIP = 40  # held-out images in the strip


class ImageSession(Playing):
    """Dataset, estimator, training history and views of one images-mode tab. ``datasets``: an
    ``image_data.ImageDatasets`` (the server's, shared by its tabs)."""

    def __init__(self, datasets: Any, dataset: str = "digits"):
        self.datasets = datasets
        self.data = {"dataset": dataset}
        self.model = DEFAULT_MODEL
        self.params = {m: {k: DEFAULTS[k] for k in image_param_rules(m)} for m in image_models()}
        self.view = {"gradients": False}
        self.inspect = 0
        self.running = False
        self.run = 0
        self.images: ImageData = datasets.get(dataset)
        self.reset()

    # ---- messages -------------------------------------------------------------------------------------------------

    def parse(self, raw: str | bytes) -> dict[str, Any]:
        return parse_image_message(raw, self.model, self.datasets.names)

    def apply(self, msg: dict[str, Any] | str) -> str:
        """Apply an images-mode message (parsed, or JSON text) other than play / pause / mode. Returns what changed:
        "data", "model", "live", "view", "step", "inspect" or "none". Raises ProtocolError for a bad message."""
        if isinstance(msg, str):
            msg = self.parse(msg)
        kind = msg["type"]
        if kind == "set":
            return self._set(msg)
        if kind == "step":
            self.step()
            return "step"
        if kind == "reset":
            self.running = False
            self.reset()
            return "model"
        if kind == "inspect":
            if msg["index"] >= len(self.images.test):
                raise ProtocolError("index", f"must be below the number of held-out images ({len(self.images.test)})",
                                    msg["index"])
            self.inspect = msg["index"]
            return "inspect"
        if kind in ("play", "pause"):
            self.running = kind == "play"
            return "none"
        if kind == "ping":
            return "none"
        raise ProtocolError("type", "not handled by the images session", kind)

    def _set(self, msg: dict[str, Any]) -> str:
        """All or nothing: the new dataset is loaded and the combination checked before anything changes."""
        data = {**self.data, **msg.get("data", {})}
        images = self.datasets.get(data["dataset"]) if data != self.data else self.images
        model = msg.get("model", self.model)
        params = {**self.params[model], **msg.get("params", {})}
        old = self.params[model]
        new_model = model != self.model or any(params[k] != old[k] for k in params if k not in LIVE_PARAMS)
        self._check(images, model, params, new_model or images is not self.images)
        live = {k: v for k, v in params.items() if k in LIVE_PARAMS and v != old[k]}
        self.view = {**self.view, **msg.get("view", {})}
        if data != self.data:
            self.data, self.images, self.model, self.params[model] = data, images, model, params
            self.inspect = 0
            self.reset()
            return "data"
        self.model, self.params[model] = model, params
        if new_model:
            self.reset()
            return "model"
        if live:
            self.est.set_params(**live)
            return "live"
        return "view" if "view" in msg else "none"

    def _check(self, images: ImageData, model: str, params: dict[str, Any], new: bool) -> None:
        """Combinations the field rules cannot see: a batch larger than the training images, and (for a new
        model or data) an architecture the images do not fit, found by one step of a throwaway estimator on two
        images (a conv net whose blocks pool 8 x 8 digits below one pixel, say): the estimator says what is wrong."""
        if params["batch_size"] > len(images.train):
            raise ProtocolError("params.batch_size", f"must be at most the number of training images "
                                f"({len(images.train)})", params["batch_size"])
        if not new:
            return
        idx = images.train[:2]
        try:
            with np.errstate(all="ignore"):
                make_image_estimator(model, params).partial_fit(images.batch(idx), images.y[idx],
                                                                classes=np.arange(len(images.classes)))
        except Exception as e:  # whatever the estimator refuses, in its own words
            h, w = images.sample_shape[:2]
            raise ProtocolError("params", f"this {model} does not fit the {h} x {w} images of {images.name} "
                                f"({type(e).__name__}: {e})", params) from None

    # ---- training -------------------------------------------------------------------------------------------------

    def reset(self) -> None:
        """A new estimator on the current data and parameters; clears history, windows and any error."""
        self.est = make_image_estimator(self.model, self.params[self.model])
        self.classes = np.arange(len(self.images.classes))
        self.run += 1
        self.history: list[dict[str, Any]] = []
        self.error: dict[str, Any] | None = None
        self._fitted = False
        self._order, self._cursor, self._passes = np.empty(0, np.int64), 0, 0
        self._window: list[tuple[int, int, float]] = []  # (examples, correct, loss) of the latest steps
        self._times: list[tuple[float, int, float, float]] = []  # (time, examples, train s, forward s)
        self._held_out: dict[str, Any] | None = None
        # when, after which step and in how long the held-out images were last scored
        self._scored_at, self._scored_step, self._score_cost = -np.inf, -1, 0.0
        self._best = float("inf")  # the lowest windowed loss of this run
        self._X_test = self.images.batch(self.images.test)

    def _next_batch(self) -> np.ndarray:
        rows = self.params[self.model]["batch_size"] * UPDATES_PER_STEP
        train = self.images.train
        if self._cursor >= len(self._order):
            self._order = np.random.default_rng([self.run, self._passes]).permutation(train)
            self._cursor, self._passes = 0, self._passes + 1
        idx = self._order[self._cursor:self._cursor + rows]
        self._cursor += rows
        return idx

    @property
    def n_steps(self) -> int:
        return int(getattr(self.est, "n_steps_", 0)) if self._fitted else 0

    def step(self) -> bool:
        """One step: ``partial_fit`` on the next minibatches, then the windowed training accuracy on them and the
        held-out accuracy. Returns False when stopped by an error (a diverged run)."""
        if self.error is not None:
            return False
        idx = self._next_batch()
        X, y = self.images.batch(idx), self.images.y[idx]
        t0 = time.perf_counter()
        try:
            self.est.partial_fit(X, y, classes=self.classes)
        except FloatingPointError as e:  # the estimators' divergence error
            self._stop("diverged", str(e))
            return False
        except ValueError as e:
            self._stop("rejected", str(e))
            return False
        t1 = time.perf_counter()
        self._fitted = True
        with np.errstate(all="ignore"):
            correct = int((self.est.predict(X) == y).sum())
        t2 = time.perf_counter()
        loss = last_loss(self.est)
        self._window.append((len(idx), correct, loss if loss is not None else float("nan")))
        del self._window[:-WINDOW]
        self._times.append((t2, len(idx), t1 - t0, t2 - t1))
        del self._times[:-WINDOW]
        if self._score_due():
            self._score_held_out()
        self._record()
        if loss is not None and not np.isfinite(loss):
            self._stop("diverged", f"training diverged: the loss became {loss}")
            return False
        first, now = self.history[0]["loss"], self.history[-1]["loss"]
        if first is None or now is None:
            return True
        self._best = min(self._best, now)
        if now > DIVERGED * first:
            self._stop("diverged", f"training diverged: the loss grew to {now:.3g}, more than {DIVERGED:g} x its "
                       f"first value {first:.3g}")
            return False
        if self._best < first / 2 and now >= 0.95 * first and len(self._window) == WINDOW:
            self._stop("diverged", f"training diverged: the loss went back up to {now:.3g}, the untrained model's "
                       f"{first:.3g}, after reaching {self._best:.3g} (dead units or saturated scores)")
            return False
        return True

    def _score_due(self) -> bool:
        """Whether to score the held-out images again: every ``HELD_OUT_EVERY`` seconds, and no more than a
        quarter of the time (the scoring of 500 CIFAR-10 images by a conv net takes longer than a step)."""
        return time.perf_counter() - self._scored_at >= max(HELD_OUT_EVERY, 3 * self._score_cost)

    def _score_held_out(self) -> None:
        start = time.perf_counter()
        self._scored_step = self.n_steps
        with np.errstate(all="ignore"):
            probs = image_views.probabilities(self.est, self._X_test)
        self._scored_at = time.perf_counter()
        self._score_cost = self._scored_at - start
        self._held_out = {"probs": probs, "accuracy": float((probs.argmax(1) == self.images.y[self.images.test])
                                                            .mean())}

    def _record(self) -> None:
        n = sum(w[0] for w in self._window)
        self.history.append({"step": self.n_steps, "epoch": self._passes, "loss": _mean_loss(self._window),
                             "train_accuracy": sum(w[1] for w in self._window) / n if n else None,
                             "test_accuracy": self._held_out["accuracy"] if self._held_out else None})
        del self.history[:-5000]

    def throughput(self) -> dict[str, float] | None:
        """Over the latest steps: images/s in training, ms per example forward (a scoring pass on the step's
        batch) and backward (the rest of the training step: backward pass and update)."""
        if not self._times:
            return None
        n = sum(t[1] for t in self._times)
        train, forward = sum(t[2] for t in self._times), sum(t[3] for t in self._times)
        return {"images_per_s": n / train if train > 0 else 0.0, "forward_ms": 1000 * forward / n,
                "backward_ms": 1000 * max(train - forward, 0.0) / n}

    # ---- what the page shows --------------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        last = self.history[-1] if self.history else {}
        return {"type": "state", "mode": "images", "data": dict(self.data), "model": self.model,
                "params": {m: {k: list(v) if isinstance(v, tuple) else v for k, v in p.items()}
                           for m, p in self.params.items()},
                "view": dict(self.view), "running": self.running, "error": self.error, "step": self.n_steps,
                "epoch": self._passes, "loss": last.get("loss"), "train_accuracy": last.get("train_accuracy"),
                "test_accuracy": last.get("test_accuracy"), "throughput": self.throughput(),
                "inspect": self.inspect, "run": self.run}

    def data_message(self) -> dict[str, Any]:
        """What the page needs once per data change: the held-out images."""
        return self.examples()

    def examples(self) -> dict[str, Any]:
        """The held-out images (once per dataset): {"type": "examples", "classes", "labels", "sprite"}."""
        return {"type": "examples", "dataset": self.data["dataset"], "classes": list(self.images.classes),
                "labels": self.images.y[self.images.test].tolist(),
                "sprite": image_views.sprite(self.images.pixels(self.images.test), normalize=False)}

    def frame(self, views: bool = True) -> dict[str, Any]:
        """state() plus the latest history row and (``views``) the filters / templates, the inspected held-out
        image's activations (or their gradients) per layer, and the held-out strip's top-3 predictions."""
        out = self.state()
        out["type"] = "frame"
        out["history"] = self.history[-1] if self.history else None
        if not views:
            return out
        healthy = self._fitted and self.error is None
        if healthy and self._scored_step != self.n_steps and (not self.running or self._score_due()):
            # paused or stepped: the strip and accuracy of this very model; playing: of a model at most ~1 s old
            self._score_held_out()
            self.history[-1]["test_accuracy"] = out["test_accuracy"] = self._held_out["accuracy"]
        out["filters"] = image_views.filters(self.est, self.images.sample_shape) if healthy else None
        i = self.inspect
        out["activations"] = (image_views.activations(self.est, self._X_test[i:i + 1], self.images.pixels(
            self.images.test[i:i + 1])[0], int(self.images.y[self.images.test[i]]), self.view["gradients"])
            if healthy else None)
        wgrad = out["activations"].pop("weight_gradient", None) if out["activations"] else None
        if wgrad is not None and out["filters"] is not None:  # the gradients view: of the first layer's weights too
            out["filters"] = {**wgrad, "total": out["filters"]["total"], "kind": out["filters"]["kind"],
                              "gradient": True}
        out["strip"] = (image_views.strip(self._held_out["probs"], self.images.y[self.images.test], STRIP)
                        if healthy and self._held_out else None)
        return out


def _mean_loss(window: list[tuple[int, int, float]]) -> float | None:
    losses = [w[2] for w in window]
    return float(np.mean(losses)) if losses else None
