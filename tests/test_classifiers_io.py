"""save / load: a pickle-free round trip that predicts exactly as before, and clear errors for wrong files."""

from __future__ import annotations

import io
import json
from pathlib import Path
import zipfile

import numpy as np
import pytest

import chainrule.classifiers as clf
from chainrule.classifiers import KNearestNeighbor, LinearSVM, SoftmaxClassifier
from chainrule.utils.serial import seal

RNG = np.random.default_rng(0)
X_IMAGES = RNG.integers(0, 256, (40, 3, 3, 2), dtype=np.uint8)
Y = np.arange(40) % 3

MODELS = [
    pytest.param(lambda: KNearestNeighbor(k=3, metric="l1"), id="knn"),
    pytest.param(lambda: LinearSVM(iterations=30, reg=0.2, random_state=0), id="svm"),
    pytest.param(lambda: SoftmaxClassifier(iterations=30, preprocessing="center", random_state=0), id="softmax"),
    pytest.param(lambda: SoftmaxClassifier(iterations=30, preprocessing=None, random_state=0), id="softmax-raw"),
]


@pytest.mark.parametrize("make", MODELS)
@pytest.mark.parametrize("labels", [np.array(["plane", "car", "bird"]), np.array([10, 20, 30]),
                                    np.array(["x", "y", "z"], dtype=object)])
def test_round_trip_predicts_identically(make, labels, tmp_path):
    model = make().fit(X_IMAGES, labels[Y])
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = type(model).load(path)
    assert type(loaded) is type(model)
    assert loaded.get_params() == model.get_params()
    assert loaded.n_features_in_ == 18 and loaded.sample_shape_ == (3, 3, 2)
    np.testing.assert_array_equal(loaded.classes_, model.classes_)
    np.testing.assert_array_equal(loaded.predict(X_IMAGES), model.predict(X_IMAGES))
    for method in ("decision_function", "predict_proba"):
        if hasattr(model, method):
            np.testing.assert_array_equal(getattr(loaded, method)(X_IMAGES), getattr(model, method)(X_IMAGES))
    again = clf.load(path)  # the generic loader finds the class itself
    np.testing.assert_array_equal(again.predict(X_IMAGES), model.predict(X_IMAGES))


def test_file_is_plain_npz_with_json_metadata(tmp_path):
    model = LinearSVM(iterations=30, random_state=0).fit(X_IMAGES, Y)
    path = tmp_path / "svm.model"  # any name: nothing is appended
    model.save(path)
    assert path.exists()
    with np.load(path, allow_pickle=False) as npz:  # readable without pickle
        doc = json.loads(npz["__meta__"].tobytes())
        assert npz["arrays/W_"].shape == (18, 3)
        assert npz["arrays/preprocessor.mean"].shape == (18,)
    assert doc["format"] == "chainrule.classifier" and doc["format_version"] == 2
    meta = doc["state"]
    assert meta["class"] == "LinearSVM" and meta["params"]["reg"] == 0.1
    assert meta["classes"] == {"__ndarray__": "classes"} and meta["sample_shape"] == [3, 3, 2]


def test_files_of_format_1_still_load():
    """tests/fixtures/classifier_format1: files written by chainrule 0.1 (format 1), with their predictions then."""
    from chainrule.data.toy import make_spiral

    folder = Path(__file__).parent / "fixtures" / "classifier_format1"
    expected = json.loads((folder / "expected.json").read_text())
    X, _ = make_spiral(n=20, classes=3, seed=0)
    for name in ("softmax", "mlp"):
        model = clf.load(folder / f"{name}.npz")
        np.testing.assert_allclose(model.predict_proba(X[:4]), expected[name], rtol=1e-6)


def test_loaded_model_keeps_training_metadata(tmp_path):
    model = SoftmaxClassifier(iterations=25, random_state=0).fit(X_IMAGES, Y)
    model.save(tmp_path / "m.npz")
    loaded = SoftmaxClassifier.load(tmp_path / "m.npz")
    assert loaded.n_iter_ == 25
    np.testing.assert_array_equal(loaded.loss_history_, model.loss_history_)
    np.testing.assert_array_equal(loaded.templates(), model.templates())


def test_loading_the_wrong_class_is_an_error(tmp_path):
    KNearestNeighbor().fit(X_IMAGES, Y).save(tmp_path / "knn.npz")
    with pytest.raises(ValueError, match="holds a KNearestNeighbor, not a LinearSVM; use KNearestNeighbor.load"):
        LinearSVM.load(tmp_path / "knn.npz")


def test_saving_unfitted_or_unsavable_models_is_an_error(tmp_path):
    from datetime import date

    with pytest.raises(clf.NotFittedError):
        KNearestNeighbor().save(tmp_path / "x.npz")
    model = KNearestNeighbor().fit(X_IMAGES, Y)
    model.set_params(chunk_size=object())
    with pytest.raises(ValueError, match="hyperparameter chunk_size=<object object at .*> is not a JSON value"):
        model.save(tmp_path / "x.npz")
    odd = KNearestNeighbor().fit(X_IMAGES, np.array([date(2024, 1, d) for d in (1, 2, 3)])[Y])
    with pytest.raises(ValueError, match="only numbers and strings can be stored"):
        odd.save(tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()


def test_generator_random_state_is_saved_as_none(tmp_path):
    model = SoftmaxClassifier(iterations=5, random_state=np.random.default_rng(0)).fit(X_IMAGES, Y)
    with pytest.warns(UserWarning, match="saved as None"):
        model.save(tmp_path / "m.npz")
    assert SoftmaxClassifier.load(tmp_path / "m.npz").random_state is None


def _rewrite(path, **changes):
    """Change the file and re-seal it (manifest and state hash recomputed), as a tool writing a wrong file would:
    the checks behind the integrity check are what is tested."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    doc = json.loads(arrays["__meta__"].tobytes())
    doc.update(changes.pop("header", {}))
    doc["state"].update(changes.pop("state", {}))
    for key, value in changes.items():
        if value is None:
            arrays.pop(f"arrays/{key}")
        else:
            arrays[f"arrays/{key}"] = value
    arrays["__meta__"] = np.frombuffer(json.dumps(seal(doc, arrays)).encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize("changes, message", [
    ({"header": {"format_version": 3}}, "format version 3, newer than this chainrule reads"),
    ({"state": {"class": "RandomForest"}}, "unknown classifier class 'RandomForest'"),
    ({"header": {"format": "other"}}, "format is 'other', expected 'chainrule.classifier'"),
    ({"W_": np.zeros((5, 3), dtype=np.float32)}, r"saved W_ \(5, 3\) / b_ \(3,\) do not match 18 features"),
    ({"__meta__": np.zeros(3, dtype=np.uint8)}, "metadata is not valid JSON"),
])
def test_corrupt_files_are_reported(tmp_path, changes, message):
    path = tmp_path / "m.npz"
    SoftmaxClassifier(iterations=5, random_state=0).fit(X_IMAGES, Y).save(path)
    if "__meta__" in changes:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        arrays["__meta__"] = changes["__meta__"]
        with open(path, "wb") as f:
            np.savez(f, **arrays)
    else:
        _rewrite(path, **changes)
    with pytest.raises(ValueError, match=message):
        clf.load(path)


def test_a_missing_array_is_reported(tmp_path):
    path = tmp_path / "m.npz"
    SoftmaxClassifier(iterations=5, random_state=0).fit(X_IMAGES, Y).save(path)
    _rewrite(path, W_=None)
    with pytest.raises(ValueError, match="refers to array 'arrays/W_', which the archive lacks"):
        clf.load(path)


@pytest.mark.parametrize("change", ["array", "state", "drop"])
def test_a_file_changed_after_it_was_written_is_refused(tmp_path, change):
    """The manifest (dtype, shape and SHA-256 of every array, SHA-256 of the JSON part) is checked on load: a
    changed weight, setting or missing array is refused naming the file, without re-sealing."""
    path = tmp_path / "m.npz"
    SoftmaxClassifier(iterations=5, random_state=0).fit(X_IMAGES, Y).save(path)
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    if change == "array":
        arrays["arrays/W_"] = arrays["arrays/W_"] + np.float32(1e-3)
    elif change == "drop":
        del arrays["arrays/b_"]
    else:
        doc = json.loads(arrays["__meta__"].tobytes())
        doc["state"]["params"]["reg"] = 0.5
        arrays["__meta__"] = np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    expected = {"array": "array 'arrays/W_' does not match the SHA-256", "drop": "missing: arrays/b_",
                "state": "settings and counters do not match the SHA-256"}[change]
    with pytest.raises(ValueError, match=expected) as info:
        clf.load(path)
    assert str(path) in str(info.value)


def test_a_foreign_npz_or_pickled_file_is_refused(tmp_path):
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a chainrule classifier file"):
        clf.load(tmp_path / "plain.npz")
    np.savez(tmp_path / "obj.npz", __metadata__=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(ValueError, match="not a chainrule classifier file readable without pickle"):
        clf.load(tmp_path / "obj.npz")
    assert zipfile.is_zipfile(tmp_path / "obj.npz")


_BOMB = 256 * 2**20  # what a crafted member expands to; it compresses to ~256 KB


def _crafted(src: Path, dst: Path, *, bomb_as: str) -> None:
    """A copy of the .npz ``src`` in which member ``bomb_as`` (a new name, or one of its members) is a deflated
    .npy of _BOMB zero bytes. The bomb is written in 1 MiB pieces, so building it costs no memory."""
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(dst, "w") as out:
        for info in z.infolist():
            if info.filename != bomb_as:
                out.writestr(info.filename, z.read(info))
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (_BOMB,)})
        info = zipfile.ZipInfo(bomb_as)
        info.compress_type = zipfile.ZIP_DEFLATED
        with out.open(info, "w", force_zip64=True) as f:
            f.write(header.getvalue())
            for _ in range(_BOMB // 2**20):
                f.write(bytes(2**20))


_LOAD_AND_MEASURE = """
import resource, sys
from chainrule.classifiers import load
from chainrule.train.checkpoint import CheckpointError, load_checkpoint
loader = load if sys.argv[1] == "model" else load_checkpoint
loader(sys.argv[2])  # the intact file: imports and one load are the baseline
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    loader(sys.argv[3])
    print("LOADED")
except (ValueError, CheckpointError) as e:
    print("REFUSED", e)
print("GROWTH_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


@pytest.mark.parametrize("kind", ["model", "checkpoint"])
@pytest.mark.parametrize("bomb_as", ["extra.npy", "listed"])
def test_a_crafted_member_is_refused_before_it_is_decompressed(tmp_path, kind, bomb_as):
    import subprocess
    import sys

    good = tmp_path / "good.npz"
    if kind == "model":
        LinearSVM(iterations=5, random_state=0).fit(X_IMAGES, Y).save(good)
        listed = "arrays/W_.npy"
    else:
        from chainrule.train.checkpoint import save_checkpoint

        save_checkpoint(good, {"step": 3, "weights": {"W": np.ones((4, 3), np.float32)}})
        listed = "weights/W.npy"
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(good) as z:
        assert listed in z.namelist()
    _crafted(good, bad, bomb_as=listed if bomb_as == "listed" else bomb_as)
    assert bad.stat().st_size < 2 * 2**20
    run = subprocess.run([sys.executable, "-c", _LOAD_AND_MEASURE, kind, str(good), str(bad)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "REFUSED" in run.stdout, run.stdout
    assert ("not in the manifest: extra" if bomb_as != "listed" else "more than the") in run.stdout
    assert "refused before" in run.stdout
    growth_mb = int(run.stdout.split("GROWTH_KB")[1]) / 1024
    assert growth_mb < 32, f"refusing the file cost {growth_mb:.0f} MB (the bomb expands to 256 MiB)"
