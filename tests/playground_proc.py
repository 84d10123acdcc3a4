"""Start `chainrule playground` as a real process for the CLI and browser tests (not a test file itself)."""

import os
import re
import signal
import subprocess
import sys


def start_playground(*args: str) -> tuple[subprocess.Popen, str]:
    """The running process and the URL it printed."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "chainrule", "playground", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    match = re.search(r"serving on (http://\S+/)", line)
    if match is None:
        proc.kill()
        raise AssertionError(f"no URL in {line!r}; stderr: {proc.stderr.read()}")
    return proc, match.group(1)


def stop_playground(proc: subprocess.Popen, timeout: float = 30) -> tuple[str, str]:
    """Ctrl-C (SIGINT), then wait; kills it if it does not stop. Returns (stdout, stderr)."""
    try:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
