"""chainrule.train.averaging.EMA: the averaging formula (with its warm-up), buffers averaged and integers copied,
swapped() restoring the trained state, the every-k form, and use as a Trainer callback."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import nn, optim
from chainrule.data.loader import DataLoader
from chainrule.nn import functional as F
from chainrule.train import Trainer
from chainrule.train.averaging import EMA


def _model():
    return nn.MLP([4, 5, 3], norm="batch", seed=0)


def test_average_is_the_decay_weighted_mean_of_the_states_seen():
    model = _model()
    ema = EMA(model, decay=0.9)
    w = model.state_dict()["0.weight"]
    np.testing.assert_array_equal(ema.state_dict()["0.weight"], w)  # no update yet: the model's own state
    rng = np.random.default_rng(0)
    seen = []
    for _ in range(30):
        model[0].weight.data[...] = rng.standard_normal(w.shape)
        seen.append(model[0].weight.data.astype(np.float64))
        ema.update()
    weights = 0.9 ** np.arange(len(seen))[::-1]  # the newest state weighs 1, the one before 0.9, ...
    expected = np.tensordot(weights, np.array(seen), axes=1) / weights.sum()
    np.testing.assert_allclose(ema.state_dict()["0.weight"], expected, rtol=1e-5, atol=1e-6)
    assert ema.num_updates == 30
    other = EMA(model, decay=0.5)
    other.update()
    other.update()
    assert not np.allclose(other.state_dict()["0.weight"], ema.state_dict()["0.weight"])  # the decay matters


def test_buffers_are_averaged_and_integer_buffers_copied():
    model = _model()
    ema = EMA(model, decay=0.5)
    x = np.random.default_rng(1).standard_normal((16, 4)).astype(np.float32)
    model.train()
    for _ in range(3):
        model(x)
        ema.update()
    shadow = ema.state_dict()
    assert int(shadow["1.num_batches_tracked"]) == 3
    assert not np.allclose(shadow["1.running_mean"], 0)  # moved from its initial zeros, towards the batch means
    assert not np.allclose(shadow["1.running_mean"], model.state_dict()["1.running_mean"])  # but lags behind


def test_swapped_evaluates_the_average_and_restores():
    model = _model()
    ema = EMA(model, decay=0.99)
    trained = model.state_dict()
    ema.update()
    model[0].weight.data[...] += 1.0
    ema.update()  # mean of (w, w + 1) weighted (0.99, 1): w + 1 / 1.99
    after = model.state_dict()
    with ema.swapped() as m:
        assert m is model
        np.testing.assert_allclose(model[0].weight.data, trained["0.weight"] + 1 / 1.99, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(model[0].weight.data, after["0.weight"])


def test_every_k_steps_uses_decay_to_the_k():
    model = _model()
    ema = EMA(model, decay=0.5, every=3)
    for _ in range(7):
        ema.update()
    assert ema.num_updates == 2  # steps 3 and 6


def test_as_a_trainer_callback():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((64, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = _model()
    ema = EMA(model, decay=0.9)
    trainer = Trainer(model, F.cross_entropy, optim.SGD(model.parameters(), lr=0.1), DataLoader(x, y, 16, seed=0),
                      epochs=2, callbacks=[ema])
    trainer.fit()
    assert ema.num_updates == trainer.step == 8


@pytest.mark.parametrize("kwargs, match", [(dict(decay=1.0), r"decay must be in \[0, 1\)"),
                                           (dict(every=0), "every must be a positive")])
def test_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EMA(_model(), **kwargs)


# ---- Lookahead ------------------------------------------------------------------------------------------------------


def test_lookahead_pulls_the_model_back_to_the_slow_weights_every_k_steps():
    from chainrule.train.averaging import Lookahead

    model = _model()
    start = {k: v.copy() for k, v in model.state_dict().items()}
    la = Lookahead(model, alpha=0.25, k=3)
    rng = np.random.default_rng(0)
    for step in range(1, 7):
        moved = rng.standard_normal(model[0].weight.data.shape).astype(np.float32)
        model[0].weight.data[...] = moved
        la.update()
        if step % 3:
            np.testing.assert_array_equal(model[0].weight.data, moved)  # between syncs the optimizer moves it
        else:
            expected = start["0.weight"] + np.float32(0.25) * (moved - start["0.weight"])
            np.testing.assert_allclose(model[0].weight.data, expected, rtol=1e-6)
            start["0.weight"] = expected
    la.finish()  # no step since the last sync: the model keeps the slow weights
    np.testing.assert_allclose(model[0].weight.data, start["0.weight"], rtol=1e-6)
    moved = model[0].weight.data + 1.0
    model[0].weight.data[...] = moved
    la.update()
    la.finish()  # a last sync folds in the step since the previous one
    np.testing.assert_allclose(model[0].weight.data, start["0.weight"] + np.float32(0.25), rtol=1e-6)


def test_lookahead_alpha_one_changes_nothing_and_cubic_alpha_is_airbench_schedule():
    from chainrule.train.averaging import Lookahead, cubic_alpha

    model = _model()
    la = Lookahead(model, alpha=1.0, k=1)
    model[0].weight.data[...] += 2.0
    after = model[0].weight.data.copy()
    la.update()
    np.testing.assert_array_equal(model[0].weight.data, after)
    alpha = cubic_alpha(100)
    assert alpha(0) == 1.0 and alpha(100) == pytest.approx(1 - 0.95 ** 5)
    assert alpha(50) == pytest.approx(1 - 0.95 ** 5 * 0.125)
    with pytest.raises(ValueError, match="alpha must be in"):
        Lookahead(model, alpha=0.0)
    with pytest.raises(ValueError, match="k must be a positive"):
        Lookahead(model, k=0)


def test_lookahead_in_a_trainer_resumes_exactly_from_a_checkpoint(tmp_path):
    from chainrule.train import CheckpointManager, load_checkpoint
    from chainrule.train.averaging import Lookahead, cubic_alpha

    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0)

    def run(state=None, checkpoints=None):
        model = _model()
        la = Lookahead(model, alpha=cubic_alpha(16), k=3)
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        trainer = Trainer(model, F.cross_entropy, opt, DataLoader(X, y, 16, seed=0), epochs=4, callbacks=[la],
                          checkpoints=checkpoints, checkpoint_every=7)
        if state is not None:
            trainer.load_state_dict(state)
        trainer.fit()
        return model

    whole = run(checkpoints=CheckpointManager(tmp_path, keep_last=10))
    resumed = run(state=load_checkpoint(tmp_path / "step-00000007.npz"))  # mid-epoch, between two syncs
    for k, v in whole.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[k], v)
