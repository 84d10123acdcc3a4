"""``LinearClassifier``: what the linear models (``chainrule.classifiers.linear``) share -- one template per class,
scores S = X W + b, trained by minibatch SGD (CS231n lecture 3); the leaves supply the loss.

    svm = LinearSVM(reg=0.1, lr=3e-4, epochs=8).fit(X_train, y_train)      # multiclass hinge loss
    softmax = SoftmaxClassifier(lr=1e-3).fit(X_train, y_train)            # cross-entropy; has predict_proba
    softmax.templates()                                                   # (C, 32, 32, 3): W as images

    hog_svm = LinearSVM(features="hog_color").fit(X_train, y_train)       # on HOG + hue histograms of the images

Inputs are images (N, H, W, C) or features (N, D), flattened, optionally replaced by hand-designed features
(``features="hog_color"``: ``chainrule.features.HogColorFeatures`` of RGB images, HOG over ``hog_cell`` x
``hog_cell`` cells + a 10-bin hue histogram) and preprocessed (``preprocessing="standardize"``: per-feature zero
mean and unit variance, ``"center"``: the mean subtracted, or None); both steps are fitted in ``fit`` and saved with
the model (``chainrule.classifiers._inputs``, shared with ``MLPClassifier``). W (D, C) and b (C,) are float32
parameters of an ``nn.Linear(D, C)`` trained by ``chainrule.train.Trainer`` (the same loop as ``MLPClassifier``,
with the same run-folder hooks and exact resume: ``chainrule.classifiers._training``) over a
``chainrule.data.DataLoader`` (reshuffled every epoch, the last partial batch of an epoch dropped), with a
``chainrule.optim`` optimizer and a ``chainrule.optim.schedules.run_schedule`` learning-rate schedule.

The hot loop per step: gather a minibatch, one GEMM for the scores, the fused loss-and-gradient of
``chainrule.classifiers.losses`` (``engine="numpy"``, the trainer's ``loss_and_grad``) and one GEMM for dW, then
``optimizer.step()``. With ``engine="autograd"`` the same step goes through the autograd graph (``x @ W + b``,
``nn.functional``'s fused losses, ``backward()``) instead; both give the same weights (tests check it); numpy is
faster: bench/bench_linear.py. Predictions are computed in float64 so that they do not depend on how the inputs
are batched. ``partial_fit`` runs one epoch per call (see ``chainrule.classifiers._training``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from chainrule.classifiers import _training as tr
from chainrule.classifiers._flip import FlipRows, PickTwin, check_images, flip_map
from chainrule.classifiers._inputs import FEATURES, PREPROCESSING, InputSteps, compute_features, preprocess
from chainrule.classifiers.base import (BaseClassifier, check_choice, check_int_param, check_real_param, check_X,
                                        not_fitted_error)
from chainrule.data.loader import DataLoader
from chainrule.optim.factory import OPTIMIZERS
from chainrule.optim.schedules import RUN_SCHEDULES, run_schedule
from chainrule.tensor import Tensor

ENGINES = ("numpy", "autograd")
AUGMENT = (False, "flip")


class LinearFacts:
    """The per-model facts of a model of scores x W_ + b_ (W_ (D, C), b_ (C,)) on inputs ``features_`` may
    replace: the linear classifiers and the random-search baseline."""

    def n_parameters(self) -> int:
        self._check_is_fitted()
        return int(self.W_.size + self.b_.size)

    def n_model_features(self) -> int:
        self._check_is_fitted()
        return int(self.W_.shape[0])

    def weight_images(self) -> tuple[np.ndarray, bool] | None:
        self._check_is_fitted()
        return None if self.features_ is not None else (self.W_, True)


class LinearClassifier(LinearFacts, InputSteps, BaseClassifier):
    """Shared training and prediction of ``LinearSVM`` and ``SoftmaxClassifier`` (which define the loss).

    Attributes (after ``fit``)
    --------------------------
    W_ : (D, C) float32 weights, one column (template) per class; ``coef_`` is W_.T (scikit-learn's layout). D is
        the number of model inputs: pixels (``n_features_in_``), or the F features of ``features_``.
    b_ : (C,) float32 biases (``intercept_``).
    classes_, n_features_in_, sample_shape_ : see ``BaseClassifier`` (of the inputs X, before any features).
    features_ : the ``HogColorFeatures`` step (``features="hog_color"``), or None.
    preprocessor_ : the fitted ``chainrule.data`` Standardize / MeanImage step, or None.
    loss_history_ : (iterations,) float32, the minibatch loss of every step.
    n_iter_ : the number of SGD steps taken.  fit_time_ : seconds spent in fit; train_time_ : of which in the SGD
        loop (the rest: input checks, features and preprocessing).
    """

    def _loss_grad(self, W: np.ndarray, b: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float,
                   pred: np.ndarray | None = None) -> tuple[float, np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _autograd_loss(self, scores: Tensor, y: np.ndarray) -> Tensor:
        raise NotImplementedError

    # ---- hyperparameters -----------------------------------------------------------------------------------------

    def _validated(self) -> dict[str, Any]:
        hp = {
            "reg": self._reg(),
            "lr": check_real_param(self, "lr", 0.0, strict=True),
            "batch_size": check_int_param(self, "batch_size", 1),
            "momentum": check_real_param(self, "momentum", 0.0),
            "init_scale": check_real_param(self, "init_scale", 0.0),
            "preprocessing": check_choice(self, "preprocessing", PREPROCESSING),
            "features": check_choice(self, "features", FEATURES),
            "hog_cell": check_int_param(self, "hog_cell", 1),
            "optimizer": check_choice(self, "optimizer", tuple(OPTIMIZERS)),
            "schedule": check_choice(self, "schedule", RUN_SCHEDULES),
            "engine": check_choice(self, "engine", ENGINES),
            "augment": check_choice(self, "augment", AUGMENT),
            "iterations": check_int_param(self, "iterations", 1),
        }
        if hp["momentum"] >= 1:
            raise ValueError(f"{type(self).__name__}: momentum must be in [0, 1), got {self.momentum!r}")
        if self.epochs is not None:
            hp["epochs"] = check_real_param(self, "epochs", 0.0, strict=True)
        return hp

    def _validate_params(self) -> None:
        self._validated()

    def _reg(self) -> float:
        """The L2 strength of the loss term reg * sum(W^2): ``reg``, or ``weight_decay / 2`` when ``weight_decay``
        (the name and meaning of ``MLPClassifier`` and PyTorch: the gradient gains weight_decay * W) is given."""
        if self.weight_decay is None:
            return check_real_param(self, "reg", 0.0)
        return check_real_param(self, "weight_decay", 0.0) / 2

    # ---- inputs --------------------------------------------------------------------------------------------------

    def _check_inputs(self, hp: dict[str, Any]) -> None:
        if hp["augment"] == "flip":
            check_images(self.sample_shape_, type(self).__name__)
            if hp["preprocessing"] == "zca" and hp["features"] is None:  # whitening mixes pixels: no flip map
                raise ValueError(f"{type(self).__name__}: augment='flip' on raw pixels cannot be combined with "
                                 "preprocessing='zca'; use preprocessing='standardize' or augment=False")

    def _fit_inputs(self, X: np.ndarray, hp: dict[str, Any], F: np.ndarray | None = None) -> np.ndarray:
        """The float32 training matrix (N, D') of the rows X (N, D) through the fitted steps (``F``: their features,
        if already computed); with features and augment="flip", (N, 2, D'): each row's features, then those of its
        mirror image (the loader picks one of the two per sample)."""
        if F is None:
            F = compute_features(self.features_, X, self.sample_shape_)
        Xp = preprocess(self.preprocessor_, F)
        if hp["augment"] == "flip" and self.features_ is not None:  # features of the mirrored images: once, here
            mirrored = X.reshape(len(X), *self.sample_shape_)[:, :, ::-1]
            Xp = np.stack([Xp, preprocess(self.preprocessor_, self.features_.transform(mirrored))], axis=1)
        return Xp

    def _transform(self, X: Any) -> np.ndarray:
        """Validated X -> the float64 model inputs (N, D') for prediction: features, then preprocessing."""
        self._check_is_fitted()
        X = check_X(X, self, reset=False, keep_uint8=True)
        return preprocess(self.preprocessor_, compute_features(self.features_, X, self.sample_shape_), np.float64)

    def _flip_map(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``chainrule.classifiers._flip.flip_map`` of the fitted preprocessing (raw inputs only, no features)."""
        check_images(self.sample_shape_, type(self).__name__)
        return flip_map(self.preprocessor_, self.sample_shape_)

    def _loader(self, Xp: np.ndarray, y_index: np.ndarray, hp: dict[str, Any], seed: int) -> DataLoader:
        """Shuffled minibatches of the model inputs (the last partial batch of an epoch dropped); with
        augment="flip" a random half of every batch mirrored (raw pixels: in the preprocessed space; features: the
        mirror images' features)."""
        batch = min(hp["batch_size"], len(Xp))
        augment = None
        if hp["augment"] == "flip":
            augment = PickTwin() if Xp.ndim == 3 else FlipRows(*self._flip_map())
        return DataLoader(Xp, y_index, batch, shuffle=True, drop_last=True, seed=seed, augment=augment)

    # ---- training ------------------------------------------------------------------------------------------------

    def fit(self, X: Any, y: Any, *, validation_data: tuple[Any, Any] | None = None, callbacks: Any = (),
            checkpoints: Any = None, checkpoint_every: int | None = None, resume: Any = None,
            diagnostics: bool = False) -> "LinearClassifier":
        """Train W and b on X (N, D) or images (N, H, W, C) with labels y (N,) by minibatch SGD. Returns self.

        ``validation_data=(X_val, y_val)`` is scored after every epoch (the history's val_acc / val_loss); the
        other keyword arguments are the run-folder hooks of ``chainrule.classifiers._training``.
        """
        start = time.perf_counter()
        hp = self._validated()
        X = check_X(X, self, reset=True, keep_uint8=True)
        y_index = self._fit_labels(y, len(X))
        _, loader_seed, model_seed = tr.draw_seeds(self.random_state)
        if resume is not None:
            extend = bool(set(tr.check_resume(self, resume)) & set(tr.EXTENDING))
            tr.check_resume_data(self, X, y_index, resume["metadata"])
            tr.restore_fitted(self, resume["metadata"])
            Xp = self._fit_inputs(X, hp)
        else:
            self._check_inputs(hp)
            Xp = self._fit_inputs(X, hp, self._fit_input_steps(X, hp))
        loader = self._loader(Xp, y_index, hp, loader_seed)
        del Xp
        total = max(1, round(hp["epochs"] * len(loader))) if "epochs" in hp else hp["iterations"]
        model = self._new_model(loader.X.shape[-1], len(self.classes_), hp, model_seed)
        optimizer = tr.build_optimizer(hp["optimizer"], model.parameters(), hp)
        val = None if validation_data is None else self._validation_inputs(validation_data)
        trainer = self._trainer(model, optimizer, loader, hp, val, epochs=-(-total // len(loader)), max_steps=total,
                                callbacks=callbacks, checkpoints=checkpoints, checkpoint_every=checkpoint_every,
                                diagnostics=diagnostics)
        trainer.schedule = run_schedule(hp["schedule"], optimizer, total)
        if resume is not None:
            trainer.load_state_dict(resume, extend=extend)
        train_start = time.perf_counter()
        self._run(trainer, hp)
        self._record(trainer, model)
        self._partial = tr.PartialFitState(self._arch(hp), loader_seed, optimizer, hp["optimizer"], trainer.epoch,
                                           model=model)
        end = time.perf_counter()
        self.fit_time_, self.train_time_ = end - start, end - train_start
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> "LinearClassifier":
        """One epoch of minibatch updates on X, y (``N // batch_size`` steps, at least one), continuing the model
        and optimizer state of earlier calls (or of ``fit``). The first call (or one after a change of
        ``features``, ``hog_cell``, ``preprocessing`` or ``augment``) initialises the model and fits the input steps
        on this X; ``classes`` lists every label when y might not hold them all. ``lr``, ``reg``, ``momentum``,
        ``optimizer`` (a change starts a fresh optimizer state) and ``batch_size`` are read at every call; the
        learning rate is constant (``schedule``, ``epochs`` and ``iterations`` are fit's). Returns self."""
        start = time.perf_counter()
        hp = self._validated()
        first, state, X, y_index = tr.partial_fit_data(self, X, y, classes, hp, "W_")
        _, loader_seed, model_seed = tr.draw_seeds(self.random_state)
        if first:
            self._check_inputs(hp)
            Xp = self._fit_inputs(X, hp, self._fit_input_steps(X, hp))
            model = self._new_model(Xp.shape[-1], len(self.classes_), hp, model_seed)
            state = self._partial = tr.PartialFitState(self._arch(hp), loader_seed, None, hp["optimizer"],
                                                       model=model)
        else:
            Xp = self._fit_inputs(X, hp)
            if state is None:  # a loaded model: continue it with a fresh optimizer
                state = self._partial = tr.PartialFitState(self._arch(hp), loader_seed, None, hp["optimizer"],
                                                           int(getattr(self, "n_epochs_", 0)))
            if state.model is None:
                state.model = self._model_from_weights()
            model = state.model
        loader = self._loader(Xp, y_index, hp, state.loader_seed)
        loader.set_epoch(state.epochs_done)
        optimizer = state.optimizer_for(model.parameters(), hp)
        trainer = self._trainer(model, optimizer, loader, hp, None, epochs=1)
        self._run(trainer, hp)
        state.epochs_done += 1
        self._record(trainer, model, append=not first)
        self.fit_time_ = self.train_time_ = time.perf_counter() - start
        return self

    def _arch(self, hp: dict[str, Any]) -> tuple[Any, ...]:
        return (hp["features"], hp["hog_cell"], hp["preprocessing"], hp["augment"])

    def _new_model(self, D: int, C: int, hp: dict[str, Any], seed: int) -> Any:
        from chainrule import nn

        model = nn.Linear(D, C)
        rng = np.random.default_rng(seed)
        model.weight.data[...] = (hp["init_scale"] * rng.standard_normal((D, C))).astype(np.float32)
        model.bias.data[...] = 0
        return model

    def _model_from_weights(self) -> Any:
        """The nn.Linear holding W_ and b_ (the same arrays: training on updates them in place)."""
        from chainrule import nn

        model = nn.Linear(*self.W_.shape)
        model.weight.data, model.bias.data = self.W_, self.b_
        return model

    def _validation_inputs(self, validation_data: Any) -> tuple[np.ndarray, np.ndarray]:
        try:
            X_val, y_val = validation_data
        except (TypeError, ValueError):
            raise ValueError("validation_data must be a pair (X_val, y_val)") from None
        X_val = self._transform(X_val).astype(np.float32)
        return X_val, tr.label_index(self, y_val, len(X_val), "validation_data")

    def _trainer(self, model: Any, optimizer: Any, loader: DataLoader, hp: dict[str, Any], val: Any, *,
                 epochs: int, max_steps: int | None = None, **hooks: Any) -> Any:
        from chainrule.train import Trainer

        numpy_engine = hp["engine"] == "numpy"
        pred = np.empty(loader.batch_size, dtype=np.int64)

        def loss_and_grad(m: Any, xb: np.ndarray, yb: np.ndarray) -> tuple[float, int]:
            loss, m.weight.grad, m.bias.grad = self._loss_grad(m.weight.data, m.bias.data, xb, yb, hp["reg"], pred)
            return loss, int(np.count_nonzero(pred == yb))

        def regularizer(m: Any) -> Tensor:
            return (m.weight * m.weight).sum() * hp["reg"]

        return Trainer(model, self._autograd_loss, optimizer, loader, val_data=val, epochs=epochs, max_steps=max_steps,
                       loss_and_grad=loss_and_grad if numpy_engine else None,
                       regularizer=None if numpy_engine or not hp["reg"] else regularizer,
                       restore_best=False, **tr.trainer_hooks(self, **hooks))

    def _run(self, trainer: Any, hp: dict[str, Any]) -> None:
        """``trainer.fit()`` on one BLAS thread; a non-finite loss or weight is an error saying what to change."""
        from chainrule.train import NonFiniteError

        # A diverging run overflows; instead of a warning per step it stops with one error.
        with np.errstate(over="ignore", invalid="ignore"), tr.one_blas_thread():
            try:
                trainer.fit()
            except NonFiniteError as e:
                self._diverged(str(e).split(";")[0], hp)
        if not all(np.isfinite(p.data).all() for p in trainer.params):
            self._diverged("the weights overflowed in the last step", hp)

    def _record(self, trainer: Any, model: Any, append: bool = False) -> None:
        """Learned attributes from the trainer (appended to those of earlier partial_fit calls with ``append``)."""
        history = trainer.history
        losses = history.column("loss").astype(np.float32)
        curve = tr.epoch_means(history.column("epoch"), history.column("loss"))
        self.W_, self.b_ = model.weight.data, model.bias.data
        if append:
            losses = np.concatenate([self.loss_history_, losses])
            curve = list(self.loss_curve_) + curve
        self.loss_history_, self.loss_curve_ = losses, curve
        self.n_iter_ = self.n_steps_ = int(len(losses))
        self.n_epochs_ = int(len(curve))
        self.validation_scores_ = [float(r["val_acc"]) for r in history.epochs if r.get("val_acc") is not None] \
            or None

    def _diverged(self, what: str, hp: dict[str, Any]) -> None:
        raise FloatingPointError(
            f"{type(self).__name__}: training diverged: {what}; lower lr (now {hp['lr']:g}) or use "
            "preprocessing='standardize'"
        )

    # ---- prediction ----------------------------------------------------------------------------------------------

    def decision_function(self, X: Any) -> np.ndarray:
        """Class scores X W + b (N, C), in float64; for two classes scikit-learn's (N,) margin s_1 - s_0."""
        scores = self._scores(X)
        return scores[:, 1] - scores[:, 0] if scores.shape[1] == 2 else scores

    def _scores(self, X: Any) -> np.ndarray:
        return self._transform(X) @ self.W_.astype(np.float64) + self.b_.astype(np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """Labels (N,): the class whose template scores highest (ties: the smallest label)."""
        scores = self._scores(X)
        return self.classes_[np.argmax(scores, axis=1)]

    @property
    def coef_(self) -> np.ndarray:
        """(C, D) weights in scikit-learn's layout (W_.T)."""
        if not hasattr(self, "W_"):
            raise not_fitted_error(f"This {type(self).__name__} instance is not fitted yet; coef_ exists after fit")
        return self.W_.T

    @property
    def intercept_(self) -> np.ndarray:
        """(C,) biases (b_)."""
        if not hasattr(self, "b_"):
            raise not_fitted_error(
                f"This {type(self).__name__} instance is not fitted yet; intercept_ exists after fit"
            )
        return self.b_

    def templates(self) -> np.ndarray:
        """(C, *sample_shape_) float32 in [0, 255]: each class's weights as an image, min-max scaled (lecture 3's
        picture of what a linear classifier learns). Show one with ``plt.imshow(t[c].astype('uint8'))``. Needs a model
        of the pixels themselves (features=None)."""
        self._check_is_fitted()
        if self.features_ is not None:
            raise ValueError(
                f"templates() draws the weights as images, but this {type(self).__name__} weighs "
                f"{self.W_.shape[0]} features (features={self.features!r}), not pixels; fit with features=None to see "
                "templates"
            )
        W = self.W_.T.astype(np.float64)
        low = W.min(axis=1, keepdims=True)
        high = W.max(axis=1, keepdims=True)
        scaled = np.clip(255.0 * (W - low) / np.maximum(high - low, 1e-12), 0.0, 255.0)
        return scaled.astype(np.float32).reshape(len(self.classes_), *self.sample_shape_)

    # ---- per-model facts ------------------------------------------------------------------------------------------

    has_training_curve = True
    _kind = "linear classifier"  # for describe()

    def describe(self) -> str:
        return f"{self._kind}, reg {self._reg():g}"

    def as_module(self) -> Any:
        """The fitted prediction as one ``nn.Module`` of ops: raw rows x (N, D) float32 -> scores x' W + b (N, C),
        with the preprocessing (standardisation, mean image, ZCA) on the graph; what ``chainrule.onnx.export``
        writes. Refused for features='hog_color' (NumPy code outside the graph)."""
        from chainrule import nn
        from chainrule.classifiers._input_module import input_module

        self._check_is_fitted()
        return nn.Sequential(input_module(self), self._model_from_weights()).eval()

    # ---- persistence ---------------------------------------------------------------------------------------------

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = self._input_state()
        arrays.update({"W_": self.W_, "b_": self.b_, "loss_history_": self.loss_history_})
        meta.update({"n_iter": int(self.n_iter_), "loss_curve": list(self.loss_curve_),
                     "validation_scores": self.validation_scores_, "fit_time": float(self.fit_time_),
                     "train_time": float(self.train_time_)})
        return meta, arrays

    def _set_weights(self, weights: dict[str, np.ndarray], history: dict[str, Any]) -> None:
        """W_ and b_ from a checkpoint's weights and the learned attributes from its history (labels and input steps
        are already restored: ``chainrule.classifiers._training.restore_fitted``)."""
        self.W_, self.b_ = np.array(weights["weight"], np.float32), np.array(weights["bias"], np.float32)
        steps = history["steps"]
        self.loss_history_ = np.asarray(steps["loss"], dtype=np.float32)
        self.loss_curve_ = tr.epoch_means(np.asarray(steps["epoch"]), np.asarray(steps["loss"], dtype=np.float64))
        self.n_iter_ = self.n_steps_ = len(self.loss_history_)
        self.n_epochs_ = len(self.loss_curve_)
        self.validation_scores_ = [float(e["val_acc"]) for e in tr.history_epochs(history)
                                   if e.get("val_acc") is not None] or None
        self.fit_time_ = self.train_time_ = 0.0

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self._set_input_state(meta, arrays)
        D = self.n_features_in_ if self.features_ is None else self.features_.n_features_out(self.sample_shape_)
        W, b = arrays["W_"], arrays["b_"]
        C = len(self.classes_)
        if W.shape != (D, C) or b.shape != (C,):
            raise ValueError(f"saved W_ {W.shape} / b_ {b.shape} do not match {D} features and {C} classes")
        self.W_, self.b_ = W.astype(np.float32), b.astype(np.float32)
        self.loss_history_ = arrays.get("loss_history_", np.empty(0, dtype=np.float32))
        self.n_iter_ = self.n_steps_ = int(meta.get("n_iter", len(self.loss_history_)))
        self.loss_curve_ = [float(v) for v in meta.get("loss_curve", [])]  # (not in files of chainrule 0.1)
        self.n_epochs_ = len(self.loss_curve_)
        self.validation_scores_ = meta.get("validation_scores")
        self.fit_time_ = float(meta.get("fit_time", 0.0))
        self.train_time_ = float(meta.get("train_time", 0.0))
