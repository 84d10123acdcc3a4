"""A model registered through the public API is offered by every front end, with no other file changed.

The test writes a nearest-centroid classifier (each class's mean training sample; the nearest mean wins), registers
it as "centroid", and then trains it with `chainrule train --model centroid`, compares it with `compare --models`,
tunes it with `tune --model`, evaluates and predicts with the run it wrote, and finds it in the playground's model
list and session.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from chainrule.classifiers import BaseClassifier, register, unregister
from chainrule.classifiers.base import check_real_param, check_X
from chainrule.cli import main


class NearestMean(BaseClassifier):
    """Nearest centroid: the class whose mean training sample is closest (Euclidean distance) wins.

    Parameters
    ----------
    shrink : pull every class mean this fraction of the way toward the mean of all training samples (0: none).
    """

    def __init__(self, shrink: float = 0.0):
        self.shrink = shrink

    def _validate_params(self) -> None:
        if check_real_param(self, "shrink", 0.0) > 1:
            raise ValueError(f"NearestMean: shrink must be in [0, 1], got {self.shrink!r}")

    def fit(self, X: Any, y: Any) -> "NearestMean":
        self._validate_params()
        X = check_X(X, self, reset=True, dtype=np.float64)
        y_index = self._fit_labels(y, len(X))
        means = np.stack([X[y_index == c].mean(axis=0) for c in range(len(self.classes_))])
        self.centroids_ = (1 - self.shrink) * means + self.shrink * X.mean(axis=0)
        return self

    def _distances(self, X: Any) -> np.ndarray:
        self._check_is_fitted()
        X = check_X(X, self, reset=False, dtype=np.float64)
        return ((X[:, None, :] - self.centroids_[None]) ** 2).sum(axis=2)

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[self._distances(X).argmin(axis=1)]

    def predict_proba(self, X: Any) -> np.ndarray:
        s = -self._distances(X)
        s = np.exp(s - s.max(axis=1, keepdims=True))
        return s / s.sum(axis=1, keepdims=True)

    def n_parameters(self) -> int:
        return int(self.centroids_.size)

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {}, {"centroids_": self.centroids_}

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.centroids_ = arrays["centroids_"]


@pytest.fixture
def centroid():
    register("centroid", NearestMean, label="nearest centroid", inputs=("vectors", "images", "points"))
    yield
    unregister("centroid")


def test_train_evaluate_and_predict_offer_a_registered_model(centroid, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", "digits", "--model", "centroid", "--shrink", "0.1", "--out", str(run), "-q"]) == 0
    out = capsys.readouterr().out
    assert "NearestMean" in out and "validation accuracy" in out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["model"] == "centroid" and summary["estimator"] == "NearestMean"
    assert summary["num_parameters"] == 10 * 64 and summary["val_acc"] > 0.8
    assert 'shrink = 0.1' in (run / "config.toml").read_text()

    from chainrule.runs import load_trained

    trained = load_trained(run)
    assert isinstance(trained.estimator, NearestMean) and trained.model == "centroid"
    assert main(["evaluate", str(run), "-q"]) == 0
    assert f"{100 * summary['val_acc']:.2f}%" in capsys.readouterr().out

    from PIL import Image

    image = tmp_path / "x.png"
    Image.new("L", (8, 8)).save(image)
    assert main(["predict", str(run), str(image), "-q"]) == 0

    capsys.readouterr()
    assert main(["train", "--model", "centroid", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())  # (argparse wraps it to the terminal's width)
    assert "centroid (NearestMean)" in help_text and "--shrink VALUE" in help_text


def test_a_bad_parameter_of_a_registered_model_is_a_usage_error(centroid, tmp_path, capsys):
    assert main(["train", "--data", "digits", "--model", "centroid", "--shrink", "2", "--out",
                 str(tmp_path / "r"), "-q"]) == 2
    assert "shrink must be in [0, 1], got 2.0" in capsys.readouterr().err
    assert main(["train", "--data", "digits", "--model", "centroid", "--lr", "0.1", "--out",
                 str(tmp_path / "r"), "-q"]) == 2
    assert "lr (a parameter of" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_compare_offers_a_registered_model(centroid, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--data", "digits", "--models", "centroid,softmax", "--epochs", "1",
                 "--random-tries", "0", "--out", str(out), "-q"]) == 0
    rows = json.loads((out / "summary.json").read_text())["rows"]
    assert [r["model"] for r in rows] == ["nearest centroid", "softmax classifier"]
    assert (out / "centroid" / "report.html").is_file()


def test_tune_offers_a_registered_model(centroid, tmp_path, capsys):
    space = tmp_path / "space.toml"
    space.write_text("[space]\nshrink = [0.0, 0.5]\n")
    run = tmp_path / "s"
    assert main(["tune", "--data", "digits", "--model", "centroid", "--space", str(space), "--jobs", "1",
                 "--out", str(run), "-q"]) == 0
    assert "2 trials: 2 ok" in capsys.readouterr().out
    from chainrule.commands.tune import train_settings

    settings = train_settings(run)
    assert settings["model"] == "centroid" and settings["shrink"] in (0.0, 0.5)


def test_the_playground_offers_a_registered_model(centroid):
    from chainrule.playground import Session
    from chainrule.playground.protocol import public_rules

    rules = public_rules()
    assert {"name": "centroid", "label": "nearest centroid", "estimator": "NearestMean"} in rules["models"]
    assert rules["params"]["centroid"] == {}
    s = Session()
    assert s.apply({"type": "set", "model": "centroid"}) == "model"
    assert isinstance(s.est, NearestMean) and s._trained()  # no training loop: fitted at once
    assert not s.step()
    frame = s.frame()
    assert frame["surface"] is not None and frame["train_accuracy"] > 0.3
