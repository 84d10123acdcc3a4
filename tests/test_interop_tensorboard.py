"""`chainrule train --tensorboard`: event files read back with TensorBoard's own reader equal metrics.csv."""

from __future__ import annotations

import math

import numpy as np
import pytest

from chainrule.cli import main
from chainrule.train.history import read_metrics_csv

pytest.importorskip("tensorboardX")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

pytestmark = pytest.mark.usefixtures("one_blas_thread")


def read_events(logdir):
    ea = event_accumulator.EventAccumulator(str(logdir), size_guidance={"scalars": 0, "histograms": 0, "images": 0})
    ea.Reload()
    return ea


@pytest.mark.parametrize("model", ["mlp", "softmax"])
def test_tensorboard_scalars_equal_metrics_csv(tmp_path, model):
    run = tmp_path / "run"
    args = ["train", "--model", model, "--epochs", "3", "--seed", "0", "--out", str(run), "--tensorboard",
            "--quiet"] + (["--hidden-sizes", "16"] if model == "mlp" else [])
    assert main(args) == 0
    rows = read_metrics_csv(run / "metrics.csv")
    ea = read_events(run / "tensorboard")
    steps = [r for r in rows if r["kind"] == "step"]
    epochs = [r for r in rows if r["kind"] == "epoch"]
    assert len(epochs) == 3 and steps
    for tag in ("loss", "lr", "grad_norm"):
        events = ea.Scalars(f"step/{tag}")
        assert [e.step for e in events] == [r["step"] for r in steps]
        np.testing.assert_allclose([e.value for e in events], [r[tag] for r in steps], rtol=1e-6)  # float32 events
    for tag in ("train_loss", "train_acc", "val_acc", "val_loss", "lr"):
        expected = [(r["epoch"], r[tag]) for r in epochs if r[tag] is not None and math.isfinite(r[tag])]
        events = ea.Scalars(f"epoch/{tag}")
        assert [e.step for e in events] == [e for e, _ in expected]
        np.testing.assert_allclose([e.value for e in events], [v for _, v in expected], rtol=1e-6)
    tags = ea.Tags()
    n_units = 10 if model == "softmax" else 16
    params = ["weight", "bias"] if model == "softmax" else ["0.weight", "0.bias", "2.weight", "2.bias"]
    for name in params:
        for kind in ("weights", "gradients"):
            histograms = ea.Histograms(f"{kind}/{name}")
            assert [h.step for h in histograms] == [1, 2, 3]
            assert histograms[-1].histogram_value.num > 0
    assert "first_layer" in tags["images"]  # digits are 8x8 images: the first layer's columns drawn as 8x8 images
    image = ea.Images("first_layer")[-1]
    assert image.encoded_image_string.startswith(b"\x89PNG")
    assert image.width >= 8 * min(n_units, 8) and image.height >= 8  # tensorboardX tiles the filters in a grid


def test_without_the_flag_no_event_files(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--model", "softmax", "--epochs", "1", "--out", str(run), "--quiet"]) == 0
    assert not (run / "tensorboard").exists()
    assert "tensorboard = false" in (run / "config.toml").read_text()


def test_first_layer_images_of_linear_and_conv_weights():
    from chainrule import nn
    from chainrule.train.tensorboard import TensorBoardLogger

    logger = TensorBoardLogger("unused", sample_shape=(4, 4, 3), max_images=5)
    images = logger.first_layer_images(nn.Linear(48, 7, seed=0))
    assert images.shape == (5, 4, 4, 3) and images.min() == 0.0 and images.max() == 1.0
    np.testing.assert_allclose(images[0].reshape(-1).argmax(), nn.Linear(48, 7, seed=0).weight.data[:, 0].argmax())
    assert logger.first_layer_images(nn.Linear(10, 2)) is None  # not pixels: no images

    class Conv(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(np.random.default_rng(0).standard_normal((6, 3, 5, 5)).astype(np.float32))

    assert logger.first_layer_images(Conv()).shape == (5, 5, 5, 3)


def test_a_resumed_run_logs_each_step_once(tmp_path):
    """Steps logged after the checkpoint a run resumes from are computed again: the resumed logger purges them, so
    TensorBoard reads each step once, with the resumed run's values (equal to the trainer's history)."""
    from chainrule import nn, optim
    from chainrule.data import DataLoader
    from chainrule.nn import functional as F
    from chainrule.train import Trainer
    from chainrule.train.tensorboard import TensorBoardLogger

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((60, 5)).astype(np.float32), rng.integers(0, 3, 60)

    def trainer(callbacks):
        model = nn.MLP([5, 8, 3], seed=0)
        return Trainer(model, F.cross_entropy, optim.SGD(model.parameters(), lr=0.1), DataLoader(X, y, 10, seed=0),
                       epochs=3, callbacks=callbacks)

    class StopAt:
        def __init__(self, keep, stop):
            self.keep, self.stop, self.state = keep, stop, None

        def on_step_end(self, t):
            if t.step == self.keep:
                self.state = t.state_dict()
            if t.step == self.stop:
                t.stop_training = True

    stopper = StopAt(keep=8, stop=11)  # logged up to step 11, resumed from the state of step 8
    trainer([TensorBoardLogger(tmp_path), stopper]).fit()
    resumed = trainer([TensorBoardLogger(tmp_path)])
    resumed.load_state_dict(stopper.state)
    history = resumed.fit()
    events = read_events(tmp_path).Scalars("step/loss")
    assert [e.step for e in events] == list(range(1, 19))
    np.testing.assert_allclose([e.value for e in events], history.column("loss"), rtol=1e-6)


def test_tensorboard_for_a_model_without_training_loop_is_a_usage_error(tmp_path, capsys):
    run = tmp_path / "knn"
    assert main(["train", "--model", "knn", "--out", str(run), "--tensorboard", "--quiet"]) == 2
    assert "KNearestNeighbor has no training loop; drop --tensorboard" in capsys.readouterr().err
    assert not run.exists()  # refused before the run folder is made
