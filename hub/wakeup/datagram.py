"""SQLite's wake-up: a Unix datagram to every other hub process on this machine.

Every process of a SQLite hub runs on the machine that holds the file, so after each commit
that changed streams a process sends one datagram (``hub/wakeup/messages.py``) to every other
process's Unix socket, in the folder ``<database file>.wake`` beside it (or, when that path is
too long for a socket's address, in a folder named after it under the temporary folder).
Sending never blocks and never fails a request: a socket whose process is gone is removed, a
full one is skipped, and the safety poll (``hub/wakeup/watcher.py``) catches whatever a
datagram missed.

The same inboxes carry direct messages (never stored) to the process that holds the receiving
platform's WebSocket: an inbox is named after its process's owner id (``<pid>-<tag>.sock`` for
``<host>:<pid>:<tag>``), which is also the prefix of the stream lease its sockets hold, so the
lease names the inbox to send to.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from hub.wakeup.messages import decode_changes, deliver_direct, encode_changes, encode_direct

log = logging.getLogger(__name__)

FRESH_NS = 50_000_000  # a folder changed this recently (ns) is listed again at the next send
MAX_DATAGRAM = 212992  # Linux's default socket buffer: the largest datagram one can send
DIRECT = b"D"  # first byte of a direct-frames datagram; the others are encode_changes' text
MAX_SOCKET_PATH = 107  # Linux's sun_path holds 108 bytes with the final NUL
SOCKET_NAME = len("/4194304-0123abcd.sock")  # the longest pid, a separator, 8 hex digits


def wake_folder(database_file: str) -> Path:
    """The folder of the sockets of every process using this SQLite file."""
    path = os.path.abspath(database_file)
    beside = Path(path + ".wake")
    if len(os.fsencode(beside)) + SOCKET_NAME <= MAX_SOCKET_PATH:
        return beside
    digest = hashlib.sha256(path.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"hub-wake-{digest}"


def inbox_name(owner: str) -> str | None:
    """The inbox of the process whose owner id (or a lease of one of its sockets) is given."""
    process = owner.split("/", 1)[0].rsplit(":", 2)
    if len(process) != 3 or not process[1].isdigit() or not process[2]:
        return None
    return f"{process[1]}-{process[2]}"


class WakeSocket:
    """This process's inbox in the folder, and the sender to the other processes' inboxes."""

    def __init__(
        self,
        folder: Path,
        wake: Callable[[set[int], set[int]], None],
        owner: str | None = None,
        direct: Callable[[int, dict[str, Any]], bool] | None = None,
    ) -> None:
        """``wake(news, lease_moves)`` hears other processes' changes; ``owner``: this
        process's owner id, which names its inbox; ``direct(platform_id, frame)`` sends a frame
        relayed by another process to a socket of this one."""
        self.folder = folder
        self.wake = wake
        self.direct = direct
        name = inbox_name(owner or "") or f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.path = folder / f"{name}.sock"
        self._inbox: socket.socket | None = None
        self._outbox = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._outbox.setblocking(False)
        self._peers: list[str] = []
        self._listed: int | None = None  # the folder's mtime when it was last listed
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        """Open the inbox and start reading it; False (logged) if the folder is unusable."""
        try:
            self.folder.mkdir(mode=0o700, exist_ok=True)
            inbox = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            inbox.bind(str(self.path))
            inbox.settimeout(1.0)  # so that stop() is seen
        except OSError as exc:
            log.warning("no wake socket in %s (%s); other processes poll instead", self.folder, exc)
            return False
        self._inbox = inbox
        self._thread = threading.Thread(target=self._read, name="wake-socket", daemon=True)
        self._thread.start()
        return True

    def _read(self) -> None:
        buffer = bytearray(MAX_DATAGRAM)
        while (inbox := self._inbox) is not None:
            try:
                size = inbox.recv_into(buffer)
            except TimeoutError:
                continue
            except OSError:  # closed by stop()
                return
            data = bytes(buffer[:size])
            if data.startswith(DIRECT):
                if self.direct is not None:
                    deliver_direct(data[len(DIRECT) :], self.direct)
                continue
            news, moves = decode_changes(data.decode(errors="replace"))
            if news or moves:
                try:
                    self.wake(news, moves)
                except Exception:
                    log.exception("waking for another process's events failed")

    def send_direct(self, owner: str, frames: dict[int, dict[str, Any]]) -> bool:
        """Hand direct frames to the process named by ``owner`` (a socket lease); True when
        its inbox took them. Never blocks; a gone or full inbox, or frames too large for one
        datagram, give False."""
        name = inbox_name(owner)
        if name is None:
            return False
        data = DIRECT + encode_direct(frames).encode()
        with self._lock:
            if self._outbox.fileno() < 0 or len(data) > MAX_DATAGRAM:
                return False
            try:
                self._outbox.sendto(data, str(self.folder / f"{name}.sock"))
                return True
            except OSError:
                log.debug("direct frames to %s not relayed", name, exc_info=True)
                return False

    def _current_peers(self) -> list[str]:
        """The other processes' inboxes, listed again whenever the folder changed (a process
        came or went): one stat a send, and a process is told from its first moment on."""
        try:
            changed = os.stat(self.folder).st_mtime_ns
        except OSError:
            return []
        if changed != self._listed:
            try:
                names = os.listdir(self.folder)
            except OSError:
                names = []
            own = self.path.name
            self._peers = [str(self.folder / n) for n in names if n.endswith(".sock") and n != own]
            # File times tick coarsely (milliseconds): a socket bound in the same tick as a
            # fresh change would leave the time as it is, so a fresh one is listed again.
            fresh = time.time_ns() - changed < FRESH_NS
            self._listed = None if fresh else changed
        return self._peers

    def send(self, news: Iterable[int], moves: Iterable[int] = ()) -> None:
        """Tell every other process of these changes; never blocks, never raises."""
        data = encode_changes(news, moves).encode()
        with self._lock:
            if self._outbox.fileno() < 0:  # stopped
                return
            for peer in list(self._current_peers()):
                try:
                    self._outbox.sendto(data, peer)
                except BlockingIOError:
                    pass  # its inbox is full: it is busy reading, the watcher covers it
                except (ConnectionRefusedError, FileNotFoundError):
                    self._peers.remove(peer)  # its process is gone (a crash leaves the file)
                    with contextlib.suppress(OSError):
                        os.unlink(peer)
                except OSError:
                    log.debug("wake datagram to %s failed", peer, exc_info=True)

    def stop(self) -> None:
        """Close the inbox (removing its file, and the folder once empty); sending stops too."""
        inbox, self._inbox = self._inbox, None
        if inbox is not None:  # an empty datagram ends the reader's wait at once
            with contextlib.suppress(OSError):
                self._outbox.sendto(b"", str(self.path))
        if self._thread is not None:
            self._thread.join(2)
        if inbox is not None:
            inbox.close()
            with contextlib.suppress(OSError):
                self.path.unlink()
            with contextlib.suppress(OSError):
                self.folder.rmdir()
        with self._lock:
            self._outbox.close()
