"""Every example in docs/interop.md runs, in page order in one folder (later examples read what earlier ones wrote),
and prints what the page says it prints."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from chainrule.cli import main

pytest.importorskip("safetensors")
pytest.importorskip("onnxruntime")
pytest.importorskip("tensorboardX")
pytest.importorskip("tensorboard")
pytest.importorskip("torch")

PAGE = Path(__file__).resolve().parents[1] / "docs" / "interop.md"
BLOCKS = re.findall(r"```(python|bash)\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.S)

pytestmark = pytest.mark.usefixtures("one_blas_thread")


def test_the_page_has_an_example_for_each_path():
    text = "\n".join(code for _, code in BLOCKS)
    for needle in ("to_torch_state_dict", "load_torch_state_dict", ".safetensors", "chainrule.onnx.export",
                   "--tensorboard", "EventAccumulator"):
        assert needle in text, needle


def test_examples_run_in_order_and_print_what_the_page_says(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for index, (lang, code) in enumerate(BLOCKS):
        if lang == "bash":
            for line in code.strip().splitlines():
                args = shlex.split(line)
                assert args[0] == "chainrule", line
                assert main([*args[1:], "--quiet"]) == 0, line
            continue
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, f"docs/interop.md example {index}", "exec"), {"__name__": "__docs__"})
        expected = [m.group(1).strip() for m in re.finditer(r"print\(.*\)\s+#\s*(.+)$", code, flags=re.M)]
        assert out.getvalue().split() == expected, (index, out.getvalue())
