"""A real chat platform on 127.0.0.1 that the hub delivers to, for the hub's tests.

``LoopbackPlatform`` is a real HTTP server (werkzeug, threaded, in a daemon thread) that
implements the platform side of the contract's ``rest`` transport under ``/api/``:
``GET users`` and ``POST user|room|message|notification``. It checks the bearer token
(wrong or missing: 401, kept in ``rejected``), verifies the Standard Webhooks signature
(``Call.signature_ok``) and records every arrival, duplicates included, in ``calls``.

    with LoopbackPlatform("A", "token-a", users=[{"id": 1, "name": "alice"}]) as a:
        entry = a.registry_entry()            # for platforms.json
        a.respond_with(500, times=3)          # the next three calls fail, then 200 again
        a.respond_with(400, kind="message", when=lambda body: body.get("text") == "reject me")
        ...                                   # make the hub deliver something
        a.wait_for_texts(2)                   # two messages acknowledged (2xx)
        assert a.texts(acked=True) == ["hi", "there"] and not a.duplicates()
        a.stop()                              # down: connections refused, open ones dropped
        a.start()                             # up again on the same port

Use the module-level ``wait_for`` to wait for any condition; tests never sleep blindly.
``reset()`` clears the records but keeps the programmed answers (``clear_responses()``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks import Webhook
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

HOST = "127.0.0.1"
EVENT_KINDS = ("user", "room", "message", "notification")
ROUTES = {("GET", "/api/users"): "users"} | {("POST", f"/api/{k}"): k for k in EVENT_KINDS}


def wait_for(
    predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02, message: str = ""
) -> None:
    """Poll ``predicate`` until it is truthy; raise AssertionError(message) after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message or predicate}")
        time.sleep(interval)


@dataclass
class Call:
    """One request that reached the platform. ``headers`` has lower-case names."""

    kind: str  # users, user, room, message, notification ("" for an unknown route)
    method: str
    path: str
    headers: dict[str, str]
    body: str
    json: Any
    webhook_id: str | None
    received_at: float  # time.monotonic()
    signature_ok: bool
    status: int | None = None  # None: no answer sent (the platform stopped meanwhile)

    @property
    def acked(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class _Rule:
    status: int
    when: Callable[[Any], bool] | None
    times: int | None
    kind: str | None
    body: Any
    delay: float | None
    used: int = field(default=0)


class _Handler(WSGIRequestHandler):
    """Tracks open connections, so that stop() can drop keep-alive and in-flight ones."""

    def setup(self) -> None:
        super().setup()
        self.server.loopback._track(self.connection)  # type: ignore[attr-defined]

    def finish(self) -> None:
        self.server.loopback._untrack(self.connection)  # type: ignore[attr-defined]
        super().finish()

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class LoopbackPlatform:
    def __init__(
        self,
        name: str,
        token: str,
        users: list[dict] | None = None,
        port: int | None = None,
        delay: float = 0.0,
    ) -> None:
        self.name, self.token, self.port = name, token, port
        self.users: list[dict] = list(users or [])
        self.delay = delay  # seconds to wait before answering any request
        self._lock = threading.Lock()
        self._calls: list[Call] = []
        self._rejected: list[Call] = []
        self._rules: list[_Rule] = []
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        if self.port is None:
            raise RuntimeError("start() the platform first: its port is picked then")
        return f"http://{HOST}:{self.port}/api/"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> LoopbackPlatform:
        if self._server is not None:
            return self
        listener = self._listen()
        try:
            server = make_server(
                HOST, self.port or 0, self._app, threaded=True, request_handler=_Handler,
                fd=listener.fileno(),
            )  # fmt: skip
        finally:
            listener.close()  # the server holds its own duplicate of the socket
        server.loopback = self  # type: ignore[attr-defined]
        self.port = server.server_address[1]
        self._stopping.clear()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True,
            name=f"loopback-{self.name}",
        )  # fmt: skip
        self._thread.start()
        return self

    def stop(self) -> None:
        """Go down: close the listening socket and drop every open connection."""
        server, thread = self._server, self._thread
        if server is None:
            return
        with self._lock:
            self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            _drop(connection)
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> LoopbackPlatform:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def registry_entry(self, **overrides: Any) -> dict[str, Any]:
        entry = {"name": self.name, "endpoint": self.endpoint, "token": self.token}
        return {**entry, "supportAudio": True, "supportImage": True, **overrides}

    # -- programmable answers --------------------------------------------------------------
    def respond_with(
        self,
        status: int,
        when: Callable[[Any], bool] | None = None,
        times: int | None = None,
        kind: str | None = None,
        body: Any = None,
        delay: float | None = None,
    ) -> None:
        """Answer ``status`` to calls of ``kind`` (any if None) whose JSON body satisfies
        ``when``, ``times`` times (forever if None). Earlier rules win; the default is 200."""
        with self._lock:
            self._rules.append(_Rule(status, when, times, kind, body, delay))

    def clear_responses(self) -> None:
        with self._lock:
            self._rules.clear()

    # -- records ---------------------------------------------------------------------------
    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    @property
    def rejected(self) -> list[Call]:
        with self._lock:
            return list(self._rejected)

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self._rejected.clear()

    def _of(self, kind: str | None, acked: bool = False) -> list[Call]:
        return [c for c in self.calls if kind in (None, c.kind) and (c.acked or not acked)]

    def acked(self, kind: str | None = None) -> list[Call]:
        """Calls answered 2xx, in arrival order."""
        return self._of(kind, acked=True)

    def received(self, kind: str | None = None, acked: bool = False) -> list[Any]:
        """JSON bodies of every arrival (or only acknowledged ones), in arrival order."""
        return [c.json for c in self._of(kind, acked)]

    def texts(self, acked: bool = False) -> list[str]:
        return [(c.json or {}).get("text") for c in self._of("message", acked)]

    def unique_calls(self, kind: str | None = None, acked: bool = False) -> list[Call]:
        """Calls deduplicated by webhook-id (first arrival kept), as a platform would see them."""
        seen: set[str] = set()
        unique = []
        for call in self._of(kind, acked):
            if call.webhook_id is None or call.webhook_id not in seen:
                unique.append(call)
            if call.webhook_id is not None:
                seen.add(call.webhook_id)
        return unique

    def duplicates(self, kind: str | None = None) -> list[str]:
        """webhook-ids of events (users pulls excluded) that arrived more than once."""
        events = (c for c in self._of(kind) if c.kind in EVENT_KINDS and c.webhook_id)
        counts = Counter(c.webhook_id for c in events)
        return [webhook_id for webhook_id, n in counts.items() if n > 1]

    def wait_for_texts(self, n: int, timeout: float = 10.0) -> list[str]:
        """Wait until at least ``n`` messages were acknowledged; return the acked texts."""
        wait_for(
            lambda: len(self.acked("message")) >= n, timeout,
            message=f"{n} acked messages on {self.name} (have {self.texts(acked=True)})",
        )  # fmt: skip
        return self.texts(acked=True)

    # -- server internals ------------------------------------------------------------------
    def _listen(self) -> socket.socket:
        deadline = time.monotonic() + 5.0
        while True:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((HOST, self.port or 0))
                sock.listen(128)
                return sock
            except OSError as error:
                sock.close()
                if error.errno != errno.EADDRINUSE or time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)

    def _track(self, connection: socket.socket) -> None:
        with self._lock:
            if not self._stopping.is_set():
                self._connections.add(connection)
                return
        _drop(connection)  # accepted just as the platform went down

    def _untrack(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    def _signature_ok(self, body: str, headers: dict[str, str]) -> bool:
        try:
            key = self.token if self.token.startswith("whsec_") else self.token.encode()
            Webhook(key).verify(body, headers, json_parse=False)
            return True
        except Exception:
            return False

    def _app(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        body = request.get_data(as_text=True)
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        kind = ROUTES.get((request.method, request.path), "")
        call = Call(
            kind, request.method, request.path, headers, body, parsed, headers.get("webhook-id"),
            time.monotonic(), self._signature_ok(body, headers),
        )  # fmt: skip
        if headers.get("authorization") != f"Bearer {self.token}" or not kind:
            call.status = 401 if kind else 404
            with self._lock:
                self._rejected.append(call)
            return _answer(call.status, {"status": call.status})(environ, start_response)
        with self._lock:
            rule = next((r for r in self._rules if self._matches(r, call)), None)
            if rule is not None:
                rule.used += 1
            self._calls.append(call)
        status = rule.status if rule else 200
        payload = rule.body if rule and rule.body is not None else None
        if payload is None:
            ok_users = kind == "users" and 200 <= status < 300
            payload = list(self.users) if ok_users else {"status": status}
        delay = rule.delay if rule and rule.delay is not None else self.delay
        if delay and self._stopping.wait(delay):  # went down meanwhile: no answer at all
            _drop(environ["werkzeug.socket"])
            return _answer(503, {"status": 503})(environ, start_response)  # never arrives
        with self._lock:
            call.status = status
        return _answer(status, payload)(environ, start_response)

    @staticmethod
    def _matches(rule: _Rule, call: Call) -> bool:
        if rule.times is not None and rule.used >= rule.times:
            return False
        if rule.kind is not None and rule.kind != call.kind:
            return False
        return rule.when is None or bool(rule.when(call.json if call.json is not None else {}))


def _answer(status: int, payload: Any) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def _drop(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)
