"""Every Python example in docs/conv.md runs, as written, and prints what the page says it prints; the circuit
picture on the page is the one its first example draws."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGE = DOCS / "conv.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.S)


def _run(code: str, name: str) -> tuple[str, dict]:
    out = io.StringIO()
    namespace = {"__name__": "__docs__"}
    with contextlib.redirect_stdout(out):
        exec(compile(code, name, "exec"), namespace)
    return out.getvalue(), namespace


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs(index: int) -> None:
    if "import torch" in BLOCKS[index]:
        pytest.importorskip("torch")
    code = BLOCKS[index]
    printed, _ = _run(code, f"docs/conv.md example {index}")
    # a "print(...)  # text" comment states the start of what is printed; "# text" lines after the code state
    # lines of its output ("..." ends the part that is checked)
    for line in code.splitlines():
        m = re.match(r"\s*print\(.*\)\s+#\s*(.+)$", line) or re.match(r"#\s*(\S.*)$", line)
        if m:
            expected = m.group(1).split("...")[0].strip()
            assert expected in printed, (expected, printed)


def test_the_circuit_picture_is_what_the_first_example_draws() -> None:
    _, namespace = _run(BLOCKS[0], "docs/conv.md example 0")
    svg = (DOCS / "images" / "conv-circuit.svg").read_text(encoding="utf-8")
    labels = set(re.findall(r'label="([^"\\]+)', namespace["dot"]))
    names = {label for label in labels if re.fullmatch(r"[xwb]\d*", label)}
    assert names == {"x00", "x01", "x10", "x11", "w00", "w01", "w10", "w11", "b"}
    assert all(f">{name}<" in svg for name in names) and ">&#45;1.5<" in svg
