"""RestAdapter: the calls of the contract's ``rest`` transport (send, fetch_users), signed."""

from __future__ import annotations

import json
import ssl
import uuid
from typing import Any
from urllib.parse import urlsplit

from adapters.base import Adapter, OutgoingEvent, PlatformTarget
from adapters.errors import Permanent, Retryable
from adapters.rest.answers import ANSWER_KEPT, classify, classify_event, join_url
from adapters.rest.client import Client
from adapters.rest.proxy import proxy_for
from adapters.rest.signing import Signer, signing_key

USER_AGENT = b"chat-integrator-hub"


def header_value(value: str, what: str) -> bytes:
    """``value`` as the bytes of an HTTP header value; ValueError if it cannot be one."""
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"{what} is not latin-1: it cannot be sent in an HTTP header") from None
    if any((b < 0x20 and b != 0x09) or b == 0x7F for b in raw):
        raise ValueError(f"{what} has control characters: it cannot be sent in an HTTP header")
    return raw


class RestAdapter(Adapter):
    """POST each event to ``<endpoint><kind>`` and GET ``<endpoint>users``, each call with the
    platform's bearer token and Standard Webhooks headers, over one kept-alive connection
    (through the environment's proxy, if it names one for the endpoint)."""

    transport = "rest"

    def __init__(
        self, target: PlatformTarget, timeout: float, *, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(target, timeout)
        if not target.endpoint:
            raise ValueError(f"platform {target.name} has no endpoint")
        self.endpoint = target.endpoint
        parts = urlsplit(target.endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"platform {target.name}: endpoint is not an http(s) URL")
        tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if tls else 80)
        self.prefix = (parts.path or "/").rstrip("/") + "/"
        netloc = parts.netloc.rpartition("@")[2]  # no user info in Host
        self._heads: dict[tuple[bytes, str], tuple[bytes, str]] = {}  # (method, name)
        self._origin = b""  # what precedes the path in a request's target: a proxy's absolute form
        self._client = Client(self.host, self.port, tls, timeout, ssl_context=ssl_context)
        # A token that cannot be a header value, an endpoint with a query or a proxy that cannot
        # be used is a registration (or setup) mistake: every call fails as retryable with that
        # reason (the platform's last error) until it is fixed.
        self._unusable: str | None = None
        try:
            if parts.query or parts.fragment:
                raise ValueError("the endpoint has a query string or a fragment")
            self._auth = b"Bearer " + header_value(target.token, "the token")
            self._host = header_value(netloc, "the endpoint's host")
            self._signer = Signer(signing_key(target.token))
            proxy = self._client.proxy = proxy_for(parts.scheme, self.host, self.port)
            self._proxy_auth = proxy.authorization if proxy and not tls else None
            if proxy and not tls:  # a plain request to a proxy names the whole URL
                self._origin = b"http://" + self._host
        except ValueError as exc:
            self._unusable = f"platform {target.name}: {exc}"

    def send(self, event: OutgoingEvent) -> None:
        status, answer = self._call(b"POST", event.kind, event.event_id, event.payload)
        if 200 <= status < 300:
            return
        classify_event(status, answer, event.kind, join_url(self.endpoint, event.kind))

    def fetch_users(self) -> list[dict[str, Any]]:
        # Signed like every call (the contract): an id of its own, over the empty body.
        status, answer = self._call(b"GET", "users", f"req_{uuid.uuid4().hex}", "")
        classify(status, answer)
        try:
            users = json.loads(answer)
        except ValueError as exc:
            raise Permanent(f"GET users did not answer JSON: {answer[:ANSWER_KEPT]!r}") from exc
        if not isinstance(users, list):
            raise Permanent("GET users did not answer a JSON list")
        return users

    def close(self) -> None:
        self._client.close()

    def _call(self, method: bytes, name: str, msg_id: str, payload: str) -> tuple[int, bytes]:
        """Sign and send one call; return (status, body) of the answer."""
        head, what = self._heads.get((method, name)) or self._head(method, name)
        if not msg_id.isprintable():  # no CR, LF or other control character in a header
            raise Retryable(f"{what}: the event id {msg_id!r} cannot be a header value")
        body = payload.encode()
        request = b"".join((
            head,
            b"Content-Length: %d\r\n" % len(body),
            *[b"%s: %s\r\n" % header for header in self._signer.headers(msg_id, payload)],
            b"\r\n",
            body,
        ))  # fmt: skip
        return self._client.call(request, what)

    def _head(self, method: bytes, name: str) -> tuple[bytes, str]:
        """Request line and the headers that never change (checked once), and the call's name
        in errors, for one call name."""
        if self._unusable:
            raise Retryable(self._unusable)
        try:
            path = header_value(self.prefix + name.lstrip("/"), "the path")
        except ValueError as exc:
            raise Retryable(f"platform {self.target.name}: {exc}") from None
        headers = [
            (b"Host", self._host),
            (b"User-Agent", USER_AGENT),
            (b"Authorization", self._auth),
        ]
        if method == b"POST":
            headers.append((b"Content-Type", b"application/json"))
        if self._proxy_auth:
            headers.append((b"Proxy-Authorization", self._proxy_auth))
        target = self._origin + path.replace(b" ", b"%20")
        head = b"%s %s HTTP/1.1\r\n" % (method, target)
        head += b"".join(b"%s: %s\r\n" % header for header in headers)
        what = f"{method.decode()} {join_url(self.endpoint, name)}"
        self._heads[(method, name)] = entry = (head, what)
        return entry
