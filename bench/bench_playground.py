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
4. The images mode through the server, for each image model the registry offers (its page defaults) on the 8x8
   digits (and CIFAR-10 with ``--cifar10 SPEC``): training images/s, forward and backward + update ms per example
   (the session's own measurements, median over the frames), frames/s received, frames with pictures per second,
   bytes per frame (mean without and with pictures, and the largest), and the seconds from play to 95% held-out
   accuracy on the digits.

    pip install -e ".[playground]"
    python bench/bench_playground.py              # about a minute
    python bench/bench_playground.py --seconds 3  # a quick look
    python bench/bench_playground.py --cifar10 cifar10:/work/shared/data/cifar10-train-jpeg.tar.gz

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


def _serve(cifar10: str | None = None):
    import uvicorn

    from chainrule.playground.image_data import ImageDatasets
    from chainrule.playground.server import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    app = create_app(image_datasets=ImageDatasets({"cifar10": cifar10} if cifar10 else None))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws="auto", lifespan="off"))
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


async def _image_client(port: int, dataset: str, model: str, seconds: float, until: float | None) -> dict:
    """Images mode: play ``model`` on ``dataset`` for ``seconds`` (or until held-out accuracy ``until``)."""
    import websockets

    async with websockets.connect(f"ws://127.0.0.1:{port}/ws", max_size=None) as ws:
        async def frame() -> tuple[dict, int]:
            while True:
                raw = await ws.recv()
                msg = json.loads(raw)
                if msg["type"] == "error":
                    raise RuntimeError(msg["message"])
                if msg["type"] == "frame":
                    return msg, len(raw)

        await frame()
        await ws.send('{"type": "mode", "mode": "images"}')
        await frame()
        await ws.send(json.dumps({"type": "set", "data": {"dataset": dataset}, "model": model}))
        await frame()
        await ws.send('{"type": "play"}')
        start = time.perf_counter()
        light, heavy, forward, backward, rate, msg = [], [], [], [], [], {}
        while True:
            msg, size = await frame()
            (heavy if "filters" in msg else light).append(size)
            if msg["throughput"]:
                forward.append(msg["throughput"]["forward_ms"])
                backward.append(msg["throughput"]["backward_ms"])
                rate.append(msg["throughput"]["images_per_s"])
            elapsed = time.perf_counter() - start
            if (until is None and elapsed >= seconds) or (until is not None and (msg["test_accuracy"] or 0) >= until):
                break
            if elapsed > 300:
                raise RuntimeError(f"{model}: no {until} held-out accuracy after 300 s: {msg['test_accuracy']}")
        await ws.send('{"type": "pause"}')
    n = len(light) + len(heavy)
    return {"seconds": elapsed, "frames_per_s": n / elapsed, "picture_frames_per_s": len(heavy) / elapsed,
            "light_bytes": statistics.mean(light) if light else 0, "picture_bytes": statistics.mean(heavy) if heavy
            else 0, "max_bytes": max(light + heavy), "images_per_s": statistics.median(rate),
            "forward_ms": statistics.median(forward), "backward_ms": statistics.median(backward),
            "test_accuracy": msg["test_accuracy"], "step": msg["step"]}


def bench_images(port: int, datasets: list[str], seconds: float) -> None:
    from chainrule.playground.image_protocol import image_models

    print(f"\n4. Images mode through the server, each model with its page defaults ({load()})")
    for dataset in datasets:
        for model in image_models():
            r = asyncio.run(_image_client(port, dataset, model, seconds, None))
            print(f"   {dataset:8s} {model:8s} {r['images_per_s']:7.0f} images/s  forward {r['forward_ms']:.3f} ms"
                  f" + backward/update {r['backward_ms']:.3f} ms per example  {r['frames_per_s']:5.1f} frames/s "
                  f"({r['picture_frames_per_s']:.1f}/s with pictures)  bytes/frame {r['light_bytes']:.0f} / "
                  f"{r['picture_bytes']:.0f} with pictures (max {r['max_bytes']})  held-out acc "
                  f"{r['test_accuracy']:.3f} at step {r['step']}  [{load()}]")
    for model in image_models():
        r = asyncio.run(_image_client(port, "digits", model, seconds, 0.95))
        print(f"   digits   {model:8s} play -> 95% held-out accuracy: {r['seconds']:5.1f} s (step {r['step']})  "
              f"[{load()}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each frames/s measurement")
    parser.add_argument("--seeds", type=int, default=5, help="runs of the time-to-95%% measurement")
    parser.add_argument("--cifar10", default=None, metavar="SPEC", help="also the images mode on CIFAR-10 (a --data "
                        "spec, e.g. cifar10:/work/shared/data/cifar10-train-jpeg.tar.gz)")
    parser.add_argument("--images-only", action="store_true", help="only part 4, the images mode")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")

    if args.images_only:
        server, thread, port = _serve(args.cifar10)
        try:
            bench_images(port, ["digits"] + (["cifar10"] if args.cifar10 else []), args.seconds)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
        return
    print(f"\n1. Session frames, 2-8-8-2 ReLU, 500 spiral points, 100x100 surface ({load()})")
    for label, interval in (("surface only", None), ("surface + network view every 0.2 s", 0.2)):
        r = bench_session(args.seconds, interval)
        print(f"   {label:36s} {r['frames_per_s']:6.1f} frames/s  {r['steps_per_s']:7.0f} steps/s  "
              f"train {r['train_ms_per_frame']:5.1f} ms + draw {r['draw_ms_per_frame']:4.1f} ms per frame  "
              f"(train acc {r['train_accuracy']:.3f})  [{load()}]")

    server, thread, port = _serve(args.cifar10)
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
        bench_images(port, ["digits"] + (["cifar10"] if args.cifar10 else []), args.seconds)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


if __name__ == "__main__":
    main()
