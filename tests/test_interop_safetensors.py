"""Weights as .safetensors, and PyTorch's layouts: checked against torch and safetensors' own loaders."""

from __future__ import annotations

import json
import struct
import tracemalloc

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule import safetensors as st
from chainrule.classifiers import LinearSVM, MLPClassifier, SoftmaxClassifier, load

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

pytestmark = pytest.mark.usefixtures("one_blas_thread")

ACTIVATIONS = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid,
               "leaky_relu": torch.nn.LeakyReLU, "elu": torch.nn.ELU, "gelu": torch.nn.GELU,
               "gelu_tanh": lambda: torch.nn.GELU("tanh"), "identity": torch.nn.Identity}


def torch_mlp(sizes, activation="relu", norm=None):
    """The PyTorch model of ``nn.MLP(sizes, activation, norm=norm)``: same layers, same indices."""
    layers = []
    for fan_in, fan_out in zip(sizes[:-2], sizes[1:-1]):
        layers.append(torch.nn.Linear(fan_in, fan_out))
        if norm == "batch":
            layers.append(torch.nn.BatchNorm1d(fan_out))
        elif norm == "layer":
            layers.append(torch.nn.LayerNorm(fan_out))
        layers.append(ACTIVATIONS[activation]())
    layers.append(torch.nn.Linear(sizes[-2], sizes[-1]))
    return torch.nn.Sequential(*layers)


def trained_bn_stats(model):
    """Give BatchNorm layers non-trivial running statistics (a few training-mode forwards)."""
    rng = np.random.default_rng(1)
    model.train()
    for _ in range(3):
        model(cr.Tensor(rng.standard_normal((16, model.sizes[0])).astype(np.float32) * 2 + 1))
    return model.eval()


@pytest.mark.parametrize("activation,norm", [("relu", "batch"), ("gelu", None), ("tanh", "layer"),
                                             ("leaky_relu", None), ("elu", None), ("sigmoid", None)])
def test_chainrule_mlp_loads_into_pytorch_through_safetensors_and_predicts_the_same(tmp_path, activation, norm):
    model = trained_bn_stats(nn.MLP([6, 8, 5, 3], activation=activation, norm=norm, seed=0))
    path = tmp_path / "mlp.safetensors"
    st.save_file(model.to_torch_state_dict(), path)
    tmodel = torch_mlp([6, 8, 5, 3], activation, norm)
    tmodel.load_state_dict(safetensors_torch.load_file(str(path)))  # strict: every key, shape and layout
    tmodel.eval()
    x = np.random.default_rng(2).standard_normal((7, 6)).astype(np.float32)
    with cr.no_grad():
        ours = model(cr.Tensor(x)).data
    theirs = tmodel(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_pytorch_trained_mlp_loads_into_chainrule_and_predicts_the_same(tmp_path):
    torch.manual_seed(0)
    tmodel = torch_mlp([5, 16, 4], "relu", "batch")
    opt = torch.optim.SGD(tmodel.parameters(), lr=0.1)
    x = torch.randn(64, 5)
    y = torch.randint(0, 4, (64,))
    for _ in range(20):  # trained in PyTorch: weights, biases and running statistics all moved
        opt.zero_grad()
        torch.nn.functional.cross_entropy(tmodel(x), y).backward()
        opt.step()
    tmodel.eval()
    path = tmp_path / "torch.safetensors"
    safetensors_torch.save_file(tmodel.state_dict(), str(path))
    model = nn.MLP([5, 16, 4], norm="batch", seed=1).eval()
    model.load_torch_state_dict(st.load_file(path))
    with cr.no_grad():
        ours = model(cr.Tensor(x.numpy())).data
    np.testing.assert_allclose(ours, tmodel(x).detach().numpy(), rtol=1e-5, atol=1e-5)
    assert model[1].num_batches_tracked.shape == () and int(model[1].num_batches_tracked) == 20
    # torch tensors themselves are accepted too (no file in between)
    other = nn.MLP([5, 16, 4], norm="batch", seed=2).eval()
    other.load_torch_state_dict(tmodel.state_dict())
    np.testing.assert_array_equal(other[0].weight.data, tmodel[0].weight.detach().numpy().T)


def test_torch_layout_is_pytorchs_and_round_trips():
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Maxout(2, 4, pieces=3))
    sd = model.to_torch_state_dict()
    assert sd["0.weight"].shape == (2, 3) and sd["0.weight"].flags.c_contiguous
    assert sd["2.weight"].shape == (12, 2)  # a torch.nn.Linear(2, 12)
    assert nn.BatchNorm1d(3).to_torch_state_dict()["num_batches_tracked"].shape == ()
    np.testing.assert_array_equal(sd["0.weight"], model[0].weight.data.T)
    copy = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Maxout(2, 4, pieces=3))
    copy.load_torch_state_dict(sd)
    for (k, a), (_, b) in zip(model.state_dict().items(), copy.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=k)
    with pytest.raises(ValueError, match=r"0.weight must be 2-D .*got shape \(6,\)"):
        copy.load_torch_state_dict({**sd, "0.weight": np.zeros(6, np.float32)})
    with pytest.raises(ValueError, match="shape mismatches"):
        copy.load_torch_state_dict({**sd, "0.weight": np.zeros((3, 2), np.float32)})  # chainrule's layout, not torch's


def test_save_model_is_read_by_safetensors_own_loader_and_loads_back(tmp_path):
    model = trained_bn_stats(nn.MLP([4, 6, 3], norm="batch", seed=0))
    path = tmp_path / "m.safetensors"
    st.save_model(model, path, metadata={"note": "digits"})
    theirs = safetensors_numpy.load_file(str(path))
    assert set(theirs) == set(model.state_dict())
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(theirs[k], v)
        assert theirs[k].dtype == v.dtype
    assert st.read_metadata(path) == {"note": "digits"}
    copy = nn.MLP([4, 6, 3], norm="batch", seed=5).eval()
    st.load_model(copy, path)
    x = cr.Tensor(np.ones((2, 4), np.float32))
    np.testing.assert_array_equal(copy(x).data, model(x).data)


@pytest.mark.parametrize("make", [
    lambda: MLPClassifier(hidden_sizes=(8,), epochs=2, norm="batch", random_state=0),
    lambda: SoftmaxClassifier(iterations=30, preprocessing="zca", random_state=0),
    lambda: LinearSVM(iterations=30, random_state=0),
])
def test_estimators_save_and_load_as_safetensors(tmp_path, blobs, make):
    X, y = blobs(n_per_class=20, d=5)
    labels = np.array(["cat", "dog", "frog"])[y]
    est = make().fit(X, labels)
    path = tmp_path / "est.safetensors"
    est.save(path)
    arrays = safetensors_numpy.load_file(str(path))  # plain tensors any safetensors reader can open
    assert arrays and all(a.dtype.kind in "biuf" for a in arrays.values())
    back = load(path)
    assert type(back) is type(est)
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    np.testing.assert_array_equal(back.classes_, est.classes_)
    with pytest.raises(ValueError, match="holds a"):
        (LinearSVM if not isinstance(est, LinearSVM) else SoftmaxClassifier).load(path)


# ---- untrusted files -----------------------------------------------------------------------------------------------


def write_raw(path, header: dict, data: bytes, length: int | None = None) -> None:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if length is None else length) + raw + data)


def peak_bytes(fn):
    tracemalloc.start()
    try:
        fn()
    except st.SafetensorsError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_truncated_file_is_a_clear_error(tmp_path):
    path = tmp_path / "m.safetensors"
    st.save_model(nn.Linear(30, 20), path)
    data = path.read_bytes()
    for cut in (4, 20, len(data) - 7):
        path.write_bytes(data[:cut])
        with pytest.raises(st.SafetensorsError, match="truncated|too short|not valid UTF-8 JSON"):
            st.load_file(path)


def test_header_lying_about_sizes_is_refused_without_allocating_the_claim(tmp_path):
    path = tmp_path / "bomb.safetensors"
    huge = [100_000, 100_000]  # 40 GB of float32 claimed, 16 bytes present
    write_raw(path, {"w": {"dtype": "F32", "shape": huge, "data_offsets": [0, 40_000_000_000]}}, b"\0" * 16)
    with pytest.raises(st.SafetensorsError, match="'w' ends at byte 40000000000 .* holds 16 bytes"):
        st.load_file(path)
    assert peak_bytes(lambda: st.load_file(path)) < 1 << 20
    write_raw(path, {"w": {"dtype": "F32", "shape": huge, "data_offsets": [0, 16]}}, b"\0" * 16)
    with pytest.raises(st.SafetensorsError, match=r"claims shape \[100000, 100000\] of F32 .* span 16 bytes"):
        st.load_file(path)
    assert peak_bytes(lambda: st.load_file(path)) < 1 << 20
    # a header length far past the end of the file: refused before reading it
    write_raw(path, {}, b"", length=1 << 60)
    with pytest.raises(st.SafetensorsError, match="claims 1152921504606846976 bytes"):
        st.load_file(path)
    assert peak_bytes(lambda: st.load_file(path)) < 1 << 20


@pytest.mark.parametrize("header,data,message", [
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
      "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12, "without holes or overlap"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 12, "bytes past the last tensor"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12, "starts at byte 4"),
    ({"a": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4, "BF16, which NumPy has no dtype"),
    ({"a": {"dtype": "Q7", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4, "unknown dtype 'Q7'"),
    ({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 0]}}, b"", "expected a list of ints >= 0"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": 1}}, b"\0" * 4, "exactly 'dtype'"),
    ({"__metadata__": {"k": 3}}, b"", "__metadata__ must map strings to strings"),
    ([1, 2], b"", "not a JSON object"),
])
def test_malformed_headers_are_refused_naming_the_rule(tmp_path, header, data, message):
    path = tmp_path / "bad.safetensors"
    write_raw(path, header, data)
    with pytest.raises(st.SafetensorsError, match=message):
        st.load_file(path)


def test_wrong_dtypes_and_shapes_name_the_entry_and_load_nothing(tmp_path):
    model = nn.MLP([4, 3, 2], seed=0)
    before = model.state_dict()
    path = tmp_path / "w.safetensors"
    sd = model.state_dict()
    st.save_file({**sd, "0.weight": sd["0.weight"].astype(np.int32)}, path)
    with pytest.raises(st.SafetensorsError, match=r"wrong dtype .*0.weight: int32 \(the model's is float32\)"):
        st.load_model(model, path)
    st.save_file({**sd, "2.weight": np.zeros((3, 3), np.float32)}, path)
    with pytest.raises(ValueError, match=r"2.weight: checkpoint has shape \(3, 3\)"):
        st.load_model(model, path)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    with pytest.raises(TypeError, match="has dtype <U1"):
        st.save_file({"labels": np.array(["a"])}, path)


def test_safetensors_without_chainrule_metadata_is_not_an_estimator(tmp_path):
    path = tmp_path / "plain.safetensors"
    st.save_model(nn.Linear(2, 2), path)
    with pytest.raises(ValueError, match="without chainrule's classifier metadata"):
        load(path)


def conv_pair():
    """A chainrule conv net and the same architecture in PyTorch (same layer indices, same layouts)."""
    ours = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 8, 3, padding=1, groups=2), nn.GELU(), nn.AvgPool2d(2), nn.Flatten(),
                         nn.Linear(8 * 4 * 4, 10))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                                 torch.nn.MaxPool2d(2), torch.nn.Conv2d(8, 8, 3, padding=1, groups=2),
                                 torch.nn.GELU(), torch.nn.AvgPool2d(2), torch.nn.Flatten(),
                                 torch.nn.Linear(8 * 4 * 4, 10))
    return ours, theirs


def test_conv_net_goes_to_pytorch_and_back_through_safetensors(tmp_path):
    model, tmodel = conv_pair()
    x = np.random.default_rng(0).standard_normal((6, 3, 16, 16)).astype(np.float32)
    model(cr.Tensor(x))  # training mode: running statistics move
    model.eval()
    path = tmp_path / "cnn.safetensors"
    st.save_file(model.to_torch_state_dict(), path)
    tmodel.load_state_dict(safetensors_torch.load_file(str(path)))
    tmodel.eval()
    with torch.no_grad():
        np.testing.assert_allclose(ours_out := model(cr.Tensor(x)).data, tmodel(torch.from_numpy(x)).numpy(),
                                   rtol=1e-5, atol=1e-5)
    # and back: a PyTorch-trained conv net loads into chainrule
    torch.manual_seed(0)
    tmodel.train()
    opt = torch.optim.SGD(tmodel.parameters(), lr=0.05)
    for _ in range(3):
        opt.zero_grad()
        tmodel(torch.from_numpy(x)).square().mean().backward()
        opt.step()
    tmodel.eval()
    safetensors_torch.save_file(tmodel.state_dict(), str(path))
    fresh, _ = conv_pair()
    fresh.eval().load_torch_state_dict(st.load_file(path))
    with torch.no_grad():
        np.testing.assert_allclose(fresh(cr.Tensor(x)).data, tmodel(torch.from_numpy(x)).numpy(), rtol=1e-5,
                                   atol=1e-5)
    assert not np.allclose(fresh(cr.Tensor(x)).data, ours_out)


def torch_twin(module):
    """The PyTorch module of a chainrule conv-net layer tree: same classes, settings and child names."""
    name = type(module).__name__
    if name == "Sequential":
        return torch.nn.Sequential(*[torch_twin(m) for m in module])
    if name == "Conv2d":
        return torch.nn.Conv2d(module.in_channels, module.out_channels, module.kernel_size, module.stride,
                               module.padding, module.dilation, module.groups, bias=module.bias is not None)
    if name == "BatchNorm2d":
        return torch.nn.BatchNorm2d(module.num_features, eps=module.eps)
    if name == "GELU":
        return torch.nn.GELU(module.approximate)
    if name == "MaxPool2d":
        return torch.nn.MaxPool2d(module.kernel_size, module.stride)
    if name == "Linear":
        return torch.nn.Linear(module.in_features, module.out_features, bias=module.bias is not None)
    raise AssertionError(f"no twin for {name}")


class TorchConvNet(torch.nn.Module):
    """nn.ConvNet's forward in PyTorch: whitening conv + activation, the blocks, global max, head, scale."""

    def __init__(self, net):
        super().__init__()
        self.whiten, self.whiten_act = torch_twin(net.whiten), torch_twin(net.whiten_act)
        self.blocks, self.head, self.scale = torch_twin(net.blocks), torch_twin(net.head), net.scale

    def forward(self, x):
        return self.head(self.blocks(self.whiten_act(self.whiten(x))).amax(dim=(2, 3))) * self.scale


def test_conv_net_estimator_goes_to_pytorch_through_safetensors(tmp_path):
    from chainrule.classifiers import ConvNetClassifier
    from chainrule.data import load_digits

    digits = load_digits()
    X, y = digits.X_train[:240].astype(np.float32), digits.y_train[:240]
    est = ConvNetClassifier(channels=(8, 16), epochs=1, batch_size=60, test_time_flip=False, test_time_shift=0,
                            matmul_precision="float32", random_state=0).fit(X, y)  # PyTorch runs float32
    path = tmp_path / "convnet_torch.safetensors"
    st.save_file(est.model_.to_torch_state_dict(), path)
    tmodel = TorchConvNet(est.model_)
    tmodel.load_state_dict(safetensors_torch.load_file(str(path)))
    tmodel.eval()
    images = est._network_inputs(X[:30].reshape(30, -1))  # (N, C, H, W) after the estimator's preprocessing
    with torch.no_grad():
        theirs = tmodel(torch.from_numpy(images)).numpy()
    np.testing.assert_allclose(theirs, est._scores(X[:30]), rtol=1e-5, atol=1e-5)
    est.save(tmp_path / "convnet.safetensors")  # the whole estimator, and back
    back = load(tmp_path / "convnet.safetensors")
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
