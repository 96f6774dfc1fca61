"""Phase 2 of the delivery benchmark: posting straight to the receivers, without the hub.

``post_direct`` is the limit of this machine for what the hub does (the same bodies and
headers to B and C, from the same client threads); ``one_stream_rates`` the ceiling of one
in-order stream, what a replay to one platform can reach.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
import urllib3
from common import Receiver, Sent, new_session, run_threads


def hub_like_headers() -> dict[str, str]:
    """The headers of the hub's calls (values of the same size; nothing signed)."""
    return {
        "Content-Type": "application/json",
        "webhook-id": f"evt_{uuid.uuid4().hex}",
        "webhook-timestamp": str(int(time.time())),
        "webhook-signature": "v1," + "A" * 43 + "=",
    }


def post_direct(
    receivers: list[Receiver], items: list[Sent], threads: int, template: dict[str, Any]
) -> tuple[int | None, int]:
    """POST every item's text, in a body like ``template`` (the hub's), to every receiver, from
    ``threads`` threads, each with a keep-alive session per receiver. Returns the size of a
    body and the number of items some receiver did not answer 200."""
    n = len(items)
    lock = threading.Lock()
    state = {"next": 0, "done": 0, "errors": 0}
    body_sizes: list[int] = []

    def worker() -> None:
        sessions = {receiver: new_session(receiver.token) for receiver in receivers}
        while True:
            with lock:
                index = state["next"]
                state["next"] += 1
            if index >= n:
                break
            item = items[index]
            payload = json.dumps(
                {**template, "id": index + 1, "text": item.text},
                separators=(",", ":"),
                ensure_ascii=False,
            ).encode()
            if index == 0:
                body_sizes.append(len(payload))
            headers = hub_like_headers()
            item.sent = time.time()
            status = 200
            for receiver, session in sessions.items():
                try:
                    answer = session.post(
                        f"{receiver.endpoint}message", data=payload, headers=headers, timeout=60
                    )
                    status = max(status, answer.status_code)
                except requests.RequestException as exc:
                    status, item.error = 599, str(exc)[:200]
            item.answered = time.time()
            item.status = status
            with lock:
                state["done"] += 1
                state["errors"] += status != 200
        for session in sessions.values():
            session.close()

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    run_threads(workers, lambda: f"phase 2: {state['done']}/{n} posted to both")
    return (body_sizes[0] if body_sizes else None), state["errors"]


def one_stream_rates(
    hub_root: Path, receiver: Receiver, template: dict[str, Any], seconds: float, prefix: str
) -> dict[str, float]:
    """Posts/s to ``receiver`` one call at a time, each after the previous answer, for
    ``seconds`` each, with ``urllib3``, with bare ``http.client``, and with the hub's own
    ``RestAdapter.send`` from ``hub_root`` (signing, headers and the reading of the answer
    included)."""
    if str(hub_root) not in sys.path:
        sys.path.insert(0, str(hub_root))
    from adapters.base import OutgoingEvent, PlatformTarget
    from adapters.rest import RestAdapter

    headers = {**hub_like_headers(), "Authorization": f"Bearer {receiver.token}"}

    def body(i: int) -> bytes:
        text = f"{prefix}{i:07d} bench message"
        return json.dumps({**template, "text": text}, separators=(",", ":")).encode()

    def measure(post: Callable[[bytes], None]) -> float:
        count, started = 0, time.monotonic()
        while time.monotonic() - started < seconds:
            post(body(count))
            count += 1
        return count / (time.monotonic() - started)

    pool = urllib3.PoolManager(maxsize=1, retries=False)
    url = f"{receiver.endpoint}message"
    with_urllib3 = measure(lambda data: pool.request("POST", url, body=data, headers=headers))
    pool.clear()
    connection = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=10)

    def bare(data: bytes) -> None:
        connection.request("POST", "/api/message", body=data, headers=headers)
        connection.getresponse().read()

    with_http_client = measure(bare)
    connection.close()
    target = PlatformTarget(0, receiver.name, "rest", receiver.endpoint, receiver.token)
    adapter = RestAdapter(target, 10.0)

    def hub_send(data: bytes) -> None:
        adapter.send(OutgoingEvent(f"evt_{uuid.uuid4().hex}", 0, "message", data.decode()))

    with_adapter = measure(hub_send)
    adapter.close()
    return {"urllib3": with_urllib3, "http_client": with_http_client, "rest_adapter": with_adapter}
