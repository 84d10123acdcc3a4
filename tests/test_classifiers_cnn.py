"""ConvNetClassifier: learns image classes, reproducibly; takes NHWC, NCHW and flat rows alike; the frozen whitening
conv holds the data's patch-whitening filters; norm shifts get their own learning rate; Lookahead, TTA, save/load,
exact resume from a checkpoint mid-run; its per-model facts; its errors."""
from __future__ import annotations

import numpy as np
import pytest

from chainrule.classifiers import ConvNetClassifier, get_spec
from chainrule.data import patch_whitening_filters
from chainrule.train import CheckpointManager, load_checkpoint

SMALL = dict(channels=(4, 8), epochs=3, batch_size=16, lr=0.2, whiten_images=40, random_state=0,
             matmul_precision="float32")


def _images(n=96, seed=0):
    """8x8 RGB images of 3 classes: a bright top half, a bright bottom half, or neither (uint8 NHWC; mirror-
    symmetric classes, as flips assume)."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 120, size=(n, 8, 8, 3)).astype(np.uint8)
    y = np.arange(n) % 3
    X[y == 1, :4] += 120
    X[y == 2, 4:] += 120
    return X, y


def test_learns_and_is_reproducible():
    X, y = _images()
    a = ConvNetClassifier(**SMALL).fit(X, y)
    assert a.score(X, y) > 0.8
    b = ConvNetClassifier(**SMALL).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    c = ConvNetClassifier(**{**SMALL, "random_state": 1}).fit(X, y)
    assert not np.array_equal(a.predict_proba(X), c.predict_proba(X))
    assert get_spec("cnn").inputs == ("images",)


def test_nchw_and_flat_rows_give_the_nhwc_model():
    X, y = _images()
    nhwc = ConvNetClassifier(**SMALL).fit(X, y)
    nchw = ConvNetClassifier(**SMALL, data_format="channels_first").fit(X.transpose(0, 3, 1, 2), y)
    flat = ConvNetClassifier(**SMALL, image_shape=(8, 8, 3)).fit(X.reshape(len(X), -1), y)
    expected = nhwc.predict_proba(X)
    np.testing.assert_array_equal(nchw.predict_proba(X.transpose(0, 3, 1, 2)), expected)
    np.testing.assert_array_equal(flat.predict_proba(X.reshape(len(X), -1)), expected)


def test_whitening_conv_is_frozen_at_the_data_filters():
    X, y = _images()
    est = ConvNetClassifier(**SMALL).fit(X, y)
    rows = X.reshape(len(X), -1)[::2][:40]  # 40 images spread evenly over the 96
    expected = patch_whitening_filters(est._network_inputs(rows), 2, 5e-4)
    np.testing.assert_array_equal(est.model_.whiten.weight.data, expected)
    assert not est.model_.whiten.weight.requires_grad
    w, is_linear = est.weight_images()
    assert w.shape == (12, 24) and not is_linear and est.filter_shape() == (2, 2, 3)
    maps = est.activation_maps(X[:2])
    assert [m.shape for m in maps] == [(2, 24, 7, 7), (2, 4, 3, 3), (2, 8, 1, 1)]
    assert est.n_parameters() == sum(p.data.size for p in est.model_.parameters())
    plain = ConvNetClassifier(**{**SMALL, "whiten": False}).fit(X, y)
    assert plain.model_.whiten is None and plain.filter_shape() == (3, 3, 3)


def test_norm_shifts_train_at_their_own_rate_and_tricks_can_be_switched_off():
    X, y = _images()
    seen = {}

    class Spy:
        def on_train_begin(self, trainer):
            seen["groups"] = [(g["name"], g["lr"], g["weight_decay"]) for g in trainer.optimizer.param_groups]
            seen["callbacks"] = [type(cb).__name__ for cb in trainer.callbacks]

    ConvNetClassifier(**SMALL, norm_lr_scale=10.0, weight_decay=1e-3, schedule="constant",
                      warmup_epochs=0).fit(X, y, callbacks=[Spy()])
    assert seen["groups"] == [("weight", 0.2, 1e-3), ("bias", 0.2, 0.0), ("norm", 2.0, 0.0)]
    assert "Lookahead" in seen["callbacks"]
    est = ConvNetClassifier(**SMALL, lookahead=False, augment="flip", norm=None, pool="avg",
                            schedule="constant").fit(X, y, callbacks=[Spy()])
    assert "Lookahead" not in seen["callbacks"] and [g[0] for g in seen["groups"]] == ["weight", "bias"]
    assert est.score(X, y) > 0.5


def test_tta_averages_flips_and_shifts():
    X, y = _images()
    est = ConvNetClassifier(**SMALL).fit(X, y)
    tta = est.predict_proba(X)
    est.set_params(test_time_flip=False, test_time_shift=0)
    plain = est.predict_proba(X)
    assert not np.allclose(tta, plain)
    est.set_params(test_time_flip=True, test_time_shift=0)
    mirrored = est.predict_proba(X[:, :, ::-1])
    np.testing.assert_allclose(est.predict_proba(X), mirrored, rtol=1e-5, atol=1e-6)  # flip-averaged: symmetric


def test_save_load_and_exact_resume(tmp_path):
    X, y = _images()
    whole = ConvNetClassifier(**SMALL).fit(X, y, checkpoints=CheckpointManager(tmp_path / "ck", keep_last=20),
                                           checkpoint_every=4)
    whole.save(tmp_path / "cnn.npz")
    loaded = ConvNetClassifier.load(tmp_path / "cnn.npz")
    np.testing.assert_array_equal(loaded.predict_proba(X), whole.predict_proba(X))
    state = load_checkpoint(tmp_path / "ck" / "step-00000008.npz")  # mid-epoch, between two Lookahead syncs
    resumed = ConvNetClassifier(**SMALL).fit(X, y, resume=state)
    for (k, a), b in zip(whole.model_.state_dict().items(), resumed.model_.state_dict().values()):
        assert a.tobytes() == b.tobytes(), k


def test_sklearn_contract():
    from sklearn.base import clone

    est = ConvNetClassifier(channels=(4,), epochs=2)
    twin = clone(est)
    assert twin.get_params() == est.get_params() and twin is not est
    assert est.set_params(lr=0.1) is est and est.lr == 0.1
    X, y = _images(30)
    labels = np.array(["cat", "dog", "emu"])[y]
    fitted = ConvNetClassifier(**{**SMALL, "epochs": 1}).fit(X, labels)
    assert set(fitted.predict(X)) <= set(labels) and fitted.classes_.tolist() == ["cat", "dog", "emu"]


@pytest.mark.parametrize("params, X_shape, message", [
    ({}, (30, 192), "needs images"),
    ({"kernel_size": 4}, (30, 8, 8, 3), "kernel_size must be odd"),
    ({"channels": ()}, (30, 8, 8, 3), "channels must be positive ints"),
    ({"pool": "min"}, (30, 8, 8, 3), "pool"),
    ({"data_format": "NCHW"}, (30, 8, 8, 3), "data_format"),
    ({"image_shape": (8, 8, 2)}, (30, 192), "needs images"),
])
def test_bad_settings_are_refused_with_the_rule(params, X_shape, message):
    X = np.zeros(X_shape, np.uint8)
    with pytest.raises(ValueError, match=message):
        ConvNetClassifier(**{**SMALL, **params}).fit(X, np.arange(30) % 3)


def test_grayscale_images_are_one_channel():
    X, y = _images()
    assert ConvNetClassifier(**{**SMALL, "epochs": 1}).fit(X[..., 0], y).model_.whiten.weight.data.shape == \
        (8, 1, 2, 2)
    # (whitening 2x2 patches scales down this toy's signal, the mean brightness: it learns slower with it)
    est = ConvNetClassifier(**{**SMALL, "whiten": False}).fit(X[..., 0], y)
    assert est.score(X[..., 0], y) > 0.8


def test_small_images_take_any_number_of_blocks(tmp_path):
    X, y = _images()
    est = ConvNetClassifier(**{**SMALL, "channels": (4, 8, 8, 8), "epochs": 1}).fit(X, y)  # 8 -> 7 -> 3 -> 1 -> 1 -> 1
    assert [m.shape[2:] for m in est.activation_maps(X[:1])] == [(7, 7), (3, 3), (1, 1), (1, 1), (1, 1)]
    est.save(tmp_path / "cnn.npz")
    np.testing.assert_array_equal(ConvNetClassifier.load(tmp_path / "cnn.npz").predict_proba(X), est.predict_proba(X))
