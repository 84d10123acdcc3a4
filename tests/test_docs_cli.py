"""Every example in docs/cli.md and docs/tune.md runs: each `chainrule ...` line of their ```sh blocks (in order,
in one working folder laid out like a checkout: configs/ here, ../shared beside it) and each ```python block.

Training on CIFAR-10 does not fit in the test suite: `chainrule train` lines on it run with --dry-run (the
configuration is resolved and checked, and the data path must exist; nothing is trained), and are skipped where
../shared/data is absent. ```text blocks are output or layouts, not commands.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
from pathlib import Path

import pytest

from chainrule.cli import main

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def blocks(doc: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", (ROOT / "docs" / doc).read_text(), flags=re.S | re.M)


def commands(doc: str) -> list[str]:
    out = []
    for block in blocks(doc, "sh"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("chainrule "):
                out.append(line)
    return out



def _run(line: str) -> None:
    argv = shlex.split(line)[1:]
    heavy = "cifar10" in line
    if heavy:
        if not (SHARED / "data").is_dir():
            pytest.skip(f"needs ../shared/data: {line}")
        assert argv[0] == "train", f"a CIFAR-10 example the suite cannot run: {line}"
        argv.append("--dry-run")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([*argv, "-q"])
    assert code == 0, f"{line}\n{out.getvalue()}"


def test_cli_md_examples_run(checkout):
    lines = commands("cli.md")
    assert len(lines) >= 12 and any("--resume" in line for line in lines)
    for line in lines:
        _run(line)
    assert (checkout / "runs" / "digits-mlp" / "model.npz").is_file()
    for code in blocks("cli.md", "python"):
        exec(compile(code, "docs/cli.md", "exec"), {})


def test_tune_md_examples_run(checkout):
    for name, text in re.findall(r"^<!-- file: (\S+) -->\n```toml\n(.*?)^```", (ROOT / "docs" / "tune.md").read_text(),
                                 flags=re.S | re.M):
        (checkout / name).write_text(text)  # the space files the examples use
    lines = commands("tune.md")
    assert lines and any("--from-search" in line for line in lines)
    for line in lines:
        _run(line)
    for code in blocks("tune.md", "python"):
        exec(compile(code, "docs/tune.md", "exec"), {})
    assert os.path.isdir("runs/softmax-search")
