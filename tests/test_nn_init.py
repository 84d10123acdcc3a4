"""chainrule.nn.init: gains, fans, the statistics of each initialiser, reproducibility and errors."""

import math

import numpy as np
import pytest

from chainrule.nn import init

SHAPE = (400, 300)  # fan_in 400, fan_out 300: 120,000 draws, so sample stds are within ~0.5% of the truth


def test_gains():
    assert init.calculate_gain("linear") == 1.0
    assert init.calculate_gain("sigmoid") == 1.0
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
    assert init.calculate_gain("leaky_relu", 0.1) == pytest.approx(math.sqrt(2 / 1.01))
    assert init.calculate_gain("ReLU") == init.calculate_gain("relu")
    with pytest.raises(ValueError, match="unknown nonlinearity 'swish'"):
        init.calculate_gain("swish")


def test_fans_follow_the_in_out_layout():
    assert init.fans((784, 100)) == (784, 100)
    assert init.fans((7,)) == (7, 7)
    assert init.fans((3, 4, 5, 5)) == (75, 100)
    with pytest.raises(ValueError, match="at least 1 dimension"):
        init.fans(())


@pytest.mark.parametrize("nonlinearity", ["relu", "tanh", "linear", "leaky_relu"])
@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
def test_kaiming_std(nonlinearity, mode):
    fan = 400 if mode == "fan_in" else 300
    expected = init.calculate_gain(nonlinearity) / math.sqrt(fan)
    w = init.kaiming_normal(SHAPE, nonlinearity, mode, rng=0)
    assert abs(w.std() / expected - 1) < 0.01 and abs(w.mean()) < 3 * expected / math.sqrt(w.size)
    u = init.kaiming_uniform(SHAPE, nonlinearity, mode, rng=1)
    assert abs(u.std() / expected - 1) < 0.01
    assert np.abs(u).max() <= math.sqrt(3) * expected


def test_xavier_std_and_bound():
    std = math.sqrt(2 / 700)
    assert abs(init.xavier_normal(SHAPE, rng=0).std() / std - 1) < 0.01
    assert abs(init.glorot_normal(SHAPE, gain=2.0, rng=0).std() / (2 * std) - 1) < 0.01
    u = init.xavier_uniform(SHAPE, rng=0)
    bound = math.sqrt(6 / 700)
    assert np.abs(u).max() <= bound and np.abs(u).max() > 0.99 * bound
    assert abs(u.std() / std - 1) < 0.01


def test_uniform_and_normal():
    u = init.uniform((1000, 100), -2.0, 3.0, rng=0)
    assert u.min() >= -2.0 and u.max() < 3.0 and abs(u.mean() - 0.5) < 0.02
    z = init.normal((1000, 100), 1.0, 0.5, rng=0)
    assert abs(z.mean() - 1.0) < 0.01 and abs(z.std() - 0.5) < 0.01


def test_reproducible_from_seed_or_generator_and_dtypes():
    a = init.he_normal((5, 4), rng=3)
    np.testing.assert_array_equal(a, init.kaiming_normal((5, 4), rng=np.random.default_rng(3)))
    g = np.random.default_rng(3)
    first, second = init.he_uniform((5, 4), rng=g), init.he_uniform((5, 4), rng=g)
    assert not np.array_equal(first, second)  # one generator, advancing
    assert a.dtype == np.float32
    assert init.xavier_uniform((5, 4), rng=0, dtype=np.float64).dtype == np.float64


def test_errors():
    with pytest.raises(TypeError, match="Generator or an int seed"):
        init.normal((2, 2), rng=None)
    with pytest.raises(TypeError, match="float32 or float64"):
        init.normal((2, 2), rng=0, dtype=np.int32)
    with pytest.raises(ValueError, match="low <= high"):
        init.uniform((2,), 1.0, 0.0, rng=0)
    with pytest.raises(ValueError, match="mode 'fan_in' or 'fan_out'"):
        init.kaiming_normal((2, 2), mode="fan_avg", rng=0)
