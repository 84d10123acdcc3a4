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


def test_update_follows_the_formula_with_warmup():
    model = _model()
    ema = EMA(model, decay=0.9)
    w = model.state_dict()["0.weight"]
    expected = w.astype(np.float64)
    rng = np.random.default_rng(0)
    for t in range(30):
        model[0].weight.data[...] = rng.standard_normal(w.shape)
        ema.update()
        d = min(0.9, (1 + t) / (10 + t))
        expected = d * expected + (1 - d) * model[0].weight.data
    np.testing.assert_allclose(ema.state_dict()["0.weight"], expected, rtol=1e-5, atol=1e-6)
    assert ema.num_updates == 30


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
    model[0].weight.data[...] += 1.0
    ema.update()  # warm-up: d = 1/10, the average moves only a tenth of the way
    after = model.state_dict()
    with ema.swapped() as m:
        assert m is model
        np.testing.assert_allclose(model[0].weight.data, trained["0.weight"] + 0.9, rtol=1e-5)
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
