"""optim.param_groups: parameters split by kind (norm / bias / weight) into optimizer groups with their own options."""
from __future__ import annotations

import numpy as np
import pytest

from chainrule import nn, optim
from chainrule.optim import param_groups


def test_groups_by_kind_with_their_options_and_frozen_parameters_left_out():
    model = nn.MLP([4, 5, 3], norm="batch", seed=0)
    names = {id(p): n for n, p in model.named_parameters()}
    model[0].bias.requires_grad = False
    groups = param_groups(model, {"norm": {"lr": 6.4, "weight_decay": 0.0}})
    assert [g["name"] for g in groups] == ["weight", "bias", "norm"]
    assert sorted(names[id(p)] for p in groups[2]["params"]) == ["1.bias", "1.weight"]
    assert [names[id(p)] for p in groups[1]["params"]] == ["3.bias"]  # 0.bias is frozen
    assert sorted(names[id(p)] for p in groups[0]["params"]) == ["0.weight", "3.weight"]
    opt = optim.SGD(groups, lr=0.1, momentum=0.9, weight_decay=5e-4)
    assert [(g["lr"], g["weight_decay"]) for g in opt.param_groups] == [(0.1, 5e-4), (0.1, 5e-4), (6.4, 0.0)]
    for p in model.parameters():
        p.grad = np.ones_like(p.data)
    before = model[1].bias.data.copy()
    opt.step()
    np.testing.assert_allclose(model[1].bias.data, before - 6.4, rtol=1e-6)  # the norm group's own lr, no decay


def test_groups_refuse_unknown_kinds():
    model = nn.MLP([4, 3], seed=0)
    with pytest.raises(ValueError, match="unknown parameter kind"):
        param_groups(model, {"norms": {"lr": 1.0}})
    with pytest.raises(ValueError, match="kind\\(\\) returned 'other'"):
        param_groups(model, kind=lambda module, name: "other")
