"""HTTP/1.1 exchanges with one platform over one kept-alive connection: httptools over a socket.

A platform's events go one at a time, each after the previous answer (the contract's order), so
a replay goes no faster than one client's sequential round trips: this cost per call is the
hub's ceiling per platform. So the connection is one plain socket (``TCP_NODELAY``, the whole
request in one ``sendall``, the answer usually in one ``recv``) and the answer is parsed by
``httptools.HttpResponseParser``, the binding of llhttp (Node.js's HTTP parser, in C) that
uvicorn uses: status line, headers, ``Content-Length``, chunked bodies (extensions and
trailers), keep-alive, all validated by llhttp. The request is bytes the adapter builds (the
constant head once per call name, then ``Content-Length``, the signature headers and the body).

Why httptools and not h11 (the library before it): h11's state machine is pure Python and cost
~55 us of CPU a call (normalising and validating every request's headers, the events, the
state transitions), which made a call ~1.6 times as costly as the hand-written client it
replaced; llhttp parses an answer in ~1 us. ``bench/bench_rest_adapter.py`` measures both.

What this module decides itself, as llhttp leaves it to the caller: an interim 1xx answer is
skipped (llhttp reports it as a whole message without a body), a body with neither
``Content-Length`` nor ``Transfer-Encoding`` ends when the connection closes (llhttp would need
an end-of-input call that httptools does not expose), the answer's head is at most
``MAX_HEAD`` bytes or so, and bytes after the answer mean the connection is out of step (closed).

Timeout: ``timeout`` seconds for the whole call, connecting (and a proxy's CONNECT) included.
No redirects and no retries of its own beyond the one below: the delivery loop decides what a
failure means.

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

import errno
import select
import socket
import ssl
import time

import httptools

from adapters.errors import Retryable
from adapters.rest.answers import ANSWER_KEPT
from adapters.rest.proxy import Proxy

MAX_HEAD = 65536  # an answer whose head is not whole after this many bytes is refused
RECV_SIZE = 65536
# What a reused connection that the platform had closed looks like once the request is sent.
CLOSED_ERRNOS = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED, errno.ESHUTDOWN}
FRAMING = (b"content-length", b"transfer-encoding")
# What feed_data raises: a malformed answer, a callback's exception, or a 101 (upgrade).
PARSER_ERRORS = (httptools.HttpParserError, httptools.HttpParserUpgrade)


class ProtocolError(Exception):
    """The answer is not one HTTP/1.x answer to the request (or a proxy refused the tunnel)."""


class NoAnswer(Exception):
    """The connection closed or was reset before the first byte of the answer."""


class OutOfStep(Exception):
    """Raised from a callback: bytes came after the answer (llhttp began another message)."""


class Answer:
    """httptools' callbacks for one exchange: the final answer's status, body and whether the
    connection stays usable; interim 1xx answers pass through without a trace."""

    __slots__ = ("complete", "framed", "head_done", "keep", "parser", "parts", "status")

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.parts: list[bytes] = []
        self.head_done = self.framed = self.complete = self.keep = False

    def on_message_begin(self) -> None:
        if self.complete:
            raise OutOfStep
        self.head_done = self.framed = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() in FRAMING:
            self.framed = True

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self.parts.append(body)

    def on_message_complete(self) -> None:
        if self.status >= 200:  # a 1xx is complete at its head: the answer follows
            self.complete = True
            self.keep = self.parser.should_keep_alive()  # llhttp forgets it after this call


class Client:
    """One platform's connection: ``call`` sends a request and returns ``(status, body)``."""

    def __init__(
        self,
        host: str,
        port: int,
        tls: bool,
        timeout: float,
        *,
        proxy: Proxy | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port, self.tls, self.timeout = host, port, tls, timeout
        self.proxy = proxy
        self._ssl_context = ssl_context
        self._sock: socket.socket | None = None
        self._poll: select.poll | None = None

    def call(self, request: bytes, what: str) -> tuple[int, bytes]:
        """Send one whole request (head and body); return its answer. Retryable (saying
        ``what`` failed and why) when no whole answer came within the timeout."""
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
        except (OSError, ProtocolError, NoAnswer) as exc:
            self.close()
            raise Retryable(f"{what}: {self._describe(exc)}") from exc

    def close(self) -> None:
        """Drop the connection; the next call opens a fresh one."""
        if self._sock is not None:
            self._sock.close()
            self._sock = self._poll = None

    def _describe(self, exc: Exception) -> str:
        """Why a call got no answer, in one short line."""
        if isinstance(exc, TimeoutError):
            return f"timed out after {self.timeout:g}s"
        if isinstance(exc, ConnectionRefusedError):
            return "connection refused" + (" by the proxy" if self.proxy else "")
        if isinstance(exc, NoAnswer):
            return "connection closed without an answer"
        if isinstance(exc, ConnectionResetError):
            return "connection reset"
        if isinstance(exc, socket.gaierror):
            host = self.proxy.host if self.proxy else self.host
            return f"name or service not known ({host})"
        return f"{type(exc).__name__}: {str(exc)[:ANSWER_KEPT]}"

    # -- the connection ---------------------------------------------------------------------

    def _connect(self, deadline: float) -> None:
        self.close()
        address = (self.proxy.host, self.proxy.port) if self.proxy else (self.host, self.port)
        sock = socket.create_connection(address, _remaining(deadline))
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls:
                if self.proxy:
                    self._tunnel(sock, deadline)
                if self._ssl_context is None:
                    self._ssl_context = ssl.create_default_context()
                sock.settimeout(_remaining(deadline))
                sock = self._ssl_context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN | select.POLLPRI)

    def _tunnel(self, sock: socket.socket, deadline: float) -> None:
        """Ask the proxy for a tunnel to the platform (``CONNECT``), for TLS end to end. The
        tunnel starts right after the head of a 2xx answer (a 2xx to CONNECT has no body)."""
        assert self.proxy is not None
        authority = f"{self.host}:{self.port}".encode()
        request = b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n" % (authority, authority)
        if self.proxy.authorization:
            request += b"Proxy-Authorization: %s\r\n" % self.proxy.authorization
        sock.settimeout(_remaining(deadline))
        sock.sendall(request + b"\r\n")
        buf, status = b"", 0
        while status < 200 and status != 101:  # interim 1xx answers skipped
            while (end := buf.find(b"\r\n\r\n")) < 0:
                if len(buf) > MAX_HEAD:
                    raise ProtocolError("the proxy's answer headers are too long")
                sock.settimeout(_remaining(deadline))
                data = sock.recv(RECV_SIZE)
                if not data:
                    raise ProtocolError("the proxy closed the connection instead of a tunnel")
                buf += data
            status = head_status(buf[: end + 4])
            buf = buf[end + 4 :]
        if not 200 <= status < 300:
            raise ProtocolError(f"the proxy answered CONNECT with HTTP {status}")
        if buf:
            raise ProtocolError("the proxy sent bytes after its CONNECT answer")

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
        self.close()
        return False

    # -- one exchange ----------------------------------------------------------------------

    def _exchange(self, request: bytes, deadline: float) -> tuple[int, bytes]:
        sock = self._sock
        assert sock is not None
        answer = Answer()
        feed = answer.parser.feed_data
        got, out_of_step = 0, False  # bytes of the answer received
        try:
            sock.settimeout(_remaining(deadline))
            sock.sendall(request)
            while not answer.complete:
                sock.settimeout(_remaining(deadline))
                data = sock.recv(RECV_SIZE)
                if not data:
                    if not got:
                        raise NoAnswer
                    if answer.head_done and not answer.framed:
                        break  # a body that ends with the connection
                    where = "body" if answer.head_done else "headers"
                    raise ProtocolError(f"connection closed in the answer's {where}")
                got += len(data)
                try:
                    feed(data)
                except PARSER_ERRORS as exc:
                    if answer.complete:  # the answer is whole; what followed was not asked for
                        out_of_step = True
                    elif answer.status == 101:  # llhttp stops after its head
                        raise ProtocolError("the platform switched protocols (101)") from None
                    else:
                        raise ProtocolError(f"not an HTTP/1.x answer: {exc}") from None
                if got >= MAX_HEAD and not answer.head_done:
                    raise ProtocolError("answer headers too long")
        except OSError as exc:
            if not got and isinstance(exc, ConnectionError) and exc.errno in CLOSED_ERRNOS:
                raise NoAnswer from exc
            raise
        finally:
            del answer.parser  # parser and callbacks refer to each other: freed now, not by gc
        if out_of_step or not answer.keep:  # Connection: close, or a close-delimited body
            self.close()
        return answer.status, b"".join(answer.parts)


class Head:
    """httptools' callbacks for a head alone (a proxy's answer to CONNECT)."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = False

    def on_headers_complete(self) -> None:
        self.done = True


def head_status(head: bytes) -> int:
    """The status of one answer's head (status line to the empty line), checked by llhttp."""
    protocol = Head()
    parser = httptools.HttpResponseParser(protocol)
    try:
        parser.feed_data(head)
    except PARSER_ERRORS as exc:  # after a whole head too: llhttp stops after a 101's
        if not protocol.done:
            raise ProtocolError(f"not an HTTP/1.x answer: {exc}") from None
    if not protocol.done:
        raise ProtocolError("not an HTTP/1.x answer")
    return parser.get_status_code()


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("timed out")
    return left
