"""Start `chainrule playground` as a real process, and drive it from a headless Chromium, for the CLI and browser
tests (not a test file itself)."""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1440,1420")


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


@pytest.fixture
def browser():
    """A headless Debian Chromium through Selenium (the test modules skip when either is missing)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chainrule-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def state(driver):
    return driver.execute_script("return window.playground.state()")


def wait_for(driver, condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = state(driver)
        if condition(s):
            return s
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; state: {state(driver)}")
