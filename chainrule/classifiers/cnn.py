"""``ConvNetClassifier``: the conv net CIFAR-10 users train, as a scikit-learn-style estimator (airbench's recipe).

    cnn = ConvNetClassifier(epochs=8, random_state=0)       # images (N, 32, 32, 3) uint8, labels (N,)
    cnn.fit(X_train, y_train).score(X_val, y_val)
    ConvNetClassifier(channels=(32, 64, 64), whiten=False, augment="flip", lookahead=False)   # plainer variants
    cnn.save("cnn.npz"); ConvNetClassifier.load("cnn.npz")

Inputs: images (N, H, W, C) as the data pipeline gives them (``data_format="channels_last"``, the default),
(N, C, H, W) with ``data_format="channels_first"``, or flat rows (N, D) with ``image_shape`` (one image's shape in
``data_format`` order); grayscale (N, H, W) is one channel. ``fit`` learns, from the training data only:

1. preprocessing of the pixels (``"standardize"``: per-pixel zero mean and unit variance, by default);
2. with ``whiten``, the frozen first conv's filters from ``whiten_images`` training images spread over the set
   (``chainrule.data.patch_whitening_filters``: the eigenvectors of the ``whiten_kernel`` x ``whiten_kernel`` patch
   covariance, scaled to unit variance, and their negatives);
3. a ``chainrule.nn.ConvNet`` (``channels``: one block of ``convs_per_block`` convs per entry, ``kernel_size``,
   ``pool``, ``norm``, ``activation``) trained with label-smoothed softmax cross-entropy by the network-estimator
   base (``chainrule.classifiers.network.NeuralNetClassifier``: optimizer, schedule, time budget, checkpoints and
   exact resume) with these tricks, each a general library part:

   - ``augment=True``: alternating flips (``alternate_flips``; else random ones) and translations by up to
     ``translate`` pixels with reflect padding, on the fly (``chainrule.data.FlipTranslate``);
   - parameter groups (``chainrule.optim.param_groups``): the normalisation layers' shifts at ``norm_lr_scale``
     times the learning rate with ``norm_weight_decay``, biases without decay, weights with ``weight_decay``;
   - ``lookahead``: Lookahead every 5 steps with airbench's cubic schedule (``chainrule.train.averaging``), the
     model ending on the slow weights;
   - ``test_time_flip`` / ``test_time_shift``: predictions average the scores of the image, its mirror and their
     1-pixel shifts (``chainrule.data.predict_tta``).

configs/cifar10-cnn.toml is the 10-minute recipe where the CPU has bfloat16 products (configs/cifar10-cnn-fp32.toml
where it has not); bench/RESULTS_cnn.md has the measurements and levers tried.
"""

from __future__ import annotations

import numbers
from typing import Any, Sequence

import numpy as np

from chainrule import nn
from chainrule.classifiers.base import check_choice, check_int_param, check_real_param
from chainrule.classifiers.network import NeuralNetClassifier
from chainrule.classifiers._network_params import check_flag
from chainrule.data.augment import FlipTranslate, predict_tta
from chainrule.data.whitening import patch_whitening_filters
from chainrule.nn.convnet import CONV_ACTIVATIONS, NORMS, POOLS, ConvNet
from chainrule.optim.factory import make_optimizer
from chainrule.optim.groups import param_groups
from chainrule.tensor import Tensor
from chainrule.train import predict_scores
from chainrule.train.averaging import Lookahead

__all__ = ["ConvNetClassifier"]
DATA_FORMATS = {"channels_last": "NHWC", "channels_first": "NCHW"}  # data_format -> the images' layout
LOOKAHEAD_EVERY = 5
LOOKAHEAD_DECAY = 0.95 ** 5


class ConvNetClassifier(NeuralNetClassifier):
    """Conv-net classifier: [whitening conv ->] blocks of conv -> pool -> norm -> activation (-> conv -> norm ->
    activation) -> global max -> linear -> softmax.

    Parameters (architecture)
    -------------------------
    channels : output channels of each block (one block each), e.g. (64, 128, 128); each block halves H and W.
    convs_per_block : convs per block (the first is followed by the pool).
    kernel_size : the blocks' square kernel (odd; "same" padding).
    pool : "max" or "avg" (2x2, stride 2).
    norm : "batch" (``BatchNorm2d`` with its scale frozen at 1; convs without bias) or None (convs with bias).
    activation : one of ``chainrule.nn.activations.ACTIVATIONS`` ("gelu", "relu", ...).
    whiten : a frozen patch-whitening first conv of 2 C k^2 filters (k = ``whiten_kernel``, no padding), fitted on
        ``whiten_images`` training images with eigenvalue floor ``whiten_eps``.
    image_shape : one image's shape in ``data_format`` order, for flat input rows (None: X holds images).
    data_format : "channels_last" (images (N, H, W, C)) or "channels_first" (images (N, C, H, W)).

    Parameters (training; the rest are ``MLPClassifier``'s, documented there)
    ---------------------------------------------------------------------------
    augment : True (flips + translations), "flip" (flips only) or False.
    translate : the largest shift in pixels of ``augment=True``.
    alternate_flips : every image mirrored in every other epoch (True) or at random (False).
    norm_lr_scale, norm_weight_decay : the learning-rate factor and the weight decay of the norm layers' shifts.
    lookahead : Lookahead (k = 5, airbench's cubic schedule over the run).
    test_time_flip, test_time_shift : TTA over mirrors (and shifts by this many pixels; 0: none).
    """

    features = None  # the base's hand-designed features do not apply to a conv net
    hog_cell = 8

    def __init__(self, channels: Sequence[int] = (64, 128, 128), convs_per_block: int = 2, kernel_size: int = 3,
                 pool: str = "max", norm: str | None = "batch", activation: str = "gelu", whiten: bool = True,
                 whiten_kernel: int = 2, whiten_eps: float = 5e-4, whiten_images: int = 5000,
                 image_shape: Sequence[int] | None = None, data_format: str = "channels_last", optimizer: str = "sgd",
                 lr: float = 0.4, momentum: float = 0.85, nesterov: bool = True, weight_decay: float = 1.3e-3,
                 norm_lr_scale: float = 64.0, norm_weight_decay: float = 0.0, batch_size: int = 256,
                 epochs: int = 4, schedule: str = "linear", warmup_epochs: float = 1.0,
                 label_smoothing: float = 0.2, clip_grad_norm: float | None = None,
                 preprocessing: str | None = "standardize", augment: bool | str = True, translate: int = 2,
                 alternate_flips: bool = True, lookahead: bool = True, test_time_flip: bool = True,
                 test_time_shift: int = 1, matmul_precision: str = "auto", early_stopping: bool = False,
                 validation_fraction: float = 0.1, n_iter_no_change: int = 10, tol: float = 0.0,
                 time_budget: float | None = None, eval_batch_size: int = 500, random_state: Any = None,
                 verbose: bool = False):
        self.channels = channels
        self.convs_per_block = convs_per_block
        self.kernel_size = kernel_size
        self.pool = pool
        self.norm = norm
        self.activation = activation
        self.whiten = whiten
        self.whiten_kernel = whiten_kernel
        self.whiten_eps = whiten_eps
        self.whiten_images = whiten_images
        self.image_shape = image_shape
        self.data_format = data_format
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self.norm_lr_scale = norm_lr_scale
        self.norm_weight_decay = norm_weight_decay
        self.batch_size = batch_size
        self.epochs = epochs
        self.schedule = schedule
        self.warmup_epochs = warmup_epochs
        self.label_smoothing = label_smoothing
        self.clip_grad_norm = clip_grad_norm
        self.preprocessing = preprocessing
        self.augment = augment
        self.translate = translate
        self.alternate_flips = alternate_flips
        self.lookahead = lookahead
        self.test_time_flip = test_time_flip
        self.test_time_shift = test_time_shift
        self.matmul_precision = matmul_precision
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.time_budget = time_budget
        self.eval_batch_size = eval_batch_size
        self.random_state = random_state
        self.verbose = verbose

    # ---- the architecture (NeuralNetClassifier's extension points) ----------------------------------------------

    _architecture_params = ("channels", "convs_per_block", "kernel_size", "pool", "norm", "activation", "whiten",
                            "whiten_kernel", "image_shape", "data_format")

    def _validate_architecture(self) -> dict[str, Any]:
        name = type(self).__name__
        hp = {"channels": _positive_ints(self, "channels"),
              "convs_per_block": check_int_param(self, "convs_per_block", 1),
              "kernel_size": check_int_param(self, "kernel_size", 1),
              "pool": check_choice(self, "pool", POOLS), "norm": check_choice(self, "norm", NORMS),
              "activation": check_choice(self, "activation", CONV_ACTIVATIONS),
              "whiten": check_flag(self, "whiten"), "whiten_kernel": check_int_param(self, "whiten_kernel", 1),
              "whiten_eps": check_real_param(self, "whiten_eps", 0.0, strict=True),
              "whiten_images": check_int_param(self, "whiten_images", 1),
              "image_shape": None if self.image_shape is None else _positive_ints(self, "image_shape"),
              "data_format": check_choice(self, "data_format", tuple(DATA_FORMATS)),
              "translate": check_int_param(self, "translate", 0),
              "alternate_flips": check_flag(self, "alternate_flips"), "lookahead": check_flag(self, "lookahead"),
              "norm_lr_scale": check_real_param(self, "norm_lr_scale", 0.0, strict=True),
              "norm_weight_decay": check_real_param(self, "norm_weight_decay", 0.0),
              "test_time_shift": check_int_param(self, "test_time_shift", 0)}
        if hp["kernel_size"] % 2 == 0:
            raise ValueError(f"{name}: kernel_size must be odd ('same' padding), got {self.kernel_size!r}")
        if hp["image_shape"] is not None and len(hp["image_shape"]) not in (2, 3):
            raise ValueError(f"{name}: image_shape is one image's shape, (H, W, C) or (C, H, W) by data_format "
                             f"(or (H, W)), got {self.image_shape!r}")
        if self.features is not None:
            raise ValueError(f"{name} learns its own features from the pixels; features must be None")
        return hp

    def _layout(self) -> str:
        """The given images' layout, NHWC or NCHW (``data_format``)."""
        return DATA_FORMATS[check_choice(self, "data_format", tuple(DATA_FORMATS))]

    def _image_shape(self) -> tuple[int, ...] | None:
        """One image's shape in ``data_format`` order: ``image_shape`` for flat rows, else the samples' shape."""
        shape = tuple(int(s) for s in self.image_shape) if self.image_shape is not None else self.sample_shape_
        if len(shape) == 2:  # grayscale: one channel
            return (*shape, 1) if self._layout() == "NHWC" else (1, *shape)
        return shape if len(shape) == 3 else None

    def _chw(self) -> tuple[int, int, int]:
        """(C, H, W) of one image; ValueError when the samples are not images of the declared shape."""
        shape = self._image_shape()
        name = type(self).__name__
        if shape is None or int(np.prod(shape)) != int(np.prod(self.sample_shape_)):
            raise ValueError(f"{name} needs images: X (N, H, W, C) (data_format='channels_last'), (N, C, H, W) "
                             f"(data_format='channels_first') or flat rows with image_shape; got samples of shape "
                             f"{self.sample_shape_} with image_shape={self.image_shape!r}")
        return (shape[2], shape[0], shape[1]) if self._layout() == "NHWC" else tuple(shape)

    def _network_input(self, rows: Any) -> Any:
        """Rows (N, D) -> images (N, C, H, W); on a Tensor as ops (``as_module``, the exported graph)."""
        c, h, w = self._chw()
        if self._layout() == "NHWC":
            images = rows.reshape(len(rows), h, w, c).transpose(0, 3, 1, 2)
            return images if isinstance(images, Tensor) else np.ascontiguousarray(images)
        return rows.reshape(len(rows), c, h, w)

    def _build_network(self, sample_shape: tuple[int, ...], n_classes: int, random_state: int) -> ConvNet:
        hp = self._validate_architecture()
        net = ConvNet(sample_shape[0], n_classes, hp["channels"], hp["convs_per_block"], hp["kernel_size"],
                      hp["pool"], hp["norm"], hp["activation"], hp["whiten_kernel"] if hp["whiten"] else 0,
                      input_size=min(sample_shape[1:]), seed=random_state)
        source = getattr(self, "_whitening_source", None)
        if hp["whiten"] and source is not None:  # fit: the frozen filters from the training images
            net.set_whitening(patch_whitening_filters(self._network_inputs(source), hp["whiten_kernel"],
                                                      hp["whiten_eps"]))
        return net

    def _fit_input_steps(self, X: np.ndarray, hp: dict[str, Any]) -> np.ndarray:
        F = super()._fit_input_steps(X, hp)
        # the whitening's images: spread evenly over the training rows (which may be sorted by class)
        self._whitening_source = X[::max(1, len(X) // hp["whiten_images"])][:hp["whiten_images"]] \
            if hp["whiten"] else None
        return F

    def _new_network(self, seed: int) -> nn.Module:
        try:
            return super()._new_network(seed)
        finally:
            self._whitening_source = None

    def _uses_batch_statistics(self, hp: dict[str, Any]) -> bool:
        return hp["norm"] == "batch"

    def _network_meta(self) -> dict[str, Any]:
        return {"convnet": dict(self.model_.config)}

    def _network_from_meta(self, meta: dict[str, Any]) -> ConvNet:
        c = dict(meta["convnet"])
        return ConvNet(c.pop("in_channels"), c.pop("n_classes"), seed=0, **c)

    # ---- training tricks ---------------------------------------------------------------------------------------

    def _augmentation(self, hp: dict[str, Any]) -> FlipTranslate:
        translate = hp["translate"] if hp["augment"] is True else 0
        flip = "alternate" if hp["alternate_flips"] else "random"
        return FlipTranslate(translate, flip, data_format=self._layout(),
                             seed=int(np.random.SeedSequence(self._seed_int()).generate_state(1)[0]))

    def _seed_int(self) -> int:
        rs = self.random_state
        return int(rs) if isinstance(rs, numbers.Integral) and not isinstance(rs, bool) else 0

    def _build_optimizer(self, hp: dict[str, Any]) -> Any:
        groups = param_groups(self.model_, {
            "norm": {"lr": hp["lr"] * hp["norm_lr_scale"], "weight_decay": hp["norm_weight_decay"]},
            "bias": {"weight_decay": 0.0}, "weight": {"weight_decay": hp["weight_decay"]}})
        options = self._optimizer_options(hp)
        return make_optimizer(hp["optimizer"], groups, lr=hp["lr"], momentum=options["momentum"],
                              nesterov=options["nesterov"])

    def _training_callbacks(self, hp: dict[str, Any], schedule: Any, total_steps: int) -> list[Any]:
        if not hp["lookahead"]:
            return []
        progress = getattr(schedule, "progress", None)  # a time-budget run: the budget's progress

        def alpha(step: int) -> float:
            p = progress() if progress is not None else step / total_steps
            return 1.0 - LOOKAHEAD_DECAY * min(1.0, p) ** 3

        return [Lookahead(self.model_, alpha=alpha, k=LOOKAHEAD_EVERY)]

    def _chunk_scores(self, X: np.ndarray, batch: int, flip: bool) -> np.ndarray:
        """Scores averaged over the mirrored and shifted images (``chainrule.data.predict_tta``), each view made
        from the images as given and then preprocessed, as training batches are."""
        shift = check_int_param(self, "test_time_shift", 0)
        images = X.reshape(len(X), *self._image_shape())

        def scores(view: np.ndarray) -> np.ndarray:
            return predict_scores(self.model_, self._network_inputs(view.reshape(len(view), -1)), batch)

        return predict_tta(scores, images, flip=flip, shift=shift, data_format=self._layout()).astype(np.float32)

    def _prediction_module(self, pipeline: nn.Module) -> nn.Module:
        """``pipeline`` averaged over the test-time views of the images as given (``nn.TestTimeAugment``:
        ``predict_tta``'s views as ops, as ``_chunk_scores`` makes them)."""
        flip, shift = check_flag(self, "test_time_flip"), check_int_param(self, "test_time_shift", 0)
        if not (flip or shift):
            return pipeline
        return nn.TestTimeAugment(pipeline, flip, shift, data_format=self._layout(), image_shape=self._image_shape())

    # ---- per-model facts -------------------------------------------------------------------------------------------

    def weight_images(self) -> tuple[np.ndarray, bool] | None:
        """The first layer's filters (the whitening conv's, else the first block's), one column per filter in
        (kh, kw, C) order: (W (kh kw C, filters), False). Their shape is ``filter_shape()``, not the images'."""
        self._check_is_fitted()
        w = self._first_filters()
        return w.transpose(0, 2, 3, 1).reshape(len(w), -1).T, False

    def filter_shape(self) -> tuple[int, int, int]:
        """(kh, kw, C) of the first layer's filters (how to draw the columns of ``weight_images``)."""
        w = self._first_filters()
        return (w.shape[2], w.shape[3], w.shape[1])

    def _first_filters(self) -> np.ndarray:
        first = self.model_.whiten if self.model_.whiten is not None else self.model_.blocks[0][0]
        return first.weight.data  # (out, in, kh, kw)

    def activation_maps(self, X: Any) -> list[np.ndarray]:
        """The activation maps of images X after the whitening layer (if any) and after each block, in evaluation
        mode: [(N, C_i, H_i, W_i) float32]."""
        from chainrule.classifiers.base import check_X
        from chainrule.function import no_grad

        self._check_is_fitted()
        x = self._network_inputs(check_X(X, self, reset=False, keep_uint8=True))
        was_training = self.model_.training
        self.model_.eval()
        try:
            with no_grad(), self._products():
                return [m.data.copy() for m in self.model_.features(x)]
        finally:
            self.model_.train(was_training)

    def describe(self) -> str:
        widths = ",".join(map(str, _positive_ints(self, "channels")))
        return (f"conv net, channels {widths}, {self.convs_per_block} conv(s) per block, "
                f"{'whitened ' if self.whiten else ''}{self.kernel_size}x{self.kernel_size}")


def _positive_ints(est: Any, name: str) -> tuple[int, ...]:
    value = getattr(est, name)
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,)
    message = f"{type(est).__name__}: {name} must be positive ints, e.g. (64, 128, 128), got {getattr(est, name)!r}"
    try:
        value = tuple(value)
    except TypeError:
        raise ValueError(message) from None
    if not value or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1 for v in value):
        raise ValueError(message)
    return tuple(int(v) for v in value)

