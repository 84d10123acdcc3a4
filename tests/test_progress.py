"""Live progress (chainrule.progress): one clean line on a terminal, plain lines elsewhere, never mixed with logs.

The end-to-end tests run the real CLI in a pseudo-terminal (python's pty module) and with its stderr on a pipe.
"""

import io
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chainrule import progress as P

ROOT = Path(__file__).resolve().parents[1]


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def wide(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # StringIO has no terminal size


def screen(raw: str) -> list[str]:
    """What a terminal shows after ``raw``: carriage returns, erase-to-end-of-line and newlines applied."""
    lines, line, col = [], [], 0
    for token in re.findall(r"\x1b\[K|\r\n|\r|\n|[^\r\n\x1b]", raw):
        if token == "\x1b[K":
            del line[col:]
        elif token == "\r":
            col = 0
        elif token in ("\n", "\r\n"):
            lines.append("".join(line))
            line, col = [], 0
        else:
            if col < len(line):
                line[col] = token
            else:
                line.append(token)
            col += 1
    if line:
        lines.append("".join(line))
    return lines


def test_screen_helper_applies_carriage_returns_and_erasing():
    assert screen("abc\rX\x1b[K\ndef\n") == ["X", "def"]
    assert screen("bar 10%\rbar 20%\r\x1b[Kepoch 1\n") == ["epoch 1"]
    assert screen("bar 10%epoch 1\n") == ["bar 10%epoch 1"]  # what the old tqdm collision looked like


def test_format_duration():
    assert [P.format_duration(s) for s in (0.4, 12.3, 83, 4000)] == ["0s", "12s", "1:23", "1:06:40"]
    assert P.format_duration(float("nan")) == "?" and P.format_duration(-1) == "?"


def test_line_counts_rate_and_eta(wide):
    bar = P.Progress(1000, "kNN", "queries", stream=Terminal(), delay=0)
    bar.start -= 10.0  # 10 s ago
    bar.set(250)
    line = bar.line(width=200)
    assert line.startswith("kNN:  25% |") and "250/1,000 queries" in line and "[10s<30s, 25 queries/s]" in line
    assert bar.eta() == pytest.approx(30.0, rel=0.01)
    bar.note("best 0.91")
    assert bar.line(plain=True).startswith("kNN: 250/1,000 queries (25%), 10s elapsed, ETA 30s; best 0.91")
    unknown = P.Progress(None, "reading", "B", stream=Terminal(), delay=0)
    unknown.set(3 * 2**20)
    assert "3.0 MiB" in unknown.line() and unknown.eta() is None and "%" not in unknown.line()
    bar.close()
    unknown.close()


def test_resumed_work_counts_only_new_units_in_the_rate():
    bar = P.Progress(100, "training", "steps", stream=Terminal(), delay=0, initial=50)
    bar.start -= 10.0
    bar.set(60)  # 10 steps in 10 s: 40 steps left -> 40 s
    assert bar.eta() == pytest.approx(40.0, rel=0.01)
    bar.close()


def test_terminal_bar_waits_for_the_delay_and_is_erased_at_the_end(wide):
    term = Terminal()
    with P.Progress(10, "quick", stream=term, delay=60) as bar:
        bar.update(10)
    assert term.getvalue() == ""  # quick work prints nothing
    term = Terminal()
    with P.Progress(10, "slow", "items", stream=term, delay=0, interval=0) as bar:
        for _ in range(10):
            bar.update()
    out = term.getvalue()
    assert "slow: 100%" in out and out.endswith("\r\x1b[K") and screen(out) == []


def test_write_and_log_lines_land_above_the_bar_never_on_it(wide):
    term = Terminal()
    handler = P.LogHandler(term)
    log = logging.getLogger("chainrule.test_progress")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        with P.Progress(4, "work", stream=term, delay=0, interval=0) as bar:
            bar.update()
            log.info("epoch 1/2  loss 0.5")
            bar.update()
            P.write("a result", term)
            bar.update(2)
            log.info("epoch 2/2  loss 0.4")
    finally:
        log.removeHandler(handler)
    shown = screen(term.getvalue())
    assert shown == ["epoch 1/2  loss 0.5", "a result", "epoch 2/2  loss 0.4"], shown
    assert "work:  25%" in term.getvalue()  # the bar was drawn in between


def test_nested_work_shares_one_line(wide):
    term = Terminal()
    with P.Progress(5, "tune", "trials", stream=term, delay=0, interval=0) as outer:
        outer.update()
        with P.Progress(100, "training", "steps", stream=term, delay=0, interval=0) as inner:
            inner.update(50)
            last = screen(term.getvalue())[-1]
            assert last.startswith("tune 1/5") and " > training:  50%" in last, last
        last = screen(term.getvalue())[-1]
        assert last.startswith("tune:  20%"), last  # the inner line gave way to the outer one


def test_not_a_terminal_logs_plain_periodic_lines(caplog):
    stream = io.StringIO()
    with caplog.at_level(logging.INFO, logger="chainrule.progress"):
        with P.Progress(3, "features", "images", stream=stream, log_every=1e-9) as bar:
            for _ in range(3):
                bar.update()
    assert stream.getvalue() == ""
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("features: 1/3 images (33%)") and "ETA" in lines[0]
    assert lines[-1].startswith("features: done, 3 images in") and all("\r" not in m for m in lines)


def test_disabled_prints_and_logs_nothing(caplog, monkeypatch):
    term = Terminal()
    previous = P.set_enabled(False)
    try:
        with caplog.at_level(logging.INFO, logger="chainrule.progress"):
            with P.Progress(3, "x", stream=term, delay=0, log_every=1e-9) as bar:
                bar.update(3)
    finally:
        P.set_enabled(previous)
    assert term.getvalue() == "" and not caplog.records
    monkeypatch.setenv("CHAINRULE_PROGRESS", "0")
    assert not P.is_enabled()


def test_library_loops_report_progress(caplog, monkeypatch, tmp_path):
    """kNN search, feature extraction and an image folder's first decode go through chainrule.progress."""
    from PIL import Image

    from chainrule.classifiers import KNearestNeighbor
    from chainrule.data import load_image_folder
    from chainrule.features import extract_features, hog

    monkeypatch.setattr(P, "LOG_EVERY", 1e-9)
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(tmp_path / "imgs" / c / f"{i}.png")
    with caplog.at_level(logging.INFO, logger="chainrule.progress"):
        ds = load_image_folder(tmp_path / "imgs", cache=False)
        extract_features(ds.X_train, [hog], batch_size=2)
        X = rng.standard_normal((30, 4)).astype(np.float32)
        KNearestNeighbor(k=1, chunk_size=7).fit(X, np.arange(30) % 3).predict(X)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "decoding imgs/ (first load only): done, 6 images" in text
    assert "features: hog: done, 6 images" in text
    assert re.search(r"kNN \(L2, 30 training rows\): \d+/30 queries", text) and "kNN (L2, 30 training rows): done" in text


# ---- the real command line ---------------------------------------------------------------------------------

# The CLI with the bar's delay set to 0, so that even a short run draws it.
CLI = ("import sys; import chainrule.progress as p; p.DELAY = 0.0; from chainrule.cli import main; "
       "sys.exit(main(sys.argv[1:]))")
TRAIN = ["train", "--data", "digits", "--model", "softmax", "--epochs", "3", "--batch-size", "32"]


def _env():
    env = dict(os.environ, COLUMNS="120", LINES="40", PYTHONPATH=str(ROOT))
    env.pop("CHAINRULE_PROGRESS", None)
    return env


def _run_in_pty(argv, cwd):
    """Run the CLI with stdin, stdout and stderr on a pseudo-terminal of 120 x 40; (exit code, what it showed)."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen([sys.executable, "-c", CLI, *argv], stdin=slave, stdout=slave, stderr=slave, cwd=cwd,
                            env=_env(), close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=120), b"".join(chunks).decode("utf-8", "replace")


def test_cli_in_a_pseudo_terminal_keeps_log_lines_clean(tmp_path):
    rc, raw = _run_in_pty([*TRAIN, "--out", str(tmp_path / "run")], tmp_path)
    assert rc == 0, raw
    assert "\rtraining:" in raw and "steps [" in raw  # the live bar was drawn (with its ETA)
    shown = screen(raw)
    epoch_lines = [line for line in shown if "epoch " in line and "loss" in line]
    assert len(epoch_lines) == 3, shown
    for i, line in enumerate(epoch_lines, 1):
        assert line.startswith(f"epoch {i}/3  step "), line  # nothing drawn in front of it
        assert line.rstrip().endswith("samples/s"), line     # nor after it
    assert not any(line.startswith("training:") for line in shown), shown  # the bar is gone at the end
    assert shown[-1].startswith("report: ")


def test_cli_quiet_in_a_pseudo_terminal_shows_no_bar(tmp_path):
    rc, raw = _run_in_pty([*TRAIN, "-q", "--out", str(tmp_path / "run")], tmp_path)
    assert rc == 0, raw
    assert "training:" not in raw and "\x1b[K" not in raw and "validation accuracy" in raw


def test_cli_with_stderr_on_a_pipe_writes_plain_lines(tmp_path):
    proc = subprocess.run([sys.executable, "-c", CLI, *TRAIN, "--out", str(tmp_path / "run")], cwd=tmp_path,
                          env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr and "\x1b" not in proc.stderr and "\r" not in proc.stdout
    epochs = [line for line in proc.stderr.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == ["1/3", "2/3", "3/3"]
