"""The playground's ASGI app through Starlette's test client: the page, host and origin checks, messages valid and
invalid, several sessions at once, resources freed on close."""

import json
import re
import threading
import time

import pytest

pytest.importorskip("starlette", reason="the playground needs the [playground] extra (starlette)")
pytest.importorskip("starlette.testclient", reason="Starlette's test client needs httpx2 (or httpx)")

from starlette.testclient import TestClient  # noqa: E402
from starlette.websockets import WebSocketDisconnect  # noqa: E402

from chainrule.playground.server import STATIC_DIR, create_app  # noqa: E402

ORIGIN = {"origin": "http://testserver"}


@pytest.fixture
def client():
    app = create_app(allowed_hosts=["testserver"])
    with TestClient(app) as c:
        yield c


def receive(ws, kind, limit=200):
    """The next message of type ``kind`` (skipping others, e.g. frames of a playing session)."""
    for _ in range(limit):
        msg = ws.receive_json()
        if msg["type"] == kind:
            return msg
    raise AssertionError(f"no {kind!r} message in {limit}")


def opened(ws):
    hello = receive(ws, "hello")
    points = receive(ws, "points")
    frame = receive(ws, "frame")
    return hello, points, frame


def test_page_and_its_assets_are_served_from_the_package(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    for testid in ("dataset", "model", "layers", "neurons", "activation", "lambda", "lr", "play", "reset", "step"):
        assert f'data-testid="{testid}"' in r.text
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', r.text)
    assert len(assets) >= 4
    for path in assets:
        assert client.get(path).status_code == 200, path
    for f in STATIC_DIR.iterdir():  # no CDN: nothing is fetched from elsewhere (the SVG namespace is a name)
        text = f.read_text(encoding="utf-8").replace("http://www.w3.org/2000/svg", "")
        assert not re.search(r"https?://|//cdn", text), f.name
    assert client.get("/static/../server.py").status_code == 404


def test_only_loopback_host_names_are_answered():
    app = create_app()
    with TestClient(app, base_url="http://127.0.0.1:8123") as c:
        assert c.get("/").status_code == 200
    with TestClient(app, base_url="http://localhost:8123") as c:
        assert c.get("/").status_code == 200
    with TestClient(app, base_url="http://rebound.example:8123") as c:  # a DNS-rebinding page's Host header
        assert c.get("/").status_code == 400
        with pytest.raises(WebSocketDisconnect):
            with c.websocket_connect("/ws", headers={"origin": "http://rebound.example:8123"}) as ws:
                ws.receive_json()


@pytest.mark.parametrize("origin", ["http://evil.example", "http://testserver.evil.example", "null",
                                    "http://testserver:8080", "file://"])
def test_websockets_from_other_origins_are_refused(client, origin):
    with pytest.raises(WebSocketDisconnect) as info:
        with client.websocket_connect("/ws", headers={"origin": origin}) as ws:
            ws.receive_json()
    assert info.value.code == 1008
    assert client.app.state.connections == set()


def test_same_origin_and_originless_clients_get_a_session(client):
    for headers in (ORIGIN, {}):
        with client.websocket_connect("/ws", headers=headers) as ws:
            hello, points, frame = opened(ws)
            assert hello["rules"]["params"]["mlp"]["hidden_sizes"]["max_layers"] == 8
            assert len(points["train"]) + len(points["test"]) == 300
            assert frame["model"] == "mlp" and frame["step"] == 0 and frame["running"] is False


def test_bad_messages_get_errors_and_the_session_carries_on(client):
    with client.websocket_connect("/ws", headers=ORIGIN) as ws:
        opened(ws)
        ws.send_text('{"type": "set", "model": "knn", "params": {"k": 3}}')
        frame = receive(ws, "frame")
        assert frame["model"] == "knn" and frame["params"]["knn"]["k"] == 3 and frame["train_accuracy"] > 0.9
        bad = [
            ('{"type": "set", "params": {"k": 0}}', "params.k", "must be between 1 and 100"),
            ('{"type": "set", "params": {"k": 400}}', "params.k", "must be between 1 and 100"),
            ('{"type": "set", "data": {"n_points": 100}, "params": {"k": 71}}', "params.k",
             "must be at most the number of training points (70)"),
            ('{"type": "set", "data": {"n_points": 6000}}', "data.n_points", "must be between 4 and 5000"),
            ('{"type": "set", "model": "mlp", "params": {"hidden_sizes": [8,8,8,8,8,8,8,8,8]}}',
             "params.hidden_sizes", "at most 8 hidden layers"),
            ('{"type": "set", "model": "mlp", "params": {"lr": 0}}', "params.lr", "must be in (0, 10]"),
            ('{"type": "add_point", "x": 0, "y": 0, "label": 3}', "label",
             "must be below the number of classes (3)"),
            ('{"type": "inspect", "index": 210}', "index", "must be below the number of training points (210)"),
            ("{not json", "message", "malformed JSON"),
            ("x" * 70_000, "message", "at most 65536 bytes"),
            ('{"type": "set", "wings": 2}', "wings", "unknown field; expected one of data, features, model, params"),
        ]
        for text, field, rule in bad:
            ws.send_text(text)
            err = receive(ws, "error")
            assert (err["field"], err["rule"]) == (field, rule), text
            assert err["message"].startswith(f"{field}: {rule}, got ")
        ws.send_bytes(b"\x00\x01")
        assert receive(ws, "error")["rule"] == "expected a text (JSON) message, not binary"
        # nothing bad was applied, and the session still works
        ws.send_text('{"type": "add_point", "x": 0.25, "y": -0.5, "label": 2}')
        points = receive(ws, "points")
        assert len(points["train"]) == 211 and points["train"][-1] == [0.25, -0.5, 2]
        frame = receive(ws, "frame")
        assert frame["model"] == "knn" and frame["params"]["mlp"]["hidden_sizes"] == [8, 8]


def test_sessions_are_independent_and_freed_on_close(client):
    baseline = {t.name for t in threading.enumerate()}
    with client.websocket_connect("/ws", headers=ORIGIN) as a, client.websocket_connect("/ws", headers=ORIGIN) as b:
        opened(a)
        opened(b)
        assert len(client.app.state.connections) == 2
        a.send_text(json.dumps({"type": "set", "data": {"dataset": "circles", "n_points": 100}, "model": "knn"}))
        pa = receive(a, "points")
        assert pa["classes"] == 2 and len(pa["train"]) + len(pa["test"]) == 100
        b.send_text('{"type": "set", "model": "knn"}')
        fb = receive(b, "frame")
        assert fb["data"]["dataset"] == "spiral" and fb["data"]["n_points"] == 300
        workers = [t for t in threading.enumerate() if t.name.startswith("playground-session")]
        assert len(workers) == 2
    for _ in range(100):  # the server notices the closes
        if not client.app.state.connections:
            break
        time.sleep(0.02)
    assert client.app.state.connections == set()
    for _ in range(100):
        left = [t for t in threading.enumerate() if t.name.startswith("playground-session") and t.name not in baseline]
        if not left:
            break
        time.sleep(0.02)
    assert left == []


def test_sessions_beyond_the_limit_are_told_the_server_is_full():
    app = create_app(allowed_hosts=["testserver"], max_sessions=1)
    with TestClient(app) as c, c.websocket_connect("/ws", headers=ORIGIN) as first:
        opened(first)
        with pytest.raises(WebSocketDisconnect) as info:
            with c.websocket_connect("/ws", headers=ORIGIN) as second:
                assert second.receive_json()["rule"] == "server full"
                second.receive_json()
        assert (info.value.code, info.value.reason) == (1013, "server full")


def test_four_tabs_train_at_once_and_pause_promptly(client):
    from contextlib import ExitStack

    with ExitStack() as stack:
        tabs = [stack.enter_context(client.websocket_connect("/ws", headers=ORIGIN)) for _ in range(4)]
        for i, ws in enumerate(tabs):
            opened(ws)
            ws.send_text(json.dumps({"type": "set", "data": {"seed": i, "n_points": 100}}))
            receive(ws, "points")
            assert receive(ws, "frame")["data"]["seed"] == i
        for ws in tabs:
            ws.send_text('{"type": "play"}')
        for i, ws in enumerate(tabs):
            steps = [receive(ws, "frame")["step"] for _ in range(3)]
            assert steps[0] > 0 and steps == sorted(steps) and steps[2] > steps[0], steps
        assert len(client.app.state.connections) == 4
        for ws in tabs:
            ws.send_text('{"type": "pause"}')
        for ws in tabs:
            frames_after, stopped = 0, 0
            while stopped < 2:  # the pause's reply, then the player's last word after its last frame
                msg = ws.receive_json()
                frames_after += msg["type"] == "frame" and stopped == 1
                stopped += msg["type"] == "state" and not msg["running"]
            assert frames_after <= 1  # handled at once: only the training slice under way when it came finishes
            ws.send_text('{"type": "step"}')  # the session still answers, and steps one epoch
            frame = receive(ws, "frame")
            assert frame["running"] is False


def test_a_diverging_run_says_so_and_resets_over_the_socket(client):
    with client.websocket_connect("/ws", headers=ORIGIN) as ws:
        opened(ws)
        ws.send_text(json.dumps({"type": "set", "params": {"activation": "leaky_relu", "optimizer": "sgd",
                                                           "momentum": 0.9, "lr": 10}}))
        receive(ws, "frame")
        ws.send_text('{"type": "play"}')
        for _ in range(100):
            msg = ws.receive_json()
            if msg.get("error"):
                break
        assert msg["error"]["rule"] == "diverged" and "the loss is nan" in msg["error"]["message"]
        assert "press reset" in msg["error"]["message"] and msg["running"] is False
        ws.send_text('{"type": "set", "params": {"lr": 0.01}}')
        ws.send_text('{"type": "reset"}')
        receive(ws, "frame")
        frame = receive(ws, "frame")
        assert frame["error"] is None and frame["step"] == 0
        ws.send_text('{"type": "step"}')
        assert receive(ws, "frame")["step"] > 0


def test_every_reply_says_how_many_messages_were_handled(client):
    """The page re-syncs its controls only from a reply that has seen all it sent: replies carry that count, and a
    frame never shows settings older than the count it carries, even while training runs alongside."""
    with client.websocket_connect("/ws", headers=ORIGIN) as ws:
        _, _, frame = opened(ws)
        assert frame["applied"] == 0
        ws.send_json({"type": "play"})
        assert receive(ws, "state")["applied"] == 1
        sizes = [[4], [5, 5], [6, 6, 6]]
        for hidden in sizes:
            ws.send_json({"type": "set", "params": {"hidden_sizes": hidden}})
        ws.send_json({"type": "set", "params": {"lr": -1}})  # refused: still handled
        seen = {}
        while seen.get("error") is None or max(seen.get("frames", [0])) < 4:
            msg = ws.receive_json()
            if msg["type"] == "error":
                seen["error"] = msg["applied"]
            elif msg["type"] == "frame":
                seen.setdefault("frames", []).append(msg["applied"])
                if 2 <= msg["applied"] <= 4:  # after the k-th set and before the next: the k-th architecture
                    assert msg["params"]["mlp"]["hidden_sizes"] == sizes[msg["applied"] - 2]
        assert seen["error"] == 5
        ws.send_json({"type": "pause"})
        assert receive(ws, "state")["applied"] == 6


def test_a_tab_switches_to_the_images_mode_and_back(client):
    with client.websocket_connect("/ws", headers=ORIGIN) as ws:
        hello, _, _ = opened(ws)
        assert hello["rules"]["images"]["datasets"] == ["digits"] and "mlp" in hello["rules"]["images"]["models"]
        ws.send_json({"type": "mode", "mode": "images"})
        examples = receive(ws, "examples")
        assert examples["classes"] == [str(k) for k in range(10)] and len(examples["labels"]) == 300
        frame = receive(ws, "frame")
        assert (frame["mode"], frame["model"], frame["step"], frame["applied"]) == ("images", "mlp", 0, 1)
        ws.send_json({"type": "set", "params": {"hidden_sizes": [0]}})  # the images mode's own rules
        assert receive(ws, "error")["field"] == "params.hidden_sizes[0]"
        ws.send_json({"type": "play"})
        frames = [receive(ws, "frame") for _ in range(20)]
        assert frames[-1]["step"] > frames[0]["step"] and any("filters" in f for f in frames)
        ws.send_json({"type": "mode", "mode": "points"})  # pauses the images session
        assert receive(ws, "points")["classes"] == 3
        frame = receive(ws, "frame")
        assert frame["mode"] == "points" and frame["model"] == "mlp" and not frame["running"]
        ws.send_json({"type": "mode", "mode": "images"})  # the same images session, where it stopped
        receive(ws, "examples")
        back = receive(ws, "frame")
        assert back["step"] >= frames[-1]["step"] and not back["running"]
