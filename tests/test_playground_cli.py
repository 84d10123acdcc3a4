"""`chainrule playground` as a real process: prints its URL, serves the page and a WebSocket session, warns for a
non-loopback --host, and stops cleanly on Ctrl-C (SIGINT), open socket and all."""

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request

import pytest

from chainrule.cli import main

pytest.importorskip("uvicorn", reason="the playground needs the [playground] extra (uvicorn)")
ws_client = pytest.importorskip("websockets.sync.client", reason="the playground needs websockets")


def start(*args):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "chainrule", "playground", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    match = re.search(r"serving on (http://\S+/)", line)
    if match is None:
        proc.kill()
        raise AssertionError(f"no URL in {line!r}; stderr: {proc.stderr.read()}")
    return proc, match.group(1)


def test_serves_a_session_and_stops_cleanly_on_ctrl_c():
    proc, url = start()
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url)
        page = urllib.request.urlopen(url, timeout=10).read().decode()
        assert 'data-testid="play"' in page
        with ws_client.connect(url.replace("http", "ws") + "ws", origin=url.rstrip("/"), open_timeout=10) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "hello"
            ws.send('{"type": "set", "model": "knn"}')
            kinds = [json.loads(ws.recv(timeout=10))["type"] for _ in range(3)]
            assert kinds[:2] == ["points", "frame"]
            proc.send_signal(signal.SIGINT)  # with the socket still open
            out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "chainrule playground: stopped" in out
    assert "Traceback" not in err and "Error" not in err, err


def test_a_fixed_port_and_a_cross_origin_socket():
    import socket

    with socket.socket() as s:  # a port that is free now
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc, url = start("--port", str(port))
    try:
        assert url == f"http://127.0.0.1:{port}/"
        with pytest.raises(Exception) as info:
            ws_client.connect(f"ws://127.0.0.1:{port}/ws", origin="http://evil.example", open_timeout=10)
        assert "403" in str(info.value)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0


def test_a_non_loopback_host_warns():
    proc, url = start("--host", "0.0.0.0")
    try:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert url.startswith("http://0.0.0.0:")
    assert "warning: listening on 0.0.0.0, not only this machine" in err


def test_usage_errors_are_one_line(capsys):
    assert main(["playground", "--port", "70000"]) == 2
    assert "chainrule playground: error: --port must be in [0, 65535] (0: a free port), got 70000" in \
        capsys.readouterr().err
    assert main(["playground", "--host", "no-such-host.invalid"]) == 2
    assert "--host 'no-such-host.invalid' is not an address of this machine" in capsys.readouterr().err
