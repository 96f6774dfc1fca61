"""The phases of the real-time benchmark (``bench_realtime.py``), run by ``Bench.run``.

Phases 1-2 run on one hub (REST platform A, WebSocket platforms W1 and W2, a room of the
three): 1 throughput, acking each event then every N; 2 latency at a paced rate, then at a
lower one. Phase 3 runs on a second hub with many WebSocket platforms: idle sockets held, then
one notification to all. The clients run in processes of their own (``realtime_clients.py``).
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from pathlib import Path
from typing import Any

import requests
from common import (
    CpuMeter,
    Hub,
    LeanPoster,
    Receiver,
    Results,
    Sent,
    StreamCheck,
    log,
    make_texts,
    percentile,
    post_messages,
    process_cpu,
    wait_until,
)
from realtime_clients import Child, idle_client_main, stream_client_main

ADMIN_TOKEN = "rt-bench-admin"
TOKENS = {"A": "rt-bench-A", "W1": "rt-bench-W1", "W2": "rt-bench-W2"}
SOCKETS = ("W1", "W2")


def mb(value: float) -> float:
    return value / (1024 * 1024)


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.run_id = uuid.uuid4().hex[:6]
        self.results = Results()
        self.f = self.results.figures
        self.receiver: Receiver | None = None
        self.hub: Hub | None = None
        self.idle_hub: Hub | None = None
        self.children: list[Child] = []

    def run(self) -> Results:
        args = self.args
        if {1, 2} & args.phases:
            self.setup_stream_hub()
            if 1 in args.phases:
                self.throughput(1, "ack1")
                self.throughput(args.ack_every, f"ack{args.ack_every}")
            if 2 in args.phases:
                self.latency(args.rate, args.duration, "p2")
                if args.low_rate > 0:
                    self.latency(args.low_rate, args.low_duration, "p2low")
            self.hub.stop()
            self.note_hub_errors(self.hub, "phases 1-2")
            self.receiver.stop()
        if 3 in args.phases:
            self.idle()
        return self.results

    def new_hub(self, name: str, entries: list[dict[str, Any]], workers: int = 1) -> Hub:
        """A hub in ``<workdir>/<name>`` with these platforms, run as the arguments say."""
        args = self.args
        return Hub(
            self.workdir / name,
            entries,
            admin_token=ADMIN_TOKEN,
            root=args.hub_root,
            hub_env=args.hub_env,
            threads=args.hub_threads,
            workers=workers,
            worker_connections=args.worker_connections,
        )

    def log_tails(self) -> list[str]:
        return [
            f"log tail of {hub.dir.name}:\n{hub.log_tail()}"
            for hub in (self.hub, self.idle_hub)
            if hub is not None
        ]

    def close(self) -> None:
        for child in self.children:
            child.stop()
        for hub in (self.hub, self.idle_hub):
            if hub is not None:
                hub.stop()
        if self.receiver is not None:
            self.receiver.stop()

    # --- phases 1 and 2: A -> W1, W2 ---

    def setup_stream_hub(self) -> None:
        self.receiver = Receiver("A", TOKENS["A"], self.workdir)
        self.receiver.start()
        entries = [
            self.receiver.entry(1),
            {"id": 2, "name": "W1", "token": TOKENS["W1"], "transport": "websocket"},
            {"id": 3, "name": "W2", "token": TOKENS["W2"], "transport": "websocket"},
        ]
        self.hub = hub = self.new_hub("stream-hub", entries, workers=self.args.hub_workers)
        log(f"starting the hub: {' '.join(hub.command()[1:])}")
        hub.start()
        log(f"hub up in {hub.start_seconds:.1f}s (pid {hub.proc.pid}); registering users, room")
        for name in ("A", "W1", "W2"):
            hub.post(TOKENS[name], "/user", {"id": 1, "name": f"{name} bench"})
        room = {
            "id": 1,
            "name": "bench",
            "type": "private",
            "users": [{"A": [1]}, {"W1": [1]}, {"W2": [1]}],
        }
        hub.post(TOKENS["A"], "/room", room)

    def stream_clients(self, ack_every: int) -> Child:
        tokens = {name: TOKENS[name] for name in SOCKETS}
        child = Child(stream_client_main, self.hub.ws_url, tokens, ack_every, self.args.ack_delay)
        self.children.append(child)
        return child

    def stop_clients(self, child: Child) -> dict[str, Any]:
        info = child.stop()
        self.children.remove(child)
        return info or {}

    def texts(self, tag: str, count: int) -> list[Sent]:
        return make_texts(f"{self.run_id}:{tag}:", count)

    def post(self, items: list[Sent], threads: int, **options: Any) -> None:
        """POST /message from A for every item, with lean http.client posters."""
        post_messages(
            self.hub.url, TOKENS["A"], items, threads, poster=LeanPoster, poll=0.05, **options
        )

    def wait_received(self, child: Child, tag: str, count: int, label: str) -> bool:
        """Wait until both sockets have ``count`` messages of a phase; False after a stall."""
        last_total, last_change, last_print = -1, time.monotonic(), time.monotonic()
        while True:
            counts = child.ask("counts", tag)
            if all(counts[name] >= count for name in SOCKETS):
                return True
            total = sum(counts.values())
            now = time.monotonic()
            if total != last_total:
                last_total, last_change = total, now
            elif now - last_change > self.args.stall_timeout:
                log(f"{label}: no progress for {self.args.stall_timeout:.0f}s; giving up")
                return False
            if now - last_print >= 2:
                log(f"{label}: received " + ", ".join(f"{n} {counts[n]}/{count}" for n in SOCKETS))
                last_print = now
            time.sleep(0.02)

    def warm_up(self, child: Child, label: str) -> None:
        count = self.args.warmup
        if count <= 0:
            return
        tag = f"{self.run_id}:warm-{label}"
        items = self.texts(f"warm-{label}", count)
        self.post(items, self.args.threads)
        if not self.wait_received(child, tag, count, f"warm-up {label}"):
            raise RuntimeError("the warm-up messages did not all arrive")

    def pending(self) -> dict[str, int]:
        listing = self.hub.platforms()
        return {name: listing[name]["queueDepth"] for name in SOCKETS}

    def throughput(self, ack_every: int, label: str) -> None:
        args, hub = self.args, self.hub
        mode = (
            "every event"
            if ack_every <= 1
            else f"every {ack_every} events or {args.ack_delay * 1000:.0f} ms"
        )
        log(
            f"phase 1 [{label}]: {args.messages} messages A -> W1, W2 (posting for at most"
            f" {args.post_seconds:g}s); the clients ack {mode}"
        )
        child = self.stream_clients(ack_every)
        self.warm_up(child, label)
        tag = f"thr-{label}"
        items = self.texts(tag, args.messages)
        cpu = CpuMeter(
            hub=hub.cpu_seconds, clients=process_cpu(child.pid), poster=process_cpu(os.getpid())
        ).start()

        def progress(done: int) -> str:
            counts = child.ask("counts", f"{self.run_id}:{tag}")
            return (
                f"phase 1 [{label}]: posted {done}/{len(items)},"
                f" received W1 {counts['W1']}, W2 {counts['W2']}"
            )

        self.post(items, args.threads, progress=progress, seconds=args.post_seconds)
        posted_items = [i for i in items if i.sent]
        accepted = sum(1 for i in items if i.status == 202)
        started = min(i.sent for i in posted_items)  # the first POST
        posted = max(i.answered for i in posted_items)  # the last answer
        complete = self.wait_received(child, f"{self.run_id}:{tag}", accepted, f"phase 1 [{label}]")
        cpu.stop()
        got = child.ask("dump", f"{self.run_id}:{tag}")
        last_frame = max((r[0] for name in SOCKETS for r in got[name]), default=posted)
        elapsed = last_frame - started
        key = f"p1_{label}"
        self.f[f"{key}_ack_mode"] = mode
        self.f[f"{key}_messages"] = accepted
        if len(posted_items) < len(items):
            self.results.notes.append(
                f"phase 1 [{label}]: stopped posting after {args.post_seconds:g}s:"
                f" {len(posted_items)} of {len(items)} messages posted"
            )
        self.f[f"{key}_msg_per_s"] = accepted / elapsed if complete else None
        self.f[f"{key}_events_per_s"] = 2 * accepted / elapsed if complete else None
        self.f[f"{key}_posts_per_s"] = accepted / max(posted - started, 1e-9)
        self.f[f"{key}_lag_after_last_post_s"] = last_frame - posted
        self.f[f"{key}_complete"] = complete
        self.f[f"{key}_cpu_percent"] = cpu.percent
        for name in SOCKETS:
            self.results.checks.append(
                StreamCheck.of(f"1 throughput {label}", name, got[name], items)
            )
        # Every frame was acked: once the last acks are stored, nothing is pending at the hub.
        try:
            wait_until(lambda: not any(self.pending().values()), 15, "pending events to reach 0")
            self.f[f"{key}_pending_after"] = 0
        except RuntimeError:
            self.f[f"{key}_pending_after"] = sum(self.pending().values())
            self.results.notes.append(
                f"phase 1 [{label}]: events still pending at the hub after acking: {self.pending()}"
            )
        info = self.stop_clients(child)
        self.f[f"{key}_acks_sent"] = {n: info.get(n, {}).get("acks_sent") for n in SOCKETS}
        self.note_socket_trouble(f"phase 1 [{label}]", info)
        rate = self.f[f"{key}_msg_per_s"]
        log(
            f"phase 1 [{label}]: {accepted} messages in {elapsed:.2f}s = "
            f"{rate or 0:.0f} msg/s end to end ({2 * (rate or 0):.0f} frames/s);"
            f" POSTs {self.f[f'{key}_posts_per_s']:.0f}/s; last frame"
            f" {last_frame - posted:.2f}s after the last 202; CPU {cpu.text()}"
        )

    def note_socket_trouble(self, phase: str, info: dict[str, Any]) -> None:
        for name, data in info.items():
            if data.get("closed"):
                self.results.notes.append(f"{phase}: {name}'s socket: {data['closed']}")
            if data.get("error_frames"):
                self.results.notes.append(f"{phase}: {name} got {data['error_frames']}")

    def latency(self, rate: float, duration: float, key: str) -> None:
        """Open-loop sender at ``rate`` msg/s for ``duration`` s; figures under ``key``."""
        args, hub = self.args, self.hub
        count = max(2, int(rate * duration))
        log(
            f"phase 2 [{rate:g}/s]: {count} messages at {rate:g} msg/s (open loop,"
            f" {args.latency_threads} threads); W1, W2 ack every {args.latency_ack_every} event(s)"
        )
        child = self.stream_clients(args.latency_ack_every)
        label = f"lat{rate:g}"
        self.warm_up(child, label)
        items = self.texts(label, count)
        tag = f"{self.run_id}:{label}"
        cpu = CpuMeter(hub=hub.cpu_seconds, clients=process_cpu(child.pid)).start()

        def progress(done: int) -> str:
            return f"phase 2 [{rate:g}/s]: posted {done}/{count}"

        # A hub slower than the rate falls behind: stop sending at 1.5 x the planned duration.
        limit = 1.5 * duration + 1
        self.post(
            items,
            args.latency_threads,
            rate=rate,
            progress=progress,
            seconds=limit,
        )
        posted_items = [i for i in items if i.sent]
        accepted = sum(1 for i in items if i.status == 202)
        if len(posted_items) < count:
            self.results.notes.append(
                f"phase 2 [{rate:g}/s]: the hub fell behind the schedule; {len(posted_items)}"
                f" of {count} messages sent in {limit:g}s"
            )
        complete = self.wait_received(child, tag, accepted, f"phase 2 [{rate:g}/s]")
        cpu.stop()
        got = child.ask("dump", tag)
        sent = {i.text: i.sent for i in items if i.status == 202}
        latencies: dict[str, list[float]] = {}
        for name in SOCKETS:
            latencies[name] = [1000 * (t - sent[text]) for t, _, text in got[name] if text in sent]
            self.results.checks.append(
                StreamCheck.of(f"2 latency {rate:g}/s", name, got[name], items)
            )
        both = latencies["W1"] + latencies["W2"]
        posts = [1000 * (i.answered - i.sent) for i in items if i.status == 202]
        lag = [1000 * (i.sent - i.scheduled) for i in posted_items]
        first, last = min(i.sent for i in posted_items), max(i.sent for i in posted_items)
        f = self.f
        f[f"{key}_rate"] = rate
        f[f"{key}_messages"] = accepted
        f[f"{key}_achieved_rate"] = (
            (len(posted_items) - 1) / (last - first) if last > first else None
        )
        f[f"{key}_complete"] = complete
        f[f"{key}_ack_every"] = args.latency_ack_every
        if both:
            f[f"{key}_p50_ms"] = percentile(both, 50)
            f[f"{key}_p99_ms"] = percentile(both, 99)
            f[f"{key}_max_ms"] = max(both)
            for name in SOCKETS:
                if latencies[name]:
                    f[f"{key}_{name}_p50_ms"] = percentile(latencies[name], 50)
                    f[f"{key}_{name}_p99_ms"] = percentile(latencies[name], 99)
                    f[f"{key}_{name}_max_ms"] = max(latencies[name])
        if posts:
            f[f"{key}_post_p50_ms"] = percentile(posts, 50)
            f[f"{key}_post_p99_ms"] = percentile(posts, 99)
        f[f"{key}_sender_max_lag_ms"] = max(lag) if lag else None
        f[f"{key}_cpu_percent"] = cpu.percent
        info = self.stop_clients(child)
        self.note_socket_trouble(f"phase 2 [{rate:g}/s]", info)
        log(
            f"phase 2 [{rate:g}/s]: latency p50 {f.get(f'{key}_p50_ms', 0):.1f} ms, p99"
            f" {f.get(f'{key}_p99_ms', 0):.1f} ms, max {f.get(f'{key}_max_ms', 0):.1f} ms"
            f" (POST p99 {f.get(f'{key}_post_p99_ms', 0):.1f} ms, sender lag max"
            f" {f[f'{key}_sender_max_lag_ms'] or 0:.1f} ms); CPU {cpu.text()}"
        )

    # --- phase 3: idle sockets ---

    def idle(self) -> None:
        args = self.args
        n = args.idle
        names = [f"I{i:04d}" for i in range(1, n + 1)]
        tokens = [f"idle-{i:04d}" for i in range(1, n + 1)]
        entries = [
            {"name": name, "token": token, "transport": "websocket"}
            for name, token in zip(names, tokens, strict=True)
        ]
        self.idle_hub = hub = self.new_hub("idle-hub", entries)
        log(f"phase 3: starting a hub with {n} websocket platforms: {' '.join(hub.command()[1:])}")
        hub.start({"HUB_WS_PING_INTERVAL": str(args.idle_ping_interval)})
        f = self.f
        f["p3_sockets"] = n
        f["p3_hub_start_s"] = hub.start_seconds
        time.sleep(1)
        f["p3_rss_0_mb"] = mb(hub.rss())
        f["p3_threads_0"] = hub.threads()
        log(
            f"phase 3: hub up in {hub.start_seconds:.1f}s; {f['p3_rss_0_mb']:.0f} MB,"
            f" {f['p3_threads_0']} threads with no socket; connecting {n} sockets"
            f" ({args.connect_threads} client threads)"
        )
        child = Child(idle_client_main, hub.ws_url, tokens, args.connect_threads)
        self.children.append(child)
        connected = child.ask("connect", timeout=600)
        f["p3_connected"] = connected["connected"]
        f["p3_connect_failed"] = connected["failed"]
        f["p3_connect_s"] = connected["seconds"]
        f["p3_handshake_p50_ms"] = connected["handshake_p50_ms"]
        f["p3_handshake_max_ms"] = connected["handshake_max_ms"]
        log(
            f"phase 3: {connected['connected']}/{n} sockets open in {connected['seconds']:.1f}s"
            f" ({connected['failed']} failed{''.join(': ' + e for e in connected['errors'][:1])})"
        )
        # Connected at the HTTP level; the hub then takes each stream's lease and marks it up.
        started = time.monotonic()
        up = self.count_up(hub)
        while (up or 0) < n and time.monotonic() - started < args.up_timeout:
            time.sleep(1)
            up = self.count_up(hub)
        f["p3_all_up_s"] = (
            connected["seconds"] + time.monotonic() - started if (up or 0) >= n else None
        )
        f["p3_marked_up"] = up
        if up is None:
            self.results.notes.append(
                f"phase 3: GET /admin/platforms did not answer within 10 s (tried for"
                f" {args.up_timeout:g}s after connecting): how many are marked up is unknown"
            )
        elif up < n:
            self.results.notes.append(
                f"phase 3: {up}/{n} platforms marked up {args.up_timeout:g}s after connecting"
            )
        shown = "?" if up is None else up
        log(
            f"phase 3: {shown}/{n} marked up at the hub; holding them {args.hold:g}s (the hub"
            f" pings every {args.idle_ping_interval:g}s)"
        )
        cpu = CpuMeter(hub=hub.cpu_seconds).start()
        rss_peak, threads_peak, held_from = 0, 0, time.monotonic()
        probes: list[float] = []
        probe_failures = 0
        while time.monotonic() - held_from < args.hold:
            rss_peak = max(rss_peak, hub.rss())
            threads_peak = max(threads_peak, hub.threads())
            probe = time.monotonic()
            try:
                hub.http.get(f"{hub.url}/healthz", timeout=5).raise_for_status()
                probes.append(1000 * (time.monotonic() - probe))
            except requests.RequestException:
                probe_failures += 1
            time.sleep(max(0.0, 1 - (time.monotonic() - probe)))
            if (len(probes) + probe_failures) % 5 == 0:
                status = child.ask("status")
                log(
                    f"phase 3: {status['open']} open, {status['closed']} closed by the hub,"
                    f" hub {mb(hub.rss()):.0f} MB, {hub.threads()} threads,"
                    f" {status['pings_total']} pings received"
                )
        cpu.stop()
        f["p3_idle_cpu_percent"] = cpu.percent["hub"]
        f["p3_cpu_percent"] = cpu.percent
        f["p3_rss_mb"] = mb(hub.rss())
        f["p3_rss_peak_mb"] = mb(rss_peak)
        f["p3_threads"] = hub.threads()
        f["p3_threads_peak"] = threads_peak
        f["p3_fds"] = hub.fds()
        f["p3_rss_per_socket_kb"] = (
            1024 * (f["p3_rss_mb"] - f["p3_rss_0_mb"]) / max(connected["connected"], 1)
        )
        f["p3_healthz_p50_ms"] = percentile(probes, 50) if probes else None
        f["p3_healthz_max_ms"] = max(probes) if probes else None
        f["p3_healthz_failures"] = probe_failures
        status = child.ask("status")
        f["p3_open_after_hold"] = status["open"]
        f["p3_min_pings_per_socket"] = status["pings_min"]
        # Does every socket still answer? One notification to "$all" must reach each.
        title = f"bench-{self.run_id}"
        body = {"title": title, "body": "are you there?", "priority": 1, "to": "$all"}
        sent, deadline = time.time(), time.monotonic() + args.notify_timeout
        try:
            answer = hub.call(ADMIN_TOKEN, "POST", "/notification", body, timeout=60)
            f["p3_notification_post_ms"] = 1000 * (time.time() - sent)
            if answer.status_code != 202:
                raise RuntimeError(f"{answer.status_code} {answer.text[:200]}")
            f["p3_notification_receivers"] = answer.json().get("receivers")
        except (requests.RequestException, RuntimeError) as exc:
            self.results.notes.append(f"phase 3: POST /notification failed: {exc}")
        while True:  # until every socket has it, or --notify-timeout after the POST was sent
            status = child.ask("status")
            if status["notifications"].get(title, (0, 0, 0))[0] >= n:
                break
            if time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        count, _, last_at = status["notifications"].get(title, (0, 0, 0))
        f["p3_notified"] = count
        f["p3_notify_all_ms"] = 1000 * (last_at - sent) if count >= n else None
        f["p3_notify_last_ms"] = 1000 * (last_at - sent) if count else None
        f["p3_open_at_end"] = status["open"]
        if status["closed"]:
            kinds = ", ".join(f"{n} x {kind}" for kind, n in status["closed_kinds"].items())
            self.results.notes.append(
                f"phase 3: {status['closed']} sockets closed by the hub or cut: {kinds}"
            )
        log(
            f"phase 3: notification to $all reached {count}/{n} sockets (the last"
            f" {f['p3_notify_last_ms'] or 0:.0f} ms after the POST, answered in"
            f" {f.get('p3_notification_post_ms') or 0:.0f} ms); hub {f['p3_rss_mb']:.0f} MB,"
            f" {f['p3_threads']} threads, idle CPU {f['p3_idle_cpu_percent']:.0f}% of a core"
        )
        closing = time.monotonic()
        self.children.remove(child)
        child.stop("close")
        # The sessions end: their pusher and simple-websocket reader threads exit (2 a socket);
        # gunicorn's thread pool keeps its idle threads.
        target = f["p3_threads"] - 2 * status["open"] + 10
        last = hub.threads()
        while last > target and time.monotonic() - closing < 30:
            time.sleep(0.2)
            last = hub.threads()
        f["p3_wind_down_s"] = time.monotonic() - closing if last <= target else None
        f["p3_threads_after_close"] = last
        log(
            f"phase 3: sockets closed; hub threads {last} after"
            f" {time.monotonic() - closing:.1f}s (gunicorn's pool keeps its idle threads)"
        )
        hub.stop(wait=15)
        self.note_hub_errors(hub, "phase 3")

    def count_up(self, hub: Hub) -> int | None:
        """How many platforms the hub marks up; None if its admin listing does not answer."""
        try:
            listing = hub.platforms(timeout=10)
        except requests.RequestException:
            return None
        return sum(p["health"] == "up" for p in listing.values())

    def note_hub_errors(self, hub: Hub, phase: str) -> None:
        for kind, count in sorted(hub.errors().items(), key=lambda kv: -kv[1]):
            self.results.notes.append(f"{phase}: hub log: {count} x {kind}")
