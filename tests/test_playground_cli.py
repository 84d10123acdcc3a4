"""`chainrule playground` as a real process: prints its URL, serves the page and a WebSocket session, warns for a
non-loopback --host, and stops cleanly on Ctrl-C (SIGINT), open socket and all."""

import json
import re
import signal
import socket
import time
import urllib.request

import pytest
from playground_proc import start_playground, stop_playground

from chainrule.cli import main

pytest.importorskip("uvicorn", reason="the playground needs the [playground] extra (uvicorn)")
ws_client = pytest.importorskip("websockets.sync.client", reason="the playground needs websockets")


def test_serves_a_session_and_stops_cleanly_on_ctrl_c():
    proc, url = start_playground()
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url)
        page = urllib.request.urlopen(url, timeout=10).read().decode()
        assert 'data-testid="play"' in page
        with ws_client.connect(url.replace("http", "ws") + "ws", origin=url.rstrip("/"), open_timeout=10) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "hello"
            ws.send('{"type": "set", "model": "knn"}')
            kinds = [json.loads(ws.recv(timeout=10))["type"] for _ in range(3)]
            assert kinds[:2] == ["points", "frame"]
            out, err = stop_playground(proc)  # Ctrl-C with the socket still open
    finally:
        stop_playground(proc)
    assert proc.returncode == 0, err
    assert "chainrule playground: stopped" in out
    assert "Traceback" not in err and "Error" not in err, err


def test_a_fixed_port_and_a_cross_origin_socket():
    with socket.socket() as s:  # a port that is free now
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc, url = start_playground("--port", str(port))
    try:
        assert url == f"http://127.0.0.1:{port}/"
        with pytest.raises(Exception) as info:
            ws_client.connect(f"ws://127.0.0.1:{port}/ws", origin="http://evil.example", open_timeout=10)
        assert "403" in str(info.value)
    finally:
        stop_playground(proc)
    assert proc.returncode == 0


def test_a_non_loopback_host_warns():
    proc, url = start_playground("--host", "0.0.0.0")
    try:
        port = url.rsplit(":", 1)[1].strip("/")
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10)  # any Host name is answered now
        assert page.status == 200
    finally:
        _, err = stop_playground(proc)
    assert proc.returncode == 0
    assert url.startswith("http://0.0.0.0:")
    assert "warning: listening on 0.0.0.0, not only this machine" in err


def test_ctrl_c_right_after_start_is_a_clean_stop_too():
    proc, _ = start_playground()
    out, err = stop_playground(proc)  # SIGINT as soon as the URL is printed, maybe before uvicorn is up
    assert proc.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err


@pytest.mark.parametrize("delay", [0.0, 0.002, 0.02])
def test_sigterm_during_startup_is_a_clean_stop(delay):
    """SIGTERM (as from a process manager) stops it like Ctrl-C, also in the moments before the server is up."""
    proc, _ = start_playground()
    time.sleep(delay)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err


def test_usage_errors_are_one_line(capsys):
    assert main(["playground", "--port", "70000"]) == 2
    assert "chainrule playground: error: --port must be in [0, 65535] (0: a free port), got 70000" in \
        capsys.readouterr().err
    assert main(["playground", "--host", "no-such-host.invalid"]) == 2
    assert "--host 'no-such-host.invalid' is not an address of this machine" in capsys.readouterr().err
    assert main(["playground", "--data", "spiral"]) == 2
    assert "--data must be cifar10, cifar10:PATH or folder:PATH, got 'spiral'" in capsys.readouterr().err
    assert main(["playground", "--data", "folder:/no/such/folder"]) == 2
    assert "/no/such/folder does not exist" in capsys.readouterr().err
    assert main(["playground", "--max-tabs", "0"]) == 2
    assert "--max-tabs must be at least 1, got 0" in capsys.readouterr().err
    assert main(["playground", "--idle-timeout", "nan"]) == 2
    assert "--idle-timeout must be a positive number of seconds, got nan" in capsys.readouterr().err
