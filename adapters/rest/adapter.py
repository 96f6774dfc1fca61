"""The REST transport: POST each event to ``<endpoint><kind>``, signed with Standard Webhooks.

A platform's events go one at a time, each after the previous answer (the contract's order), so
a replay can go no faster than one client's sequential round trips: this module's cost per call
is the hub's ceiling per platform. It therefore speaks HTTP/1.1 itself over one kept-alive
socket per platform (``TCP_NODELAY``, the whole request in one ``sendall``, the answer usually in
one ``recv``), signs with ``hmac.digest`` (the same bytes as ``standardwebhooks.Webhook.sign``;
tests check it), and builds the constant part of each request once. That is 2-5 times as many
calls a second as urllib3 (``bench/bench_rest_adapter.py`` measures it).

What it speaks: ``http`` and ``https`` (certificates verified, as by urllib3), an endpoint with a
path prefix, answers with ``Content-Length``, chunked or closed-delimited bodies, interim 1xx
answers, ``Connection: close``. No redirects and no retries of its own beyond the one below: the
delivery loop decides what a failure means.

Timeout: ``timeout`` seconds for the whole call, connecting included (``HUB_DELIVERY_TIMEOUT``).

A kept-alive connection the platform has closed must cost neither an event nor a false failure:

- before reusing the connection, a zero-timeout ``poll`` tells whether the platform closed it
  (or sent something unasked); then the request goes on a fresh connection, nothing having been
  sent on the old one;
- if the platform closes or resets a reused connection after the request was sent but before a
  single byte of the answer (it closed an idle connection just as the request crossed), the
  request is sent once more on a fresh connection. It was most likely not processed; if it was,
  the platform gets it twice with the same ``webhook-id``, which the contract allows (at least
  once, stable ids). A timeout, a fresh connection failing, or a partial answer are never
  resent: they are ``Retryable`` failures.
"""

from __future__ import annotations

import base64
import errno
import hmac
import json
import select
import socket
import ssl
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from adapters.base import Adapter, OutgoingEvent, PlatformTarget
from adapters.errors import Permanent, Retryable, Unsupported

RETRYABLE_STATUS = {408, 429}
ANSWER_KEPT = 500  # characters of a failing answer kept in the error
MAX_HEAD = 65536  # bytes of status line and headers of an answer
RECV_SIZE = 65536
USER_AGENT = "chat-integrator-hub"
# What a reused connection that the platform had closed looks like once the request is sent.
CLOSED_ERRNOS = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED, errno.ESHUTDOWN}


def signing_key(token: str) -> bytes:
    """The HMAC key: the token's UTF-8 bytes, or the decoded secret of a ``whsec_`` token
    (decoded as ``standardwebhooks.Webhook`` does, padding added)."""
    if token.startswith("whsec_"):
        return base64.b64decode(token[len("whsec_") :] + "==")
    return token.encode()


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """``webhook-signature`` of a call: ``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``,
    byte for byte what ``Webhook.sign`` gives."""
    digest = hmac.digest(key, f"{msg_id}.{timestamp}.".encode() + body, "sha256")
    return "v1," + base64.b64encode(digest).decode()


def join_url(endpoint: str, name: str) -> str:
    """Join endpoint and call name with exactly one '/'."""
    return endpoint.rstrip("/") + "/" + name.lstrip("/")


def classify(status: int, body: bytes) -> None:
    """Raise the delivery error a non-2xx answer stands for."""
    if 200 <= status < 300:
        return
    answer = f"HTTP {status}: {body[:ANSWER_KEPT].decode(errors='replace')}"
    if status in RETRYABLE_STATUS or status >= 500 or status < 400:
        raise Retryable(answer)
    raise Permanent(answer)


def header_value(value: str, what: str) -> bytes:
    """``value`` as the bytes of an HTTP header value; ValueError if it cannot be one."""
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"{what} is not latin-1: it cannot be sent in an HTTP header") from None
    if any((b < 0x20 and b != 0x09) or b == 0x7F for b in raw):
        raise ValueError(f"{what} has control characters: it cannot be sent in an HTTP header")
    return raw


class ProtocolError(Exception):
    """The platform answered something that is not HTTP/1.x."""


class NoAnswer(Exception):
    """The connection closed or was reset before the first byte of the answer."""


class RestAdapter(Adapter):
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
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        self.prefix = (parts.path or "/").rstrip("/") + "/"
        netloc = parts.netloc.rpartition("@")[2]  # no user info in Host
        self._ssl_context = ssl_context
        self._sock: socket.socket | None = None
        self._poll: select.poll | None = None
        self._heads: dict[tuple[str, str], bytes] = {}  # (method, name) -> constant head
        # A token that cannot be a header value (or an endpoint with a query) is a registration
        # mistake: every call fails as retryable with that reason (the platform's last error)
        # until it is fixed.
        self._unusable: str | None = None
        try:
            if parts.query or parts.fragment:
                raise ValueError("the endpoint has a query string or a fragment")
            self._auth = b"Bearer " + header_value(target.token, "the token")
            self._host = header_value(netloc, "the endpoint's host")
            self._key = signing_key(target.token)
            if not self._key:
                raise ValueError("the token's whsec_ secret is empty")
        except ValueError as exc:
            self._unusable = f"platform {target.name}: {exc}"

    # -- the calls -------------------------------------------------------------------------

    def _signed(self, method: str, name: str, msg_id: str, body: bytes) -> bytes:
        """A whole request: fixed head, Content-Length and the Standard Webhooks headers."""
        timestamp = int(time.time())
        head = self._heads.get((method, name)) or self._head(method, name)
        signature = sign(self._key, msg_id, timestamp, body)
        return b"".join((
            head,
            f"Content-Length: {len(body)}\r\nwebhook-id: {msg_id}\r\n"
            f"webhook-timestamp: {timestamp}\r\nwebhook-signature: {signature}\r\n\r\n".encode(),
            body,
        ))  # fmt: skip

    def send(self, event: OutgoingEvent) -> None:
        request = self._signed("POST", event.kind, event.event_id, event.payload.encode())
        status, answer = self._call(request, "POST", event.kind)
        if 200 <= status < 300:
            return
        if event.kind == "notification" and status == 404:
            raise Unsupported(
                f"POST {join_url(self.endpoint, event.kind)} answered 404:"
                " the platform takes no notifications"
            )
        classify(status, answer)

    def fetch_users(self) -> list[dict[str, Any]]:
        # Signed like every call (the contract): an id of its own, over the empty body.
        request = self._signed("GET", "users", f"req_{uuid.uuid4().hex}", b"")
        status, answer = self._call(request, "GET", "users")
        classify(status, answer)
        try:
            users = json.loads(answer)
        except ValueError as exc:
            raise Permanent(f"GET users did not answer JSON: {answer[:ANSWER_KEPT]!r}") from exc
        if not isinstance(users, list):
            raise Permanent("GET users did not answer a JSON list")
        return users

    def close(self) -> None:
        self._drop()

    # -- HTTP/1.1 over one kept-alive socket -----------------------------------------------

    def _head(self, method: str, name: str) -> bytes:
        """Request line and the headers that never change, for one call name."""
        if self._unusable:
            raise Retryable(self._unusable)
        try:
            path = header_value(self.prefix + name.lstrip("/"), "the path")
        except ValueError as exc:
            raise Retryable(f"platform {self.target.name}: {exc}") from None
        path = path.replace(b" ", b"%20")
        head = b"".join((
            method.encode(), b" ", path, b" HTTP/1.1\r\nHost: ", self._host,
            b"\r\nUser-Agent: ", USER_AGENT.encode(), b"\r\nAuthorization: ", self._auth,
            b"\r\nContent-Type: application/json\r\n" if method == "POST" else b"\r\n",
        ))  # fmt: skip
        self._heads[(method, name)] = head
        return head

    def _call(self, request: bytes, method: str, name: str) -> tuple[int, bytes]:
        """Send one request, return (status, body); Retryable when no answer came."""
        deadline = time.monotonic() + self.timeout
        try:
            reused = self._sock is not None and self._alive()
            if not reused:
                self._connect(deadline)
            try:
                return self._exchange(request, deadline)
            except NoAnswer:
                if not reused:
                    raise
            # The platform had closed the reused connection: once more on a fresh one.
            self._connect(deadline)
            return self._exchange(request, deadline)
        except (OSError, ProtocolError, NoAnswer, ValueError) as exc:
            self._drop()
            raise Retryable(self._describe(exc, method, name)) from exc

    def _describe(self, exc: Exception, method: str, name: str) -> str:
        """Say in one short line why a call did not get an answer."""
        if isinstance(exc, TimeoutError):
            reason = f"timed out after {self.timeout:g}s"
        elif isinstance(exc, ConnectionRefusedError):
            reason = "connection refused"
        elif isinstance(exc, NoAnswer):
            reason = "connection closed without an answer"
        elif isinstance(exc, ConnectionResetError):
            reason = "connection reset"
        elif isinstance(exc, socket.gaierror):
            reason = f"name or service not known ({self.host})"
        else:
            reason = f"{type(exc).__name__}: {str(exc)[:ANSWER_KEPT]}"
        return f"{method} {join_url(self.endpoint, name)}: {reason}"

    def _connect(self, deadline: float) -> None:
        self._drop()
        sock = socket.create_connection((self.host, self.port), self._remaining(deadline))
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls:
                if self._ssl_context is None:
                    self._ssl_context = ssl.create_default_context()
                sock.settimeout(self._remaining(deadline))
                sock = self._ssl_context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN | select.POLLPRI)

    def _alive(self) -> bool:
        """Whether the kept-alive connection can carry a request: nothing to read on it.
        Readable means the platform closed it, sent something unasked, or (TLS) sent a record
        such as a session ticket, which a non-blocking read consumes."""
        assert self._sock is not None and self._poll is not None
        if not self._poll.poll(0):
            return True
        sock = self._sock
        try:
            sock.settimeout(0)
            if isinstance(sock, ssl.SSLSocket):
                try:
                    sock.recv(1)
                except ssl.SSLWantReadError:
                    return True
            else:
                sock.recv(1, socket.MSG_PEEK)
        except OSError:
            pass
        self._drop()
        return False

    def _drop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = self._poll = None

    @staticmethod
    def _remaining(deadline: float) -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        return left

    def _recv(self, deadline: float) -> bytes:
        assert self._sock is not None
        self._sock.settimeout(self._remaining(deadline))
        return self._sock.recv(RECV_SIZE)

    def _exchange(self, request: bytes, deadline: float) -> tuple[int, bytes]:
        sock = self._sock
        assert sock is not None
        got_any = False
        try:
            sock.settimeout(self._remaining(deadline))
            sock.sendall(request)
            buf = bytearray(self._recv(deadline))
            if not buf:
                raise NoAnswer
            got_any = True
            while True:  # skip interim answers (1xx)
                end = buf.find(b"\r\n\r\n")
                while end < 0:
                    if len(buf) > MAX_HEAD:
                        raise ProtocolError("answer headers too long")
                    chunk = self._recv(deadline)
                    if not chunk:
                        raise ProtocolError("connection closed in the answer's headers")
                    buf += chunk
                    end = buf.find(b"\r\n\r\n")
                status, headers, keep = self._parse_head(bytes(buf[:end]))
                del buf[: end + 4]
                if status >= 200 or status == 101:
                    break
            if status < 200:  # 101: the connection no longer speaks HTTP
                keep = False
            if status < 200 or status in (204, 304):
                body, rest = b"", buf
            elif b"chunked" in headers.get(b"transfer-encoding", b""):
                body, rest = self._read_chunked(buf, deadline)
            elif b"content-length" in headers:
                try:
                    length = int(headers[b"content-length"])
                except ValueError:
                    raise ProtocolError("bad Content-Length") from None
                while len(buf) < length:
                    chunk = self._recv(deadline)
                    if not chunk:
                        raise ProtocolError("connection closed in the answer's body")
                    buf += chunk
                body, rest = bytes(buf[:length]), buf[length:]
            else:  # the body ends when the platform closes the connection
                while chunk := self._recv(deadline):
                    buf += chunk
                body, rest, keep = bytes(buf), b"", False
        except OSError as exc:
            if not got_any and (isinstance(exc, ConnectionError) and exc.errno in CLOSED_ERRNOS):
                raise NoAnswer from exc
            raise
        if rest or not keep:  # bytes nobody asked for: the connection is out of step
            self._drop()
        return status, body

    @staticmethod
    def _parse_head(head: bytes) -> tuple[int, dict[bytes, bytes], bool]:
        """Status, the headers that matter here (lower-case names), keep-alive or not."""
        lines = head.split(b"\r\n")
        parts = lines[0].split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name in (b"content-length", b"transfer-encoding", b"connection"):
                headers[name] = value.strip().lower()
        connection = headers.get(b"connection", b"")
        if parts[0] == b"HTTP/1.0":
            keep = b"keep-alive" in connection
        else:
            keep = b"close" not in connection
        return int(parts[1]), headers, keep

    def _read_chunked(self, buf: bytearray, deadline: float) -> tuple[bytes, bytearray]:
        body = bytearray()
        while True:
            end = buf.find(b"\r\n")
            while end < 0:
                chunk = self._recv(deadline)
                if not chunk:
                    raise ProtocolError("connection closed in a chunked answer")
                buf += chunk
                end = buf.find(b"\r\n")
            try:
                size = int(bytes(buf[:end]).split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise ProtocolError("bad chunk size") from None
            if size == 0:
                del buf[:end]  # keep the CRLF: the trailer section ends with an empty line
                while (stop := buf.find(b"\r\n\r\n")) < 0:
                    chunk = self._recv(deadline)
                    if not chunk:
                        raise ProtocolError("connection closed in a chunked answer")
                    buf += chunk
                return bytes(body), buf[stop + 4 :]
            while len(buf) < end + 2 + size + 2:
                chunk = self._recv(deadline)
                if not chunk:
                    raise ProtocolError("connection closed in a chunked answer")
                buf += chunk
            body += buf[end + 2 : end + 2 + size]
            del buf[: end + 2 + size + 2]
