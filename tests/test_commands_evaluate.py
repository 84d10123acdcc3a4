"""`chainrule evaluate` on a separate held-out test set: a folder or .tar.gz scored whole, never a 10% "split"."""

import json
import re
import tarfile

import numpy as np
import pytest

from chainrule.cli import main

CLASSES = ("blue", "green", "red")


def _write_folder(root, per_class, seed, classes=CLASSES):
    """8x8 RGB PNGs whose dominant colour is the class (learnable in a few epochs)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            img = rng.integers(0, 90, (8, 8, 3), dtype=np.uint8)
            img[:, :, (2, 1, 0)[k % 3]] += 150
            Image.fromarray(img).save(root / name / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module", autouse=True)
def cache_dir(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:  # decoded image folders are cached here, not in ~/.cache
        mp.setenv("CHAINRULE_DATA", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def image_run(tmp_path_factory, cache_dir):
    base = tmp_path_factory.mktemp("heldout")
    train = _write_folder(base / "train", 40, seed=0)
    test = _write_folder(base / "test", 17, seed=1)  # 51 images: a 10% split would be 5 or 6
    with tarfile.open(base / "test.tar.gz", "w:gz") as tf:
        tf.add(test, arcname="test")
    run = base / "run"
    assert main(["train", "--data", f"folder:{train}", "--model", "softmax", "--epochs", "3", "--out", str(run),
                 "-q"]) == 0
    return base, run


def _accuracy(out):
    return float(re.search(r"accuracy: ([\d.]+)%", out).group(1))


@pytest.mark.parametrize("spec", ["folder:{base}/test", "test:folder:{base}/test", "test:folder:{base}/test.tar.gz",
                                  "folder:{base}/test.tar.gz"])
def test_a_separate_folder_or_archive_is_scored_whole(image_run, spec, capsys):
    base, run = image_run
    spec = spec.format(base=base)
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", spec]) == 0
    out = capsys.readouterr().out
    assert f"on {spec}, test split: 51 samples (all 51 samples of image folder {base}/test" in out, out
    assert "validation" not in out.split("\n")[0]
    result = json.loads((run / "eval-test.json").read_text())
    assert result["num_samples"] == 51 and np.sum(result["confusion_matrix"]) == 51 and result["split"] == "test"
    assert result["accuracy"] == pytest.approx(_accuracy(out) / 100, abs=1e-4) and result["accuracy"] > 0.9


def test_split_test_on_a_held_out_set_is_accepted_and_val_is_refused(image_run, capsys):
    base, run = image_run
    assert main(["evaluate", str(run), "--data", f"test:folder:{base}/test", "--split", "test", "-q"]) == 0
    assert "test split: 51 samples" in capsys.readouterr().out
    assert main(["evaluate", str(run), "--data", f"folder:{base}/test", "--split", "val", "-q"]) == 2
    err = capsys.readouterr().err
    assert "--split val is a split of the run's own dataset" in err and "scored whole as a test set" in err


def test_the_runs_own_data_gives_its_validation_split(image_run, capsys):
    base, run = image_run
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", f"folder:{base}/train"]) == 0
    out = capsys.readouterr().out
    assert "val split: 12 samples (the run's validation split: held out from training" in out  # 10% of 120
    assert main(["evaluate", str(run), "--data", f"folder:{base}/train", "--split", "test", "-q"]) == 2
    assert "score a separate test set with --data test:folder:PATH" in capsys.readouterr().err


def test_a_test_set_with_other_classes_is_refused(image_run, tmp_path, capsys):
    _, run = image_run
    other = _write_folder(tmp_path / "other", 3, seed=2, classes=("blue", "green", "violet"))
    assert main(["evaluate", str(run), "--data", f"test:folder:{other}", "-q"]) == 2
    err = capsys.readouterr().err
    assert "the run's classes are ['blue', 'green', 'red'], but --data" in err and "'violet'" in err


def test_training_on_a_test_set_is_refused(image_run, tmp_path, capsys):
    base, _ = image_run
    assert main(["train", "--data", f"test:folder:{base}/test", "--out", str(tmp_path / "r"), "-q"]) == 2
    assert "is marked as a test set; training data cannot be one" in capsys.readouterr().err


def test_missing_cifar10_gives_command_line_advice(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "empty"))
    assert main(["train", "--data", "cifar10", "--out", str(tmp_path / "r"), "-q"]) == 2
    err = capsys.readouterr().err
    assert f"no CIFAR-10 release in {tmp_path / 'empty'}" in err and "--data cifar10:PATH" in err
    assert "load_cifar10" not in err and "download=True" not in err  # Python advice is for Python users
