"""What the hub's stack costs with no hub in it: the floor under the real-time benchmark.

bench_realtime.py's throughput phase sends each message through ``POST /message`` (gunicorn
gthread + Flask), one SQLite write transaction, and two WebSocket frames (flask-sock) that
their clients (websocket-client) ack, all on this machine's two cores. This script measures
each of those parts alone, with the same libraries and nothing of the hub:

1. http       a Flask app under gunicorn (1 gthread worker) whose ``POST /message`` parses the
              JSON body and answers 202 with a small JSON body; one http.client connection
              posts ``--messages`` bodies like the benchmark's, one after the other. CPU of the
              server process and of the client, per request.
2. websocket  the same app's ``/ws`` (flask-sock): a thread pushes ``--messages`` frames shaped
              like the hub's message events, the route reads one ``{"ack": n}`` per frame; the
              client (websocket-client) reads each frame and acks it, as the benchmark's
              clients do. CPU of server and client, per frame.
3. sqlite     in this process: one write transaction per message on a WAL file with
              ``synchronous=NORMAL`` (BEGIN IMMEDIATE, insert the message, give two receivers a
              seq, insert their two outbox rows, commit). CPU per transaction.

Then it adds up one message's floor (one request, one transaction, two frames) and divides the
machine's cores by it: a ceiling on messages/s for any hub built on these parts here, before
the hub does any work of its own (authentication, validation, routing, leases, acks written).
Clocks are CPU clocks (psutil / ``time.thread_time``); other load on the machine raises them a
little, so compare figures of one run.

    .venv/bin/python bench/bench_floor.py
    .venv/bin/python bench/bench_floor.py --messages 5000 --json floor.json
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import websocket
from common import PY, free_port, message_body
from common import cpu_seconds as cpu

BODY = message_body("floor:thr:0000000")

APP = '''
"""The floor app: the hub's libraries, none of its work."""
import json, threading
from flask import Flask, jsonify, request
from flask_sock import Sock

app = Flask(__name__)
sock = Sock(app)

@app.post("/message")
def message():
    body = request.get_json()
    return jsonify(id=1, status=202, message="accepted", text=body["text"]), 202

@sock.route("/ws")
def ws(ws):
    count = int(ws.receive())
    frame = {"seq": 0, "event": "message", "data": {"id": "A:1", "roomId": "A:1",
             "senderId": "A:1", "text": "floor:thr:0000000", "createdAt": "2026-12-02T12:00:00Z"}}

    def push():
        for seq in range(1, count + 1):
            frame["seq"] = seq
            ws.send(json.dumps(frame, separators=(",", ":")))

    pusher = threading.Thread(target=push)
    pusher.start()
    for _ in range(count):
        json.loads(ws.receive())["ack"]
    pusher.join()
    ws.send("done")
'''


def log(text: str) -> None:
    print(text, flush=True)  # no timestamps: the floor's output is a short table


class FloorServer:
    """The floor app under gunicorn, as the benchmark runs the hub (1 gthread worker)."""

    def __init__(self, workdir: Path) -> None:
        (workdir / "floor_app.py").write_text(APP)
        self.port = free_port()
        self.proc = subprocess.Popen(
            [PY, "-m", "gunicorn", "floor_app:app", "-k", "gthread", "--threads", "16", "-w", "1",
             "-b", f"127.0.0.1:{self.port}", "--no-control-socket"],
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                self.post(http.client.HTTPConnection("127.0.0.1", self.port, timeout=5))
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("the floor app did not start") from None
                time.sleep(0.1)
        self.worker = psutil.Process(self.proc.pid).children()[0]

    @staticmethod
    def post(conn: http.client.HTTPConnection) -> None:
        headers = {"Authorization": "Bearer floor", "Content-Type": "application/json"}
        conn.request("POST", "/message", json.dumps(BODY).encode(), headers)
        answer = conn.getresponse()
        answer.read()
        if answer.status != 202:
            raise RuntimeError(f"POST /message: {answer.status}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def measure_http(server: FloorServer, count: int) -> dict[str, float]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    for _ in range(200):  # warm-up
        server.post(conn)
    me = psutil.Process()
    server_before, client_before, started = cpu(server.worker), cpu(me), time.monotonic()
    for _ in range(count):
        server.post(conn)
    wall = time.monotonic() - started
    conn.close()
    return {
        "server_ms": 1000 * (cpu(server.worker) - server_before) / count,
        "client_ms": 1000 * (cpu(me) - client_before) / count,
        "wall_ms": 1000 * wall / count,
    }


def measure_websocket(server: FloorServer, count: int) -> dict[str, float]:
    """Client in this process's main thread: read a frame, ack it, as the benchmark does."""

    def run(frames: int) -> None:
        ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/ws", timeout=30)
        ws.send(str(frames))
        for _ in range(frames):
            frame = json.loads(ws.recv())
            ws.send(json.dumps({"ack": frame["seq"]}))
        if ws.recv() != "done":
            raise RuntimeError("the floor app's socket did not finish")
        ws.close()

    run(200)  # warm-up
    me = psutil.Process()
    server_before, client_before, started = cpu(server.worker), cpu(me), time.monotonic()
    run(count)
    wall = time.monotonic() - started
    return {
        "server_ms": 1000 * (cpu(server.worker) - server_before) / count,
        "client_ms": 1000 * (cpu(me) - client_before) / count,
        "wall_ms": 1000 * wall / count,
    }


def measure_sqlite(workdir: Path, count: int) -> dict[str, float]:
    db = sqlite3.connect(workdir / "floor.sqlite3", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(
        """
        CREATE TABLE platform (id INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL);
        CREATE TABLE message (id INTEGER PRIMARY KEY, room TEXT, sender TEXT, text TEXT,
                              created TEXT);
        CREATE TABLE outbox (id INTEGER PRIMARY KEY, platform_id INTEGER, seq INTEGER,
                             kind TEXT, payload TEXT, created TEXT);
        CREATE UNIQUE INDEX outbox_stream ON outbox (platform_id, seq);
        INSERT INTO platform VALUES (2, 0), (3, 0);
        """
    )
    payload = json.dumps({"id": "A:1", "roomId": "A:1", "senderId": "A:1", "text": BODY["text"]})

    def one(index: int) -> None:
        now = time.strftime("%Y-%m-%d %H:%M:%S")
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "INSERT INTO message (room, sender, text, created) VALUES (?, ?, ?, ?)",
            ("A:1", "A:1", f"floor:{index}", now),
        )
        seqs = db.execute(
            "UPDATE platform SET last_seq = last_seq + 1 WHERE id IN (2, 3) RETURNING id, last_seq"
        ).fetchall()
        db.executemany(
            "INSERT INTO outbox (platform_id, seq, kind, payload, created) VALUES (?, ?, ?, ?, ?)",
            [(pid, seq, "message", payload, now) for pid, seq in seqs],
        )
        db.execute("COMMIT")

    for index in range(200):
        one(index)
    started_cpu, started = time.thread_time(), time.monotonic()
    for index in range(count):
        one(index)
    result = {
        "cpu_ms": 1000 * (time.thread_time() - started_cpu) / count,
        "wall_ms": 1000 * (time.monotonic() - started) / count,
    }
    db.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Prints CPU milliseconds per request, frame and transaction, and the ceiling "
        "they set on messages/s (one request + one transaction + two frames per message).",
    )
    parser.add_argument("--messages", type=int, default=3000, help="per part (3000)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    log(f"floor of the stack: {cores} CPUs, Python {sys.version.split()[0]}, {args.messages} each")
    with tempfile.TemporaryDirectory(prefix="hub-floor-") as tmp:
        workdir = Path(tmp)
        server = FloorServer(workdir)
        try:
            log("1/3 POST /message to a bare Flask app under gunicorn ...")
            http_ = measure_http(server, args.messages)
            log("2/3 WebSocket frames pushed by flask-sock, each acked by websocket-client ...")
            ws = measure_websocket(server, args.messages)
        finally:
            server.stop()
        log("3/3 SQLite write transactions (message, two seqs, two outbox rows) ...")
        db = measure_sqlite(workdir, args.messages)
    per_message = {
        "request (server)": http_["server_ms"],
        "request (client)": http_["client_ms"],
        "transaction": db["cpu_ms"],
        "2 frames + acks (server)": 2 * ws["server_ms"],
        "2 frames + acks (clients)": 2 * ws["client_ms"],
    }
    total = sum(per_message.values())
    hub_side = total - per_message["request (client)"] - per_message["2 frames + acks (clients)"]
    figures: dict[str, Any] = {
        "cores": cores,
        "http": http_,
        "websocket": ws,
        "sqlite": db,
        "per_message_ms": per_message,
        "total_ms": total,
        "ceiling_msg_per_s": 1000 * cores / total,
        "ceiling_hub_one_process_msg_per_s": 1000 / hub_side,
    }
    log("")
    log("CPU per message, ms (one POST, one transaction, two frames each acked):")
    for name, value in per_message.items():
        log(f"  {name:<28} {value:6.3f}")
    log(f"  {'total':<28} {total:6.3f}")
    log(
        f"ceiling on {cores} cores: {figures['ceiling_msg_per_s']:.0f} messages/s with no hub"
        f" logic at all; the server side alone in one process (one core):"
        f" {figures['ceiling_hub_one_process_msg_per_s']:.0f} messages/s"
    )
    log(
        f"wall per item, one at a time: request {http_['wall_ms']:.2f} ms, frame+ack"
        f" {ws['wall_ms']:.2f} ms, transaction {db['wall_ms']:.2f} ms"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
