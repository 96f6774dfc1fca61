"""A real-time client for the chat-integrator hub, for a platform with no public address.

A platform behind NAT (a mobile backend, a kiosk) cannot take the hub's POSTs: it fetches its
events itself, over a WebSocket (``ws``) or by long polling ``POST /bus`` (``poll``). Register
it with ``"transport": "websocket"`` or ``"poll"`` and no endpoint. The hub delivers at least
once: what was not acknowledged is sent again after a reconnect. The state file keeps the last
processed seq, so a repeat is dropped, not processed twice, even across a restart. Events go to
stdout, one line each; the log goes to stderr. Needs websocket-client and requests.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import re
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import requests
import websocket

ACK_EVERY, ACK_DELAY = 20, 0.2  # acknowledge after this many events or seconds, whichever first
SILENCE = 60.0  # the hub pings idle sockets (every 25 s by default): this long silent = gone
STOP = {1008: "check the token and transport", 4000: "a newer connection took over"}
EXAMPLES = """examples:
  %(prog)s ws --token 4444 --state mobile.json
  %(prog)s ws --token 4444 --state mobile.json --send GWT_CHAT:1:1 "hi from the phone"
  %(prog)s poll --hub https://hub.example.org --token 5555 --state kiosk.json"""
WS = """Receive over a WebSocket (transport websocket): print each {"seq", "event", "data"} frame,
then ack it ({"ack": seq}, cumulative, after 20 events or 200 ms). Reconnect with exponential
backoff and jitter, except after close code 1008 (bad token) or 4000 (replaced)."""
POLL = "Receive by long polling POST /bus (transport poll); retry with backoff on errors."
STATE_HELP = "JSON file with the last processed seq, one per platform and hub (%(default)s)"
SEND = {"nargs": 2, "metavar": ("ROOM_PLATFORM:ROOM_ID:SENDER_ID", "TEXT")}
SEND_HELP = "once connected, send this message as one of our users and print the answer"
Json = dict[str, Any]
log = logging.getLogger("realtime_client")


class State:
    """The last processed seq, in a small JSON file, so a restart drops what it has seen."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.last_seq: int = json.loads(path.read_text())["last_seq"] if path.exists() else 0

    def process(self, seq: int, kind: str, data: Json) -> None:
        """Handle one stored event once: a seq at or below the last processed one is a repeat."""
        if seq <= self.last_seq:
            log.info("seq %s already processed, dropped", seq)
            return
        print(f"seq {seq} {describe(kind, data)}", flush=True)  # your platform's work goes here
        # A real platform records the seq in the same transaction as the event's effects.
        self.last_seq = seq
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"last_seq": seq}))
        os.replace(tmp, self.path)  # atomic: a crash never leaves half a file


def describe(kind: str, d: Json) -> str:
    """One line for one event."""
    if kind == "user":
        return f"user {d['globalId']} ({d['name']})"
    if kind == "room":
        members = ", ".join(f"{p}:{i}" for g in d["users"] for p, ids in g.items() for i in ids)
        return f'room {d["globalId"]} "{d["name"]}" ({d["type"]}) members: {members}'
    if kind == "message":
        sender = f"{d['senderGlobalId']} ({d['senderName']})"
        return f"message in {d['roomGlobalId']} from {sender}: {d['text']}"
    if kind == "notification":
        return f"notification from {d['from'] or 'the hub'}: {d['title']}: {d['body']}"
    return f"{kind} {json.dumps(d)}"


def backoff(attempt: int, cap: float = 30.0) -> float:
    """Seconds to wait before retry number ``attempt`` (0, 1, 2...): 1, 2, 4... capped, jittered."""
    delay = min(cap, 2.0**attempt)
    return delay / 2 + random.uniform(0, delay / 2)  # jitter: clients don't all come back at once


def message_call(target: str, text: str) -> Json:
    """ROOM_PLATFORM:ROOM_ID:SENDER_ID and a text, as a call frame."""
    platform, room, sender = target.split(":")
    ids = [int(i) if re.fullmatch(r"-?\d+", i) else i for i in (room, sender)]
    ref = uuid.uuid4().hex  # also the clientMessageId: sending it again stores nothing new
    data = {"roomOriginalPlatform": platform, "roomId": ids[0], "senderId": ids[1], "text": text}
    return {"ref": ref, "call": "message", "data": {**data, "clientMessageId": ref}}


class WsClient:
    """Stay connected to /ws, process and acknowledge frames, reconnect when it drops."""

    def __init__(self, hub: str, token: str, state: State, call: Json | None) -> None:
        self.url = re.sub(r"^http", "ws", hub.rstrip("/")) + "/ws"  # https:// -> wss://
        self.token, self.state, self.call = token, state, call

    def run(self) -> int:
        attempt = 0
        while True:
            started = time.monotonic()
            code, reason = self.connect_once()
            if code in STOP:
                log.error("closed with code %s (%s); stopping: %s", code, reason, STOP[code])
                return 1
            attempt = 0 if time.monotonic() - started > 10 else attempt + 1  # it had worked
            delay = backoff(attempt)
            why = f"closed with code {code} ({reason})" if code else reason
            log.warning("%s; reconnecting in %.1f s", why, delay)
            time.sleep(delay)

    def connect_once(self) -> tuple[int | None, str]:
        """Serve one connection until it ends; return its close code (None if no close frame)."""
        header = [f"Authorization: Bearer {self.token}"]
        try:
            ws = websocket.create_connection(self.url, timeout=10, header=header)
        except websocket.WebSocketBadStatusException as exc:  # refused before the upgrade
            return (1008 if exc.status_code in (401, 403) else None), str(exc)
        except (OSError, websocket.WebSocketException) as exc:
            return None, f"cannot connect ({exc})"
        log.info("connected to %s, last processed seq %s", self.url, self.state.last_seq)
        if self.call:  # sent again after a reconnect until answered; clientMessageId dedupes
            ws.send(json.dumps(self.call))
        ws.settimeout(ACK_DELAY)  # wake up at least this often to send a due ack
        ack, unacked, oldest, heard = 0, 0, 0.0, time.monotonic()
        try:
            while True:
                try:
                    opcode, frame = ws.recv_data_frame(control_frame=True)  # answers pings
                    heard = time.monotonic()
                except websocket.WebSocketTimeoutException:
                    opcode = None
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    code = int.from_bytes(frame.data[:2], "big") if frame.data else 1005
                    return code, frame.data[2:].decode(errors="replace") or "no reason"
                if opcode == websocket.ABNF.OPCODE_TEXT and (seq := self.on_frame(frame.data)):
                    ack, unacked, oldest = seq, unacked + 1, oldest or time.monotonic()
                if unacked and (unacked >= ACK_EVERY or time.monotonic() - oldest >= ACK_DELAY):
                    ws.send(json.dumps({"ack": ack}))
                    unacked, oldest = 0, 0.0
                if time.monotonic() - heard > SILENCE:
                    return None, f"nothing heard for {SILENCE:.0f} s"
        except (OSError, websocket.WebSocketException) as exc:
            return None, f"connection lost ({exc or type(exc).__name__})"
        finally:
            if unacked and ws.connected:  # leaving (Ctrl-C too): acknowledge what was processed
                with contextlib.suppress(OSError, websocket.WebSocketException):
                    ws.send(json.dumps({"ack": ack}))
            ws.close(timeout=1)

    def on_frame(self, text: bytes) -> int | None:
        """Act on one frame from the hub; return the seq to acknowledge, if any."""
        frame = json.loads(text)
        if "ref" in frame:  # the answer to our call
            if self.call and frame["ref"] == self.call["ref"]:
                self.call = None
            print(f"answer {json.dumps(frame, ensure_ascii=False)}", flush=True)
        elif "event" not in frame:  # {"status": 400, "error": ...}: it could not read our frame
            log.warning("the hub says: %s", frame)
        elif frame["seq"] is None:  # direct: never stored, never sent again, nothing to ack
            print(f"direct {describe(frame['event'], frame['data'])}", flush=True)
        else:
            self.state.process(frame["seq"], frame["event"], frame["data"])
            return frame["seq"]  # acknowledged even when dropped as a repeat
        return None


def poll(hub: str, token: str, state: State, wait: float) -> int:
    """Long-poll POST /bus forever; asking after a seq acknowledges everything up to it."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    url, attempt = f"{hub.rstrip('/')}/bus", 0
    log.info("polling %s, last processed seq %s", url, state.last_seq)
    while True:
        body = {"last_message": state.last_seq or None, "timeout": wait}
        try:
            answer = session.post(url, json=body, timeout=wait + 10)
        except requests.RequestException as exc:
            problem = f"cannot reach the hub ({exc})"
        else:
            if answer.status_code == 200:
                if attempt:
                    log.info("the hub answers again, last processed seq %s", state.last_seq)
                attempt = 0
                for item in answer.json()["messages"]:
                    data = {k: v for k, v in item.items() if k not in ("message_id", "type")}
                    if "roomType" in data:  # /bus moves a room's own type aside; put it back
                        data["type"] = data.pop("roomType")
                    state.process(item["message_id"], item["type"], data)
                continue
            if answer.status_code in (400, 401, 403, 409):  # asking again will not help
                log.error("the hub refused: HTTP %s %s", answer.status_code, answer.text.strip())
                return 1
            problem = f"HTTP {answer.status_code}"
        delay = backoff(attempt)
        attempt += 1
        log.warning("%s; retrying in %.1f s", problem, delay)
        time.sleep(delay)


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, epilog=EXAMPLES, formatter_class=fmt)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--hub", default="http://127.0.0.1:5000", help="hub base URL (%(default)s)")
    common.add_argument("--token", required=True, help="this platform's token at the hub")
    common.add_argument("--state", type=Path, default=Path("realtime-state.json"), help=STATE_HELP)
    sub = parser.add_subparsers(dest="command", required=True, title="commands")
    ws = sub.add_parser("ws", parents=[common], help="receive over a WebSocket", description=WS)
    ws.add_argument("--send", **SEND, help=SEND_HELP)
    bus = sub.add_parser("poll", parents=[common], help="receive by long polling", description=POLL)
    bus.add_argument("--wait", type=float, default=25, help="longest wait per poll (%(default)s s)")
    return parser


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "ws" and args.send and args.send[0].count(":") != 2:
        parser.error(f"--send: {args.send[0]!r} is not ROOM_PLATFORM:ROOM_ID:SENDER_ID")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    state = State(args.state)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop on SIGTERM as on Ctrl-C
    try:
        if args.command == "poll":
            return poll(args.hub, args.token, state, args.wait)
        call = message_call(*args.send) if args.send else None
        return WsClient(args.hub, args.token, state, call).run()
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
