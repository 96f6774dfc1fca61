"""The REST transport: POST each event to ``<endpoint><kind>``, signed with Standard Webhooks.

Calls go through urllib3 directly (the library under requests): one keep-alive connection per
platform and a third of requests' cost per call, which matters because a platform's events go
one at a time, each after the previous answer.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import urllib3
from standardwebhooks import Webhook

from adapters.base import Adapter, OutgoingEvent, PlatformTarget
from adapters.errors import Permanent, Retryable, Unsupported

RETRYABLE_STATUS = {408, 429}
ANSWER_KEPT = 500  # characters of a failing answer kept in the error
NETWORK_FAILURES = (
    "Connection refused",
    "Connection reset",
    "Name or service not known",
    "timed out",
    "No route to host",
)


def signer_for(token: str) -> Webhook:
    """The HMAC key is the token's UTF-8 bytes, or the decoded secret of a ``whsec_`` token."""
    return Webhook(token) if token.startswith("whsec_") else Webhook(token.encode())


def join_url(endpoint: str, name: str) -> str:
    """Join endpoint and call name with exactly one '/'."""
    return endpoint.rstrip("/") + "/" + name.lstrip("/")


def describe(exc: Exception, method: str, url: str) -> str:
    """Say in one short line why a call did not get an answer."""
    text = str(exc)
    reason = next((m.lower() for m in NETWORK_FAILURES if m in text), None)
    return f"{method} {url}: {reason or type(exc).__name__ + ': ' + text[:ANSWER_KEPT]}"


def classify(status: int, body: bytes) -> None:
    """Raise the delivery error a non-2xx answer stands for."""
    if 200 <= status < 300:
        return
    answer = f"HTTP {status}: {body[:ANSWER_KEPT].decode(errors='replace')}"
    if status in RETRYABLE_STATUS or status >= 500 or status < 400:
        raise Retryable(answer)
    raise Permanent(answer)


class RestAdapter(Adapter):
    transport = "rest"

    def __init__(self, target: PlatformTarget, timeout: float) -> None:
        super().__init__(target, timeout)
        if not target.endpoint:
            raise ValueError(f"platform {target.name} has no endpoint")
        self.endpoint = target.endpoint
        self.signer = signer_for(target.token)
        # One adapter per delivery thread, one kept-alive connection per platform; no
        # automatic retries or redirects: the delivery loop decides what a failure means.
        self.http = urllib3.PoolManager(
            maxsize=1, retries=False, timeout=urllib3.Timeout(total=timeout),
            headers={"Authorization": f"Bearer {target.token}"},
        )  # fmt: skip

    def _call(self, method: str, url: str, **kwargs: Any) -> urllib3.BaseHTTPResponse:
        try:
            return self.http.request(method, url, redirect=False, **kwargs)
        except urllib3.exceptions.HTTPError as exc:
            raise Retryable(describe(exc, method, url)) from exc

    def send(self, event: OutgoingEvent) -> None:
        now = datetime.now(UTC)
        headers = {
            "Authorization": f"Bearer {self.target.token}",
            "Content-Type": "application/json",
            "webhook-id": event.event_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self.signer.sign(event.event_id, now, event.payload),
        }
        url = join_url(self.endpoint, event.kind)
        response = self._call("POST", url, body=event.payload.encode(), headers=headers)
        if event.kind == "notification" and response.status == 404:
            raise Unsupported(f"POST {url} answered 404: the platform takes no notifications")
        classify(response.status, response.data)

    def fetch_users(self) -> list[dict[str, Any]]:
        url = join_url(self.endpoint, "users")
        response = self._call("GET", url)
        classify(response.status, response.data)
        try:
            users = json.loads(response.data)
        except ValueError as exc:
            raise Permanent(
                f"GET users did not answer JSON: {response.data[:ANSWER_KEPT]!r}"
            ) from exc
        if not isinstance(users, list):
            raise Permanent("GET users did not answer a JSON list")
        return users

    def close(self) -> None:
        self.http.clear()
