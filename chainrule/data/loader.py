"""Minibatches of NumPy arrays, reproducible per (seed, epoch) and resumable mid-epoch.

    loader = DataLoader(X_train, y_train, batch_size=128, seed=0,
                        augment=Augment(flip=True, crop_padding=4), transform=prep)
    for epoch in range(epochs):
        for xb, yb in loader:            # xb float32 (B, ...), yb int64 (B,)
            ...
            ckpt["loader"] = loader.state_dict()   # resume continues with the next batch

The order of epoch e is a permutation drawn from a generator seeded with (seed, e) only, so
it does not depend on how many batches were drawn before; the augmentation generator of batch
b of epoch e is seeded with (seed, e, b). A loader restored with `load_state_dict` therefore
yields exactly the batches the original run would have yielded next.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np

# Stream identifiers mixed into the SeedSequence so order and augmentation never share draws.
_ORDER_STREAM = 0
_AUGMENT_STREAM = 1


def _generator(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


class DataLoader:
    """Iterate over (X, y) in minibatches: X float32 (B, ...), y int64 (B,).

    Args:
        X: (N, ...) inputs, any numeric dtype (uint8 images are gathered as uint8, augmented,
            transformed, then cast to float32).
        y: (N,) integer labels.
        batch_size: samples per batch.
        shuffle: a new permutation every epoch, derived from (seed, epoch). Without it batches
            are contiguous slices in order (views when X is already float32).
        drop_last: drop the last, smaller batch of an epoch.
        seed: int seed; None draws one from the OS (kept in ``seed`` and in state_dict).
        transform: deterministic ``f(X_batch) -> X_batch`` (e.g. a fitted preprocessing step).
        augment: random ``f(X_batch, rng) -> X_batch`` applied before ``transform`` (e.g.
            `Augment`); its generator is seeded with (seed, epoch, batch index). An augmentation
            with a ``take(X, indices, rng)`` method (``FlipCrop``) is asked for
            ``f(X[indices], rng)`` through it instead, so that it can gather and augment in one
            pass; one whose ``needs_epoch`` is true also gets ``epoch=e`` (``FlipTranslate``'s
            alternating flips).
        replacement: sample each batch with replacement, CS231n's
            ``np.random.choice(N, batch_size)``; an epoch is then max(N // batch_size, 1)
            batches.

    ``len(loader)`` is the number of batches per epoch. Iterating yields the rest of the current
    epoch and then moves to the next one; breaking out of the loop keeps the position, so the
    next iteration continues where it stopped.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, batch_size: int, *, shuffle: bool = True,
                 drop_last: bool = False, seed: int | None = 0,
                 transform: Callable[[np.ndarray], np.ndarray] | None = None,
                 augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
                 replacement: bool = False) -> None:
        X, y = np.asarray(X), np.asarray(y)
        if X.ndim < 1 or len(X) == 0:
            raise ValueError(f"X must have at least one sample, got shape {X.shape}")
        if y.ndim != 1 or len(y) != len(X) or y.dtype.kind not in "iu":
            raise ValueError(f"y must be 1-D integer labels with one per sample ({len(X)}), got "
                             f"{y.dtype}{list(y.shape)}")
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if replacement and not shuffle:
            raise ValueError("replacement=True samples batches at random; it cannot be combined "
                             "with shuffle=False")
        if drop_last and not replacement and batch_size > len(X):
            raise ValueError(f"drop_last=True with batch_size={batch_size} > N={len(X)} would "
                             "yield no batches")
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (1 << 63))
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
        self.X, self.y = X, y
        self.batch_size = int(batch_size)
        self.shuffle, self.drop_last, self.replacement = shuffle, drop_last, replacement
        self.seed = int(seed)
        self.transform, self.augment = transform, augment
        self.epoch = 0      # epoch the next batch comes from
        self.position = 0   # batches of that epoch already yielded
        self._order_cache: tuple[int, np.ndarray] | None = None

    @property
    def num_samples(self) -> int:
        return len(self.X)

    def __len__(self) -> int:
        n, b = len(self.X), self.batch_size
        if self.replacement:
            return max(n // b, 1)
        return n // b if self.drop_last else -(-n // b)

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` from its first batch on the next iteration."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch, self.position = int(epoch), 0

    def epoch_indices(self, epoch: int) -> np.ndarray | None:
        """Sample indices of ``epoch``: (N,) order, (len, B) draws with replacement, or None
        for an unshuffled loader (batches are slices)."""
        if not self.shuffle:
            return None
        if self._order_cache is not None and self._order_cache[0] == epoch:
            return self._order_cache[1]
        rng = _generator(self.seed, _ORDER_STREAM, epoch)
        if self.replacement:
            order = rng.integers(0, len(self.X), size=(len(self), self.batch_size))
        else:
            order = rng.permutation(len(self.X))
        self._order_cache = (epoch, order)
        return order

    def batch(self, epoch: int, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch ``index`` of ``epoch`` (what iteration yields there), computed directly."""
        if not 0 <= index < len(self):
            raise IndexError(f"batch index must be in [0, {len(self)}), got {index}")
        order = self.epoch_indices(epoch)
        if order is None:
            sel: Any = slice(index * self.batch_size, (index + 1) * self.batch_size)
        elif self.replacement:
            sel = order[index]
        else:
            sel = order[index * self.batch_size:(index + 1) * self.batch_size]
        yb = self.y[sel]
        if self.augment is None:
            xb = self.X[sel]
        else:
            rng = _generator(self.seed, _AUGMENT_STREAM, epoch, index)
            take = getattr(self.augment, "take", None)
            kwargs = {"epoch": epoch} if getattr(self.augment, "needs_epoch", False) else {}
            xb = take(self.X, sel, rng, **kwargs) if take is not None else self.augment(self.X[sel], rng, **kwargs)
        if self.transform is not None:
            xb = self.transform(xb)
        return np.asarray(xb).astype(np.float32, copy=False), yb.astype(np.int64, copy=False)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if self.position >= len(self):
            self.set_epoch(self.epoch + 1)
        epoch = self.epoch
        while self.epoch == epoch and self.position < len(self):
            index = self.position
            self.position += 1  # a state_dict taken while this batch is in use resumes after it
            yield self.batch(epoch, index)
        if self.epoch == epoch and self.position >= len(self):
            self.set_epoch(epoch + 1)

    def state_dict(self) -> dict[str, int]:
        """Where iteration stands: {"epoch", "position", "seed", "num_samples", "batch_size"}."""
        epoch, position = self.epoch, self.position
        if position >= len(self):
            epoch, position = epoch + 1, 0
        return {"epoch": epoch, "position": position, "seed": self.seed,
                "num_samples": len(self.X), "batch_size": self.batch_size}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Resume from `state_dict` output (the saved seed replaces this loader's seed)."""
        for key, mine in (("num_samples", len(self.X)), ("batch_size", self.batch_size)):
            if int(state[key]) != mine:
                raise ValueError(f"state_dict was saved for {key}={int(state[key])}, this loader "
                                 f"has {key}={mine}; resume with the same data and batch size")
        position = int(state["position"])
        if not 0 <= position <= len(self):
            raise ValueError(f"position must be in [0, {len(self)}], got {position}")
        self.seed = int(state["seed"])
        self.epoch, self.position = int(state["epoch"]), position
        self._order_cache = None

    def __repr__(self) -> str:
        return (f"DataLoader(num_samples={len(self.X)}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, seed={self.seed}, "
                f"replacement={self.replacement}, epoch={self.epoch}, position={self.position})")
