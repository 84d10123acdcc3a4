"""``chainrule playground``: the lectures' live demos in the browser, trained by chainrule (docs/playground.md).

    chainrule playground              # prints http://127.0.0.1:PORT/ (a free port); Ctrl-C stops it
    chainrule playground --port 8000 --open

Binds the loopback address unless ``--host`` says otherwise (then it warns: the playground has no login). Needs the
``[playground]`` extra (Starlette, uvicorn, websockets).
"""

from __future__ import annotations

import argparse
import ipaddress
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from chainrule.commands.common import UsageError, say

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("playground", parents=[common], help="the interactive 2-D classification demo in a browser",
                       description="Serve the playground page: 2-D datasets, kNN / linear / MLP classifiers trained "
                                   "live by chainrule, the decision surface, the network and the computational "
                                   "graph of a training point. Ctrl-C stops it.")
    p.add_argument("--port", type=int, default=0, help="port to listen on (default: a free port)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default: 127.0.0.1, this machine only; any other address warns, since "
                        "anyone who can reach it can use the playground)")
    p.add_argument("--open", action="store_true", help="open the page in the default web browser")
    p.add_argument("--data", default=None, metavar="SPEC",
                   help="images mode: CIFAR-10 or another image dataset besides the built-in digits, as "
                        "cifar10:PATH (e.g. the CIFAR-10 JPEG archive), folder:PATH or cifar10 (the cached release); "
                        "loaded when a tab first picks it")
    p.add_argument("--image-size", type=int, default=None, metavar="N",
                   help="resize folder images to N x N (images mode shows images of at most 64 x 64)")
    p.add_argument("--max-tabs", type=int, default=32, help="browser tabs served at once; the next one is told "
                   "'server full' (default: 32)")
    p.add_argument("--idle-timeout", type=float, default=600.0, help="seconds after which a tab that is not "
                   "training and has sent nothing is closed (default: 600; open pages ping while visible)")
    p.set_defaults(func=run)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one chosen by the OS), made before the server starts
    so that the printed URL is the one that answers."""
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be in [0, 65535] (0: a free port), got {port}")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as e:
        raise UsageError(f"--host {host!r} is not an address of this machine: {e.strerror}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror}; choose another --port (or none, for a "
                         "free one)") from None
    sock.listen(128)
    return sock


def _image_specs(spec: str | None) -> dict[str, str]:
    """--data SPEC -> {name the page shows: spec}: "cifar10" for the CIFAR-10 forms, "folder" for a folder."""
    if spec is None:
        return {}
    name = spec.partition(":")[0].lower()
    if name not in ("cifar10", "folder") or (name == "folder" and ":" not in spec):
        raise UsageError(f"--data must be cifar10, cifar10:PATH or folder:PATH, got {spec!r}")
    path = spec.partition(":")[2]
    if path and not Path(path).expanduser().exists():
        raise UsageError(f"--data {spec!r}: {path} does not exist; give the CIFAR-10 archive or folder")
    return {name: spec}


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from chainrule.playground.image_data import ImageDatasets
        from chainrule.playground.server import LOCAL_HOSTS, MAX_FRAME_BYTES, create_app
    except ImportError as e:
        raise RuntimeError(f"the playground needs Starlette, uvicorn and websockets ({e}); install them with: "
                           "pip install \"chainrule[playground]\"") from None
    if args.max_tabs < 1:
        raise UsageError(f"--max-tabs must be at least 1, got {args.max_tabs}")
    if not args.idle_timeout > 0:
        raise UsageError(f"--idle-timeout must be a positive number of seconds, got {args.idle_timeout}")
    images = ImageDatasets(_image_specs(args.data), image_size=args.image_size)
    local = is_loopback(args.host)
    sock = _listen(args.host, args.port)
    url = _url(sock)
    if not local:
        print(f"chainrule playground: warning: listening on {args.host}, not only this machine: anyone who can "
              "reach this address can use the playground (there is no login)", file=sys.stderr, flush=True)
    app = create_app(allowed_hosts=LOCAL_HOSTS if local else None, max_sessions=args.max_tabs,
                     idle_timeout=args.idle_timeout, image_datasets=images)
    config = uvicorn.Config(app, log_level="warning", access_log=False, ws="auto", lifespan="off",
                            ws_max_size=MAX_FRAME_BYTES, timeout_graceful_shutdown=3)
    server = uvicorn.Server(config)

    def stop(signum: int, frame: Any) -> None:
        # Ctrl-C (or SIGTERM) before uvicorn has installed its own handlers, or after it has restored ours: ask the
        # server to stop at its first tick. Without this, a Ctrl-C during startup was turned by asyncio into a
        # cancellation that uvicorn's startup could swallow, and the server then ran on.
        server.should_exit = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        say(f"chainrule playground: serving on {url} (Ctrl-C to stop)")
        if args.open:
            import webbrowser

            webbrowser.open(url)
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    say("chainrule playground: stopped")
    return 0
