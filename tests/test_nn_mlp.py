"""MLP construction, initialisation and reproducibility, and the done-when test: a 2-hidden-layer MLP trained with
each optimizer reaches >= 95% training accuracy on the 3-class spiral in well under a second or two."""


import numpy as np
import pytest

import chainrule.nn.functional as F
from chainrule import nn
from chainrule.optim import SGD, Adam, RMSProp


pytestmark = pytest.mark.usefixtures("one_blas_thread")  # tests/conftest.py


def spiral(n=100, classes=3, seed=0):
    """CS231n's spiral toy set: ``classes`` arms of ``n`` 2-D points; float32 X (n*classes, 2), int y."""
    try:
        from chainrule.data import make_spiral
    except ImportError:  # the data package is optional for this test
        rng = np.random.default_rng(seed)
        r = np.tile(np.linspace(0.0, 1.0, n), classes)
        t = (4.0 * np.arange(classes)[:, None] + np.linspace(0.0, 4.0, n)[None, :]).ravel()
        t = t + 0.2 * rng.standard_normal(n * classes)
        return np.stack([r * np.sin(t), r * np.cos(t)], axis=1).astype(np.float32), np.repeat(np.arange(classes), n)
    return make_spiral(n, classes, 0.2, seed)


def accuracy(model, X, y):
    model.eval()
    acc = float((model(X).data.argmax(axis=1) == y).mean())
    model.train()
    return acc


def train(model, opt, X, y, steps):
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(X), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


OPTIMIZERS = {
    "sgd": lambda p: SGD(p, lr=0.5),
    "sgd_momentum": lambda p: SGD(p, lr=0.1, momentum=0.9),
    "rmsprop": lambda p: RMSProp(p, lr=3e-3),
    "adam": lambda p: Adam(p, lr=1e-2),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_two_hidden_layer_mlp_fits_the_spiral(name):
    X, y = spiral()
    assert X.shape == (300, 2) and X.dtype == np.float32
    model = nn.MLP([2, 100, 100, 3], seed=0)
    opt = OPTIMIZERS[name](model.parameters())
    losses = train(model, opt, X, y, steps=200)  # (its speed: bench/, not a wall-clock assert here)
    assert abs(losses[0] - np.log(3)) < 0.5  # starts near chance
    assert losses[-1] < 0.25 * losses[0]
    assert accuracy(model, X, y) >= 0.95
    assert all(p.dtype == np.float32 and p.grad.dtype == np.float32 for p in model.parameters())
    assert len(losses) == 200 and all(np.isfinite(losses))


def test_a_linear_classifier_cannot_fit_the_spiral():
    X, y = spiral()
    model = nn.MLP([2, 3], seed=0)  # softmax regression
    train(model, Adam(model.parameters(), lr=1e-2), X, y, steps=200)
    assert accuracy(model, X, y) < 0.65


def test_minibatch_training_with_batchnorm_and_dropout():
    X, y = spiral()
    model = nn.MLP([2, 64, 64, 3], dropout=0.1, norm="batch", seed=0)
    opt = Adam(model.parameters(), lr=1e-2)
    order = np.random.default_rng(0)
    for _ in range(30):
        for idx in np.array_split(order.permutation(len(y)), 5):
            opt.zero_grad()
            F.cross_entropy(model(X[idx]), y[idx]).backward()
            opt.step()
    assert accuracy(model, X, y) >= 0.9


def test_mlp_layers_and_options():
    assert [type(m).__name__ for m in nn.MLP([4, 8, 3])] == ["Linear", "ReLU", "Linear"]
    deep = nn.MLP([4, 8, 8, 3], activation="tanh", dropout=0.2, norm="layer", seed=0)
    assert [type(m).__name__ for m in deep] == ["Linear", "LayerNorm", "Tanh", "Dropout"] * 2 + ["Linear"]
    bn = nn.MLP([4, 8, 3], norm="batch")
    assert [type(m).__name__ for m in bn] == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    mx = nn.MLP([4, 8, 3], activation="maxout", pieces=3, seed=0)
    assert [type(m).__name__ for m in mx] == ["Maxout", "Linear"] and mx[0].weight.shape == (4, 24)
    assert isinstance(nn.MLP([4, 8, 3], activation="leaky_relu")[1], nn.LeakyReLU)
    assert nn.MLP([4, 8, 3], activation="gelu_tanh")[1].approximate == "tanh"
    assert list(nn.MLP([4, 8, 3]).state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert nn.MLP([3072, 100, 10]).num_parameters() == 3072 * 100 + 100 + 100 * 10 + 10
    out = mx(np.ones((5, 4), dtype=np.float32))
    assert out.shape == (5, 3) and out.dtype == np.float32
    assert nn.MLP([4, 3], dtype=np.float64)[0].weight.dtype == np.float64


def test_mlp_validation():
    with pytest.raises(ValueError, match="at least 2 positive entries"):
        nn.MLP([4])
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        nn.MLP([4, 3], activation="swish")
    with pytest.raises(ValueError, match=r"dropout in \[0, 1\)"):
        nn.MLP([4, 3], dropout=1.0)
    with pytest.raises(ValueError, match="norm None, 'batch' or 'layer'"):
        nn.MLP([4, 3], norm="group")


def test_mlp_init_is_kaiming_with_zero_bias():
    model = nn.MLP([1000, 500, 400, 10], seed=0)
    for layer, fan_in, gain in ((model[0], 1000, np.sqrt(2)), (model[2], 500, np.sqrt(2)), (model[4], 400, 1.0)):
        assert abs(layer.weight.data.std() * np.sqrt(fan_in) / gain - 1) < 0.02
        assert np.all(layer.bias.data == 0)
    # He init keeps the activations' scale through the ReLU layers.
    x = np.random.default_rng(0).standard_normal((256, 1000)).astype(np.float32)
    h1 = model[1](model[0](x)).data
    h2 = model[3](model[2](h1)).data
    assert 0.7 < np.sqrt((h2**2).mean()) / np.sqrt((h1**2).mean()) < 1.3


def test_seeded_mlp_with_dropout_trains_reproducibly():
    X, y = spiral(n=30)

    def run():
        model = nn.MLP([2, 16, 16, 3], dropout=0.3, seed=42)
        train(model, SGD(model.parameters(), lr=0.1), X, y, steps=5)
        return model

    a, b = run(), run()
    for (key, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        np.testing.assert_array_equal(va, vb, err_msg=key)
    assert a.rng_states() == b.rng_states()
    assert a[2].rng_state() != a[5].rng_state()  # each Dropout has its own stream
    c = nn.MLP([2, 16, 16, 3], dropout=0.3, seed=43)
    assert not np.array_equal(c[0].weight.data, nn.MLP([2, 16, 16, 3], dropout=0.3, seed=42)[0].weight.data)
