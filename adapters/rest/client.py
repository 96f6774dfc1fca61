"""HTTP/1.1 exchanges with one platform over one kept-alive connection: h11 over a socket.

A platform's events go one at a time, each after the previous answer (the contract's order), so
a replay goes no faster than one client's sequential round trips: this cost per call is the
hub's ceiling per platform. So the connection is one plain socket (``TCP_NODELAY``, the whole
request in one ``sendall``) and h11 does the HTTP (framing, chunked and close-delimited bodies,
interim 1xx answers, keep-alive); ``bench/bench_rest_adapter.py`` measures it.

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

import h11

from adapters.errors import Retryable
from adapters.rest.answers import ANSWER_KEPT
from adapters.rest.proxy import Proxy

Headers = list[tuple[bytes, bytes]]

MAX_HEAD = 65536  # bytes of status line and headers of an answer
RECV_SIZE = 65536
# What a reused connection that the platform had closed looks like once the request is sent.
CLOSED_ERRNOS = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED, errno.ESHUTDOWN}


class ProtocolError(Exception):
    """The answer is not one HTTP/1.x answer to the request (or a proxy refused the tunnel)."""


class NoAnswer(Exception):
    """The connection closed or was reset before the first byte of the answer."""


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
        self._http: h11.Connection | None = None

    def call(
        self, method: bytes, target: bytes, headers: Headers, body: bytes, what: str
    ) -> tuple[int, bytes]:
        """Send one request; return its answer. Retryable (saying ``what`` failed and why) when
        no whole answer came within the timeout."""
        deadline = time.monotonic() + self.timeout
        try:
            reused = self._sock is not None and self._alive()
            if not reused:
                self._connect(deadline)
            try:
                return self._exchange(method, target, headers, body, deadline)
            except NoAnswer:
                if not reused:
                    raise
            # The platform had closed the reused connection: once more on a fresh one.
            self._connect(deadline)
            return self._exchange(method, target, headers, body, deadline)
        except (OSError, ProtocolError, NoAnswer, h11.ProtocolError) as exc:
            self.close()
            raise Retryable(f"{what}: {self._describe(exc)}") from exc

    def close(self) -> None:
        """Drop the connection; the next call opens a fresh one."""
        if self._sock is not None:
            self._sock.close()
            self._sock = self._poll = self._http = None

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
        self._http = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN | select.POLLPRI)

    def _tunnel(self, sock: socket.socket, deadline: float) -> None:
        """Ask the proxy for a tunnel to the platform (``CONNECT``), for TLS end to end."""
        assert self.proxy is not None
        authority = f"{self.host}:{self.port}".encode()
        headers = [(b"Host", authority)]
        if self.proxy.authorization:
            headers.append((b"Proxy-Authorization", self.proxy.authorization))
        http = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        request = http.send(h11.Request(method=b"CONNECT", target=authority, headers=headers))
        sock.settimeout(_remaining(deadline))
        sock.sendall(request + http.send(h11.EndOfMessage()))
        while True:
            event = http.next_event()
            if event is h11.NEED_DATA:
                sock.settimeout(_remaining(deadline))
                http.receive_data(sock.recv(RECV_SIZE))
            elif type(event) is h11.Response:
                break
            elif type(event) is h11.ConnectionClosed:
                raise ProtocolError("the proxy closed the connection instead of a tunnel")
        if not 200 <= event.status_code < 300:
            raise ProtocolError(f"the proxy answered CONNECT with HTTP {event.status_code}")
        if http.trailing_data[0]:
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

    def _exchange(
        self, method: bytes, target: bytes, headers: Headers, body: bytes, deadline: float
    ) -> tuple[int, bytes]:
        sock, http = self._sock, self._http
        assert sock is not None and http is not None
        request = http.send(h11.Request(method=method, target=target, headers=headers))
        if body:
            request += http.send(h11.Data(data=body))
        request += http.send(h11.EndOfMessage())
        got_any = closed = False
        status, parts = 0, []
        try:
            sock.settimeout(_remaining(deadline))
            sock.sendall(request)
            while True:
                event = http.next_event()
                if event is h11.NEED_DATA:
                    sock.settimeout(_remaining(deadline))
                    data = sock.recv(RECV_SIZE)
                    if not data and not got_any:
                        raise NoAnswer
                    got_any, closed = True, not data
                    http.receive_data(data)
                elif type(event) is h11.Data:
                    parts.append(event.data)
                elif type(event) is h11.Response:
                    status = event.status_code
                elif type(event) is h11.EndOfMessage:
                    break
                elif type(event) is h11.ConnectionClosed:
                    raise ProtocolError("connection closed in the answer")
                # InformationalResponse (1xx): skipped, the answer follows.
        except OSError as exc:
            if not got_any and isinstance(exc, ConnectionError) and exc.errno in CLOSED_ERRNOS:
                raise NoAnswer from exc
            raise
        except h11.RemoteProtocolError as exc:
            if closed:  # h11 says what was cut short; say it in this module's words
                where = "body" if status else "headers"
                raise ProtocolError(f"connection closed in the answer's {where}") from exc
            raise
        if http.our_state is h11.DONE and http.their_state is h11.DONE:
            http.start_next_cycle()
            if http.trailing_data[0]:  # bytes nobody asked for: the connection is out of step
                self.close()
        else:  # Connection: close, or a body that ended with the connection
            self.close()
        return status, b"".join(parts)


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("timed out")
    return left
