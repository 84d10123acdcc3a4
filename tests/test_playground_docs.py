"""The Python examples of docs/playground.md run as written."""

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "playground.md"


def test_docs_examples_run(capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, str(DOC), "exec"), {})  # noqa: S102 - the documentation's own examples
    out = capsys.readouterr().out.splitlines()
    assert "150 True units" in out  # the images session's example
    assert out[-1] == "MLPClassifier 100"
    step, train_acc, test_acc = out[-2].split()
    assert int(step) == 100 * 21 and float(train_acc) > 0.9 and float(test_acc) > 0.8
