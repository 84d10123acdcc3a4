"""The command line's defaults: kNN chooses k and the metric on validation; the MLP starts from the two-layer
recipe (bench/RESULTS_classifiers.md measures both on CIFAR-10)."""

from __future__ import annotations

import json

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib

import pytest

from chainrule.cli import main


def _config(capsys, *argv):
    assert main(["train", *argv, "--dry-run", "-q"]) == 0
    return tomllib.loads(capsys.readouterr().out)


def test_knn_chooses_k_and_the_metric_on_validation_by_default(tmp_path, capsys):
    config = _config(capsys, "--model", "knn")
    assert config["select_k"] == [1, 3, 5, 10, 20] and config["select_metric"] == ["l1", "l2"]
    assert "select_metric" not in _config(capsys, "--model", "knn", "--metric", "l2")
    assert "select_k" not in _config(capsys, "--model", "knn", "--k", "3")
    assert _config(capsys, "--model", "knn", "--select-metric", "l2", "--select-k", "1,7")["select_k"] == [1, 7]
    assert main(["train", "--model", "knn", "--out", str(tmp_path / "run"), "-q"]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    table = summary["val_acc_by_metric"]
    assert set(table) == {"l1", "l2"} and all(set(by_k) == {"1", "3", "5", "10", "20"} for by_k in table.values())
    best = max((acc, -int(k), -["l1", "l2"].index(m)) for m, by_k in table.items() for k, acc in by_k.items())
    saved = tomllib.loads((tmp_path / "run" / "config.toml").read_text())
    assert (summary["knn_k"], saved["k"], saved["metric"]) == (-best[1], -best[1], ["l1", "l2"][-best[2]])
    assert summary["val_acc"] == best[0]


def test_mlp_starts_from_the_two_layer_recipe_on_natural_images():
    from chainrule.commands import params as P
    from chainrule.data.registry import flips_keep_labels

    assert flips_keep_labels("cifar10:x") and flips_keep_labels("folder:x")
    recipe = P.defaults("mlp", flips=True)
    assert (recipe["epochs"], recipe["augment"], recipe["hidden_sizes"]) == (15, "flip", (100,))
    assert (recipe["optimizer"], recipe["lr"], recipe["weight_decay"], recipe["batch_size"]) == ("adam", 0.001,
                                                                                               0.0001, 200)
    other = P.defaults("softmax", flips=True)
    assert other["augment"] is False and other["epochs"] != 15  # the linear models keep their own defaults


@pytest.mark.parametrize("data", ["digits", "spiral"])
def test_data_whose_mirror_image_changes_the_label_keep_the_estimator_defaults(capsys, data):
    """A mirrored 2, 3 or 7 is not that digit (and the spiral's points are no images): no flips, and the MLP's own
    50 epochs (the 15-epoch recipe is CIFAR-10's; on 1,617 digits it stops short)."""
    from chainrule.data.registry import flips_keep_labels

    assert not flips_keep_labels(data)
    config = _config(capsys, "--model", "mlp", "--data", data)
    assert (config["epochs"], config["augment"], config["hidden_sizes"]) == (50, False, [100])
    assert _config(capsys, "--model", "mlp", "--data", data, "--augment", "false")["augment"] is False


def test_select_settings_belong_to_knn(capsys):
    assert main(["train", "--model", "svm", "--select-metric", "l1", "--dry-run", "-q"]) == 2
    assert "--select-metric chooses a kNN's metric" in capsys.readouterr().err
    assert main(["train", "--model", "knn", "--select-metric", "l3", "--dry-run", "-q"]) == 2
    assert "must list metrics among l2, l1" in capsys.readouterr().err
