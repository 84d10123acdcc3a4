"""Run folders written before the model registry still load and predict exactly as they did.

tests/fixtures/run_format2 holds two `chainrule train` runs on the digits written by main before the registry and
the network-estimator base (an MLP with a mid-run checkpoint, and a softmax classifier), with the predictions and
probabilities that code gave (expected.npz, written by make_expected.py in that folder). The predicted labels must
be identical; the probabilities equal to float32 rounding (1e-5 relative): the fixture was written on one CPU
(AVX2), and NumPy's BLAS picks its kernels by the CPU (AVX-512 elsewhere), which sum in another order and change the
last bits of a product (~1e-6 relative for the float32 MLP). Any change in how a run is loaded shows far above that;
on the CPU that wrote them the probabilities come out bit for bit.
"""

import shutil
from pathlib import Path

import numpy as np
import pytest

from chainrule.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "run_format2"
TARGETS = {"mlp": "mlp", "softmax": "softmax", "mlp_step68": "mlp/checkpoints/step-00000068.npz"}


@pytest.fixture(scope="module")
def digits_rows():
    from chainrule.data.toy import load_digits

    return load_digits().X_train[::7]


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_a_run_saved_before_predicts_the_same(name, digits_rows, tmp_path):
    from chainrule.runs import load_trained

    shutil.copytree(FIXTURES, tmp_path / "runs")
    expected = np.load(FIXTURES / "expected.npz")
    trained = load_trained(tmp_path / "runs" / TARGETS[name])
    np.testing.assert_array_equal(trained.predict(digits_rows), expected[f"{name}_pred"])
    P, what = trained.probabilities(digits_rows)
    assert what == "softmax of the scores"
    np.testing.assert_allclose(P, expected[f"{name}_proba"], rtol=1e-5, atol=0)


@pytest.mark.parametrize("model", ["mlp", "softmax"])
def test_a_saved_model_file_loads_as_its_estimator(model, digits_rows):
    import chainrule.classifiers as classifiers

    est = classifiers.load(FIXTURES / model / "model.npz")
    assert type(est).__name__ == {"mlp": "MLPClassifier", "softmax": "SoftmaxClassifier"}[model]
    expected = np.load(FIXTURES / "expected.npz")
    np.testing.assert_array_equal(np.asarray(est.predict(digits_rows)).astype(np.int64), expected[f"{model}_pred"])
    if model == "mlp":  # the MLP's public parameters are what they were
        assert tuple(est.get_params()["hidden_sizes"]) == (16,)
        assert est.get_params()["weight_decay"] == 1e-4


@pytest.mark.parametrize("model", ["mlp", "softmax"])
def test_evaluate_and_predict_read_a_run_saved_before(model, tmp_path, capsys):
    run = tmp_path / model
    shutil.copytree(FIXTURES / model, run)
    assert main(["evaluate", str(run), "--data", "digits", "-q"]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out
    from PIL import Image

    image = tmp_path / "x.png"
    Image.new("L", (8, 8)).save(image)
    assert main(["predict", str(run), str(image), "-q"]) == 0
