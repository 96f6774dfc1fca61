"""What the benchmarks post, and the threads that post it: ``POST /message`` from platform A,
closed loop (as fast as the hub answers) or open loop (paced at a fixed rate)."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from common.util import log, new_session


@dataclass
class Sent:
    text: str
    scheduled: float = 0.0  # open loop: when it should have been sent (time.time())
    sent: float = 0.0  # time.time() just before the POST
    answered: float = 0.0  # time.time() once the answer arrived
    status: int = 0
    message_id: Any = None
    error: str = ""


def message_body(text: str, room: int = 1) -> dict[str, Any]:
    """A ``POST /message`` body from A's user 1 into A's room ``room``."""
    return {"roomOriginalPlatform": "A", "roomId": room, "senderId": 1, "text": text}


def make_texts(prefix: str, count: int, suffix: str = "") -> list[Sent]:
    """``count`` messages to send, numbered ``<prefix>0000000<suffix>`` on."""
    return [Sent(f"{prefix}{i:07d}{suffix}") for i in range(count)]


def accepted(items: Iterable[Sent]) -> list[Sent]:
    """The items the hub answered 202, in the order it accepted them (message id)."""
    return sorted((i for i in items if i.status == 202), key=lambda i: i.message_id)


class Poster(Protocol):
    def post(self, path: str, body: Any) -> tuple[int, bytes]: ...

    def close(self) -> None: ...


class RequestsPoster:
    """POST with a keep-alive ``requests.Session``."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.session = new_session(token)

    def post(self, path: str, body: Any) -> tuple[int, bytes]:
        answer = self.session.post(f"{self.url}{path}", json=body, timeout=60)
        return answer.status_code, answer.content

    def close(self) -> None:
        self.session.close()


class LeanPoster:
    """POST over one keep-alive connection with http.client: the load generator shares the
    machine's two cores with the hub, and requests costs it about 1.5 ms of CPU a call,
    http.client about a third of that."""

    def __init__(self, url: str, token: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.conn: http.client.HTTPConnection | None = None

    def post(self, path: str, body: Any) -> tuple[int, bytes]:
        """One POST, never retried (a retry could post a message twice)."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            self.conn.request("POST", path, json.dumps(body).encode(), self.headers)
            answer = self.conn.getresponse()
            return answer.status, answer.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def run_threads(
    threads: list[threading.Thread],
    progress: Callable[[], str | None] | None = None,
    every: float = 2.0,
    poll: float = 0.1,
) -> None:
    """Start the threads and wait for them, logging ``progress()`` every ``every`` seconds."""
    for thread in threads:
        thread.start()
    last = time.monotonic()
    while any(t.is_alive() for t in threads):
        time.sleep(poll)
        if progress and time.monotonic() - last >= every:
            line = progress()
            if line:
                log(line)
            last = time.monotonic()
    for thread in threads:
        thread.join()


def post_messages(
    url: str,
    token: str,
    items: list[Sent],
    threads: int,
    *,
    poster: Callable[[str, str], Poster] = RequestsPoster,
    rate: float | None = None,
    room: int = 1,
    seconds: float | None = None,
    progress: Callable[[int], str | None] | None = None,
    poll: float = 0.1,
) -> None:
    """POST /message from A into ``room`` for every item, from ``threads`` threads with a
    ``poster`` each: closed loop, or open loop paced at ``rate``/s.

    With ``seconds``, no POST starts after that long: the items left have ``sent == 0``."""
    lock = threading.Lock()
    state = {"next": 0, "done": 0}
    start = time.time() + 0.05
    until = start + seconds if seconds else None

    def worker() -> None:
        http = poster(url, token)
        while True:
            with lock:
                index = state["next"]
                state["next"] += 1
            if index >= len(items) or (until is not None and time.time() >= until):
                break
            item = items[index]
            if rate:
                item.scheduled = start + index / rate
                delay = item.scheduled - time.time()
                if delay > 0:
                    time.sleep(delay)
            body = message_body(item.text, room)
            item.sent = time.time()
            try:
                status, answer = http.post("/message", body)
                item.answered = time.time()
                item.status = status
                if status == 202:
                    item.message_id = json.loads(answer).get("id")
                else:
                    item.error = answer[:200].decode(errors="replace")
            except (OSError, http.client.HTTPException) as exc:  # requests' errors are OSErrors
                item.answered = time.time()
                item.error = f"{type(exc).__name__}: {exc}"[:200]
            with lock:
                state["done"] += 1
        http.close()

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    run_threads(workers, progress and (lambda: progress(state["done"])), poll=poll)
