"""Data augmentation for image batches, vectorised over the batch.

Every function takes images (N, H, W, C) (or (N, H, W)) and a ``numpy.random.Generator``
and returns a new array of the same shape and dtype; the input is never modified.

    aug = Augment(flip=True, crop_padding=4, brightness=0.2)
    batch = aug(images, rng)

Random numbers: each step draws its numbers from ``rng`` in a fixed order, and a step that
is off draws nothing: the flips (``rng.random(N) < p``), then the crop offsets (``dy =
rng.integers(0, 2 * padding + 1, N)``, then ``dx`` the same way), then the colour-jitter
factors (brightness, contrast, saturation, ``rng.uniform`` each). The same generator state
gives the same output, so a `DataLoader` that derives the generator from (seed, epoch,
batch) reproduces its augmented batches exactly, even after a resume; and
``Augment(flip=True, crop_padding=p)``, ``FlipCrop(p)`` and ``random_crop(random_flip(x,
rng), rng, p)`` are the same augmentation, equal output for equal generator states.

Flips and crops run on every training batch, so they share one fast implementation
(``_flip_crop``): the crops are a single gather from a sliding-window view of the padded
batch (no per-image loop, no index arrays of the batch's size), a flip before a crop is a
crop at the mirrored offset followed by a flip, and that flip reverses contiguous rows of
the gathered (N, C, H, W) windows before one transposed copy brings them back to
(N, H, W, C). bench/bench_mlp.py --augment-bench times it against the straightforward
version (a boolean-mask flip, then ``np.pad`` and a fancy-index crop). ``FlipCrop.take``,
what ``DataLoader`` calls, goes one step further for float32 images (the whitened images
``MLPClassifier`` trains on): the loader's gather and the flip + crop in one compiled pass
straight into the batch (``chainrule.backend.fused``, numba), with the same draws and output.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from chainrule.backend import fused


def _check_images(images: np.ndarray, fn: str) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim not in (3, 4):
        raise ValueError(f"{fn} expects images of shape (N, H, W, C) or (N, H, W), got "
                         f"{images.shape}")
    return images


def _check_padding(padding: int) -> int:
    if not isinstance(padding, (int, np.integer)) or padding < 0:
        raise ValueError(f"padding must be a non-negative int, got {padding!r}")
    return int(padding)


def _check_fill(fill: int | float, dtype: np.dtype) -> None:
    if dtype.kind in "iu" and not np.iinfo(dtype).min <= fill <= np.iinfo(dtype).max:
        info = np.iinfo(dtype)
        raise ValueError(f"fill must fit the images' dtype {dtype} ([{info.min}, {info.max}]), got {fill!r}")


def flip_crop_draws(n: int, rng: np.random.Generator, flip_p: float | None, padding: int
                    ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """The random numbers of a flip + crop of n images, in their order: the flips (``rng.random(n) < flip_p``; None
    without flips), then the crop offsets dy, dx in [0, 2 padding] (None without a crop)."""
    flip = rng.random(n) < flip_p if flip_p is not None else None
    if not padding:
        return flip, None, None
    return flip, rng.integers(0, 2 * padding + 1, size=n), rng.integers(0, 2 * padding + 1, size=n)


def _flip_crop(images: np.ndarray, rng: np.random.Generator, flip_p: float | None, padding: int,
               fill: int | float = 0) -> np.ndarray:
    """Flip each image left-right with probability ``flip_p`` (None: no flips, no draws), then
    pad it by ``padding`` pixels of ``fill`` and crop a random window of the original size
    (padding 0: no crop, no draws). Images (N, H, W[, C]) -> same shape, dtype, C order."""
    return _flip_crop_drawn(images, *flip_crop_draws(len(images), rng, flip_p, padding), padding, fill)


def _flip_crop_drawn(images: np.ndarray, flip: np.ndarray | None, dy: np.ndarray | None, dx: np.ndarray | None,
                     padding: int, fill: int | float = 0) -> np.ndarray:
    """``_flip_crop`` with its random numbers given (``flip_crop_draws``)."""
    n, h, w = images.shape[:3]
    if not padding:  # flips only: gather the mirrored columns of the flipped images (faster than a ::-1 copy)
        out = images.copy()
        if flip is not None:
            rows = np.flatnonzero(flip)
            out[rows] = np.take(images[rows], np.arange(w - 1, -1, -1), axis=2)
        return out
    p = padding
    if flip is not None:
        dx = np.where(flip, 2 * p - dx, dx)  # flip-then-crop at dx == crop at 2p - dx, then flip
    shape = (n, h + 2 * p, w + 2 * p) + images.shape[3:]
    padded = np.zeros(shape, images.dtype) if fill == 0 else np.full(shape, fill, images.dtype)
    padded[:, p:p + h, p:p + w] = images
    windows = sliding_window_view(padded, (h, w), axis=(1, 2))  # (N, 2p+1, 2p+1, [C,] H, W), a view
    out = windows[np.arange(n), dy, dx]                          # (N, [C,] H, W), one gather
    if flip is not None:
        rows = np.flatnonzero(flip)
        out[rows] = out[rows, ..., ::-1]
    if out.ndim == 4:
        out = out.transpose(0, 2, 3, 1)
    return np.ascontiguousarray(out)


def random_flip(images: np.ndarray, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    """Mirror each image left-right with probability ``p``: (N, H, W, ...) -> same shape."""
    images = _check_images(images, "random_flip")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability in [0, 1], got {p}")
    return _flip_crop(images, rng, p, 0)


def random_crop(images: np.ndarray, rng: np.random.Generator, padding: int = 4,
                fill: int | float = 0) -> np.ndarray:
    """Pad each image by ``padding`` pixels of ``fill`` on every side, then crop a random
    window of the original size (H, W): (N, H, W, ...) -> same shape.

    Offsets (dy, dx) are drawn uniformly from [0, 2 * padding] per image.
    """
    images = _check_images(images, "random_crop")
    padding = _check_padding(padding)
    _check_fill(fill, images.dtype)
    return _flip_crop(images, rng, None, padding, fill)


class FlipCrop:
    """Random horizontal flips (p = 0.5), then ``padding``-pixel zero-padded random crops: (N, H, W[, C]) -> same.

    ``MLPClassifier``'s training augmentation: ``Augment(flip=True, crop_padding=padding)`` without the colour
    steps, as a small object with a readable repr. ``padding=0`` gives flips only.
    """

    def __init__(self, padding: int = 4):
        self.padding = padding

    def __call__(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return _flip_crop(_check_images(images, "FlipCrop"), rng, 0.5, _check_padding(self.padding))

    def take(self, images: np.ndarray, index: Any, rng: np.random.Generator) -> np.ndarray:
        """``self(images[index], rng)``, the gather and the augmentation together (``DataLoader`` calls this):
        one pass straight into the batch (``chainrule.backend.fused``) for float32 images (N, H, W, C), the NumPy
        code otherwise; the same output and random draws either way."""
        padding = _check_padding(self.padding)
        images = np.asarray(images)
        if images.dtype == np.float32 and images.ndim == 4 and padding:
            idx = np.arange(len(images))[index] if isinstance(index, slice) else np.asarray(index)
            flip, dy, dx = flip_crop_draws(len(idx), rng, 0.5, padding)
            out = fused.gather_flip_crop(images, idx, flip, dy, dx, padding)
            if out is not None:
                return out.reshape((len(idx),) + images.shape[1:])
            return _flip_crop_drawn(images[idx], flip, dy, dx, padding)
        return self(images[index], rng)

    def __repr__(self) -> str:
        return f"FlipCrop(padding={self.padding})"


def _gray(x: np.ndarray) -> np.ndarray:
    """Luma (ITU-R 601) of float (N, H, W, 3) images, keeping a channel axis: (N, H, W, 1)."""
    return np.dot(x, np.array([0.299, 0.587, 0.114], dtype=x.dtype))[..., None]


def color_jitter(images: np.ndarray, rng: np.random.Generator, brightness: float = 0.0,
                 contrast: float = 0.0, saturation: float = 0.0) -> np.ndarray:
    """Random brightness, contrast and saturation per image, applied in that order.

    Each factor f is drawn uniformly from [1 - s, 1 + s] (s = the argument; 0 turns it off):
    brightness scales pixels by f; contrast blends with the image's mean luma,
    m + f (x - m); saturation blends with each pixel's luma, g + f (x - g) (RGB only).
    uint8 images are rounded and clipped back to [0, 255]; float images are not clipped.
    Images (N, H, W, C) -> same shape and dtype.
    """
    images = _check_images(images, "color_jitter")
    for name, s in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
        if not 0.0 <= s <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {s}")
    if saturation and (images.ndim != 4 or images.shape[-1] != 3):
        raise ValueError(f"saturation jitter needs RGB images (N, H, W, 3), got {images.shape}")
    n = len(images)
    x = images.astype(np.float32) if images.dtype.kind != "f" else images.copy()

    def factors(s: float) -> np.ndarray:
        f = rng.uniform(1.0 - s, 1.0 + s, size=n).astype(x.dtype)
        return f.reshape((n,) + (1,) * (x.ndim - 1))

    if brightness:
        x *= factors(brightness)
    if contrast:
        luma = _gray(x) if x.ndim == 4 and x.shape[-1] == 3 else x
        m = luma.mean(axis=tuple(range(1, x.ndim)), keepdims=True)
        x = m + factors(contrast) * (x - m)
    if saturation:
        g = _gray(x)
        x = g + factors(saturation) * (x - g)
    if images.dtype == np.uint8:
        return np.clip(np.rint(x), 0, 255).astype(np.uint8)
    return x.astype(images.dtype, copy=False)


@dataclass(frozen=True)
class Augment:
    """A training-time augmentation pipeline: flip, then padded crop, then colour jitter.

    Call it as ``aug(images, rng)`` (images (N, H, W, C) -> same shape and dtype). Steps whose
    argument is off (False / 0) are skipped and draw no random numbers; flip and crop run
    together in one pass (the module docstring has the order of the draws).
    """

    flip: bool = True
    crop_padding: int = 0
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0

    def __call__(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = _check_images(images, "Augment")
        if self.flip or self.crop_padding:
            out = _flip_crop(out, rng, 0.5 if self.flip else None, _check_padding(self.crop_padding))
        if self.brightness or self.contrast or self.saturation:
            out = color_jitter(out, rng, self.brightness, self.contrast, self.saturation)
        return out


_FLIP_MODES = ("alternate", "random", "none")
_PAD_MODES = ("reflect", "edge", "constant")


def _check_data_format(data_format: str, who: str) -> str:
    if data_format not in ("NHWC", "NCHW"):
        raise ValueError(f"{who}: data_format must be 'NHWC' or 'NCHW', got {data_format!r}")
    return data_format


def sample_bits(index: np.ndarray, seed: int) -> np.ndarray:
    """One fixed pseudo-random bit per sample index (splitmix64 of ``index`` and ``seed``): (n,) bool.

    The same (index, seed) always gives the same bit, whatever batch or epoch asks, with no (N,) state kept."""
    with np.errstate(over="ignore"):
        z = np.asarray(index, dtype=np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) \
            + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(63)).astype(bool)


def translate(images: np.ndarray, dy: np.ndarray, dx: np.ndarray, pixels: int, padding_mode: str = "reflect",
              data_format: str = "NHWC", flip: np.ndarray | None = None) -> np.ndarray:
    """Shift image i by (dy[i] - pixels, dx[i] - pixels) pixels (offsets in [0, 2 pixels]), filling the border by
    ``padding_mode`` (np.pad's "reflect", "edge" or "constant" zeros), then mirror the images where ``flip``:
    (N, H, W, C) or (N, C, H, W) -> same shape and dtype, a new C-ordered array. One pad of the batch and one gather
    from its sliding-window view; no per-image loop."""
    _check_data_format(data_format, "translate")
    x = images if data_format == "NCHW" else images.transpose(0, 3, 1, 2)  # (N, C, H, W) view
    n, _, h, w = x.shape
    if pixels:
        padded = np.pad(x, ((0, 0), (0, 0), (pixels, pixels), (pixels, pixels)), mode=padding_mode)
        windows = sliding_window_view(padded, (h, w), axis=(2, 3))     # (N, C, 2p+1, 2p+1, H, W), a view
        out = windows[np.arange(n), :, dy, dx]                         # (N, C, H, W), one gather
    else:
        out = np.array(x)
    if flip is not None:
        rows = np.flatnonzero(flip)
        out[rows] = out[rows, ..., ::-1]
    if data_format == "NHWC":
        out = out.transpose(0, 2, 3, 1)
    return np.ascontiguousarray(out)


class FlipTranslate:
    """Horizontal flips and translations by up to ``translate`` pixels, for image batches on the fly (airbench's).

    images (N, H, W, C) (``data_format="NHWC"``, as the data pipeline gives them) or (N, C, H, W) -> same shape.

    ``flip="alternate"``: each sample is mirrored in every other epoch: in epoch e it is mirrored iff its fixed
    random bit (``sample_bits(index, seed)``) differs from e's parity, so over two epochs every image is seen once
    each way (less redundant than random flips; Jordan, "94% on CIFAR-10 in 3.29 seconds on a single GPU", 2024).
    ``"random"``: each mirrored with probability 1/2 (drawn first from ``rng``); ``"none"``: no flips.
    Translation: offsets dy, dx drawn uniformly from [-translate, translate] (``rng.integers(0, 2 t + 1, n)``, dy
    then dx; no draws for ``translate=0``), the border filled by ``padding_mode`` ("reflect" by default).

    ``DataLoader`` calls ``take(X, index, rng, epoch=e)`` (it passes the epoch to augmentations whose
    ``needs_epoch`` is true), so the alternation follows the sample's index in X, not its place in the batch.
    Called directly, ``aug(images, rng, epoch)`` uses the positions 0..N-1 as indices.
    """

    needs_epoch = True

    def __init__(self, translate: int = 2, flip: str = "alternate", padding_mode: str = "reflect",
                 data_format: str = "NHWC", seed: int = 0):
        self.translate, self.flip, self.padding_mode = translate, flip, padding_mode
        self.data_format, self.seed = data_format, seed

    def _check(self) -> None:
        _check_padding(self.translate)
        if self.flip not in _FLIP_MODES:
            raise ValueError(f"FlipTranslate: flip must be one of {_FLIP_MODES}, got {self.flip!r}")
        if self.padding_mode not in _PAD_MODES:
            raise ValueError(f"FlipTranslate: padding_mode must be one of {_PAD_MODES}, got {self.padding_mode!r}")
        _check_data_format(self.data_format, "FlipTranslate")
        if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"FlipTranslate: seed must be a non-negative int, got {self.seed!r}")

    def draws(self, index: np.ndarray, rng: np.random.Generator, epoch: int
              ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        """(flip, dy, dx) for the samples ``index`` in ``epoch``, in the order described above."""
        n = len(index)
        flip = None
        if self.flip == "random":
            flip = rng.random(n) < 0.5
        elif self.flip == "alternate":
            flip = sample_bits(index, self.seed) != bool(epoch % 2)
        if not self.translate:
            return flip, None, None
        t = 2 * int(self.translate) + 1
        return flip, rng.integers(0, t, size=n), rng.integers(0, t, size=n)

    def __call__(self, images: np.ndarray, rng: np.random.Generator, epoch: int = 0) -> np.ndarray:
        return self.take(images, slice(None), rng, epoch=epoch)

    def take(self, images: np.ndarray, index: Any, rng: np.random.Generator, epoch: int = 0) -> np.ndarray:
        """``self(images[index], rng, epoch)`` with the alternation keyed by the samples' indices in ``images``."""
        self._check()
        images = np.asarray(images)
        if images.ndim != 4:
            raise ValueError(f"FlipTranslate expects images (N, H, W, C) or (N, C, H, W), got shape {images.shape}")
        idx = np.arange(len(images))[index] if isinstance(index, slice) else np.asarray(index)
        flip, dy, dx = self.draws(idx, rng, epoch)
        return translate(images[idx], dy, dx, int(self.translate), self.padding_mode, self.data_format, flip)

    def __repr__(self) -> str:
        return (f"FlipTranslate(translate={self.translate}, flip={self.flip!r}, padding_mode={self.padding_mode!r}, "
                f"data_format={self.data_format!r}, seed={self.seed})")


def flip_shift_views(images: np.ndarray, flip: bool = True, shift: int = 1, padding_mode: str = "reflect",
                     data_format: str = "NHWC") -> list[tuple[float, np.ndarray]]:
    """Test-time augmentation views of a batch and their weights (summing to 1), airbench's "mirror + translate".

    The batch itself (weight 1/2 with ``shift``, else 1) and, with ``shift`` > 0, the batch shifted by ``shift``
    pixels up-left and down-right (weight 1/4 each; ``padding_mode`` fills the border); with ``flip``, each of
    those and its mirror image share its weight. Images (N, H, W, C) or (N, C, H, W) (``data_format``).
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"flip_shift_views expects images (N, H, W, C) or (N, C, H, W), got shape {images.shape}")
    shift = _check_padding(shift)
    n = len(images)
    views = [(1.0, images)]
    if shift:
        views = [(0.5, images)] + [(0.25, translate(images, np.full(n, d), np.full(n, d), shift, padding_mode,
                                                   data_format)) for d in (0, 2 * shift)]
    if flip:
        axis = 3 if data_format == "NCHW" else 2
        views = [(w / 2, v) for w, x in views for v in (x, np.flip(x, axis=axis))]
    return views


def predict_tta(score_fn: Any, images: np.ndarray, flip: bool = True, shift: int = 1, padding_mode: str = "reflect",
                data_format: str = "NHWC") -> np.ndarray:
    """``score_fn`` (images -> (N, K) scores) averaged over ``flip_shift_views``: the weighted mean of the scores."""
    total = None
    for weight, view in flip_shift_views(images, flip, shift, padding_mode, data_format):
        scores = weight * np.asarray(score_fn(view), dtype=np.float64)
        total = scores if total is None else total + scores
    return total
