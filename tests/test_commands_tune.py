"""`chainrule tune` end to end on the offline digits data with the real classifiers."""

import json
import socket

import pytest

from chainrule.cli import main
from chainrule.commands.tune import train_settings
from chainrule.tune import load_best

pytest.importorskip("chainrule.classifiers")


def _space(tmp_path, text, name="space.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


SOFTMAX_SPACE = """
[space]
lr = {loguniform = [1e-3, 1.0]}
reg = {loguniform = [1e-5, 1e-2]}

[fixed]
epochs = 2
batch_size = 128
"""


def test_random_search_then_resume_with_more_trials(tmp_path, capsys):
    space = _space(tmp_path, SOFTMAX_SPACE)
    run = tmp_path / "runs" / "s"
    rc = main(["tune", "--data", "digits", "--model", "softmax", "--space", space, "--strategy", "random",
               "--trials", "3", "--jobs", "1", "--out", str(run), "-q"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert out.splitlines()[0].split()[:5] == ["rank", "trial", "lr", "reg", "val"]
    assert "3 trials: 3 ok, 0 diverged, 0 failed" in out
    assert f"chainrule train --from-search {run}" in out
    for name in ("search.json", "trials.jsonl", "results.csv", "best.json", "plots/scores.png", "plots/heatmap.png"):
        assert (run / name).stat().st_size > 0, name
    best = load_best(run)
    assert best.data == "digits" and best.model == "softmax"
    assert set(best.params) == {"lr", "reg", "epochs", "batch_size"} and best.params["epochs"] == 2
    settings = train_settings(run)  # what `chainrule train --from-search` uses: the estimator's own names
    assert settings == {"data": "digits", "model": "softmax", "random_state": 0, "epochs": 2, "batch_size": 128,
                        "lr": best.params["lr"], "reg": best.params["reg"]}

    rc = main(["tune", "--resume", str(run), "--trials", "5", "--jobs", "1", "-q"])
    out = capsys.readouterr().out
    assert rc == 0 and "5 trials: 5 ok" in out
    first_three = [json.loads(line) for line in (run / "trials.jsonl").read_text().splitlines()]
    assert sorted(t["trial"] for t in first_three) == [0, 1, 2, 3, 4]  # the first three were not run again

    rc = main(["tune", "--resume", str(run), "--seed", "1", "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot resume" in err and "seed (run has 0, requested 1)" in err


def test_knn_grid_by_cross_validation_draws_accuracy_vs_k(tmp_path, capsys):
    space = _space(tmp_path, "[space]\nk = [1, 3, 7]\n")
    run = tmp_path / "knn"
    rc = main(["tune", "--data", "digits", "--model", "knn", "--space", space, "--cv", "3", "--subset", "600",
               "--jobs", "2", "--out", str(run), "-q"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "3 trials: 3 ok" in out and "± std" in out
    config = json.loads((run / "search.json").read_text())
    assert config["strategy"] == "grid" and config["validation"] == 3 and config["data"]["n_samples"] == 600
    png = (run / "plots" / "cv_k.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_halving_over_epochs(tmp_path, capsys):
    space = _space(tmp_path, "[space]\nlr = {loguniform = [1e-3, 1.0]}\n[fixed]\nbatch_size = 128\n")
    rc = main(["tune", "--data", "digits", "--model", "softmax", "--space", space, "--strategy", "halving",
               "--trials", "4", "--budget", "epochs:1:4", "--eta", "2", "--jobs", "1", "--out", str(tmp_path / "h"),
               "-q"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert out.splitlines()[0].split()[:4] == ["rank", "trial", "budget", "lr"]
    assert load_best(tmp_path / "h").params["epochs"] == 4


@pytest.mark.parametrize("args, message", [
    (["--space", "{bad}"], "unknown hyperparameter 'lrate' (did you mean 'lr'?) for SoftmaxClassifier; valid "
                           "names: "),
    ([], "--space FILE.toml is required"),
    (["--space", "{missing}"], "does not exist"),
    (["--space", "{good}", "--budget", "epochs"], "--budget must look like PARAM:MIN:MAX"),
    (["--space", "{good}", "--backend", "dask"], "--backend dask needs --scheduler"),
    (["--space", "{good}", "--cv", "500"], "k=500 stratified folds need at least 500 samples of every class"),
])
def test_usage_errors_are_one_line_with_exit_code_2(tmp_path, capsys, args, message):
    paths = {"bad": _space(tmp_path, "[space]\nlrate = [0.1]\n", "bad.toml"),
             "good": _space(tmp_path, "[space]\nlr = [0.1]\n", "good.toml"),
             "missing": str(tmp_path / "nope.toml")}
    args = [a.format(**paths) for a in args]
    rc = main(["tune", "--data", "digits", "--model", "softmax", "--out", str(tmp_path / "r"), "-q", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and message in err[0]
    if "valid names" in message:
        assert ", lr, " in err[0] and ", reg," in err[0] and "batch_size" in err[0]


def test_unreachable_scheduler_fails_fast_and_writes_nothing(tmp_path, capsys, dask_client_timeouts):
    timeouts = dask_client_timeouts
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    space = _space(tmp_path, "[space]\nk = [1, 3]\n")
    rc = main(["tune", "--data", "digits", "--model", "knn", "--space", space, "--backend", "dask", "--scheduler",
               f"tcp://127.0.0.1:{port}", "--connect-timeout", "1", "--out", str(tmp_path / "d"), "-q"])
    err = capsys.readouterr().err
    assert rc == 1 and f"no Dask scheduler answered at tcp://127.0.0.1:{port} within 1 s" in err
    assert timeouts == ["1.0s"]  # the client gave up after --connect-timeout
    assert not (tmp_path / "d").exists()


def test_train_from_search_uses_the_best_configuration(tmp_path, capsys):
    space = _space(tmp_path, SOFTMAX_SPACE)
    search = tmp_path / "runs" / "search"
    assert main(["tune", "--data", "digits", "--model", "softmax", "--space", space, "--strategy", "random",
                 "--trials", "2", "--jobs", "1", "--out", str(search), "-q"]) == 0
    best = load_best(search)
    run = tmp_path / "runs" / "retrain"
    capsys.readouterr()
    assert main(["train", "--from-search", str(search), "--out", str(run), "-q"]) == 0
    config = (run / "config.toml").read_text()
    assert 'model = "softmax"' in config and 'data = "digits"' in config and "\nepochs = 2.0\n" in config
    assert f"lr = {best.params['lr']!r}" in config
    # flags still win over the search's values
    run2 = tmp_path / "runs" / "retrain2"
    assert main(["train", "--from-search", str(search), "--epochs", "1", "--out", str(run2), "-q"]) == 0
    assert "\nepochs = 1.0\n" in (run2 / "config.toml").read_text()
    assert main(["train", "--from-search", str(tmp_path / "nope"), "--out", str(tmp_path / "x"), "-q"]) == 2


def _rgb_folder(root, n=12, size=16):
    """An image folder of 3 classes of RGB PNGs (red, green, blue-ish noise, with a bright left edge so mirror images
    differ): what HOG + colour features and flips need."""
    from PIL import Image
    import numpy as np

    rng = np.random.default_rng(0)
    for c, name in enumerate(("red", "green", "blue")):
        (root / name).mkdir(parents=True)
        for i in range(n):
            img = rng.integers(0, 80, (size, size, 3), dtype=np.uint8)
            img[..., c] += 150
            img[:, :3] = 255
            Image.fromarray(img).save(root / name / f"{i}.png")
    return root


@pytest.mark.parametrize("model, space, expect", [
    ("softmax", '[space]\nfeatures = ["hog_color"]\npreprocessing = ["zca"]\naugment = ["flip"]\n'
                'lr = [0.01, 0.1]\n[fixed]\nepochs = 2\nhog_cell = 4\n',
     {"features": "hog_color", "preprocessing": "zca", "augment": "flip", "hog_cell": 4}),
    ("mlp", '[space]\npreprocessing = ["zca"]\naugment = ["flip"]\nhidden_sizes = [[8], [4, 4]]\n'
            'norm = ["layer"]\n[fixed]\nepochs = 2\nbatch_size = 16\n',
     {"preprocessing": "zca", "augment": "flip", "norm": "layer"}),
])
def test_from_search_carries_every_searched_parameter(model, space, expect, tmp_path, isolated_cache):
    """hog_color features, zca preprocessing and flip augmentation (and list- or None-valued parameters) go from
    the search's best trial into `chainrule train` unchanged, under the estimator's names."""
    try:  # Python >= 3.11
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the tomli backport (a dependency there)
        import tomli as tomllib

    import chainrule.classifiers as classifiers

    data = f"folder:{_rgb_folder(tmp_path / 'images')}"
    search = tmp_path / "search"
    assert main(["tune", "--data", data, "--model", model, "--space", _space(tmp_path, space), "--strategy", "grid",
                 "--jobs", "1", "--out", str(search), "-q"]) == 0
    best = load_best(search)
    assert all(best.params[k] == v for k, v in expect.items())
    run = tmp_path / "retrain"
    assert main(["train", "--from-search", str(search), "--out", str(run), "-q"]) == 0
    config = tomllib.loads((run / "config.toml").read_text())
    fitted = classifiers.load(run / "model.npz").get_params()
    for name, value in best.params.items():
        assert config[name] == value and fitted[name] == value, name
    assert config["random_state"] == 0 and config["data"] == data


@pytest.mark.parametrize("text, message", [
    ("[other]\nk = [1, 3]\n", "unknown table [other]; a space file holds a [space] table and an optional [fixed] "
                              "table, or parameter keys at the top level"),
    ("[space]\nk = [-1]\n", "hyperparameter 'k' = -1 (from the space) is refused: KNearestNeighbor: k must be"),
    ("[space]\nk = [1.5]\n", "hyperparameter 'k' = 1.5 (from the space) is refused"),
    ("[space]\nk = [1, 3]\nmetric = ['l1', 'l3']\n", "hyperparameter 'metric' = 'l3' (from the space) is refused"),
    ("[space]\nk = {randint = [-5, 0]}\n", "is refused: KNearestNeighbor: k must be"),
])
def test_space_values_are_checked_before_anything_is_created(tmp_path, capsys, text, message):
    space = _space(tmp_path, text)
    rc = main(["tune", "--data", "digits", "--model", "knn", "--space", space, "--out", str(tmp_path / "s"), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "s").exists()


def test_huge_ranges_stay_lazy(tmp_path, capsys, chainrule_process):
    """A range of two million values and randint up to 1e9 cost O(1) memory, and search.json stays small."""
    import tracemalloc

    from chainrule.tune.space import load_space

    space = _space(tmp_path, "[space]\nk = {range = [1, 2000000]}\nchunk_size = {randint = [1, 1000000000]}\n")
    tracemalloc.start()
    try:
        loaded, _ = load_space(space)
        points = loaded.sample(3, seed=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000 and loaded.grid_size == 1_999_999 * 999_999_999
    assert all(1 <= p["k"] < 2_000_000 and 1 <= p["chunk_size"] < 10**9 for p in points)
    run = chainrule_process(["tune", "--data", "digits", "--model", "knn", "--space", space, "--trials", "2",
                             "--subset", "400", "--jobs", "1", "--out", str(tmp_path / "s"), "-q"], tmp_path)
    assert run.returncode == 1 and "no trial finished ok" in run.stderr  # k > the training samples, by design
    search = (tmp_path / "s" / "search.json")
    assert search.stat().st_size < 20_000
    assert json.loads(search.read_text())["space"]["k"] == {"range": [1, 2000000, 1]}
