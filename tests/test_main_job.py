"""The README's "What the main job prints" is what `bash scripts/main.sh` (`chainrule compare`) prints: the same lines
and accuracies (times and the run folder's timestamp vary)."""

import re
from pathlib import Path

from chainrule.cli import main

ROOT = Path(__file__).resolve().parents[1]
ROW = re.compile(r"^(?P<model>.+?)\s+(?P<acc>\d+\.\d\d)%\s+\d+\.\d\d\s+\d+\.\d{3}$")
FOOTER = re.compile(r"^(\d+ models on \w+) in \d+\.\d s; report: (\S*)compare-digits-\d{8}-\d{6}/report\.html$")


def _normalise(line: str) -> str:
    if m := ROW.match(line):
        return f"{m['model']} {m['acc']}% (times)"
    if m := FOOTER.match(line):
        return f"{m[1]} in (time); report: compare-digits-(timestamp)/report.html"
    return line


def _readme_block() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## What the main job prints"):]
    block = section[section.index("```\n") + 4:]
    lines = block[:block.index("```")].splitlines()
    assert lines[0] == "$ bash scripts/main.sh"
    return lines[1:]


def test_main_sh_runs_chainrule_compare():
    script = (ROOT / "scripts" / "main.sh").read_text()
    assert script.rstrip().endswith('exec .venv/bin/chainrule compare "$@"')


def test_readme_shows_what_the_main_job_prints(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    # Off a terminal a progress line is printed every 10 s of long work: on a busy machine the MLP's training takes
    # that long and adds one; the README's run had none. Progress is tested in tests/test_progress.py.
    monkeypatch.setenv("CHAINRULE_PROGRESS", "0")
    assert main(["compare"]) == 0
    captured = capsys.readouterr()
    printed = captured.err.splitlines() + captured.out.splitlines()  # (stderr's two lines come first)
    assert [_normalise(line) for line in printed] == [_normalise(line) for line in _readme_block()]
    assert all(ROW.match(line) for line in captured.out.splitlines()[1:-1])
