"""docs/adding-a-model.md runs: its ```python blocks, in order, in one namespace (the estimator, its registry row,
then the front ends offering it) in a working folder of its own."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def test_the_adding_a_model_example_runs(checkout):
    from chainrule.classifiers import get_spec, model_names, unregister

    text = (ROOT / "docs" / "adding-a-model.md").read_text()
    blocks = re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)
    assert len(blocks) == 3
    namespace: dict = {"__name__": "adding_a_model"}
    try:
        for block in blocks:
            exec(compile(block, "docs/adding-a-model.md", "exec"), namespace)
        assert "centroid" in model_names("points")
        assert get_spec("centroid").estimator_class is namespace["NearestCentroid"]
    finally:
        if "centroid" in model_names():
            unregister("centroid")
    run = checkout / "runs" / "centroid"
    assert (run / "model.npz").is_file() and (run / "plots" / "weights.png").is_file()
    assert (checkout / "runs" / "cmp" / "centroid" / "report.html").is_file()
    import chainrule.classifiers as classifiers

    est = classifiers.load(run / "model.npz")
    assert est.centroids_.shape == (10, 64) and np.isfinite(est.centroids_).all()
