"""Module / Parameter / Sequential: registration, traversal, modes, dtype conversion, state_dict, repr."""

import json

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 4, seed=0)
        self.bn = nn.BatchNorm1d(4)
        self.act = nn.ReLU()
        self.drop = nn.Dropout(0.5, seed=1)
        self.fc2 = nn.Linear(4, 2, seed=2)
        self.scale = nn.Parameter(np.ones(1, dtype=np.float32))
        self.not_registered = np.zeros(3)  # plain arrays are plain attributes

    def forward(self, x):
        return self.fc2(self.drop(self.act(self.bn(self.fc1(x))))) * self.scale


def test_parameter_is_a_float_tensor_requiring_grad():
    p = nn.Parameter(np.zeros((2, 3), dtype=np.float32))
    assert isinstance(p, cr.Tensor) and p.requires_grad and p.dtype == np.float32
    assert nn.Parameter([1.0, 2.0]).dtype == np.float32
    assert not nn.Parameter(np.zeros(2), requires_grad=False).requires_grad
    assert repr(p).startswith("Parameter(")
    with pytest.raises(TypeError, match="floating-point"):
        nn.Parameter(np.zeros(3, dtype=np.int64))


def test_registration_order_and_names():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["scale", "fc1.weight", "fc1.bias", "bn.weight", "bn.bias", "fc2.weight", "fc2.bias"]
    assert [n for n, _ in net.named_modules()] == ["", "fc1", "bn", "act", "drop", "fc2"]
    assert [type(m).__name__ for m in net.children()] == ["Linear", "BatchNorm1d", "ReLU", "Dropout", "Linear"]
    assert [n for n, _ in net.named_buffers()] == ["bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]
    assert net.num_parameters() == 3 * 4 + 4 + 4 + 4 + 4 * 2 + 2 + 1
    assert all(isinstance(p, nn.Parameter) for p in net.parameters())
    assert len(net.parameters(recurse=False)) == 1


def test_shared_parameters_are_listed_once():
    shared = nn.Linear(2, 2, seed=0)
    seq = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(seq.parameters()) == 2
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias"]


def test_reassignment_and_deletion_update_the_registries():
    net = Net()
    net.fc2 = None
    assert "fc2.weight" not in dict(net.named_parameters())
    net.scale = nn.Parameter(np.zeros(2, dtype=np.float32))
    assert net.scale.shape == (2,)
    with pytest.raises(TypeError, match="assign an nn.Parameter"):
        net.scale = cr.Tensor(np.zeros(2))
    del net.bn
    assert "bn" not in dict(net.named_modules())
    layer = nn.Linear(2, 3, bias=False)
    assert layer.bias is None and [n for n, _ in layer.named_parameters()] == ["weight"]


def test_forgetting_super_init_is_a_clear_error():
    class Bad(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match=r"call super\(\).__init__\(\) first"):
        Bad()


def test_train_eval_propagate_and_zero_grad():
    net = Net()
    assert net.training and net.drop.training
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    x = np.ones((4, 3), dtype=np.float32)
    net(x).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_to_float64_converts_parameters_and_float_buffers_in_place():
    net = Net()
    w = net.fc1.weight
    before = w.data.copy()
    assert net.to(np.float64) is net
    assert net.fc1.weight is w and w.dtype == np.float64
    np.testing.assert_array_equal(w.data, before)
    assert net.bn.running_mean.dtype == np.float64 and net.bn._buffers["running_mean"] is net.bn.running_mean
    assert net.bn.num_batches_tracked.dtype == np.int64
    out = net(np.ones((4, 3)))
    assert out.dtype == np.float64
    assert net.astype(np.float32).fc2.bias.dtype == np.float32
    with pytest.raises(TypeError, match="floating-point dtype"):
        net.to(np.int32)


def test_float64_model_gradient_matches_numerical():
    model = nn.MLP([3, 5, 2], activation="tanh", norm="layer", seed=0).to(np.float64)
    x = np.random.default_rng(0).standard_normal((4, 3))
    y = np.array([0, 1, 1, 0])
    w = model[0].weight
    cr.nn.functional.cross_entropy(model(x), y).backward()
    numeric = cr.numerical_gradient(lambda _: cr.nn.functional.cross_entropy(model(x), y).item(), w.data)
    assert w.grad.dtype == np.float64
    assert cr.rel_error(w.grad, numeric) < 1e-7


def test_state_dict_round_trip_is_a_copy():
    a, b = Net(), Net()
    for p in b.parameters():
        p.data[...] = 0
    a.bn(np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32))  # move the running stats
    state = a.state_dict()
    assert list(state) == ["scale", "fc1.weight", "fc1.bias", "bn.weight", "bn.bias", "bn.running_mean",
                           "bn.running_var", "bn.num_batches_tracked", "fc2.weight", "fc2.bias"]
    assert all(type(v) is np.ndarray for v in state.values())
    state["fc1.weight"][...] = 123.0  # a copy: the model is unchanged
    assert not np.any(a.fc1.weight.data == 123.0)
    state = a.state_dict()
    w_obj = b.fc1.weight.data
    result = b.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert b.fc1.weight.data is w_obj  # loaded in place
    for key, value in a.state_dict().items():
        np.testing.assert_array_equal(b.state_dict()[key], value)
    x = np.ones((2, 3), dtype=np.float32)
    a.eval(), b.eval()
    np.testing.assert_array_equal(a(x).data, b(x).data)


def test_load_state_dict_strict_errors_list_every_problem_and_load_nothing():
    net = Net()
    before = net.state_dict()
    bad = dict(before)
    del bad["fc1.bias"]
    bad["fc3.weight"] = np.zeros((2, 2))
    bad["fc2.weight"] = np.zeros((2, 4))
    bad["scale"] = np.full(1, 9.0)
    with pytest.raises(ValueError) as err:
        net.load_state_dict(bad)
    msg = str(err.value)
    assert "missing keys (1): fc1.bias" in msg
    assert "unexpected keys (1): fc3.weight" in msg
    assert "fc2.weight: checkpoint has shape (2, 4) dtype float64, model has shape (4, 2) dtype float32" in msg
    assert "nothing was loaded" in msg
    for key, value in net.state_dict().items():  # nothing was loaded
        np.testing.assert_array_equal(value, before[key])
    bad["fc2.weight"] = before["fc2.weight"]
    with pytest.raises(ValueError, match="pass strict=False"):
        net.load_state_dict(bad)
    result = net.load_state_dict(bad, strict=False)
    assert result.missing_keys == ["fc1.bias"] and result.unexpected_keys == ["fc3.weight"]
    assert net.scale.data[0] == 9.0 and net.scale.dtype == np.float32


def test_rng_states_round_trip_through_json():
    net = Net()
    states = json.loads(json.dumps(net.rng_states()))
    assert list(states) == ["drop"]
    x = np.ones((6, 4), dtype=np.float32)
    first = net.drop(x).data
    net.load_rng_states(states)
    np.testing.assert_array_equal(net.drop(x).data, first)
    with pytest.raises(ValueError, match="do not match"):
        net.load_rng_states({"other": states["drop"]})


def test_repr_is_nested_and_readable():
    net = nn.Sequential(nn.Linear(2, 3, seed=0), nn.LeakyReLU(0.1), nn.Sequential(nn.Dropout(0.2), nn.Linear(3, 1)))
    assert repr(net) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): LeakyReLU(negative_slope=0.1)\n"
        "  (2): Sequential(\n"
        "    (0): Dropout(p=0.2)\n"
        "    (1): Linear(in_features=3, out_features=1, bias=True)\n"
        "  )\n"
        ")"
    )


def test_sequential_indexing_iteration_and_append():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    assert len(seq) == 2 and isinstance(seq[0], nn.Linear) and isinstance(seq[-1], nn.ReLU)
    head = seq[:1]
    assert isinstance(head, nn.Sequential) and head[0] is seq[0]
    seq.append(nn.Linear(3, 1))
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]
    assert seq(np.ones((5, 2), dtype=np.float32)).shape == (5, 1)
    with pytest.raises(TypeError, match="expected Modules"):
        nn.Sequential(lambda x: x)


def test_linear_init_and_layout():
    layer = nn.Linear(100, 7, seed=0)
    assert layer.weight.shape == (100, 7) and layer.bias.shape == (7,)
    assert np.all(np.abs(layer.weight.data) <= 0.1) and layer.weight.data.std() > 0.04
    np.testing.assert_array_equal(nn.Linear(100, 7, seed=0).weight.data, layer.weight.data)
    x = np.random.default_rng(0).standard_normal((4, 100)).astype(np.float32)
    np.testing.assert_allclose(layer(x).data, x @ layer.weight.data + layer.bias.data, rtol=1e-5)
    with pytest.raises(ValueError, match="positive sizes"):
        nn.Linear(0, 3)


def test_deepcopy_gives_an_independent_equal_model():
    import copy

    net = Net().eval()
    clone = copy.deepcopy(net)
    assert clone.fc1.weight is not net.fc1.weight and isinstance(clone.fc1.weight, nn.Parameter)
    x = np.ones((2, 3), dtype=np.float32)
    np.testing.assert_array_equal(clone(x).data, net(x).data)
    clone.fc1.weight.data[...] = 0
    assert np.any(net.fc1.weight.data != 0)
    assert clone.rng_states() == net.rng_states()


def test_apply_visits_children_first():
    seen = []
    nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU())).apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "ReLU", "Sequential", "Sequential"]
