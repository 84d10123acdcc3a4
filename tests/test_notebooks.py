"""The lecture notebooks (docs/notebooks) run in a real Jupyter kernel (nbclient + ipykernel); their rich displays
are checked in the kernel's display messages, and the notebooks are kept without outputs in git."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "docs" / "notebooks").glob("*.ipynb"))
# What a cell tagged "expect-<kind>" must have sent, as (message types, MIME type, text in the payload or None)
EXPECTED = {
    "expect-png": ({"display_data"}, "image/png", None),
    "expect-svg": ({"display_data", "execute_result"}, "image/svg+xml", "<svg"),
    "expect-progress": ({"display_data"}, "text/html", "<progress"),
}


class RecordingClient(nbclient.NotebookClient):
    """Records every IOPub message (type and MIME bundle) the kernel sent, per cell: display_data, execute_result,
    update_display_data (which nbclient applies to earlier outputs without passing on), streams, errors."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.messages: dict[int, list[tuple[str, dict]]] = {}

    def process_message(self, msg, cell, cell_index):
        self.messages.setdefault(cell_index, []).append((msg["msg_type"], msg["content"].get("data") or {}))
        return super().process_message(msg, cell, cell_index)


def test_there_are_notebooks_for_each_lecture():
    names = {p.name for p in NOTEBOOKS}
    assert {"lecture2_knn_linear.ipynb", "lecture3_loss_optimization.ipynb", "lecture4_backprop.ipynb",
            "convolutions_naive_vs_fast.ipynb"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_outputs_are_stripped_in_git(path):
    book = nbformat.read(path, as_version=4)
    nbformat.validate(book)
    for cell in book.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: strip the outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_a_jupyter_kernel_with_its_rich_displays(path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    book = nbformat.read(path, as_version=4)
    client = RecordingClient(book, timeout=300, kernel_name="python3",
                             resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError (naming the cell and the traceback) if a cell fails
    checked = 0
    for index, cell in enumerate(book.cells):
        for tag in cell.metadata.get("tags", []):
            if tag == "expect-svg" and shutil.which("dot") is None:
                continue  # without Graphviz, Jupyter shows the repr (chainrule.viz.repr_svg returns None)
            kinds, mime, text = EXPECTED[tag]
            sent = [data[mime] for kind, data in client.messages.get(index, []) if kind in kinds and mime in data]
            assert sent, f"{path.name} cell {index}: no {mime} display ({tag})"
            if text is not None:
                assert any(text in s for s in sent), f"{path.name} cell {index}: {mime} without {text!r}"
            if tag == "expect-progress":  # drawn once, then updated in place, and left complete
                updates = [d for kind, d in client.messages[index] if kind == "update_display_data"]
                assert updates and "100%" in updates[-1]["text/html"]
            checked += 1
    assert checked, f"{path.name} checks no display"
