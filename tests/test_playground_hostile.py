"""`chainrule playground` under hostile and careless clients, as a real process over real sockets: diverging linear
models, impossible setting combinations, deeply nested and oversized messages, expensive models, more tabs than
it serves, idle tabs, and a parent that never drains the server's stderr."""

import json
import time
from contextlib import contextmanager

import pytest
from playground_proc import start_playground, stop_playground

pytest.importorskip("uvicorn", reason="the playground needs the [playground] extra (uvicorn)")
ws_client = pytest.importorskip("websockets.sync.client", reason="the playground needs websockets")
from websockets.exceptions import ConnectionClosed  # noqa: E402


@pytest.fixture(scope="module")
def server():
    proc, url = start_playground()
    yield proc, url
    out, err = stop_playground(proc)
    assert proc.returncode == 0 and "Traceback" not in err, err


def connect(url, **kw):
    return ws_client.connect(url.replace("http", "ws") + "ws", origin=url.rstrip("/"), open_timeout=20,
                             max_size=None, **kw)


def receive(ws, kind, limit=500, timeout=60):
    for _ in range(limit):
        msg = json.loads(ws.recv(timeout=timeout))
        if msg["type"] == kind:
            return msg
    raise AssertionError(f"no {kind!r} message in {limit}")


@contextmanager
def opened(url):
    with connect(url) as ws:
        receive(ws, "frame")  # hello, points, then the first frame
        yield ws


def still_serves(ws):
    """The session answers a valid message with a frame showing it."""
    ws.send('{"type": "set", "model": "mlp", "params": {"lr": 0.02}}')
    frame = receive(ws, "frame")
    assert frame["model"] == "mlp" and frame["params"]["mlp"]["lr"] == 0.02
    return frame


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024


@pytest.mark.parametrize("model", ["svm", "softmax"])
def test_a_diverging_linear_model_stops_with_a_message_and_the_session_lives_on(server, model):
    proc, url = server
    with opened(url) as ws:
        ws.send(json.dumps({"type": "set", "model": model, "params": {"lr": 10, "reg": 10}}))
        receive(ws, "frame")
        ws.send('{"type": "step"}')
        frame = receive(ws, "frame")
        assert frame["error"]["rule"] == "diverged" and "lower the learning rate" in frame["error"]["message"]
        assert frame["running"] is False and frame["surface"] is None  # no weights to draw: none drawn
        ws.send(json.dumps({"type": "set", "params": {"lr": 0.1, "reg": 0.001}}))
        ws.send('{"type": "reset"}')
        ws.send('{"type": "step"}')
        frame = [receive(ws, "frame") for _ in range(3)][-1]
        assert frame["error"] is None and frame["step"] > 0 and frame["surface"] is not None
    assert proc.poll() is None


def test_an_impossible_combination_is_refused_whole(server):
    _, url = server
    with opened(url) as ws:
        ws.send('{"type": "set", "data": {"classes": 5, "n_points": 4}}')  # each field passes its own rule
        err = receive(ws, "error")
        assert err["field"] == "data" and "spiral needs n >= 5 points" in err["message"]
        ws.send('{"type": "add_point", "x": 0.1, "y": 0.1, "label": 4}')  # still 3 classes: refused
        assert receive(ws, "error")["rule"] == "must be below the number of classes (3)"
        ws.send('{"type": "step"}')
        frame = receive(ws, "frame")
        assert frame["data"]["classes"] == 3 and frame["data"]["n_points"] == 300 and frame["error"] is None


@pytest.mark.parametrize("depth", [960, 30_000])
def test_deeply_nested_messages_get_an_error(server, depth):
    _, url = server
    with opened(url) as ws:
        ws.send('{"type": "set", "data": ' + "[" * depth + "]" * depth + "}")
        err = receive(ws, "error")
        assert err["field"] == "message" and err["rule"] in ("at most 8 levels of nesting", "malformed JSON")
        still_serves(ws)
    with opened(url) as ws:  # nested in a field that exists, and in objects
        ws.send('{"type": "set", "params": ' + '{"a": ' * 960 + "1" + "}" * 960 + "}")
        assert receive(ws, "error")["rule"] == "at most 8 levels of nesting"
        still_serves(ws)
        ws.close()  # a proper close handshake on both sides
        assert ws.close_code == 1000


def test_a_text_frame_over_a_mebibyte_gets_an_error_and_the_session_carries_on(server):
    _, url = server
    with opened(url) as ws:
        ws.send('{"type": "set", "params": {"lr": 0.03}, "pad": "' + "x" * (2 << 20) + '"}')
        err = receive(ws, "error")
        assert (err["field"], err["rule"]) == ("message", "at most 65536 bytes")
        still_serves(ws)


def test_knn_and_big_networks_are_bounded_per_reply(server):
    proc, url = server
    with opened(url) as ws:
        ws.send('{"type": "set", "data": {"n_points": 5000}, "model": "knn", "params": {"k": 3500}}')
        err = receive(ws, "error")
        assert (err["field"], err["rule"]) == ("params.k", "must be between 1 and 100")
        before = peak_rss_mb(proc.pid)
        ws.send('{"type": "set", "data": {"n_points": 5000}, "model": "knn", "params": {"k": 100}}')
        frame = receive(ws, "frame")
        assert frame["params"]["knn"]["k"] == 100 and frame["surface"] is not None
        assert peak_rss_mb(proc.pid) - before < 200  # was +1.5 GB for k = 3500
        # the biggest network the protocol allows, one example per batch: one reply trains a bounded slice
        ws.send('{"type": "set", "model": "mlp", "params": {"hidden_sizes": [256, 256, 256, 256, 256, 256, 256, '
                '256], "batch_size": 1}}')
        receive(ws, "frame")
        ws.send('{"type": "step"}')
        assert receive(ws, "frame")["step"] == 100  # 100 updates, not the epoch's 3,500


def test_server_full_is_said_in_words_and_idle_sessions_time_out():
    proc, url = start_playground("--max-tabs", "1", "--idle-timeout", "2")
    try:
        with opened(url) as first:
            full_then_idle(url, first)
        with opened(url) as third:  # the slot is free again
            still_serves(third)
    finally:
        out, err = stop_playground(proc)
    assert proc.returncode == 0 and "Traceback" not in err, err


def full_then_idle(url, first):
    """A second tab is told "server full"; the first, once it stops playing, times out."""
    with connect(url) as second:  # the handshake succeeds, then the page is told why it cannot have a session
        err = json.loads(second.recv(timeout=20))
        assert (err["type"], err["rule"]) == ("error", "server full") and "1 tabs are open" in err["message"]
        with pytest.raises(ConnectionClosed):
            second.recv(timeout=20)
        assert (second.close_code, second.close_reason) == (1013, "server full")
    first.send('{"type": "play"}')  # a playing session is not idle
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        assert json.loads(first.recv(timeout=20))["type"] in ("state", "frame")
    first.send('{"type": "pause"}')
    with pytest.raises(ConnectionClosed):
        while True:
            msg = json.loads(first.recv(timeout=20))
            if msg["type"] == "error":
                assert msg["rule"] == "idle" and "reload the page" in msg["message"]
    assert (first.close_code, first.close_reason) == (1001, "idle")


def test_a_playing_tab_writes_nothing_per_step_to_stderr():
    proc, url = start_playground()
    try:
        with opened(url) as ws:
            ws.send('{"type": "play"}')
            frames = 0
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                frames += json.loads(ws.recv(timeout=20))["type"] == "frame"
            ws.send('{"type": "pause"}')
            assert frames > 5
    finally:
        out, err = stop_playground(proc)
    assert err == "", err  # was one line per step, ~10 KB/s


def test_a_page_that_stops_reading_holds_back_only_its_own_session(server):
    """Images mode sends pictures a few times a second: a page that stops reading fills the socket's buffers, then
    its session waits to send (it trains no further), so the server's memory stays bounded."""
    proc, url = server
    with opened(url) as ws:
        ws.send('{"type": "mode", "mode": "images"}')
        receive(ws, "examples")
        receive(ws, "frame")
        ws.send('{"type": "play"}')
        receive(ws, "frame")
        before = peak_rss_mb(proc.pid)
        time.sleep(6)  # not reading
        assert peak_rss_mb(proc.pid) - before < 100
        frames = [receive(ws, "frame") for _ in range(50)]
        assert frames[-1]["step"] > frames[0]["step"] and frames[-1]["mode"] == "images"
        with opened(url) as other:  # and the server still serves others
            still_serves(other)
        ws.send('{"type": "pause"}')
