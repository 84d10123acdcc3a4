"""Search spaces: distributions, grids, seeded draws, space.toml parsing and the errors for bad spaces."""

import math

import numpy as np
import pytest

from chainrule.tune import (Choice, LogUniform, RandInt, Space, SpaceError, Uniform, choice, load_space,
                            loguniform, parse_space, randint, uniform)
from chainrule.tune.space import as_dimension, check_names


def test_grid_is_the_cartesian_product_last_name_fastest():
    space = Space({"a": [1, 2], "b": ["x", "y", "z"]})
    assert space.grid_size == 6
    assert space.grid() == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 1, "b": "z"},
                            {"a": 2, "b": "x"}, {"a": 2, "b": "y"}, {"a": 2, "b": "z"}]


def test_ranges_and_randint_are_finite():
    space = Space({"k": range(1, 10, 4), "h": randint(3, 5)})
    assert space.grid() == [{"k": 1, "h": 3}, {"k": 1, "h": 4}, {"k": 5, "h": 3}, {"k": 5, "h": 4},
                            {"k": 9, "h": 3}, {"k": 9, "h": 4}]


def test_grid_of_a_continuous_space_says_which_parameter_and_what_to_do():
    space = Space({"lr": loguniform(1e-4, 1e-1), "reg": [0.1, 1.0]})
    assert space.grid_size is None
    with pytest.raises(SpaceError, match=r"lr = loguniform\(0.0001, 0.1\) is continuous.*random"):
        space.grid()


def test_loguniform_draws_are_uniform_in_log_and_inside_bounds():
    rng = np.random.default_rng(0)
    d = loguniform(1e-4, 1e-1)
    draws = np.array([d.sample(rng) for _ in range(6000)])
    assert draws.min() >= 1e-4 and draws.max() < 1e-1
    decades = np.histogram(np.log10(draws), bins=[-4, -3, -2, -1])[0]
    assert np.all(np.abs(decades / len(draws) - 1 / 3) < 0.03)  # as many draws per decade
    u = uniform(2.0, 3.0)
    draws = np.array([u.sample(rng) for _ in range(2000)])
    assert 2.0 <= draws.min() and draws.max() < 3.0 and abs(draws.mean() - 2.5) < 0.03
    r = randint(1, 4)
    assert set(r.sample(rng) for _ in range(200)) == {1, 2, 3}  # high excluded
    assert isinstance(r.sample(rng), int) and isinstance(u.sample(rng), float)


def test_sampling_is_seeded_and_prefix_stable():
    space = Space({"lr": loguniform(1e-4, 1e-1), "reg": uniform(0, 1), "act": ["relu", "tanh"]})
    a, b = space.sample(10, seed=3), space.sample(10, seed=3)
    assert a == b
    assert space.sample(4, seed=3) == a[:4]  # more trials never change the earlier ones
    assert space.sample(10, seed=4) != a


def test_finite_space_is_sampled_without_replacement_and_capped():
    space = Space({"a": [1, 2, 3], "b": [True, False]})
    draws = space.sample(4, seed=0)
    assert len({tuple(d.items()) for d in draws}) == 4
    assert space.sample(3, seed=0) == draws[:3]
    everything = space.sample(100, seed=0)
    assert len(everything) == 6 and sorted(map(str, everything)) == sorted(map(str, space.grid()))


def test_is_log():
    space = Space({"lr": loguniform(1e-3, 1.0), "reg": [1e-4, 1e-3, 1e-2], "k": [1, 2, 3], "u": uniform(0, 1),
                   "act": ["relu", "tanh", "elu"]})
    assert [space.is_log(n) for n in space] == [True, True, False, False, False]


def test_to_dict_round_trips():
    space = Space({"lr": loguniform(1e-4, 0.1), "reg": uniform(0.0, 1.0), "k": randint(1, 9), "m": ["l1", "l2"]})
    again = Space(space.to_dict())
    assert again == space
    assert isinstance(again["lr"], LogUniform) and isinstance(again["reg"], Uniform)
    assert isinstance(again["k"], RandInt) and isinstance(again["m"], Choice)


@pytest.mark.parametrize("text, expected", [
    ("loguniform(1e-4, 1e-1)", LogUniform(1e-4, 1e-1)),
    ("uniform(0, 0.5)", Uniform(0, 0.5)),
    ("randint(1, 20)", RandInt(1, 20)),
    ({"loguniform": [1e-4, 1e-1]}, LogUniform(1e-4, 1e-1)),
    ({"range": [1, 10, 3]}, Choice([1, 4, 7])),
    ({"logspace": [1e-4, 1e-1, 4]}, None),
    ({"logspace": [64, 1024, 5]}, Choice([64, 128, 256, 512, 1024])),
    ({"linspace": [0.0, 1.0, 3]}, Choice([0.0, 0.5, 1.0])),
    ({"choice": ["a", "b"]}, Choice(["a", "b"])),
])
def test_dimension_forms(text, expected):
    d = as_dimension(text, "p")
    if expected is None:
        assert np.allclose(d.values(), [1e-4, 1e-3, 1e-2, 1e-1])
    else:
        assert d == expected


@pytest.mark.parametrize("value, message", [
    ([], "hyperparameter 'p': empty list of values"),
    ({"loguniform": [0, 1]}, r"needs 0 < low < high, got low=0"),
    ({"loguniform": [1e-1, 1e-4]}, r"needs 0 < low < high"),
    ({"uniform": [1, 1]}, r"needs low < high"),
    ({"randint": [5, 5]}, r"\[low, high\) and needs low < high"),
    ({"randint": [1.5, 5]}, r"randint low must be an int"),
    ({"uniform": [0, float("nan")]}, "must be finite"),
    ({"loguniform": [1e-4]}, r"takes two arguments"),
    ({"logunifrom": [1e-4, 1e-1]}, r"unknown distribution 'logunifrom' \(did you mean 'loguniform'\?\)"),
    ({"range": [5, 1]}, "is empty"),
    ({"uniform": [0, 1], "randint": [0, 2]}, "exactly one key"),
    ("relu", r"write a list of values like \['relu'\]"),
    (0.1, r"a single fixed value belongs in \[fixed\]"),
    ("loguniform(a, b)", "expected a number"),
    ([1.0, float("inf")], "must be finite"),
])
def test_invalid_dimensions_name_the_parameter_and_the_rule(value, message):
    with pytest.raises(SpaceError, match=message) as info:
        as_dimension(value, "p")
    assert "'p'" in str(info.value)


def test_empty_space_is_an_error():
    with pytest.raises(SpaceError, match="the search space is empty"):
        Space({})
    with pytest.raises(SpaceError, match="names must be identifiers"):
        Space({"learning rate": [1]})


def test_unknown_names_are_listed_with_the_valid_ones():
    with pytest.raises(SpaceError) as info:
        check_names(["lrr", "reg", "zzz"], ["lr", "reg", "epochs", "random_state"], "SoftmaxClassifier")
    msg = str(info.value)
    assert "unknown hyperparameters 'lrr' (did you mean 'lr'?), 'zzz' for SoftmaxClassifier" in msg
    assert "valid names: epochs, lr, random_state, reg" in msg
    check_names(["lr"], ["lr"], "x")  # fine: no error


def test_space_toml_with_space_and_fixed_tables(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text('[space]\nlr = {loguniform = [1e-4, 1e-1]}\nreg = [1e-4, 1e-3]\nk = "randint(1, 5)"\n'
                    'epochs = {range = [5, 30, 5]}\n\n[fixed]\nbatch_size = 200\nhidden = [100, 50]\n')
    space, fixed = load_space(path)
    assert list(space) == ["lr", "reg", "k", "epochs"]
    assert space["lr"] == loguniform(1e-4, 1e-1) and space["k"] == randint(1, 5)
    assert list(space["epochs"].values()) == [5, 10, 15, 20, 25]  # a range, kept lazy
    assert space["epochs"].to_spec() == {"range": [5, 30, 5]}
    assert fixed == {"batch_size": 200, "hidden": [100, 50]}


def test_space_toml_flat_form_and_errors(tmp_path):
    flat = tmp_path / "flat.toml"
    flat.write_text('k = [1, 3, 5]\nmetric = ["l1", "l2"]\n')
    space, fixed = load_space(flat)
    assert space.grid_size == 6 and fixed == {}
    bad = tmp_path / "bad.toml"
    bad.write_text("[space]\nk = [1, 3\n")
    with pytest.raises(SpaceError, match="not valid TOML"):
        load_space(bad)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_space(tmp_path / "missing.toml")
    with pytest.raises(SpaceError, match="empty"):
        parse_space({"space": {}})
    with pytest.raises(SpaceError, match="unexpected top-level key"):
        parse_space({"space": {"k": [1]}, "strategy": "grid"})
    with pytest.raises(SpaceError, match="k appear in both"):
        parse_space({"space": {"k": [1]}, "fixed": {"k": 3}})


def test_choice_helpers():
    assert choice([1, 2]).values() == [1, 2]
    assert Choice(np.array([1.5, 2.5])).values() == [1.5, 2.5] and isinstance(Choice(np.arange(2)).values()[0], int)
    assert math.isclose(LogUniform(1e-3, 1.0).low, 1e-3)


def test_huge_grids_are_refused_but_can_be_sampled():
    space = Space({"a": randint(0, 2000), "b": randint(0, 2000)})
    assert space.grid_size == 4_000_000
    with pytest.raises(SpaceError, match="the grid has 4,000,000 combinations"):
        space.grid()
    draws = space.sample(5, seed=0)
    assert len(draws) == 5 and draws == space.sample(5, seed=0)
