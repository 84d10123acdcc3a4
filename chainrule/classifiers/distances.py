"""Pairwise distances for k-nearest neighbours: the lecture's reference versions and the fast chunked engine.

References (CS231n assignment 1, float64, tested equal to each other and to the engine)::

    distances_two_loops(X, X_train)   # dists[i, j] computed one pair at a time
    distances_one_loop(X, X_train)    # one test row against all training rows, broadcast
    distances_no_loops(X, X_train)    # L2: ||a||^2 + ||b||^2 - 2 a.b with one matrix multiply

each returning dists (N, M) for test rows X (N, D) and training rows X_train (M, D), ``metric="l2"`` (Euclidean)
or ``"l1"`` (Manhattan).

The engine (``NeighborIndex``) answers "the k nearest training rows of each test row" without ever holding the
whole (N, M) matrix: test rows go through in chunks, and each chunk's (chunk, M) block of distances is reduced to
its k smallest entries at once, so memory is O(chunk * M) whatever N is.

- L2: ``||a - b||^2 = ||a||^2 + ||b||^2 - 2 a.b``. Ranking a test row's neighbours needs only
  ``||b||^2 - 2 a.b`` (``||a||^2`` is the same along the row), and ``||b||^2`` is added by the selection as it
  reads the block (no extra pass). The cross term: for uint8 rows on a CPU with AVX-512 VNNI (and numba), exactly
  in int32 by ``_kernels.l2_u8`` (~1.9x faster than the GEMM on CIFAR-10); otherwise one float32 GEMM per chunk,
  the chunk scaled by -2 first. GEMM precision: the training set is centred first (distances do not change). For
  uint8 images the centre is rounded to integers, so every product and nearly every partial sum is an integer
  below 2^24, which float32 holds exactly: the ranking is exact unless a dot product exceeds 2^24 (measured on
  CIFAR-10 with bench/bench_knn.py: identical top-20 lists). For float inputs see the refinement below.
- L1: exact integer arithmetic for uint8 (the compiled psadbw kernel, see ``_kernels``), float32 otherwise.
- Float inputs: the k chosen neighbours' distances are recomputed in float64 (k * D work per row) and the k
  re-ordered by them, so returned distances are accurate (a point's distance to itself is 0, not ~1e-3).
- Range: float training rows whose largest magnitude (after centring, for L2) is outside [2^-40, 2^40] are
  multiplied by the power of two that brings it into [0.5, 1) before the float32 arithmetic, and queries get the
  same shift and factor. Powers of two change no rounding, so the ranking is that of the data at an ordinary
  magnitude -- but products can no longer overflow (digits x 1e30: squares of 1e31 are inf in float32, and every
  test row ranked the training rows alike: 10% accuracy) or underflow to zero (digits x 1e-30). A query row so far
  out that its products could still overflow float32 (|a| |b| D >= 2^100) is scaled by a power of two of its own
  and its scores are kept in float64 (L1: summed in float64). The float64 refinement below uses the original rows.
- Selection: the k smallest per row in ascending order, ties broken by the smaller training index, so results do
  not depend on the chunking. Compiled one-pass selection with numba; ``np.argpartition`` plus a tie fix-up
  without it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.classifiers import _kernels
from chainrule.progress import progress

METRICS = ("l2", "l1")
AUTO_BLOCK_BYTES = 128 * 2**20  # chunk_size="auto": a (chunk, M) float32 block of about 128 MiB
_FLOAT32_SAFE = 2.0**100  # |a| * |b| * D below this: float32 products and sums cannot overflow (max ~2^128)
_RANGE = (2.0**-40, 2.0**40)  # training magnitudes used as they are; outside, rows are scaled by a power of two
_PREP_ROWS = 4096  # rows per float64 pass when scaling


def _check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {list(METRICS)}, got {metric!r}")
    return metric


def _pow2_below(amax: float) -> float:
    """The power of two s with amax * s in [0.5, 1) (1.0 for amax 0): scaling by it changes no rounding."""
    return 1.0 if amax == 0 or not np.isfinite(amax) else float(np.ldexp(1.0, -np.frexp(amax)[1]))


def _max_abs_dev(X: np.ndarray, center: np.ndarray | float) -> float:
    """max |X - center| over all entries, from the columns' extremes (one pass in X's own dtype)."""
    hi = np.max(X, axis=0).astype(np.float64) - center
    lo = center - np.min(X, axis=0).astype(np.float64)
    return float(max(np.max(hi), np.max(lo), 0.0))


def _row_abs_max(X: np.ndarray) -> np.ndarray:
    """max |x| of each row (N,), float64, from the rows' extremes."""
    return np.maximum(np.max(X, axis=1).astype(np.float64), -np.min(X, axis=1).astype(np.float64))


def _shift_scale(X: np.ndarray, center: np.ndarray | float, scale: float,
                 row_scale: np.ndarray | None = None) -> np.ndarray:
    """float32 (X - center) * scale (* row_scale[:, None]): in float32 when that cannot overflow (scale 1, no
    row_scale), else computed in float64 row chunks."""
    if scale == 1.0 and row_scale is None:
        out = X.astype(np.float32)
        out -= np.asarray(center, dtype=np.float32)
        return out
    out = np.empty(X.shape, dtype=np.float32)
    for i in range(0, len(X), _PREP_ROWS):
        block = (X[i:i + _PREP_ROWS].astype(np.float64) - center) * scale
        if row_scale is not None:
            block *= row_scale[i:i + _PREP_ROWS, None]
        out[i:i + _PREP_ROWS] = block
    return out


# ---- the lecture's reference implementations --------------------------------------------------------------------


def distances_two_loops(X: np.ndarray, X_train: np.ndarray, metric: str = "l2") -> np.ndarray:
    """dists (N, M): a double loop over test rows i and training rows j (slow; the definition)."""
    _check_metric(metric)
    X = np.asarray(X, dtype=np.float64)
    X_train = np.asarray(X_train, dtype=np.float64)
    dists = np.zeros((X.shape[0], X_train.shape[0]))
    for i in range(X.shape[0]):
        for j in range(X_train.shape[0]):
            diff = X[i] - X_train[j]
            dists[i, j] = np.sqrt(np.sum(diff * diff)) if metric == "l2" else np.sum(np.abs(diff))
    return dists


def distances_one_loop(X: np.ndarray, X_train: np.ndarray, metric: str = "l2") -> np.ndarray:
    """dists (N, M): one loop over test rows, each against all training rows by broadcasting."""
    _check_metric(metric)
    X = np.asarray(X, dtype=np.float64)
    X_train = np.asarray(X_train, dtype=np.float64)
    dists = np.zeros((X.shape[0], X_train.shape[0]))
    for i in range(X.shape[0]):
        diff = X_train - X[i]
        dists[i] = np.sqrt(np.sum(diff * diff, axis=1)) if metric == "l2" else np.sum(np.abs(diff), axis=1)
    return dists


def distances_no_loops(X: np.ndarray, X_train: np.ndarray, metric: str = "l2") -> np.ndarray:
    """dists (N, M) with no Python loop: L2 by the expansion with one matrix multiply; L1 by (N, M, D) broadcasting
    (memory N*M*D: a reference for small inputs only)."""
    _check_metric(metric)
    X = np.asarray(X, dtype=np.float64)
    X_train = np.asarray(X_train, dtype=np.float64)
    if metric == "l1":
        return np.abs(X[:, None, :] - X_train[None, :, :]).sum(axis=2)
    sq = np.sum(X * X, axis=1)[:, None] + np.sum(X_train * X_train, axis=1)[None, :] - 2.0 * (X @ X_train.T)
    return np.sqrt(np.maximum(sq, 0.0))


# ---- selection ---------------------------------------------------------------------------------------------------


def smallest_k(D: np.ndarray, k: int, use_numba: bool | None = None,
               col: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(vals, idx), each (n, k): the k smallest entries of each row of D + col (n, m), ascending, ties by smaller
    index. ``col`` (m,) is an optional per-column offset (the compiled path adds it on the fly; NumPy adds it to D
    in place)."""
    use_numba = _kernels.AVAILABLE if use_numba is None else use_numba
    if use_numba:
        return _kernels.topk(D, k, col)
    if col is not None:
        D += col
    n, m = D.shape
    if k == 1:
        idx = np.argmin(D, axis=1)[:, None]  # argmin returns the first minimum: the smallest index
        return np.take_along_axis(D, idx, axis=1), idx.astype(np.int64)
    idx = np.argpartition(D, k - 1, axis=1)[:, :k] if k < m else np.broadcast_to(np.arange(m), (n, m)).copy()
    vals = np.take_along_axis(D, idx, axis=1)
    # argpartition picks arbitrarily among entries equal to the k-th smallest; redo those (rare) rows stably.
    kth = vals.max(axis=1)
    ambiguous = np.flatnonzero(np.count_nonzero(D <= kth[:, None], axis=1) > k)
    for r in ambiguous:
        idx[r] = np.argsort(D[r], kind="stable")[:k]
    vals[ambiguous] = np.take_along_axis(D[ambiguous], idx[ambiguous], axis=1)
    order = np.lexsort((idx, vals), axis=-1)
    return np.take_along_axis(vals, order, axis=1), np.take_along_axis(idx, order, axis=1).astype(np.int64)


# ---- L1 blocks ---------------------------------------------------------------------------------------------------


def _pad_u8(X: np.ndarray) -> np.ndarray:
    """uint8 rows padded with zero bytes to a multiple of the kernel's width (zeros add nothing to L1)."""
    d = X.shape[1]
    padded = -(-d // _kernels.PAD) * _kernels.PAD
    if padded == d:
        return np.ascontiguousarray(X)
    out = np.zeros((X.shape[0], padded), dtype=np.uint8)
    out[:, :d] = X
    return out


def _l1_block_numpy(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """L1 distances (n, m) by broadcasting over tiles that keep the (rows, cols, D) temporary near 16 MiB (int32
    for uint8 rows, float64 when A is float64, else float32)."""
    n, d = A.shape
    m = B.shape[0]
    out = np.empty((n, m), dtype=np.int32 if A.dtype == np.uint8 else np.result_type(A.dtype, np.float32))
    cols = max(1, min(m, 2**22 // d))
    rows = max(1, min(n, 2**22 // (cols * d)))
    for i in range(0, n, rows):
        a = A[i:i + rows, None, :]
        for j in range(0, m, cols):
            b = B[None, j:j + cols, :]
            if A.dtype == np.uint8:  # |a - b| without leaving uint8: max - min never wraps
                diff = np.maximum(a, b)
                diff -= np.minimum(a, b)
                out[i:i + rows, j:j + cols] = diff.sum(axis=2, dtype=np.int32)
            else:
                out[i:i + rows, j:j + cols] = np.abs(a - b).sum(axis=2)
    return out


# ---- the engine -------------------------------------------------------------------------------------------------


class NeighborIndex:
    """k-nearest-neighbour queries against a fixed training set (M, D), in bounded memory.

    Parameters
    ----------
    X_train : (M, D) uint8 or float32 training rows (uint8 enables the exact integer paths).
    metric : "l2" or "l1".
    use_numba : use the compiled kernels (default: when numba is installed).
    vnni : allow the exact int8 L2 kernel for uint8 rows (when the CPU has AVX-512 VNNI).

    ``query(X, k, chunk_size)`` returns (dists (N, k) float64, idx (N, k) int64), nearest first.
    """

    def __init__(self, X_train: np.ndarray, metric: str = "l2", use_numba: bool | None = None, vnni: bool = True):
        self.metric = _check_metric(metric)
        self.use_numba = _kernels.AVAILABLE if use_numba is None else bool(use_numba)
        if self.use_numba and not _kernels.AVAILABLE:
            raise RuntimeError("use_numba=True needs numba: pip install numba")
        self.n_train, self.n_features = X_train.shape
        self.is_u8 = X_train.dtype == np.uint8
        self.source = X_train  # the original rows (a reference), for refining float distances
        self.vnni = (vnni and metric == "l2" and self.is_u8 and self.use_numba and _kernels.vnni_available()
                     and -(-self.n_features // _kernels.PAD) * _kernels.PAD * 130305 < 2**31)  # no int32 overflow
        if self.vnni:  # exact integer L2: store b - 128 as int8 bytes, and ||b||^2
            shifted = (X_train.astype(np.int16) - 128).astype(np.int8).view(np.uint8)
            self.train = _pad_u8(shifted)  # zero padding: int8 0 adds nothing to the dot products
            self.train_sq = np.einsum("ij,ij->i", X_train, X_train, dtype=np.int64).astype(np.int32)
            return
        # Queries are mapped like the training rows: (x - center) * scale (see "Range" in the module docstring).
        if metric == "l2":
            mean = X_train.mean(axis=0, dtype=np.float64)
            # Integer centre for integer data keeps the float32 arithmetic exact (see the module docstring).
            self.center = np.round(mean) if self.is_u8 else mean
        else:
            self.center = 0.0
        amax = 255.0 if self.is_u8 else _max_abs_dev(X_train, self.center)
        self.scale = 1.0 if _RANGE[0] <= amax <= _RANGE[1] else _pow2_below(amax)
        self.train_absmax = amax * self.scale
        self.center_absmax = float(np.max(np.abs(self.center)))
        if metric == "l2":
            self.train = _shift_scale(X_train, self.center, self.scale)
            self.train_sq = np.einsum("ij,ij->i", self.train, self.train, dtype=np.float64).astype(np.float32)
        elif self.is_u8:
            self.train = _pad_u8(X_train) if self.use_numba else X_train
        elif self.scale == 1.0:
            self.train = np.ascontiguousarray(X_train, dtype=np.float32)
        else:
            self.train = _shift_scale(X_train, 0.0, self.scale)

    def chunk_rows(self, chunk_size: Any) -> int:
        """Test rows per block: ``chunk_size`` rows, or ~AUTO_BLOCK_BYTES of float32 distances for "auto"."""
        if chunk_size == "auto":
            return max(1, AUTO_BLOCK_BYTES // (4 * self.n_train))
        return int(chunk_size)

    def _queries(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(A, t): query rows mapped like the training rows, float32 (x - center) * scale * t, where t (n,) holds
        1 for every row unless a row is so large that float32 products with the training rows could overflow
        (then that row's t is the power of two that brings its largest magnitude into [0.5, 1)). t is None when
        all are 1."""
        amax = (_row_abs_max(X) + self.center_absmax) * self.scale  # >= max |x - center| * scale
        wide = amax * self.train_absmax * self.n_features >= _FLOAT32_SAFE
        if not wide.any():
            return _shift_scale(X, self.center, self.scale), None
        t = np.where(wide, [_pow2_below(a) for a in amax], 1.0)
        return _shift_scale(X, self.center, self.scale, t), t

    def _block(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(scores (n, M), per-column offset, per-row offset): neighbours rank by score + column offset; for L2
        the squared distance is (score + column offset + row offset) / scale^2 (scale is 1 for uint8 rows)."""
        if self.vnni and X.dtype == np.uint8:
            A = _pad_u8(X)
            out = np.empty((X.shape[0], self.n_train), dtype=np.int32)
            _kernels.l2_u8(A, self.train, out)  # -2 a.(b - 128)
            # ||a - b||^2 = ||a||^2 + ||b||^2 - 2 a.(b - 128) - 256 sum(a)
            offset = (np.einsum("ij,ij->i", X, X, dtype=np.int64) - 256 * X.sum(axis=1, dtype=np.int64))
            return out, self.train_sq, offset.astype(np.float64)
        if self.is_u8 and X.dtype == np.uint8 and self.metric == "l1":
            if self.use_numba:
                out = np.empty((X.shape[0], self.n_train), dtype=np.int32)
                return _kernels.l1_u8(_pad_u8(X), self.train, out), None, None
            return _l1_block_numpy(X, self.train), None, None
        A, t = self._queries(X)
        if self.metric == "l2":
            offset = np.einsum("ij,ij->i", A, A, dtype=np.float64)
            A *= -2.0
            scores = A @ self.train.T  # one GEMM: -2 a.b; ||b||^2 is added while selecting
            if t is not None:  # far-out rows: their scores, scaled back, only fit in float64
                scores = scores.astype(np.float64) / t[:, None]
                offset /= t * t
            return scores, self.train_sq, offset
        B = self.train.astype(np.float32) if self.is_u8 else self.train
        if t is not None:  # far-out rows: summed in float64 (B[:, :D]: uint8 rows may be padded for the kernel)
            return _l1_block_numpy(A.astype(np.float64) / t[:, None], B[:, :self.n_features]), None, None
        if self.use_numba:
            return _kernels.l1_f32(A, B, np.empty((A.shape[0], self.n_train), dtype=np.float32)), None, None
        return _l1_block_numpy(A, B), None, None

    def query(self, X: np.ndarray, k: int, chunk_size: Any = "auto") -> tuple[np.ndarray, np.ndarray]:
        """(dists (N, k) float64, idx (N, k) int64): the k nearest training rows of each row of X (N, D)."""
        n = X.shape[0]
        dists = np.empty((n, k), dtype=np.float64)
        idx = np.empty((n, k), dtype=np.int64)
        for start, stop, vals, nn in self.query_chunks(X, k, chunk_size):
            dists[start:stop] = vals
            idx[start:stop] = nn
        return dists, idx

    def query_chunks(self, X: np.ndarray, k: int, chunk_size: Any = "auto"):
        """Yield (start, stop, dists (n, k), idx (n, k)) for each chunk of rows X[start:stop], in order: callers
        that reduce each chunk at once (votes) hold O(chunk * M) memory whatever N and k are."""
        if self.is_u8 and X.dtype != np.uint8:  # integer-valued queries in [0, 255] take the exact uint8 paths
            Xr = np.rint(X)
            if np.array_equal(Xr, X) and Xr.min() >= 0 and Xr.max() <= 255:
                X = Xr.astype(np.uint8)
        if self.vnni and X.dtype != np.uint8:  # other float queries cannot use the int8 store: GEMM path
            yield from NeighborIndex(self.source, self.metric, self.use_numba, vnni=False).query_chunks(
                X, k, chunk_size)
            return
        n = X.shape[0]
        rows = self.chunk_rows(chunk_size)
        with progress(n, f"kNN ({self.metric.upper()}, {self.n_train:,} training rows)", "queries") as bar:
            for start in range(0, n, rows):
                stop = min(start + rows, n)
                scores, col, offset = self._block(X[start:stop])
                vals, nn = smallest_k(scores, k, self.use_numba, col)
                del scores
                if not self.is_u8:  # float inputs: float64 distances for the k chosen, re-ordered by them
                    vals = self._refine(X[start:stop], nn)
                    order = np.lexsort((nn, vals), axis=-1)
                    vals, nn = np.take_along_axis(vals, order, axis=1), np.take_along_axis(nn, order, axis=1)
                else:
                    vals = vals.astype(np.float64)
                    if offset is not None:  # L2: squared distance = score + ||a||^2, then the root
                        vals += offset[:, None]
                        np.sqrt(np.maximum(vals, 0.0, out=vals), out=vals)
                yield start, stop, vals, nn
                bar.update(stop - start)

    def _refine(self, X: np.ndarray, nn: np.ndarray) -> np.ndarray:
        """float64 distances (n, k) from the rows X (n, D) to their chosen neighbours nn (n, k).

        float32 scores rank neighbours well but lose the small distances to cancellation (a point's distance to
        itself comes out ~1e-3, not 0); k * D operations per row put the float64 accuracy back.
        """
        n, k = nn.shape
        out = np.empty((n, k), dtype=np.float64)
        rows = max(1, 2**22 // (k * self.n_features))  # a (rows, k, D) float64 temporary of ~32 MiB
        for s in range(0, n, rows):
            diff = X[s:s + rows, None, :].astype(np.float64) - self.source[nn[s:s + rows]]
            if self.metric == "l2":
                out[s:s + rows] = np.sqrt(np.einsum("rkd,rkd->rk", diff, diff))
            else:
                out[s:s + rows] = np.abs(diff).sum(axis=2)
        return out
