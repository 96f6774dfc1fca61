"""The REST adapter against real loopback HTTP servers: what it sends, how it reads each kind of
answer, and how it deals with connections that the platform closes, resets or leaves hanging.

The server here is a raw socket server, so each test decides byte for byte what the platform
answers (chunked, close-delimited, interim 1xx, a reset instead of an answer...).
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from adapters import OutgoingEvent, Permanent, PlatformTarget, Retryable, Unsupported
from adapters.rest import RestAdapter
from adapters.rest.client import Answer
from adapters.rest.signing import Signer, signing_key
from tests.support.loopback_platform import wait_for

TOKEN = "token-of-B"
PAYLOAD = json.dumps({"id": 7, "text": "héllo ✓", "roomId": 1}, ensure_ascii=False)


@dataclass
class Request:
    connection: int  # index of the connection it came on, from 0
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


# What a handler returns: the bytes to send (None: nothing; a list: pieces, each sent by itself),
# then what to do with the connection.
KEEP, CLOSE, RESET, HANG = "keep", "close", "reset", "hang"
Action = tuple[bytes | list[bytes] | None, str]


def reply(status: int, body: bytes = b'{"status": 200}', headers: str = "") -> bytes:
    return f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n{headers}\r\n".encode() + body


class RawServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 whose answers are written by ``handler``."""

    def __init__(
        self,
        handler: Callable[[Request], Action] | None = None,
        tls: ssl.SSLContext | None = None,
        port: int = 0,
    ) -> None:
        self.handler = handler or (lambda request: (reply(200), KEEP))
        self.tls = tls
        self.requests: list[Request] = []
        self.connections = 0
        self.closed = 0  # connections this server closed or saw closed
        self.release = threading.Event()  # lets HANG handlers go
        self.lock = threading.Lock()
        self.open: set[socket.socket] = set()
        self.listener = socket.create_server(("127.0.0.1", port))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def endpoint(self, prefix: str = "/api/") -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}{prefix}"

    def stop(self) -> None:
        """Stop listening and drop every open connection."""
        self.release.set()
        with contextlib.suppress(OSError):  # wakes the accepting thread (close alone does not)
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self.lock:
            for conn in self.open:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                index = self.connections
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn, index), daemon=True).start()

    def _serve(self, conn: socket.socket, index: int) -> None:
        with self.lock:
            self.open.add(conn)
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # pieces stay pieces
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            file = conn.makefile("rb")
            while True:
                line = file.readline()
                if not line:
                    return
                method, path, _ = line.decode().split(" ", 2)
                headers = {}
                while (line := file.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = file.read(int(headers.get("content-length", 0)))
                request = Request(index, method, path, headers, body)
                with self.lock:
                    self.requests.append(request)
                data, then = self.handler(request)
                for piece in data if isinstance(data, list) else [data] if data else []:
                    conn.sendall(piece)
                if then == HANG:
                    self.release.wait(30)
                    return
                if then == RESET:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                if then == CLOSE:
                    return
        except (OSError, ValueError):
            return
        finally:
            conn.close()
            with self.lock:
                self.open.discard(conn)
                self.closed += 1


@pytest.fixture
def server_factory() -> Iterator[Callable[..., RawServer]]:
    servers: list[RawServer] = []

    def make(handler: Callable[[Request], Action] | None = None, **kwargs) -> RawServer:
        server = RawServer(handler, **kwargs)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def adapters() -> Iterator[Callable[..., RestAdapter]]:
    made: list[RestAdapter] = []

    def make(endpoint: str, token: str = TOKEN, timeout: float = 3.0, **kwargs) -> RestAdapter:
        adapter = RestAdapter(PlatformTarget(2, "B", "rest", endpoint, token), timeout, **kwargs)
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        adapter.close()


def event(kind: str = "message", n: int = 1, payload: str = PAYLOAD) -> OutgoingEvent:
    return OutgoingEvent(f"evt_{n:032x}", n, kind, payload)


# -- what it sends ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "1111",  # valid base64 too: it must still be keyed with its UTF-8 bytes
        "tøken ünïcode ✓",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",  # unpadded base64
    ],
)
def test_signature_is_byte_for_byte_what_the_contracts_verifier_signs(token: str) -> None:
    # The contract: Webhook(token.encode()), or Webhook(token) for a whsec_ token.
    signer = Webhook(token) if token.startswith("whsec_") else Webhook(token.encode())
    ours = Signer(signing_key(token))
    for msg_id, payload in [
        ("evt_1", PAYLOAD),
        ("evt_" + "f" * 32, ""),
        ("msg_x", '{"text": "a.b.c \\u00e9 é"}' * 50),
    ]:
        headers = {name.decode(): value.decode() for name, value in ours.headers(msg_id, payload)}
        assert headers["webhook-id"] == msg_id
        timestamp = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
        assert abs(timestamp.timestamp() - time.time()) < 5
        assert headers["webhook-signature"] == signer.sign(msg_id, timestamp, payload)
        signer.verify(payload, headers, json_parse=False)  # raises if it does not verify


def test_a_whsec_token_is_keyed_with_its_decoded_secret() -> None:
    assert signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") == base64.b64decode(
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    )
    assert signing_key("whsec_AAE") == b"\x00\x01"  # unpadded: padding added
    assert signing_key("1111") == b"1111"


@pytest.mark.parametrize("token", [TOKEN, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
def test_a_call_carries_the_contract_headers_and_verifies(server_factory, adapters, token) -> None:
    server = server_factory()
    adapter = adapters(server.endpoint("/some/prefix/api/"), token=token)
    before = int(time.time())
    adapter.send(event("room", 3))
    (request,) = server.requests
    assert (request.method, request.path) == ("POST", "/some/prefix/api/room")
    assert request.body == PAYLOAD.encode()
    headers = request.headers
    assert headers["authorization"] == f"Bearer {token}"
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == str(len(PAYLOAD.encode()))
    assert headers["host"] == f"127.0.0.1:{server.port}"
    assert headers["webhook-id"] == f"evt_{3:032x}"
    assert before <= int(headers["webhook-timestamp"]) <= int(time.time())
    signer = Webhook(token) if token.startswith("whsec_") else Webhook(token.encode())
    assert signer.verify(request.body, headers) == json.loads(PAYLOAD)


@pytest.mark.parametrize("endpoint_path", ["/api", "/api/", "/"])
def test_endpoint_and_call_name_are_joined_with_one_slash(
    server_factory, adapters, endpoint_path
) -> None:
    server = server_factory()
    adapter = adapters(f"http://127.0.0.1:{server.port}{endpoint_path}")
    adapter.send(event("user"))
    assert server.requests[0].path == endpoint_path.rstrip("/") + "/user"


def test_fetch_users_gets_the_list_with_the_token(server_factory, adapters) -> None:
    users = [{"id": 1, "name": "alice"}, {"id": "x", "name": "bob"}]
    server = server_factory(lambda r: (reply(200, json.dumps(users).encode()), KEEP))
    assert adapters(server.endpoint()).fetch_users() == users
    (request,) = server.requests
    assert (request.method, request.path) == ("GET", "/api/users")
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    # Signed like every call: an id of its own over the empty body.
    assert request.headers["webhook-id"].startswith("req_")
    assert Webhook(TOKEN.encode()).verify(b"", request.headers, json_parse=False) is None


@pytest.mark.parametrize("answer", [b"<html>oops</html>", b'{"users": []}'])
def test_fetch_users_that_is_not_a_json_list_is_permanent(server_factory, adapters, answer):
    server = server_factory(lambda r: (reply(200, answer), KEEP))
    with pytest.raises(Permanent):
        adapters(server.endpoint()).fetch_users()


def test_a_token_that_cannot_be_a_header_fails_as_retryable_without_calling(
    server_factory, adapters
) -> None:
    server = server_factory()
    adapter = adapters(server.endpoint(), token="abc\r\nX-Injected: 1")
    with pytest.raises(Retryable, match="control characters"):
        adapter.send(event())
    assert server.connections == 0


def test_an_endpoint_with_a_query_string_fails_as_retryable(adapters) -> None:
    with pytest.raises(Retryable, match="query string"):
        adapters("http://127.0.0.1:9/api/?x=1").fetch_users()


# -- the answers -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_2xx_acknowledges(server_factory, adapters, status) -> None:
    body = b"" if status == 204 else b"{}"
    server = server_factory(lambda r: (reply(status, body), KEEP))
    adapter = adapters(server.endpoint())
    adapter.send(event(n=1))
    adapter.send(event(n=2))
    assert server.connections == 1  # kept alive


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 301, 302])
def test_408_429_5xx_and_redirects_are_retryable(server_factory, adapters, status) -> None:
    server = server_factory(lambda r: (reply(status, b"busy", "Location: /x\r\n"), KEEP))
    with pytest.raises(Retryable, match=f"HTTP {status}: busy"):
        adapters(server.endpoint()).send(event())
    assert len(server.requests) == 1  # redirects are not followed


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 410, 422])
def test_other_4xx_are_permanent_with_the_answer_kept(server_factory, adapters, status) -> None:
    server = server_factory(lambda r: (reply(status, b'{"why": "no room 1"}'), KEEP))
    with pytest.raises(Permanent) as caught:
        adapters(server.endpoint()).send(event("message"))
    assert type(caught.value) is Permanent
    assert caught.value.message == f'HTTP {status}: {{"why": "no room 1"}}'


def test_404_on_notification_is_unsupported(server_factory, adapters) -> None:
    server = server_factory(lambda r: (reply(404, b"{}"), KEEP))
    with pytest.raises(Unsupported, match="takes no notifications"):
        adapters(server.endpoint()).send(event("notification"))


def test_a_failing_answer_keeps_its_first_500_characters(server_factory, adapters) -> None:
    server = server_factory(lambda r: (reply(400, b"x" * 5000), KEEP))
    with pytest.raises(Permanent) as caught:
        adapters(server.endpoint()).send(event())
    assert caught.value.message == "HTTP 400: " + "x" * 500


def test_chunked_answers_are_read_and_the_connection_kept(server_factory, adapters) -> None:
    users = json.dumps([{"id": i, "name": f"user {i}"} for i in range(50)]).encode()
    pieces = [users[:10], users[10:300], users[300:]]
    chunked = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in pieces)

    def handler(request: Request) -> Action:
        if request.path.endswith("users"):
            return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked + (
                b"0\r\nX-Trailer: 1\r\n\r\n"
            ), KEEP  # fmt: skip
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", KEEP

    server = server_factory(handler)
    adapter = adapters(server.endpoint())
    assert adapter.fetch_users() == json.loads(users)
    adapter.send(event(n=1))
    assert adapter.fetch_users() == json.loads(users)
    assert (server.connections, len(server.requests)) == (1, 3)


def test_a_large_answer_in_many_reads(server_factory, adapters) -> None:
    users = [{"id": i, "name": "n" * 200} for i in range(5000)]  # ~1 MB
    server = server_factory(lambda r: (reply(200, json.dumps(users).encode()), KEEP))
    assert adapters(server.endpoint()).fetch_users() == users


def test_interim_1xx_answers_are_skipped(server_factory, adapters) -> None:
    server = server_factory(
        lambda r: (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early\r\nLink: x\r\n\r\n" + reply(200),
            KEEP,
        )
    )
    adapter = adapters(server.endpoint())
    adapter.send(event(n=1))
    adapter.send(event(n=2))
    assert server.connections == 1


def test_a_close_delimited_answer_then_a_fresh_connection(server_factory, adapters) -> None:
    server = server_factory(lambda r: (b"HTTP/1.0 200 OK\r\n\r\n[]", CLOSE))
    adapter = adapters(server.endpoint())
    assert adapter.fetch_users() == []
    assert adapter.fetch_users() == []
    assert server.connections == 2


def test_connection_close_answer_is_honoured(server_factory, adapters) -> None:
    server = server_factory(lambda r: (reply(200, headers="Connection: close\r\n"), CLOSE))
    adapter = adapters(server.endpoint())
    for n in range(3):
        adapter.send(event(n=n))
    assert (server.connections, len(server.requests)) == (3, 3)


def test_garbage_instead_of_http_is_retryable(server_factory, adapters) -> None:
    server = server_factory(lambda r: (b"SSH-2.0-OpenSSH\r\n\r\n", CLOSE))
    with pytest.raises(Retryable, match="ProtocolError"):
        adapters(server.endpoint()).send(event())


def test_an_answer_cut_short_is_retryable_and_not_resent(server_factory, adapters) -> None:
    server = server_factory(lambda r: (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{", CLOSE))
    with pytest.raises(Retryable, match="closed in the answer's body"):
        adapters(server.endpoint()).send(event())
    assert len(server.requests) == 1


CHUNKED_WITH_INTERIM = (
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
    b"X-Long: " + b"v" * 300 + b"\r\n\r\n3;x=1\r\n[1,\r\n2\r\n2]\r\n0\r\nX-T: 1\r\n\r\n"
)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_the_parser_reads_an_answer_however_it_is_split(size) -> None:
    # What the socket hands over in each recv is arbitrary: every split point gives one answer.
    answer = Answer()
    for start in range(0, len(CHUNKED_WITH_INTERIM), size):
        assert not answer.complete
        answer.parser.feed_data(CHUNKED_WITH_INTERIM[start : start + size])
    assert (answer.complete, answer.keep, answer.status) == (True, True, 200)
    assert b"".join(answer.parts) == b"[1,2]"


def test_an_answer_arriving_in_pieces_is_read_and_the_connection_kept(server_factory, adapters):
    data = CHUNKED_WITH_INTERIM
    pieces = [data[:5], data[5:19], data[19:27], data[27:60], data[60:-9], data[-9:-1], data[-1:]]
    server = server_factory(lambda r: (pieces, KEEP))
    adapter = adapters(server.endpoint())
    assert adapter.fetch_users() == [1, 2]
    assert adapter.fetch_users() == [1, 2]
    assert server.connections == 1


def test_a_close_delimited_http_1_1_answer(server_factory, adapters) -> None:
    # No Content-Length, not chunked: the body is what comes until the connection closes.
    server = server_factory(lambda r: ([b"HTTP/1.1 200 OK\r\n\r\n[1", b", 2]"], CLOSE))
    adapter = adapters(server.endpoint())
    assert adapter.fetch_users() == [1, 2]
    assert adapter.fetch_users() == [1, 2]
    assert server.connections == 2


@pytest.mark.parametrize("extra", [reply(200, b"{}"), b"garbage"], ids=["answer", "garbage"])
def test_bytes_after_the_answer_drop_the_connection(server_factory, adapters, extra) -> None:
    # Nothing was asked for them: the connection is out of step, the answer itself counts.
    server = server_factory(lambda r: (reply(200, b"[7]") + extra, KEEP))
    adapter = adapters(server.endpoint())
    assert adapter.fetch_users() == [7]
    assert adapter.fetch_users() == [7]
    assert (server.connections, len(server.requests)) == (2, 2)


def test_answer_headers_too_long_are_retryable(server_factory, adapters) -> None:
    head = b"HTTP/1.1 200 OK\r\nX-Big: " + b"x" * 200_000 + b"\r\nContent-Length: 2\r\n\r\n{}"
    server = server_factory(lambda r: (head, CLOSE))
    with pytest.raises(Retryable, match="answer headers too long"):
        adapters(server.endpoint()).send(event())


@pytest.mark.parametrize(
    ("answer", "where"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Le", "headers"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "body"),
    ],
)
def test_an_answer_cut_short_says_where(server_factory, adapters, answer, where) -> None:
    server = server_factory(lambda r: (answer, CLOSE))
    with pytest.raises(Retryable, match=f"closed in the answer's {where}"):
        adapters(server.endpoint()).send(event())
    assert len(server.requests) == 1


@pytest.mark.parametrize("headers", [b"", b"Connection: upgrade\r\nUpgrade: other\r\n"])
def test_switching_protocols_is_retryable(server_factory, adapters, headers) -> None:
    answer = b"HTTP/1.1 101 Switching Protocols\r\n" + headers + b"\r\n"
    server = server_factory(lambda r: (answer, KEEP))
    with pytest.raises(Retryable, match=r"switched protocols \(101\)"):
        adapters(server.endpoint()).send(event())


def test_an_event_id_that_cannot_be_a_header_is_retryable_without_calling(
    server_factory, adapters
) -> None:
    server = server_factory()
    bad = OutgoingEvent("evt_1\r\nX-Injected: 1", 1, "message", PAYLOAD)
    with pytest.raises(Retryable, match="cannot be a header value"):
        adapters(server.endpoint()).send(bad)
    assert server.connections == 0


# -- connections: refused, timed out, closed, reset ------------------------------------------


def test_connection_refused_is_retryable(adapters) -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(Retryable, match="connection refused"):
        adapters(f"http://127.0.0.1:{port}/api/").send(event())


def test_no_answer_within_the_timeout_is_retryable(server_factory, adapters) -> None:
    server = server_factory(lambda r: (None, HANG))
    adapter = adapters(server.endpoint(), timeout=0.3)
    with pytest.raises(Retryable, match=r"timed out after 0\.3s"):
        adapter.send(event())
    assert len(server.requests) == 1  # a timeout is never resent by the adapter


def test_a_slow_trickle_is_cut_by_the_timeout_of_the_whole_call(server_factory, adapters):
    def handler(request: Request) -> Action:
        return b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{", HANG

    server = server_factory(handler)
    with pytest.raises(Retryable, match="timed out"):
        adapters(server.endpoint(), timeout=0.3).send(event())


def test_connect_timeout_is_retryable(adapters) -> None:
    # A listener whose backlog is full does not complete new handshakes.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        with pytest.raises(Retryable, match="timed out"):
            adapters(f"http://127.0.0.1:{port}/api/", timeout=0.3).send(event())
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_a_platform_back_after_refusing_gets_the_next_call(server_factory, adapters) -> None:
    server = server_factory()
    adapter = adapters(server.endpoint())
    adapter.send(event(n=1))
    port = server.port
    server.stop()
    wait_for(lambda: server.closed == 1, message="the server to drop the connection")
    with pytest.raises(Retryable):
        adapter.send(event(n=2))
    back = server_factory(port=port)
    adapter.send(event(n=3))
    assert [r.headers["webhook-id"] for r in back.requests] == [f"evt_{3:032x}"]


def test_a_kept_alive_connection_closed_between_calls_costs_nothing(
    server_factory, adapters
) -> None:
    # The platform closes each connection right after answering (no "Connection: close"):
    # idle keep-alive timeouts look like this from the client.
    server = server_factory(lambda r: (reply(200), CLOSE))
    adapter = adapters(server.endpoint())
    for n in range(1, 4):
        adapter.send(event(n=n))
        wait_for(lambda n=n: server.closed == n, message="the server to close the connection")
    ids = [r.headers["webhook-id"] for r in server.requests]
    assert ids == [f"evt_{n:032x}" for n in range(1, 4)]  # each sent once
    assert server.connections == 3


@pytest.mark.parametrize("how", [CLOSE, RESET])
def test_a_reused_connection_dropped_as_the_request_crosses_is_resent_once(
    server_factory, adapters, how
) -> None:
    # The platform takes the request on its kept-alive connection and drops the connection
    # without a byte of answer (it was closing it just then): sent again on a fresh one.
    def handler(request: Request) -> Action:
        if request.connection == 0 and len(server.requests) == 2:
            return None, how
        return reply(200), KEEP

    server = server_factory(handler)
    adapter = adapters(server.endpoint())
    adapter.send(event(n=1))
    adapter.send(event(n=2))
    assert [(r.connection, r.headers["webhook-id"][-1]) for r in server.requests] == [
        (0, "1"),
        (0, "2"),
        (1, "2"),
    ]
    adapter.send(event(n=3))
    assert server.connections == 2


@pytest.mark.parametrize("how", [CLOSE, RESET])
def test_a_fresh_connection_dropped_without_answer_is_retryable_not_resent(
    server_factory, adapters, how
) -> None:
    server = server_factory(lambda r: (None, how))
    with pytest.raises(Retryable, match=r"without an answer|reset"):
        adapters(server.endpoint()).send(event())
    assert len(server.requests) == 1


def test_a_reused_connection_dropped_twice_is_retryable(server_factory, adapters) -> None:
    server = server_factory(
        lambda r: (reply(200), KEEP) if len(server.requests) == 1 else (None, CLOSE)
    )
    adapter = adapters(server.endpoint())
    adapter.send(event(n=1))
    with pytest.raises(Retryable, match="without an answer"):
        adapter.send(event(n=2))
    assert len(server.requests) == 3  # the first, then event 2 on the old and a fresh one


# -- https -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting the server's test CA)."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    return server_context, client_context


def test_https_keeps_one_verified_connection(server_factory, adapters, tls) -> None:
    server_context, client_context = tls
    server = server_factory(
        lambda r: (reply(200, b"[]" if r.method == "GET" else b"{}"), KEEP), tls=server_context
    )
    adapter = adapters(server.endpoint(), ssl_context=client_context)
    for n in range(1, 4):
        adapter.send(event(n=n))
    assert adapter.fetch_users() == []
    assert (server.connections, len(server.requests)) == (1, 4)
    request = server.requests[0]
    assert Webhook(TOKEN.encode()).verify(request.body, request.headers)


def test_https_reconnects_when_the_platform_closed_the_connection(
    server_factory, adapters, tls
) -> None:
    server_context, client_context = tls
    server = server_factory(lambda r: (reply(200), CLOSE), tls=server_context)
    adapter = adapters(server.endpoint(), ssl_context=client_context)
    for n in range(1, 3):
        adapter.send(event(n=n))
        wait_for(lambda n=n: server.closed == n, message="the server to close the connection")
    assert (server.connections, len(server.requests)) == (2, 2)


def test_https_with_an_untrusted_certificate_is_retryable(server_factory, adapters, tls) -> None:
    server_context, _ = tls
    server = server_factory(tls=server_context)
    with pytest.raises(Retryable, match="CERTIFICATE_VERIFY_FAILED"):
        adapters(server.endpoint()).send(event())  # the system's CAs do not know the test CA
    assert server.requests == []


# -- proxies from the environment ------------------------------------------------------------


class LoopbackProxy:
    """A threaded HTTP proxy on 127.0.0.1 that records each request's line and headers: it
    answers absolute-form requests itself (200, ``{"via": "proxy"}``) and tunnels ``CONNECT``
    to the address asked for (or refuses it with ``connect_status``)."""

    def __init__(self, connect_status: int = 200) -> None:
        self.connect_status = connect_status
        self.connect_answer = b"HTTP/1.1 200 Connection established\r\n\r\n"
        self.lines: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as file:
            while line := file.readline():
                headers = {}
                while (header := file.readline()) not in (b"\r\n", b""):
                    name, _, value = header.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                self.lines.append(line.decode().rstrip("\r\n"))
                self.headers.append(headers)
                method, target, _ = line.decode().split(" ", 2)
                if method == "CONNECT":
                    if self.connect_status != 200:
                        conn.sendall(reply(self.connect_status, b"no"))
                        return
                    host, _, port = target.rpartition(":")
                    upstream = socket.create_connection((host, int(port)))
                    conn.sendall(self.connect_answer)
                    self._pipe(conn, upstream)
                    return
                file.read(int(headers.get("content-length", 0)))
                conn.sendall(reply(200, b'{"via": "proxy"}'))

    @staticmethod
    def _pipe(client: socket.socket, upstream: socket.socket) -> None:
        """Copy bytes both ways until either side closes (the client side is already read
        unbuffered: the adapter sends nothing after CONNECT before the proxy's answer)."""

        def copy(source: socket.socket, sink: socket.socket) -> None:
            with contextlib.suppress(OSError):
                while data := source.recv(65536):
                    sink.sendall(data)
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

        back = threading.Thread(target=copy, args=(upstream, client), daemon=True)
        back.start()
        copy(client, upstream)
        back.join(10)
        upstream.close()


@pytest.fixture
def proxy(monkeypatch) -> Iterator[LoopbackProxy]:
    """A loopback proxy and an environment naming nothing else (either case of each name)."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    server = LoopbackProxy()
    yield server
    server.stop()


def test_http_goes_through_the_environments_proxy_in_absolute_form(
    server_factory, adapters, proxy, monkeypatch
) -> None:
    server = server_factory()
    monkeypatch.setenv("HTTP_PROXY", proxy.url.replace("//", "//us%40er:p%3Ass@"))
    adapter = adapters(server.endpoint())
    adapter.send(event("message", 1))
    adapter.send(event("room", 2))
    target = f"http://127.0.0.1:{server.port}/api/"
    assert proxy.lines == [f"POST {target}message HTTP/1.1", f"POST {target}room HTTP/1.1"]
    headers = proxy.headers[0]
    assert headers["host"] == f"127.0.0.1:{server.port}"
    assert headers["proxy-authorization"] == "Basic " + base64.b64encode(b"us@er:p:ss").decode()
    assert Webhook(TOKEN.encode()).verify(PAYLOAD, headers) == json.loads(PAYLOAD)
    assert server.requests == []  # the proxy answered, nothing went around it


def test_no_proxy_sends_straight_to_the_platform(server_factory, adapters, proxy, monkeypatch):
    server = server_factory()
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "example.org,127.0.0.1")
    adapters(server.endpoint()).send(event())
    assert len(server.requests) == 1
    assert proxy.lines == []


def test_https_tunnels_through_the_proxy_with_connect(
    server_factory, adapters, proxy, monkeypatch, tls
) -> None:
    server_context, client_context = tls
    server = server_factory(tls=server_context)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # not the one for https
    adapter = adapters(server.endpoint(), ssl_context=client_context)
    adapter.send(event(n=1))
    adapter.send(event(n=2))
    assert proxy.lines == [f"CONNECT 127.0.0.1:{server.port} HTTP/1.1"]  # one kept-alive tunnel
    assert [(r.connection, r.path) for r in server.requests] == [(0, "/api/message")] * 2
    assert Webhook(TOKEN.encode()).verify(server.requests[0].body, server.requests[0].headers)


def test_a_proxy_refusing_the_tunnel_is_retryable(
    server_factory, adapters, proxy, monkeypatch, tls
) -> None:
    server_context, client_context = tls
    server = server_factory(tls=server_context)
    proxy.connect_status = 407
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    with pytest.raises(Retryable, match="proxy answered CONNECT with HTTP 407"):
        adapters(server.endpoint(), ssl_context=client_context).send(event())
    assert server.connections == 0


def test_a_proxy_it_cannot_speak_to_fails_every_call_as_retryable(
    server_factory, adapters, proxy, monkeypatch
) -> None:
    server = server_factory()
    monkeypatch.setenv("HTTP_PROXY", "socks5://127.0.0.1:1080")
    with pytest.raises(Retryable, match="not an http:// proxy"):
        adapters(server.endpoint()).send(event())
    assert server.connections == 0


def test_a_tunnel_answer_after_interim_answers_in_pieces(
    server_factory, adapters, proxy, monkeypatch, tls
) -> None:
    server_context, client_context = tls
    server = server_factory(tls=server_context)
    proxy.connect_answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nVia: 1.1 p\r\n\r\n"
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    adapters(server.endpoint(), ssl_context=client_context).send(event())
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (b"HTTP/1.1 200 OK\r\n\r\nsurprise", "bytes after its CONNECT answer"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP/1.x answer"),
        (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "CONNECT with HTTP 101"),
    ],
)
def test_a_tunnel_answer_that_is_not_a_plain_2xx_is_retryable(
    server_factory, adapters, proxy, monkeypatch, tls, answer, why
) -> None:
    server_context, client_context = tls
    server = server_factory(tls=server_context)
    proxy.connect_answer = answer
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    with pytest.raises(Retryable, match=why):
        adapters(server.endpoint(), ssl_context=client_context).send(event())
    assert server.requests == []
