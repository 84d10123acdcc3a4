"""The playground's speed: decision-boundary frames per second with training between frames, and the time from
"play" to 95% training accuracy.

1. Session frames (no server): a 2-8-8-2 ReLU MLPClassifier on 500 training points of the 2-class spiral; each
   frame is one training step (``partial_fit``: one epoch, 50 minibatches of 10) and then the 100 x 100 decision
   surface (and, every 0.2 s as the server does, the network view). Reported: frames/s, optimizer steps/s and the
   time split between training and drawing.
2. The same through the real server: ``chainrule playground``'s app under uvicorn on a free port, one WebSocket
   client that presses play and counts the frames it receives (JSON encoding and the socket included).
3. Time from "play" to >= 95% training accuracy on the 3-class spiral with the page's default net (2-8-8-3 ReLU,
   Adam, lr 0.01, λ = weight_decay 0.001, batch 10, 210 training points), through the server's training loop;
   median over seeds.

    pip install -e ".[playground]"
    python bench/bench_playground.py              # about a minute
    python bench/bench_playground.py --seconds 3  # a quick look

Run it on an idle machine for the figures that count: the load average is printed with every number.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chainrule.playground.session import Session  # noqa: E402

BENCH_DATA = {"dataset": "spiral", "classes": 2, "n_points": 625, "train_fraction": 0.8, "noise": 0.2, "seed": 0}
BENCH_PARAMS = {"hidden_sizes": [8, 8], "activation": "relu", "batch_size": 10}


def load() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def bench_session(seconds: float, network_interval: float | None) -> dict:
    s = Session()
    s.apply({"type": "set", "data": BENCH_DATA, "params": BENCH_PARAMS})
    assert len(s.y_train) == 500
    s.step()  # first call: builds the model
    frames, train_s, draw_s = 0, 0.0, 0.0
    steps0, last_net = s.n_steps, 0.0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        s.step()
        t1 = time.perf_counter()
        network = network_interval is not None and t1 - last_net >= network_interval
        if network:
            last_net = t1
        json.dumps(s.frame(network=network))
        t2 = time.perf_counter()
        frames, train_s, draw_s = frames + 1, train_s + t1 - t0, draw_s + t2 - t1
    wall = time.perf_counter() - start
    return {"frames_per_s": frames / wall, "steps_per_s": (s.n_steps - steps0) / wall,
            "train_ms_per_frame": 1e3 * train_s / frames, "draw_ms_per_frame": 1e3 * draw_s / frames,
            "train_accuracy": s.history[-1]["train_accuracy"]}


def _serve():
    import uvicorn

    from chainrule.playground.server import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = uvicorn.Server(uvicorn.Config(create_app(), log_level="warning", ws="auto", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    return server, thread, sock.getsockname()[1]


async def _client(port: int, setup: dict, seconds: float | None, until_accuracy: float | None) -> dict:
    import websockets

    async with websockets.connect(f"ws://127.0.0.1:{port}/ws", max_size=None) as ws:
        while json.loads(await ws.recv())["type"] != "frame":
            pass
        await ws.send(json.dumps(setup))
        while json.loads(await ws.recv())["type"] != "frame":
            pass
        await ws.send('{"type": "play"}')
        start = time.perf_counter()
        frames, first_step, msg = 0, None, {}
        while True:
            msg = json.loads(await ws.recv())
            if msg["type"] != "frame":
                continue
            frames += 1
            first_step = msg["step"] if first_step is None else first_step
            elapsed = time.perf_counter() - start
            if seconds is not None and elapsed >= seconds:
                break
            if until_accuracy is not None and (msg["train_accuracy"] or 0) >= until_accuracy:
                break
            if elapsed > 300:
                raise RuntimeError(f"no {until_accuracy} training accuracy after 300 s: {msg['train_accuracy']}")
        await ws.send('{"type": "pause"}')
        return {"seconds": elapsed, "frames_per_s": frames / elapsed, "steps": msg["step"], "epochs": msg["epoch"],
                "steps_per_s": (msg["step"] - first_step) / elapsed, "train_accuracy": msg["train_accuracy"],
                "test_accuracy": msg["test_accuracy"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each frames/s measurement")
    parser.add_argument("--seeds", type=int, default=5, help="runs of the time-to-95%% measurement")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")

    print(f"\n1. Session frames, 2-8-8-2 ReLU, 500 spiral points, 100x100 surface ({load()})")
    for label, interval in (("surface only", None), ("surface + network view every 0.2 s", 0.2)):
        r = bench_session(args.seconds, interval)
        print(f"   {label:36s} {r['frames_per_s']:6.1f} frames/s  {r['steps_per_s']:7.0f} steps/s  "
              f"train {r['train_ms_per_frame']:5.1f} ms + draw {r['draw_ms_per_frame']:4.1f} ms per frame  "
              f"(train acc {r['train_accuracy']:.3f})  [{load()}]")

    server, thread, port = _serve()
    try:
        setup = {"type": "set", "data": BENCH_DATA, "params": BENCH_PARAMS}
        r = asyncio.run(_client(port, setup, args.seconds, None))
        print(f"\n2. Through the server (uvicorn + WebSocket client), same net and data ({load()})")
        print(f"   {r['frames_per_s']:6.1f} frames/s received  {r['steps_per_s']:7.0f} steps/s  [{load()}]")

        print(f"\n3. Play -> 95% training accuracy, 3-class spiral, the default net ({load()})")
        times = []
        for seed in range(args.seeds):
            setup = {"type": "set", "data": {"seed": seed}}
            r = asyncio.run(_client(port, setup, None, 0.95))
            times.append(r["seconds"])
            print(f"   seed {seed}: {r['seconds']:5.2f} s, {r['epochs']} epochs / {r['steps']} steps, "
                  f"train acc {r['train_accuracy']:.3f}, test acc {r['test_accuracy']:.3f}  [{load()}]")
        print(f"   median {statistics.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f})")
    finally:
        server.should_exit = True
        thread.join(timeout=10)


if __name__ == "__main__":
    main()
