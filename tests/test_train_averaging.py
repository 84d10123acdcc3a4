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
