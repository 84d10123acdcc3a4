"""The playground's ASGI app (Starlette): the page, its static files and one WebSocket per browser tab.

    from chainrule.playground import create_app
    app = create_app()              # serve with uvicorn: uvicorn.run(app, host="127.0.0.1", port=8000)

Each WebSocket gets its own ``Session`` (2-D points) and, once the page switches to the images mode (a ``mode``
message), its own ``ImageSession``, and one worker thread: every call into a session (messages, training slices,
frames) runs there, one at a time, so the event loop only moves messages and the page stays responsive
while a model trains. While a session plays, its worker trains for about ``train_slice`` seconds (at least one
``partial_fit``), then computes a frame (the network view and the inspected point's graph at most every
``network_interval`` seconds) and the loop sends it. The session and its thread end when the socket closes.

Safety: the HTTP and WebSocket routes answer only to ``allowed_hosts`` (the loopback names by default, which also
stops DNS-rebinding pages), a WebSocket whose ``Origin`` is another site is refused, every message is validated
(``chainrule.playground.protocol``) and a bad one is answered with an error that names the field, the rule and the
value while the session carries on. Past ``max_sessions`` open tabs a new one is told "server full" (close code
1013); a session that has neither played nor heard from its page for ``idle_timeout`` seconds is told so and
closed (the page pings while it is visible). The server logs no line per training step: the estimators' trainer
logs of the session threads are dropped (the page shows what matters, errors included).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from chainrule.playground.image_data import ImageDatasets
from chainrule.playground.image_protocol import image_public_rules
from chainrule.playground.images import ImageSession
from chainrule.playground.protocol import ProtocolError, public_rules
from chainrule.playground.session import Session

STATIC_DIR = Path(__file__).parent / "static"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
# The largest WebSocket message the server reads (uvicorn's ws_max_size): anything up to it is read and answered
# with an error when it is over protocol.MAX_MESSAGE_BYTES, the session carrying on; beyond it the connection
# closes (1009), as it must somewhere. At most max_sessions such messages are held at once.
MAX_FRAME_BYTES = 16 << 20
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
        "frame-ancestors 'none'")
log = logging.getLogger("chainrule.playground")
SESSION_THREAD = "playground-session"


class _QuietSessions(logging.Filter):
    """Drops the trainer's log records (one line per epoch, i.e. per playground step) of the session threads."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.threadName.startswith(SESSION_THREAD)


def same_origin(websocket: WebSocket) -> bool:
    """True when the handshake's Origin is this server (scheme http(s), same host and port as the Host header).

    A missing Origin is allowed: browsers always send one with a WebSocket, so only a non-browser client (a
    script of the user's own) omits it; "null" (sandboxed frames, local files) and other sites are refused.
    """
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    host = websocket.headers.get("host", "")
    return parts.scheme in ("http", "https") and bool(parts.netloc) and parts.netloc.lower() == host.lower()


class _Connection:
    """One tab: its session, its worker thread and the task that plays."""

    def __init__(self, websocket: WebSocket, train_slice: float, network_interval: float, images: ImageDatasets):
        self.ws = websocket
        self.images = images
        self.sessions: dict[str, Any] = {"points": Session()}  # the images session is made when first asked for
        self.mode = "points"
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=SESSION_THREAD)
        self.train_slice, self.network_interval = train_slice, network_interval
        self.send_lock = asyncio.Lock()
        self.player: asyncio.Task | None = None
        self._last_network = 0.0
        self.last_heard = time.monotonic()  # when the page last sent a message (the idle timeout's clock)
        # Messages handled so far, stamped on every reply: the page re-syncs its controls from a reply only once the
        # server has handled everything the page sent (a reply to an earlier change must not undo a later one).
        self.handled = 0

    @property
    def session(self) -> Any:
        """The session of the current mode: a ``Session`` (2-D points) or an ``ImageSession``."""
        return self.sessions[self.mode]

    async def call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def send(self, message: dict[str, Any]) -> None:
        text = json.dumps(message, allow_nan=False, separators=(",", ":"))
        async with self.send_lock:
            await self.ws.send_text(text)

    async def run(self) -> None:
        await self.send({"type": "hello", "rules": {**public_rules(), "images": image_public_rules(self.images.names)}})
        await self.send(await self.call(self.session.points))
        await self.send(await self.call(self._frame, True))
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            self.last_heard = time.monotonic()
            raw = message.get("text")
            await self.handle(raw if raw is not None else message.get("bytes", b""))

    async def handle(self, raw: str | bytes) -> None:
        try:
            msg = self.session.parse(raw)
        except ProtocolError as e:
            self.handled += 1
            await self.send(self._stamp(e.to_message()))
            return
        if msg["type"] == "ping":  # not counted: the page does not count it either
            return
        if msg["type"] == "mode":
            await self._switch(msg["mode"])
            return
        if msg["type"] in ("play", "pause"):
            self.handled += 1
            self.session.running = msg["type"] == "play"
            if self.session.running and (self.player is None or self.player.done()):
                self.player = asyncio.create_task(self._play())
            await self.send(self._stamp(self.session.state()))
            return
        try:
            changed = await self.call(self._apply, msg)
        except ProtocolError as e:  # a rule that depends on the session (k, labels, indices)
            await self.send(self._stamp(e.to_message()))
            return
        except Exception as e:  # a bug must not end the session: say what happened and carry on
            log.error("playground: error handling a %s message: %s: %s", msg["type"], type(e).__name__, e)
            await self.send(self._stamp(_internal_error(e)))
            return
        if changed == "data":
            await self.send(await self.call(self.session.data_message))
        try:
            frame = await self.call(self._frame, True)  # every applied message is answered with a frame
        except Exception as e:
            log.error("playground: error drawing a frame: %s: %s", type(e).__name__, e)
            frame = self._stamp(_internal_error(e))
        await self.send(frame)

    async def _switch(self, mode: str) -> None:
        """Pause the current mode's session, then talk to ``mode``'s (made on first use), which sends its data and
        a frame."""
        self.session.running = False
        try:
            if mode not in self.sessions:
                self.sessions[mode] = await self.call(ImageSession, self.images)
        except (ValueError, OSError) as e:  # a dataset that cannot be loaded: the tab stays where it was
            self.handled += 1
            await self.send(self._stamp(ProtocolError("mode", f"the images cannot be loaded ({e})", mode)
                                        .to_message()))
            return
        self.handled += 1
        self.mode = mode
        await self.send(await self.call(self.session.data_message))
        await self.send(await self.call(self._frame, True))

    def _apply(self, msg: dict[str, Any]) -> str:
        try:
            return self.session.apply(msg)
        finally:  # counted in the session's thread, so no frame computed after it shows the old settings
            self.handled += 1

    def _stamp(self, message: dict[str, Any]) -> dict[str, Any]:
        message["applied"] = self.handled
        return message

    def _state(self) -> dict[str, Any]:
        return self._stamp(self.session.state())

    def _frame(self, network: bool | None = None) -> dict[str, Any]:
        now = time.perf_counter()
        if network is None:
            network = now - self._last_network >= self.network_interval
        if network:
            self._last_network = now
        return self._stamp(self.session.frame(network))  # (heavy views: network, graph or images)

    def _advance(self) -> dict[str, Any]:
        if self.session.advance(self.train_slice) == 0:  # nothing to train (kNN, no points) or a stopped run
            self.session.running = False
        return self._frame(None if self.session.running else True)

    async def _play(self) -> None:
        while self.session.running:
            try:
                frame = await self.call(self._advance)
            except Exception as e:  # a bug in a training slice: stop playing and say so; the session lives on
                log.error("playground: error while training: %s: %s", type(e).__name__, e)
                self.session.running = False
                await self.send(_internal_error(e))
                break
            await self.send(frame)
        await self.send(await self.call(self._state))  # after the last frame: says it has stopped

    async def close(self) -> None:
        self.session.running = False
        if self.player is not None:
            self.player.cancel()
            try:
                await self.player
            except (asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                pass
        self.executor.shutdown(wait=False, cancel_futures=True)


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    try:
        await websocket.close(code=code, reason=reason)
    except (WebSocketDisconnect, RuntimeError, OSError):  # already closed
        pass


async def _refuse(websocket: WebSocket, rule: str, message: str, code: int) -> None:
    """An error message the page shows, then a close frame with ``code`` and ``rule`` as its reason."""
    try:
        await websocket.send_text(json.dumps({"type": "error", "field": "server", "rule": rule, "value": "",
                                              "message": f"{rule}: {message}"}))
    except (WebSocketDisconnect, RuntimeError, OSError):
        return
    await _close(websocket, code, rule)


async def _idle_watch(conn: _Connection, timeout: float) -> None:
    """Closes ``conn`` once it has been idle (not playing, no message from the page) for ``timeout`` seconds."""
    while True:
        left = conn.last_heard + timeout - time.monotonic()
        if conn.session.running:
            left = timeout
            conn.last_heard = time.monotonic()
        if left <= 0:
            break
        await asyncio.sleep(min(left, 1.0))
    async with conn.send_lock:
        await _refuse(conn.ws, "idle", f"closed after {timeout:g} s with no message from the page and no "
                      "training; reload the page to start a new session", 1001)


def _internal_error(e: Exception) -> dict[str, Any]:
    return {"type": "error", "field": "server", "rule": "internal error", "value": "",
            "message": f"internal error: {type(e).__name__}: {e} (the server log has the details)"}


def create_app(allowed_hosts: Sequence[str] | None = LOCAL_HOSTS, *, train_slice: float = 0.02,
               network_interval: float = 0.2, max_sessions: int = 32, idle_timeout: float = 600.0,
               image_datasets: ImageDatasets | None = None) -> Starlette:
    """The playground app. ``allowed_hosts``: Host header names it answers to (None: any, for a server bound to a
    non-loopback address); ``train_slice``: seconds of training between frames; ``network_interval``: seconds
    between network-view and graph updates while playing; ``max_sessions``: open tabs at most; ``idle_timeout``:
    seconds after which a session that is not playing and has had no message from its page is closed;
    ``image_datasets``: the images mode's datasets (default: the digits only)."""
    images = image_datasets or ImageDatasets()
    connections: set[_Connection] = set()
    quiet = _QuietSessions()
    trainer_log = logging.getLogger("chainrule.train")
    if not any(isinstance(f, _QuietSessions) for f in trainer_log.filters):
        trainer_log.addFilter(quiet)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store",
                                                                "Content-Security-Policy": _CSP})

    async def socket(websocket: WebSocket) -> None:
        if not same_origin(websocket):
            log.warning("playground: refused a WebSocket from origin %r", websocket.headers.get("origin"))
            await websocket.close(code=1008)  # before accept: the handshake fails with 403
            return
        await websocket.accept()
        if len(connections) >= max_sessions:  # said in words, which a refused handshake (403) cannot do
            await _refuse(websocket, "server full", f"{max_sessions} tabs are open (the most this server "
                          "serves at once); close one, or wait, and reload this page", 1013)
            return
        conn = _Connection(websocket, train_slice, network_interval, images)
        connections.add(conn)
        watch = asyncio.create_task(_idle_watch(conn, idle_timeout))
        try:
            await conn.run()
        except (WebSocketDisconnect, RuntimeError):  # the tab went away (RuntimeError: a send after it closed)
            pass
        except Exception as e:  # a bug: close with a proper close frame (1011), never a dropped socket
            log.error("playground: session ended by %s: %s", type(e).__name__, e)
            await _close(websocket, 1011, "internal error")
        finally:
            watch.cancel()
            connections.discard(conn)
            await conn.close()

    app = Starlette(
        routes=[Route("/", index), WebSocketRoute("/ws", socket),
                Mount("/static", StaticFiles(directory=STATIC_DIR), name="static")],
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts or ["*"]))],
    )
    app.state.connections = connections
    return app
