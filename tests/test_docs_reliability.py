"""docs/reliability.md names the test behind every guarantee: each named test must exist."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_test_named_in_reliability_md_exists():
    text = (ROOT / "docs" / "reliability.md").read_text()
    named = []
    current = None
    for row in text.splitlines():  # `tests/x.py::a`, then `::b` (in this row or the next) refer to that file
        for path, name in re.findall(r"`(tests/[\w/]+\.py)?::(\w+)`", row):
            current = path or current
            assert current, f"'::{name}' without a file before it in: {row[:80]}"
            named.append((current, name))
    assert len(named) >= 30
    defined: dict[str, set[str]] = {}
    for path, name in named:
        if path not in defined:
            tree = ast.parse((ROOT / path).read_text())
            defined[path] = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert name in defined[path], f"docs/reliability.md names {path}::{name}, which does not exist"
