"""nn.ConvNet against the same layers in PyTorch with the same weights: scores, loss, every gradient, evaluation
mode after training-mode batches (running statistics); dirac initialisation; frozen whitening and norm scales."""
from __future__ import annotations

import numpy as np
import pytest

from chainrule import nn
from chainrule.nn import functional as F
from chainrule.nn import init

torch = pytest.importorskip("torch")


def _torch_twin(net: nn.ConvNet):
    """PyTorch's layers for ``net``'s config, holding ``net``'s weights."""
    from torch import nn as tnn

    c = net.config
    layers = [tnn.Conv2d(c["in_channels"], net.whiten.out_channels, c["whiten_kernel"]), tnn.GELU()]
    cin = net.whiten.out_channels
    for w in c["channels"]:
        layers += [tnn.Conv2d(cin, w, 3, padding="same", bias=False), tnn.MaxPool2d(2),
                   tnn.BatchNorm2d(w, eps=1e-12, momentum=c["bn_momentum"]), tnn.GELU(),
                   tnn.Conv2d(w, w, 3, padding="same", bias=False),
                   tnn.BatchNorm2d(w, eps=1e-12, momentum=c["bn_momentum"]), tnn.GELU()]
        cin = w
    twin = tnn.Sequential(*layers, tnn.AdaptiveMaxPool2d(1), tnn.Flatten(), tnn.Linear(cin, c["n_classes"], bias=False))
    with torch.no_grad():
        for (name, p), tp in zip(net.named_parameters(), twin.parameters(), strict=True):
            tp.copy_(torch.from_numpy(np.ascontiguousarray(p.data.T if name == "head.weight" else p.data)))
    return twin


def test_scores_gradients_and_running_statistics_match_pytorch():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 3, 12, 12)).astype(np.float32)
    y = rng.integers(0, 10, 16)
    net = nn.ConvNet(3, 10, channels=(8, 16), seed=0, input_size=12)
    net.set_whitening(rng.standard_normal((24, 3, 2, 2)).astype(np.float32))
    twin = _torch_twin(net)
    loss = F.cross_entropy(net(x), y, label_smoothing=0.2)
    loss.backward()
    tloss = torch.nn.functional.cross_entropy(twin(torch.from_numpy(x)) * net.scale, torch.from_numpy(y),
                                              label_smoothing=0.2)
    tloss.backward()
    assert float(loss.data) == pytest.approx(float(tloss.detach()), rel=1e-5)
    for (name, p), tp in zip(net.named_parameters(), twin.parameters(), strict=True):
        if not p.requires_grad:  # the whitening filters and the norms' scales are frozen
            assert name == "whiten.weight" or name.endswith(("2.weight", "5.weight"))
            continue
        g = p.grad.T if name == "head.weight" else p.grad
        np.testing.assert_allclose(g, tp.grad.numpy(), rtol=1e-3, atol=1e-5 * np.abs(tp.grad.numpy()).max(),
                                   err_msg=name)
    for _ in range(2):
        net(x)
        twin(torch.from_numpy(x))
    net.eval()
    twin.eval()
    np.testing.assert_allclose(net(x).data, twin(torch.from_numpy(x)).detach().numpy() * net.scale, atol=2e-5)


def test_dirac_filters_pass_channels_through():
    w = init.dirac((4, 3, 3, 3))
    x = np.random.default_rng(1).standard_normal((2, 3, 5, 5)).astype(np.float32)
    out = F.conv2d(x, w, padding="same").data
    np.testing.assert_allclose(out[:, :3], x, atol=1e-6)
    np.testing.assert_array_equal(out[:, 3], 0)
    with pytest.raises(ValueError, match="conv weight shape"):
        init.dirac((4, 3))
