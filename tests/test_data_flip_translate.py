"""FlipTranslate (alternating or random flips + reflect-padded translations, on the fly), the DataLoader passing it
the epoch, and the flip + shift test-time augmentation views (flip_shift_views, predict_tta)."""
from __future__ import annotations

import numpy as np
import pytest

from chainrule.data import DataLoader, FlipTranslate, flip_shift_views, predict_tta
from chainrule.data.augment import sample_bits, translate


def _images(n=12, h=6, w=5, c=3, seed=0):
    return np.random.default_rng(seed).normal(size=(n, h, w, c)).astype(np.float32)


def _reference(img_hwc, dy, dx, t, mode, flip):
    """One image shifted by (dy - t, dx - t) from a padded copy, then mirrored: the per-image loop."""
    h, w = img_hwc.shape[:2]
    padded = np.pad(img_hwc, ((t, t), (t, t), (0, 0)), mode=mode)
    out = padded[dy:dy + h, dx:dx + w]
    return out[:, ::-1] if flip else out


@pytest.mark.parametrize("mode", ["reflect", "edge", "constant"])
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_translate_matches_the_per_image_reference(mode, data_format):
    x = _images()
    rng = np.random.default_rng(3)
    dy, dx = rng.integers(0, 5, len(x)), rng.integers(0, 5, len(x))
    flip = rng.random(len(x)) < 0.5
    given = x if data_format == "NHWC" else x.transpose(0, 3, 1, 2)
    out = translate(given, dy, dx, 2, mode, data_format, flip)
    assert out.flags.c_contiguous and out.dtype == x.dtype and out.shape == given.shape
    if data_format == "NCHW":
        out = out.transpose(0, 2, 3, 1)
    for i in range(len(x)):
        np.testing.assert_array_equal(out[i], _reference(x[i], dy[i], dx[i], 2, mode, flip[i]))


def test_alternating_flips_mirror_every_sample_once_per_two_epochs_by_its_index():
    x = _images(40)
    aug = FlipTranslate(translate=0, seed=7)
    rng = np.random.default_rng(0)
    e0, e1, e2 = (aug(x, rng, epoch=e) for e in (0, 1, 2))
    mirrored = [np.array([np.array_equal(out[i], x[i, :, ::-1]) for i in range(len(x))]) for out in (e0, e1, e2)]
    np.testing.assert_array_equal(mirrored[0], ~mirrored[1])  # each image once each way over two epochs
    np.testing.assert_array_equal(mirrored[0], mirrored[2])
    np.testing.assert_array_equal(mirrored[0], sample_bits(np.arange(40), 7))
    assert 10 < mirrored[0].sum() < 30
    idx = np.array([5, 31, 2])  # the alternation follows the sample, not its place in the batch
    np.testing.assert_array_equal(aug.take(x, idx, rng, epoch=1), e1[idx])
    assert not np.array_equal(FlipTranslate(0, seed=8)(x, rng), e0)  # the seed picks the pattern


def test_draws_follow_the_generator_and_mode():
    x = _images()
    for flip in ("alternate", "random", "none"):
        aug = FlipTranslate(translate=2, flip=flip)
        a = aug(x, np.random.default_rng(5), epoch=3)
        np.testing.assert_array_equal(a, aug(x, np.random.default_rng(5), epoch=3))
        rng = np.random.default_rng(5)
        f = rng.random(len(x)) < 0.5 if flip == "random" else None
        dy, dx = rng.integers(0, 5, len(x)), rng.integers(0, 5, len(x))
        if flip == "alternate":
            f = sample_bits(np.arange(len(x)), 0) != True  # noqa: E712  (epoch 3 is odd)
        for i in range(len(x)):
            np.testing.assert_array_equal(a[i], _reference(x[i], dy[i], dx[i], 2, "reflect", f is not None and f[i]))
    nchw = FlipTranslate(2, data_format="NCHW")(x.transpose(0, 3, 1, 2), np.random.default_rng(1), epoch=0)
    np.testing.assert_array_equal(nchw.transpose(0, 2, 3, 1), FlipTranslate(2)(x, np.random.default_rng(1)))


def test_data_loader_passes_the_epoch_and_resumes_exactly():
    x, y = _images(16), np.arange(16) % 3
    loader = DataLoader(x, y, 4, seed=1, augment=FlipTranslate(translate=0))
    first = [xb for xb, _ in loader]
    second = [xb for xb, _ in loader]
    order0, order1 = loader.epoch_indices(0), loader.epoch_indices(1)
    for b in range(4):
        for j in range(4):
            i0, i1 = order0[4 * b + j], order1[4 * b + j]
            np.testing.assert_array_equal(first[b][j], x[i0, :, ::-1] if sample_bits(i0, 0) else x[i0])
            np.testing.assert_array_equal(second[b][j], x[i1] if sample_bits(i1, 0) else x[i1, :, ::-1])
    resumed = DataLoader(x, y, 4, seed=1, augment=FlipTranslate(translate=0))
    resumed.load_state_dict({"epoch": 1, "position": 2, "seed": 1, "num_samples": 16, "batch_size": 4})
    np.testing.assert_array_equal(next(iter(resumed))[0], second[2])


@pytest.mark.parametrize("kwargs, message", [
    ({"translate": -1}, "padding must be a non-negative int"),
    ({"flip": "sometimes"}, "flip must be one of"),
    ({"padding_mode": "wrap"}, "padding_mode must be one of"),
    ({"data_format": "HWC"}, "data_format must be"),
    ({"seed": -2}, "seed must be a non-negative int"),
])
def test_flip_translate_refuses_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FlipTranslate(**kwargs)(_images(), np.random.default_rng(0))


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_tta_views_and_their_weighted_mean(data_format):
    x = _images(4, 8, 8)
    given = x if data_format == "NHWC" else x.transpose(0, 3, 1, 2)
    views = flip_shift_views(given, flip=True, shift=1, data_format=data_format)
    assert [w for w, _ in views] == [0.25, 0.25, 0.125, 0.125, 0.125, 0.125]
    as_nhwc = [v if data_format == "NHWC" else v.transpose(0, 2, 3, 1) for _, v in views]
    for i in range(len(x)):
        np.testing.assert_array_equal(as_nhwc[0][i], x[i])
        np.testing.assert_array_equal(as_nhwc[1][i], x[i, :, ::-1])
        np.testing.assert_array_equal(as_nhwc[2][i], _reference(x[i], 0, 0, 1, "reflect", False))
        np.testing.assert_array_equal(as_nhwc[4][i], _reference(x[i], 2, 2, 1, "reflect", False))
        np.testing.assert_array_equal(as_nhwc[5][i], _reference(x[i], 2, 2, 1, "reflect", True))
    assert [w for w, _ in flip_shift_views(given, flip=False, shift=0, data_format=data_format)] == [1.0]
    assert [w for w, _ in flip_shift_views(given, flip=True, shift=0, data_format=data_format)] == [0.5, 0.5]
    weights = np.random.default_rng(0).normal(size=(given[0].size, 3))
    score = lambda v: v.reshape(len(v), -1) @ weights  # noqa: E731  (linear: TTA = scores of the mean view)
    mean_view = sum(w * v.astype(np.float64) for w, v in views)
    np.testing.assert_allclose(predict_tta(score, given, data_format=data_format), score(mean_view), rtol=1e-6)
