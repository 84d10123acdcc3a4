"""The two stacks are one: `chainrule train` trains exactly the estimator the Python API trains with the same
parameters, data split and seed (the same accuracy, the same weights), for every model; and
configs/cifar10-mlp-zca.toml is bench/bench_mlp.py's best_zca recipe, parameter for parameter."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import chainrule.classifiers as classifiers
from chainrule.classifiers import KNearestNeighbor, LinearSVM, SoftmaxClassifier
from chainrule.classifiers.mlp import MLPClassifier
from chainrule.cli import main
from chainrule.commands.common import split_data

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the tomli backport (a dependency there)
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]

CASES = {
    "knn": (["--k", "3", "--metric", "l1"], KNearestNeighbor, dict(k=3, metric="l1")),
    "svm": (["--epochs", "3", "--batch-size", "128", "--reg", "0.01"], LinearSVM,
            dict(epochs=3.0, batch_size=128, reg=0.01)),
    "softmax": (["--epochs", "2", "--augment", "flip", "--optimizer", "adam", "--lr", "0.01"], SoftmaxClassifier,
                dict(epochs=2.0, augment="flip", optimizer="adam", lr=0.01)),
    "mlp": (["--hidden", "16", "--epochs", "3", "--dropout", "0.1", "--batch-size", "64", "--augment", "flip"],
            MLPClassifier, dict(hidden_sizes=(16,), epochs=3, dropout=0.1, batch_size=64, augment="flip")),
}


def _weights(est):
    if isinstance(est, KNearestNeighbor):
        return [est.X_fit_, est.y_fit_]
    if isinstance(est, MLPClassifier):
        return [p.data for p in est.model_.parameters()]
    return [est.W_, est.b_]


@pytest.mark.parametrize("model", list(CASES))
def test_cli_and_python_api_train_the_same_model(model, tmp_path):
    flags, cls, params = CASES[model]
    run = tmp_path / model
    seed = ["--split-seed", "5"] if model == "knn" else ["--seed", "5"]  # kNN has no random_state
    assert main(["train", "--data", "digits", "--model", model, *flags, *seed, "--out", str(run), "-q"]) == 0
    data = split_data("digits", 0.1, 5)  # the split the CLI carved: --seed (random_state) seeds it too
    if model == "knn":
        api = cls(**params).fit(data.X_train, data.y_train)
    else:
        api = cls(**params, random_state=5).fit(data.X_train, data.y_train,
                                                validation_data=(data.X_val, data.y_val))
    summary = json.loads((run / "summary.json").read_text())
    assert api.score(data.X_val, data.y_val) == summary["val_acc"]
    cli = classifiers.load(run / "model.npz")
    assert cli.get_params() == {**api.get_params(), **{k: list(v) for k, v in params.items()
                                                        if isinstance(v, tuple)}}
    for a, b in zip(_weights(api), _weights(cli), strict=True):
        np.testing.assert_array_equal(a, b)


def _bench_configs():
    spec = importlib.util.spec_from_file_location("bench_mlp", ROOT / "bench" / "bench_mlp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CONFIGS


def test_the_zca_config_is_bench_mlps_best_zca_recipe():
    config = tomllib.loads((ROOT / "configs" / "cifar10-mlp-zca.toml").read_text())
    recipe = _bench_configs()["best_zca"]
    params = {k: v for k, v in config.items() if k not in ("model", "data", "val_size")}
    assert params == {k: list(v) if isinstance(v, tuple) else v for k, v in recipe.items()}
    assert config["model"] == "mlp" and config["val_size"] == 5000  # bench_mlp: 5,000 validation images, seed 0
    assert config["data"] == "folder:../shared/data/cifar10-train-jpeg.tar.gz"


def test_the_zca_config_trains_what_the_python_api_trains(tmp_path):
    """The config file's fit, shortened (2 epochs, no time budget: a budget is not reproducible step for step) and on
    the offline digits, is the Python API's fit with the same parameters."""
    cfg = ROOT / "configs" / "cifar10-mlp-zca.toml"
    run = tmp_path / "zca"
    assert main(["train", "--config", str(cfg), "--data", "digits", "--val-size", "180", "--epochs", "2",
                 "--time-budget", "none", "--hidden", "64,64", "--out", str(run), "-q"]) == 0
    params = {k: v for k, v in tomllib.loads(cfg.read_text()).items() if k not in ("model", "data", "val_size")}
    params.update(epochs=2, time_budget=None, hidden_sizes=(64, 64))
    data = split_data("digits", 180, 0)
    api = MLPClassifier(**params).fit(data.X_train, data.y_train, validation_data=(data.X_val, data.y_val))
    cli = classifiers.load(run / "model.npz")
    assert cli.preprocessing == "zca" and cli.norm == "batch" and cli.augment is True
    for a, b in zip(_weights(api), _weights(cli), strict=True):
        np.testing.assert_array_equal(a, b)
    assert api.score(data.X_val, data.y_val) == json.loads((run / "summary.json").read_text())["val_acc"]
