"""Every Python example in docs/autograd.md runs, as written, and prints what the page says it prints."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[1] / "docs" / "autograd.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.S)


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs(index: int) -> None:
    code = BLOCKS[index]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"docs/autograd.md example {index}", "exec"), {"__name__": "__docs__"})
    printed = out.getvalue()
    # a "print(...)  # text" comment states the start of what is printed; "# text" lines right after a print in a
    # loop state lines of its output ("# ..." skips some)
    for line in code.splitlines():
        m = re.match(r"\s*print\(.*\)\s+#\s*(.+)$", line) or re.match(r"#\s*(\S.*)$", line)
        if m:
            expected = m.group(1).split("...")[0].strip()
            assert expected in printed, (expected, printed)
