"""What the WebSocket tests share: reading a socket until the hub closes it."""

from __future__ import annotations

import time

import websocket


def close_code(ws: websocket.WebSocket, timeout: float = 10.0) -> tuple[int, str]:
    """Read until the hub's close frame; return its status code and reason. Fails after
    ``timeout`` seconds without one (the hub's pings would keep the reads going).

    Frames are read raw: websocket-client's ``recv_data_frame`` would echo the close and raise
    if the hub has already dropped the connection, which it may do once its close is sent."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = ws.recv_frame()
        if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
            return int.from_bytes(frame.data[:2], "big"), frame.data[2:].decode()
        if frame.opcode == websocket.ABNF.OPCODE_PING:
            ws.pong(frame.data)
    raise AssertionError(f"no close frame within {timeout:g} s")
