"""Plots of a search: non-empty PNGs for every kind, including categorical, diverged and halving trials."""

import numpy as np
import pytest

from chainrule.tune import Space, SearchResult, Trial, loguniform
from chainrule.tune.plots import plot_cv_curve, plot_heatmap, plot_scores, save_plots

pytest.importorskip("matplotlib")

PNG = b"\x89PNG\r\n\x1a\n"


def _result(trials, space, **config):
    return SearchResult(trials=trials, space=Space(space), config={"scoring": "accuracy", **config})


def _check_png(path, min_bytes=8_000):
    data = open(path, "rb").read()
    assert data.startswith(PNG) and len(data) > min_bytes


def test_scores_with_log_categorical_and_diverged_trials(tmp_path):
    rng = np.random.default_rng(0)
    trials = []
    for i in range(12):
        lr = float(10 ** rng.uniform(-4, 0))
        act = ["relu", "tanh"][i % 2]
        status = "diverged" if lr > 0.3 else "ok"
        score = None if status != "ok" else float(0.3 + 0.1 * rng.random())
        trials.append(Trial(trial=i, params={"lr": lr, "act": act}, status=status, score=score,
                            std=0.0 if score is not None else None, scores=[score] if score is not None else []))
    result = _result(trials, {"lr": loguniform(1e-4, 1.0), "act": ["relu", "tanh"]})
    _check_png(plot_scores(result, tmp_path / "scores.png"))
    paths = save_plots(result, tmp_path / "plots")
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["scores.png"]  # one parameter is not numeric: no heat map


def test_heatmap_grid_and_scatter_forms(tmp_path):
    grid = [Trial(trial=i, params={"lr": lr, "reg": reg}, score=0.2 + 0.01 * i, std=0.0, scores=[0.2 + 0.01 * i])
            for i, (lr, reg) in enumerate((a, b) for a in [1e-3, 1e-2, 1e-1] for b in [1e-4, 1e-2])]
    result = _result(grid, {"lr": [1e-3, 1e-2, 1e-1], "reg": [1e-4, 1e-2]})
    _check_png(plot_heatmap(result, "lr", "reg", tmp_path / "grid.png"))
    rng = np.random.default_rng(1)
    scattered = [Trial(trial=i, params={"lr": float(10 ** rng.uniform(-4, -1)), "reg": float(10 ** rng.uniform(-5, 1))},
                       score=float(rng.random()), std=0.0, scores=[0.5]) for i in range(15)]
    result = _result(scattered, {"lr": loguniform(1e-4, 1e-1), "reg": loguniform(1e-5, 10.0)})
    _check_png(plot_heatmap(result, "lr", "reg", tmp_path / "scatter.png"))
    assert sorted(p.rsplit("/", 1)[-1] for p in save_plots(result, tmp_path / "p")) == ["heatmap.png", "scores.png"]


def test_cv_curve_and_halving_budgets(tmp_path):
    ks = [1, 3, 5, 8, 10]
    folds = [[0.25 + 0.01 * k + 0.005 * f for f in range(5)] for k in ks]
    _check_png(plot_cv_curve(ks, folds, tmp_path / "cv.png"))
    trials = [Trial(trial=i, params={"k": k}, score=float(np.mean(s)), std=float(np.std(s)), scores=s)
              for i, (k, s) in enumerate(zip(ks, folds))]
    paths = save_plots(_result(trials, {"k": ks}, validation=5), tmp_path / "knn")
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["scores.png", "cv_k.png"]
    halving = [Trial(trial=i % 4, params={"lr": 10.0 ** -(i % 4)}, score=0.5 + 0.01 * i, std=0.0, scores=[0.5],
                     rung=i // 4, budget=[1, 3][i // 4]) for i in range(6)]
    result = _result(halving, {"lr": [1.0, 0.1, 0.01, 0.001]}, budget={"param": "epochs", "min": 1, "max": 3})
    _check_png(plot_scores(result, tmp_path / "halving.png"))
