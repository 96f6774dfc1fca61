"""The REST transport: POST each event to ``<endpoint><kind>``, signed with Standard Webhooks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import requests
from standardwebhooks import Webhook

from adapters.base import Adapter, OutgoingEvent, PlatformTarget
from adapters.errors import Permanent, Retryable

RETRYABLE_STATUS = {408, 429}
ANSWER_KEPT = 500  # characters of a failing answer kept in the error


def signer_for(token: str) -> Webhook:
    """The HMAC key is the token's UTF-8 bytes, or the decoded secret of a ``whsec_`` token."""
    return Webhook(token) if token.startswith("whsec_") else Webhook(token.encode())


def join_url(endpoint: str, name: str) -> str:
    """Join endpoint and call name with exactly one '/'."""
    return endpoint.rstrip("/") + "/" + name.lstrip("/")


NETWORK_FAILURES = (
    "Connection refused",
    "Connection reset",
    "Name or service not known",
    "timed out",
    "No route to host",
)


def describe(exc: requests.RequestException, method: str, url: str) -> str:
    """Say in one short line why a call did not get an answer."""
    text = str(exc)
    reason = next((m.lower() for m in NETWORK_FAILURES if m in text), None)
    return f"{method} {url}: {reason or type(exc).__name__ + ': ' + text[:ANSWER_KEPT]}"


def classify(response: requests.Response) -> None:
    """Raise the delivery error a non-2xx answer stands for."""
    status = response.status_code
    if 200 <= status < 300:
        return
    answer = f"HTTP {status}: {response.text[:ANSWER_KEPT]}"
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
        # One session per adapter, and one adapter per delivery thread: Session is not
        # documented as thread-safe.
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {target.token}"

    def send(self, event: OutgoingEvent) -> None:
        now = datetime.now(UTC)
        headers = {
            "Content-Type": "application/json",
            "webhook-id": event.event_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self.signer.sign(event.event_id, now, event.payload),
        }
        url = join_url(self.endpoint, event.kind)
        try:
            response = self.session.post(
                url,
                data=event.payload.encode(),
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise Retryable(describe(exc, "POST", url)) from exc
        classify(response)

    def fetch_users(self) -> list[dict[str, Any]]:
        url = join_url(self.endpoint, "users")
        try:
            response = self.session.get(url, timeout=self.timeout)
        except requests.RequestException as exc:
            raise Retryable(describe(exc, "GET", url)) from exc
        classify(response)
        try:
            users = response.json()
        except ValueError as exc:
            raise Permanent(
                f"GET users did not answer JSON: {response.text[:ANSWER_KEPT]}"
            ) from exc
        if not isinstance(users, list):
            raise Permanent("GET users did not answer a JSON list")
        return users

    def close(self) -> None:
        self.session.close()
