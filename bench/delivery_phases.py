"""The phases of the delivery benchmark (``bench_delivery.py``), run by ``Bench.run``.

Setup: receivers A, B and C, the hub, users 1 on each, room 1 of the three and room 2 of A and
C, warm-up messages. Then 1 throughput, 2 direct (``delivery_direct.py``), 3 latency, 4 replay
and 5 queued; after each, every receiver's messages of the phase are checked.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bulk_queue import bulk_queue
from common import (
    Check,
    Hub,
    LoadSampler,
    MemorySampler,
    Receiver,
    Results,
    Sent,
    accepted,
    check,
    log,
    make_texts,
    percentile,
    post_messages,
)
from delivery_direct import one_stream_rates, post_direct

ADMIN_TOKEN = "bench-admin-token"
TOKENS = {"A": "bench-token-A", "B": "bench-token-B", "C": "bench-token-C"}


def wait_delivered(
    expected: dict[Receiver, int], label: str, stall_timeout: float, every: float = 2.0
) -> bool:
    """Wait until each receiver's current process has at least its expected message count."""
    last_print = time.monotonic()
    last_total, last_progress = -1, time.monotonic()
    while True:
        counts = {r: r.count() for r in expected}
        if all(counts[r] >= n for r, n in expected.items()):
            return True
        total = sum(counts.values())
        now = time.monotonic()
        if total != last_total:
            last_total, last_progress = total, now
        elif now - last_progress > stall_timeout:
            log(f"{label}: no progress for {stall_timeout:.0f}s; giving up the wait")
            return False
        if now - last_print >= every:
            shown = ", ".join(f"{r.name} {counts[r]}/{n}" for r, n in expected.items())
            log(f"{label}: delivered {shown}")
            last_print = now
        time.sleep(0.05)


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.run_id = uuid.uuid4().hex[:6]
        self.receivers = {name: Receiver(name, TOKENS[name], workdir) for name in ("A", "B", "C")}
        self.hub = Hub(
            workdir,
            [r.entry(i) for i, r in enumerate(self.receivers.values(), start=1)],
            admin_token=ADMIN_TOKEN,
            root=args.hub_root,
            hub_env=args.hub_env,
            threads=args.hub_threads,
            workers=args.hub_workers,
            app=args.wsgi_app,
            delivery_process=args.delivery_process,
        )
        self.memory: MemorySampler | None = None
        self.load: LoadSampler | None = None
        self.results = Results()
        self.cpu = self.results.cpu

    @property
    def b(self) -> Receiver:
        return self.receivers["B"]

    @property
    def c(self) -> Receiver:
        return self.receivers["C"]

    def prefix(self, phase: str) -> str:
        return f"{self.run_id}-{phase}-"

    def delivered_since(self, base: dict[Receiver, int]) -> str:
        return ", ".join(f"{r.name} {r.count() - n}" for r, n in base.items()) + " delivered"

    def figure(self, name: str, value: Any) -> None:
        self.results.figures[name] = value

    def texts(self, phase: str, count: int) -> list[Sent]:
        # Same length for every phase, so payload sizes compare.
        return make_texts(self.prefix(phase), count, " bench message")

    def post(
        self,
        items: list[Sent],
        threads: int,
        progress: Callable[[int], str],
        rate: float | None = None,
        room: int = 1,
        seconds: float | None = None,
    ) -> None:
        """POST /message from A into ``room`` for every item (``requests`` clients)."""
        post_messages(
            self.hub.url,
            TOKENS["A"],
            items,
            threads,
            rate=rate,
            room=room,
            seconds=seconds,
            progress=progress,
        )

    def check(
        self, phase: str, receiver: Receiver, prefix: str, order: list[str], ordered: bool = True
    ) -> Check:
        """What ``receiver`` got of a phase, against the order the hub accepted."""
        got = [m[1] for m in receiver.phase(prefix)]
        return check(phase, receiver.name, got, order, ordered)

    def log_tails(self) -> list[str]:
        return ["hub log tail:\n" + self.hub.log_tail()]

    # setup

    def setup(self) -> None:
        for receiver in self.receivers.values():
            receiver.start()
        log(
            "receivers A, B, C up on ports "
            + ", ".join(str(r.port) for r in self.receivers.values())
        )
        started = time.monotonic()
        self.hub.start()
        log(f"hub up on port {self.hub.port} in {time.monotonic() - started:.1f}s ({self.workdir})")
        self.memory = MemorySampler(self.hub.pids())
        self.memory.start()
        self.load = LoadSampler(
            self.hub.pids(),
            lambda: {r.proc.pid for r in self.receivers.values() if r.proc is not None},
        )
        self.load.start()
        for name, user in (("A", "alice"), ("B", "bob"), ("C", "carol")):
            self.hub.post(TOKENS[name], "/user", {"id": 1, "name": user})
        room = {
            "id": 1,
            "name": "bench",
            "type": "private",
            "users": [{"A": [1]}, {"B": [1]}, {"C": [1]}],
        }
        self.hub.post(TOKENS["A"], "/room", room)
        # A room of A and C only: its messages are one event each, for C (phases 4 and 5).
        room = {"id": 2, "name": "bench-ac", "type": "private", "users": [{"A": [1]}, {"C": [1]}]}
        self.hub.post(TOKENS["A"], "/room", room)
        # Warm up: connections, code paths, and the payload sample of the direct phase.
        items = self.texts("w", self.args.warmup)
        self.post(items, self.args.threads, lambda d: f"warm-up: {d}")
        self._require_accepted("warm-up", items)
        base = {r: 0 for r in (self.b, self.c)}
        if not wait_delivered({r: base[r] + len(items) for r in base}, "warm-up", 60):
            raise RuntimeError(
                "the warm-up messages were not delivered; see " + str(self.hub.log_path)
            )
        log(f"setup done: users, room, {len(items)} warm-up messages delivered to B and C")

    def _require_accepted(self, label: str, items: list[Sent]) -> list[Sent]:
        ok = accepted(items)
        failed = [i for i in items if i.status != 202]
        if failed:
            sample = failed[0]
            note = (
                f"{label}: {len(failed)} of {len(items)} POSTs not accepted"
                f" (first: {sample.status} {sample.error})"
            )
            log(note)
            self.results.notes.append(note)
        return ok

    # phase 1

    def throughput(self) -> None:
        n = self.args.messages
        log(
            f"phase 1 - hub throughput: {n} messages, {self.args.threads} client threads,"
            " closed loop"
        )
        prefix = self.prefix("p1")
        items = self.texts("p1", n)
        base = {r: r.count() for r in (self.b, self.c)}
        self.post(
            items,
            self.args.threads,
            lambda d: f"phase 1: {d}/{n} posted; {self.delivered_since(base)}",
        )
        ok = self._require_accepted("phase 1", items)
        first = min(i.sent for i in items)
        last_ack = max(i.answered for i in items)
        log(f"phase 1: {len(ok)} accepted in {last_ack - first:.2f}s; waiting for delivery")
        done = wait_delivered(
            {r: base[r] + len(ok) for r in base}, "phase 1", self.args.stall_timeout
        )
        order = [i.text for i in ok]
        received = [m for r in (self.b, self.c) for m in r.phase(prefix)]
        last_receipt = max((m[0] for m in received), default=float("nan"))
        self.results.checks += [
            self.check("throughput", r, prefix, order) for r in (self.b, self.c)
        ]
        accept_rate = len(ok) / (last_ack - first)
        events_rate = len(received) / (last_receipt - first)
        self.figure("p1_messages", n)
        self.figure("p1_accept_seconds", last_ack - first)
        self.figure("p1_accepted_per_s", accept_rate)
        self.figure("p1_delivery_seconds", last_receipt - first)
        self.figure("p1_events_per_s", events_rate)
        self.figure("p1_messages_delivered_per_s", events_rate / 2)
        self.figure("p1_delivery_lag_s", last_receipt - last_ack)
        self.figure("p1_complete", done)
        log(
            f"phase 1: {accept_rate:.0f} messages accepted/s; {events_rate:.0f} events delivered/s"
            f" ({events_rate / 2:.0f} messages/s to both); last receipt"
            f" {last_receipt - last_ack:.2f}s after the last 202"
        )

    # phase 2

    def direct(self) -> None:
        n = self.args.direct_messages
        log(
            f"phase 2 - direct posting to B and C: {n} messages, {self.args.threads} client threads"
        )
        prefix = self.prefix("p2")
        sample = self.b.stats().get("sample")
        template = json.loads(sample) if sample else {"text": ""}
        items = self.texts("p2", n)
        base = {r: r.count() for r in (self.b, self.c)}
        body_size, errors = post_direct([self.b, self.c], items, self.args.threads, template)
        wait_delivered({r: base[r] + n for r in base}, "phase 2", self.args.stall_timeout)
        first = min(i.sent for i in items)
        last = max(i.answered for i in items)
        rate = n / (last - first)
        order = [i.text for i in items]
        self.results.checks += [
            self.check("direct", r, prefix, order, ordered=False) for r in (self.b, self.c)
        ]
        self.figure("p2_messages", n)
        self.figure("p2_seconds", last - first)
        self.figure("p2_messages_per_s", rate)
        self.figure("p2_events_per_s", 2 * rate)
        self.figure("p2_errors", errors)
        self.figure("p2_body_bytes", body_size)
        sample_len = len(sample.encode()) if sample else None
        self.figure("hub_body_bytes", sample_len)
        log(
            f"phase 2: {rate:.0f} messages/s to both B and C ({2 * rate:.0f} posts/s);"
            f" body {body_size or '?'} bytes (the hub's: {sample_len})"
        )
        if self.args.stream_seconds > 0:
            rates = one_stream_rates(
                self.hub.root, self.b, template, self.args.stream_seconds, self.prefix("p2s")
            )
            for client, value in rates.items():
                self.figure(f"p2_one_stream_{client}_per_s", value)
            log(
                f"phase 2: one in-order stream to B: {rates['urllib3']:.0f} posts/s with urllib3,"
                f" {rates['http_client']:.0f} posts/s with http.client,"
                f" {rates['rest_adapter']:.0f} posts/s with the hub's RestAdapter"
            )

    # phase 3

    def latency(self) -> None:
        rate, duration = self.args.rate, self.args.duration
        n = max(1, round(rate * duration))
        log(
            f"phase 3 - latency at {rate:g} msg/s for {duration:g}s ({n} messages, open loop,"
            f" {self.args.latency_threads} sender threads)"
        )
        prefix = self.prefix("p3")
        items = self.texts("p3", n)
        base = {r: r.count() for r in (self.b, self.c)}
        self.post(
            items,
            self.args.latency_threads,
            lambda d: f"phase 3: {d}/{n} posted; {self.delivered_since(base)}",
            rate=rate,
            seconds=self.args.duration * 3,
        )
        unsent = [i for i in items if not i.sent]
        if unsent:
            note = (
                f"phase 3: the sender fell behind; {len(unsent)} of {n} messages not sent by"
                f" {3 * duration:g}s (the hub answers slower than {rate:g} msg/s)"
            )
            log(note)
            self.results.notes.append(note)
            items = [i for i in items if i.sent]
        ok = self._require_accepted("phase 3", items)
        done = wait_delivered(
            {r: base[r] + len(ok) for r in base}, "phase 3", self.args.stall_timeout
        )
        by_text = {i.text: i for i in ok}
        latencies: list[float] = []
        from_schedule: list[float] = []
        for receiver in (self.b, self.c):
            for received_at, text, _ in receiver.phase(prefix):
                item = by_text.get(text)
                if item is not None:
                    latencies.append(received_at - item.sent)
                    from_schedule.append(received_at - item.scheduled)
        self.results.checks += [
            self.check("latency", r, prefix, [i.text for i in ok]) for r in (self.b, self.c)
        ]
        achieved = len(items) / (max(i.sent for i in items) - min(i.sent for i in items) or 1)
        lag = max(i.sent - i.scheduled for i in items)
        answer_ms = [1000 * (i.answered - i.sent) for i in items]
        self.figure("p3_rate", rate)
        self.figure("p3_achieved_rate", achieved)
        self.figure("p3_sender_max_lag_ms", 1000 * lag)
        self.figure("p3_post_p50_ms", percentile(answer_ms, 50))
        self.figure("p3_post_p99_ms", percentile(answer_ms, 99))
        self.figure("p3_complete", done)
        if latencies:
            ms = [1000 * x for x in latencies]
            self.figure("p3_p50_ms", percentile(ms, 50))
            self.figure("p3_p90_ms", percentile(ms, 90))
            self.figure("p3_p99_ms", percentile(ms, 99))
            self.figure("p3_max_ms", max(ms))
            self.figure("p3_mean_ms", statistics.fmean(ms))
            self.figure(
                "p3_p99_from_schedule_ms", percentile([1000 * x for x in from_schedule], 99)
            )
            log(
                f"phase 3: end-to-end latency p50 {percentile(ms, 50):.1f} ms,"
                f" p99 {percentile(ms, 99):.1f} ms,"
                f" max {max(ms):.1f} ms over {len(ms)} events; POST /message p50"
                f" {percentile(answer_ms, 50):.1f} ms, p99 {percentile(answer_ms, 99):.1f} ms;"
                f" sender lag max {1000 * lag:.1f} ms"
            )

    # phase 4

    def wait_queue_depth(self, name: str, depth: int, timeout: float) -> float:
        """Wait until the admin view shows ``depth`` events queued for ``name``; return when."""
        started = time.monotonic()
        last_print = started
        while True:
            view = self.hub.platforms()[name]
            if view["queueDepth"] >= depth:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"{name}'s queueDepth stays at {view['queueDepth']} (< {depth})")
            if time.monotonic() - last_print > 2:
                log(f"waiting for {name} queueDepth {view['queueDepth']}/{depth}")
                last_print = time.monotonic()
            time.sleep(0.2)

    def ping(self, platform: str) -> float:
        started = time.time()
        answer = self.hub.call(TOKENS[platform], "POST", "/ping", {})
        if answer.status_code != 200:
            raise RuntimeError(f"POST /ping as {platform}: {answer.status_code} {answer.text}")
        log(
            f"POST /ping as {platform}: {answer.json().get('message')}"
            f" ({1000 * (time.time() - started):.0f} ms)"
        )
        return started

    def replay(self) -> None:
        m = self.args.replay
        log(
            f"phase 4 - replay: C killed, {m} events queued for it (POST /message for up to"
            f" {self.args.replay_post_seconds:g}s, B receiving them; the rest queued in bulk),"
            " then C restarted and pings"
        )
        prefix = self.prefix("p4")
        self.c.kill()
        items = self.texts("p4", m)
        base_b = self.b.count()
        self.post(
            items,
            self.args.threads,
            lambda d: f"phase 4: {d} posted; B {self.b.count() - base_b} delivered, C down",
            seconds=self.args.replay_post_seconds,
        )
        posted = [i for i in items if i.sent]
        ok = self._require_accepted("phase 4", posted)
        if posted:
            first = min(i.sent for i in posted)
            last_ack = max(i.answered for i in posted)
            rate = len(ok) / (last_ack - first)
            self.figure("p4_posted", len(posted))
            self.figure("p4_accepted_per_s_c_down", rate)
            log(f"phase 4: {len(ok)} accepted over HTTP in {last_ack - first:.1f}s ({rate:.0f}/s)")
        rest = [i for i in items if not i.sent]
        if rest:
            took, method = self.queue_for_c(rest, "phase 4")
            self.figure("p4_bulk_queued", len(rest))
            log(f"phase 4: {len(rest)} more queued for C ({method}) in {took:.1f}s")
        wait_delivered({self.b: base_b + len(ok)}, "phase 4 (B)", self.args.stall_timeout)
        b_check = self.check("replay", self.b, prefix, [i.text for i in ok])
        expected = accepted(items)
        waited = self.wait_queue_depth("C", len(expected), 120)
        view = self.hub.platforms()["C"]
        log(
            f"phase 4: C queueDepth {view['queueDepth']} (health {view['health']},"
            f" next attempt {view['nextAttemptAt']}) after {waited:.1f}s more"
        )
        self.c.start()
        pinged = self.ping("C")
        done = wait_delivered(
            {self.c: len(expected)}, "phase 4 (C replay)", self.args.stall_timeout
        )
        received = self.c.phase(prefix)
        last_receipt = max((m[0] for m in received), default=float("nan"))
        first_receipt = min((m[0] for m in received), default=float("nan"))
        self.results.checks += [
            b_check,
            self.check("replay", self.c, prefix, [i.text for i in expected]),
        ]
        rate = len(received) / (last_receipt - pinged)
        self.figure("p4_events", len(expected))
        self.figure("p4_replay_seconds", last_receipt - pinged)
        self.figure("p4_first_event_after_ping_ms", 1000 * (first_receipt - pinged))
        self.figure("p4_replay_events_per_s", rate)
        self.figure("p4_complete", done)
        log(
            f"phase 4: C got {len(received)} queued events in {last_receipt - pinged:.2f}s after"
            f" the ping ({rate:.0f} events/s; first one after"
            f" {1000 * (first_receipt - pinged):.0f} ms)"
        )

    # phase 5

    def post_for_c(self, items: list[Sent], label: str) -> None:
        """POST /message into room 2 (A and C): one event each, for C."""
        n = len(items)
        self.post(items, self.args.threads, lambda d: f"{label}: {d}/{n} posted", room=2)
        self._require_accepted(label, items)

    def queue_for_c(self, items: list[Sent], label: str) -> tuple[float, str]:
        """Queue one event per item for C, in bulk; over HTTP if the hub's code no longer fits."""
        started = time.monotonic()
        try:
            took = bulk_queue(
                self.hub.root, self.hub.db_url, items, room=2, receivers=["C"], label=label
            )
            return took, "bulk"
        except Exception as exc:
            note = f"{label}: bulk queueing failed ({type(exc).__name__}: {exc}); POSTing instead"
            log(note)
            self.results.notes.append(note)
            self.post_for_c([i for i in items if i.status != 202], label)
            return time.monotonic() - started, "http"

    def queued(self) -> None:
        q = self.args.queued
        log(f"phase 5 - {q} events queued for a down C ({self.args.queue_method})")
        prefix = self.prefix("p5")
        self.c.kill()
        self.memory.start_window()
        before = self.memory.sample()
        items = self.texts("p5", q)
        started = time.monotonic()
        if self.args.queue_method == "http":
            self.post_for_c(items, "phase 5")
        else:
            _, method = self.queue_for_c(items, "phase 5")
            self.figure("p5_queue_method", method)
        took = time.monotonic() - started
        expected = accepted(items)
        waited = self.wait_queue_depth("C", len(expected), 120)
        admin_started = time.monotonic()
        view = self.hub.platforms()["C"]
        admin_ms = 1000 * (time.monotonic() - admin_started)
        time.sleep(1.0)  # the hub at rest with its queue
        rss = self.memory.sample()
        self.figure("p5_queued", view["queueDepth"])
        self.figure("p5_queue_seconds", took)
        self.results.figures.setdefault("p5_queue_method", self.args.queue_method)
        self.figure("p5_admin_platforms_ms", admin_ms)
        self.figure("p5_rss_before_mb", before / 2**20)
        self.figure("p5_rss_queued_mb", rss / 2**20)
        self.figure("p5_rss_peak_while_queueing_mb", self.memory.window_peak / 2**20)
        log(
            f"phase 5: {view['queueDepth']} events queued for C in {took:.1f}s"
            f" (+{waited:.1f}s to show); hub RSS {rss / 2**20:.0f} MB (was"
            f" {before / 2**20:.0f} MB); GET /admin/platforms {admin_ms:.0f} ms"
        )
        self.c.start()
        if self.args.replay_queued:
            self.memory.start_window()
            pinged = self.ping("C")
            done = wait_delivered(
                {self.c: len(expected)}, "phase 5 (C replay)", self.args.stall_timeout
            )
            received = self.c.phase(prefix)
            last_receipt = max((m[0] for m in received), default=float("nan"))
            rate = len(received) / (last_receipt - pinged)
            self.results.checks.append(
                self.check("queued", self.c, prefix, [i.text for i in expected])
            )
            self.figure("p5_replay_events_per_s", rate)
            self.figure("p5_rss_peak_replay_mb", self.memory.window_peak / 2**20)
            self.figure("p5_replay_complete", done)
            log(
                f"phase 5: replayed {len(received)} events in {last_receipt - pinged:.1f}s"
                f" ({rate:.0f}/s); hub RSS peak during the replay"
                f" {self.memory.window_peak / 2**20:.0f} MB"
            )

    # the whole run

    def run(self) -> Results:
        started = time.monotonic()
        phases = self.args.phases
        steps = [
            (1, "throughput", self.throughput),
            (2, "direct", self.direct),
            (3, "latency", self.latency),
            (4, "replay", self.replay),
            (5, "queued", self.queued),
        ]
        try:
            self.setup()
            for number, name, step in steps:
                if number not in phases or (number == 5 and self.args.queued <= 0):
                    continue
                self.load.start_window()
                try:
                    step()
                finally:
                    self.cpu[name] = self.load.cores()
        finally:
            if self.load is not None:
                self.cpu["whole run"] = self.load.cores(window=False)
                self.load.stop()
            if self.memory is not None:
                self.memory.sample()
                self.memory.stop()
                self.figure("rss_peak_mb", self.memory.peak / 2**20)
                self.figure("rss_worker_peak_mb", self.memory.worker_peak / 2**20)
                self.figure("rss_samples", self.memory.samples)
            self.figure("run_seconds", time.monotonic() - started)
        return self.results

    def close(self) -> None:
        self.hub.stop(wait=15)
        for receiver in self.receivers.values():
            receiver.stop()
