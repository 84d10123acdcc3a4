"""Every example in README.md runs: each ```python block (in order, from a working folder laid out like a checkout,
../shared beside it; the CIFAR-10 one is skipped where ../shared/data is absent) and each `chainrule ...` line of its
```bash blocks (CIFAR-10 training with --dry-run, as in tests/test_docs_cli.py; `chainrule playground`, which
serves until stopped, is tests/test_playground_cli.py's). ```text blocks are commands shown,
not run here: the README's first block is tests/test_main_job.py's, the best config's fit takes 10 minutes."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from chainrule.cli import main

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", README, flags=re.S | re.M)



@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_readme_python_example_runs(checkout, index):
    code = blocks("python")[index]
    if "../shared/data" in code and not (SHARED / "data").is_dir():
        pytest.skip("needs ../shared/data")
    exec(compile(code, f"README.md python example {index + 1}", "exec"), {"__name__": "__readme__"})


def test_readme_command_lines_run(checkout):
    lines = [line.split("  #")[0].split(" # ")[0].strip() for block in blocks("bash")
             for line in block.splitlines() if line.startswith("chainrule ")]
    assert len(lines) >= 5
    for line in lines:
        argv = shlex.split(line)[1:]
        if argv[0] == "playground":  # serves until Ctrl-C: tests/test_playground_cli.py runs it in a real process
            continue
        if "cifar10" in line:
            if not (SHARED / "data").is_dir():
                continue
            argv.append("--dry-run")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main([*argv, "-q"])
        assert code == 0, f"{line}\n{out.getvalue()}"
    assert (checkout / "runs" / "digits-mlp" / "model.npz").is_file() and (checkout / "lr.png").is_file()
