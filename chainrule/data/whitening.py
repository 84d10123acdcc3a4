"""ZCA whitening (CS231n lecture 6's "PCA and whitening"): decorrelate the features, keep them image-like.

    zca = ZCAWhiten(eps=1.0).fit(X_train)     # X: (N, H, W, C) images or (N, D) features
    Xw = zca.transform(X_val)                 # same shape as X, float32

With the training rows centred (mean_) and their covariance Sigma = U diag(lambda) U^T (D x D), the transform is

    x -> (x - mean_) W,    W = U diag(1 / sqrt(lambda + eps * mean(lambda))) U^T

PCA whitening would stop at ``(x - mean_) U diag(...)`` (rotated into the eigenbasis); multiplying back by U^T
(the "zero-phase" in ZCA) keeps every output feature at its pixel's position, so whitened images still look like
images (edges) and can still be flipped and cropped. ``eps`` damps the small-variance directions (mostly pixel
noise) instead of blowing them up; it is relative to the average eigenvalue ``mean(lambda)`` (the average
per-feature variance), so uint8 pixels and pixels / 255 whiten to the same result.

Cost: a D x D covariance (one GEMM over the training set), its eigendecomposition, and one (N, D) x (D, D) GEMM
per transform: for CIFAR-10 (D = 3,072, 45,000 images) 10-14 s on 2 cores (fit + transform), and a 38 MB
float32 matrix W.
"""

from __future__ import annotations

import numpy as np

from chainrule.data.preprocessing import _Step

_ROWS = 4096  # rows per GEMM block in fit and transform: bounds the float32 temporaries
_PATCHES = 1 << 18  # patches per block in patch_whitening_filters


class ZCAWhiten(_Step):
    """ZCA whitening of (N, ...) samples, flattened to D features: (x - mean_) @ components_, reshaped back.

    Learned: ``mean_`` (D,) and ``components_`` (D, D) float32 (the symmetric whitening matrix W). Needs N > 1.
    """

    _learned = ("mean_", "components_")

    def __init__(self, eps: float = 1.0) -> None:
        self.eps = eps
        self.mean_: np.ndarray | None = None
        self.components_: np.ndarray | None = None

    def fit(self, X: np.ndarray) -> "ZCAWhiten":
        X = np.asarray(X)
        if X.ndim < 2 or len(X) < 2:
            raise ValueError(f"ZCAWhiten.fit expects at least 2 samples (N, ...), got shape {X.shape}")
        if not np.isfinite(self.eps) or self.eps <= 0:
            raise ValueError(f"ZCAWhiten: eps must be a finite number > 0, got {self.eps!r}")
        rows = X.reshape(len(X), -1)
        n, d = rows.shape
        mean = np.zeros(d, dtype=np.float64)
        amax = 0.0
        for i in range(0, n, _ROWS):
            mean += np.sum(rows[i:i + _ROWS], axis=0, dtype=np.float64)
            amax = max(amax, float(np.max(np.abs(rows[i:i + _ROWS]))))
        mean /= n
        # Data far from magnitude 1 (x ~ 1e30: float32 squares overflow; x ~ 1e-30: they underflow to 0) is whitened
        # as s * (x - mean), s the power of two with |s (x - mean)| < 1 (it changes no rounding): its covariance
        # has eigenvalues s^2 lambda and, eps being relative, whitening matrix W / s; so W = s * that.
        s = 1.0 if amax == 0 or 2.0**-30 <= amax <= 2.0**30 else float(np.ldexp(1.0, -np.frexp(2 * amax)[1]))
        mean32 = mean.astype(np.float32)
        cov = np.zeros((d, d), dtype=np.float64)
        for i in range(0, n, _ROWS):  # centred blocks in float32 (one GEMM each), summed in float64
            if s == 1.0:
                block = rows[i:i + _ROWS].astype(np.float32) - mean32
            else:
                block = ((rows[i:i + _ROWS].astype(np.float64) - mean) * s).astype(np.float32)
            cov += block.T @ block
        cov /= n
        lam, U = np.linalg.eigh(cov)
        lam = np.maximum(lam, 0.0)  # rounding can leave tiny negative eigenvalues
        floor = self.eps * float(np.mean(lam))
        if floor == 0:
            raise ValueError("ZCAWhiten.fit: every feature is constant in X; there is nothing to whiten")
        self.mean_ = mean32
        self.components_ = ((U * (s / np.sqrt(lam + floor))) @ U.T).astype(np.float32)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        self._check_fitted()
        X = np.asarray(X)
        d = self.mean_.shape[0]
        if X.ndim < 2 or int(np.prod(X.shape[1:])) != d:
            raise ValueError(f"ZCAWhiten was fitted on samples of {d} features, got shape {X.shape}")
        rows = X.reshape(len(X), d)
        out = np.empty((len(X), d), dtype=np.float32)
        for i in range(0, len(X), _ROWS):
            np.matmul(rows[i:i + _ROWS].astype(np.float32) - self.mean_, self.components_, out=out[i:i + _ROWS])
        return out.reshape(X.shape)

    def __repr__(self) -> str:
        return f"ZCAWhiten(eps={self.eps})"


def _nchw(images: np.ndarray, data_format: str, who: str) -> np.ndarray:
    """(N, C, H, W) view of images given in ``data_format`` ("NCHW" or "NHWC")."""
    images = np.asarray(images)
    if data_format not in ("NCHW", "NHWC"):
        raise ValueError(f"{who}: data_format must be 'NCHW' or 'NHWC', got {data_format!r}")
    if images.ndim != 4:
        raise ValueError(f"{who} expects images (N, C, H, W) or (N, H, W, C) (data_format), got shape {images.shape}")
    return images if data_format == "NCHW" else images.transpose(0, 3, 1, 2)


def patch_whitening_filters(images: np.ndarray, kernel_size: int = 2, eps: float = 5e-4,
                            data_format: str = "NCHW", both_signs: bool = True) -> np.ndarray:
    """Filters of a conv that whitens every ``kernel_size`` x ``kernel_size`` patch (airbench's frozen first layer).

    images (N, C, H, W) (or (N, H, W, C) with ``data_format="NHWC"``), usually a few thousand normalised training
    images -> weights (2 C k k, C, k, k) float32 for ``nn.Conv2d(C, 2 C k k, k)`` (PyTorch's layout), sorted by
    decreasing variance; ``both_signs=False`` gives the C k k filters without their negatives.

    With every patch as a row p (D = C k k features, not centred: normalised images are near mean 0), the patch
    covariance Sigma = E[p p^T] = U diag(lambda) U^T; filter i is U[:, i] / sqrt(lambda_i + eps), so the conv's
    outputs are the patches' coordinates in the eigenbasis with unit variance (PCA whitening of patches). The
    negated copies let a following GELU/ReLU pass both signs of each coordinate. ``eps`` (absolute, in the images'
    units squared) damps the near-zero-variance directions. Cost: one (D x D) covariance over N (H-k+1)(W-k+1)
    patches, accumulated in float64 over chunks of images (memory bounded by the chunk, not by N).
    """
    x = _nchw(images, data_format, "patch_whitening_filters")
    if not isinstance(kernel_size, (int, np.integer)) or not 1 <= kernel_size <= min(x.shape[2:]):
        raise ValueError(f"patch_whitening_filters: kernel_size must be an int in [1, min(H, W) = "
                         f"{min(x.shape[2:])}], got {kernel_size!r}")
    if not np.isfinite(eps) or eps <= 0:
        raise ValueError(f"patch_whitening_filters: eps must be a finite number > 0, got {eps!r}")
    if len(x) < 1:
        raise ValueError("patch_whitening_filters needs at least one image, got N = 0")
    n, c, k = len(x), x.shape[1], int(kernel_size)
    d = c * k * k
    cov = np.zeros((d, d), dtype=np.float64)
    count = 0
    chunk = max(1, _PATCHES // ((x.shape[2] - k + 1) * (x.shape[3] - k + 1)))  # images per block
    for i in range(0, n, chunk):
        windows = np.lib.stride_tricks.sliding_window_view(x[i:i + chunk].astype(np.float32), (k, k), axis=(2, 3))
        patches = windows.transpose(0, 2, 3, 1, 4, 5).reshape(-1, d)  # (n (H-k+1) (W-k+1), C k k)
        cov += (patches.T @ patches).astype(np.float64)
        count += len(patches)
    cov /= count
    lam, U = np.linalg.eigh(cov)
    lam, U = np.maximum(lam[::-1], 0.0), U[:, ::-1]  # decreasing variance
    filters = (U.T / np.sqrt(lam + eps)[:, None]).reshape(d, c, k, k)
    if both_signs:
        filters = np.concatenate([filters, -filters])
    return filters.astype(np.float32)
