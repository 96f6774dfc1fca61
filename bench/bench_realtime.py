"""Real-time benchmark of the hub: WebSocket throughput, latency, and 1,000 idle sockets.

Everything runs on this machine, started by the script in a temporary directory: the hub under
gunicorn (gthread, --threads 1100 --worker-connections 2000; three workers in phases 1-2, one
more than the cores, see --hub-workers; one in phase 3) on a fresh SQLite database, a fast
receiving platform for the REST platform A (``bench/receiver.py``), and the WebSocket clients
in processes of their own (websocket-client), so that neither the poster nor the clients share
a GIL with the hub or with each other. The poster uses http.client (``LeanPoster``): it shares
the two cores with the hub, and requests costs three times its CPU per call. Clocks:
``time.time()`` on both sides.

Phases (targets of issue 3):

1. throughput   A posts up to N messages (``POST /message``, closed loop, several threads, one
                keep-alive connection each; posting stops after --post-seconds) into a private
                room with W1 and W2, whose clients (one thread each) ack every event; then a
                second run where they ack cumulatively every 20 events or 100 ms. Rate =
                messages / (time from the first POST to the last frame received on both
                sockets). Target >= 600 msg/s, nothing lost, duplicated or out of order
                (texts in the hub's acceptance order, seq strictly increasing), nothing left
                pending at the hub once acked.
2. latency      an open-loop paced sender at 100 msg/s for 10 s: receive time on W1 and W2
                minus send time, p50/p99/max; target p99 <= 30 ms. Then the same at a lower
                rate (20 msg/s, 5 s) for reference.
3. idle         a second hub with 1,000 websocket platforms (I0001..., from platforms.json);
                1,000 sockets opened from one client process, held 20 s (the hub pings them
                every 8 s), then a ``POST /notification`` to "$all" must reach every one.
                Reports the time to connect, the hub's RSS (whole process tree), threads, open
                files and CPU while idle. Target: 1,000 held, every one answering.

The exceptions in the hub's log are summed up at the end (notes).

    .venv/bin/python bench/bench_realtime.py              # full run, ~3 minutes
    .venv/bin/python bench/bench_realtime.py --quick      # ~35-40 s smoke run
    .venv/bin/python bench/bench_realtime.py --phases 3 --idle 2000 --json idle.json
    .venv/bin/python bench/bench_realtime.py --hub-root /tmp/patched-copy   # try a fix
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from common import (
    Results,
    Table,
    add_hub_args,
    add_latency_args,
    add_output_args,
    log,
    make_parser,
    parse_phases,
    print_checks,
    print_notes,
    run_and_report,
)
from realtime_clients import raise_nofile
from realtime_phases import Bench

DISTURBED = 20.0  # % of a core used by processes outside the benchmark that marks a phase


def code_version(root: Path) -> str:
    """The hub's git commit, plus a digest of its Python sources (the tree may be uncommitted)."""
    digest = hashlib.sha256()
    for path in sorted([*root.glob("hub/**/*.py"), *root.glob("adapters/**/*.py")]):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        head = ""
    return f"{head or 'no git'} + sources sha256:{digest.hexdigest()[:12]}"


# --- the report -------------------------------------------------------------------------------


def report(results: Results, args: argparse.Namespace) -> None:
    f = results.figures
    table = Table(f, none="n/a", unmet="MISS")
    row = table.row
    notify_ms = 1000 * args.notify_timeout

    checks_ok = {c.phase: True for c in results.checks}
    for c in results.checks:
        checks_ok[c.phase] &= c.ok
    for label in ("ack1", f"ack{args.ack_every}"):
        key = f"p1_{label}"
        if f"{key}_msg_per_s" not in f:
            continue
        mode = "ack each" if label == "ack1" else f"ack/{args.ack_every}"
        intact = checks_ok.get(f"1 throughput {label}", False) and not f.get(f"{key}_pending_after")
        table.target(
            f"1 throughput, {mode}, msg/s end to end",
            f"{key}_msg_per_s",
            ".0f",
            ">= 600",
            lambda x: x >= 600,
        )
        table.add(
            f"1   {mode}: lost/dup/out of order, pending",
            "none" if intact else "SOME",
            "none",
            intact,
        )
        row(f"1   {mode}: POST /message 202/s", f"{key}_posts_per_s", ".0f")
        row(f"1   {mode}: last frame after last 202, s", f"{key}_lag_after_last_post_s", ".2f")
    row("2 sender's achieved rate, msg/s", "p2_achieved_rate", ".0f")
    row("2 latency p50, ms", "p2_p50_ms", ".1f")
    table.target(
        f"2 latency p99 at {f.get('p2_rate', args.rate):g} msg/s, ms",
        "p2_p99_ms",
        ".1f",
        "<= 30",
        lambda x: x <= 30,
    )
    row("2 latency max, ms", "p2_max_ms", ".1f")
    if "p2_rate" in f:
        intact = checks_ok.get(f"2 latency {f['p2_rate']:g}/s", False)
        table.add("2   lost/dup/out of order", "none" if intact else "SOME", "none", intact)
    row("2 POST /message p99, ms", "p2_post_p99_ms", ".1f")
    row("2 sender max lag behind schedule, ms", "p2_sender_max_lag_ms", ".1f")
    if "p2low_rate" in f:
        low = f"{f['p2low_rate']:g} msg/s"
        row(f"2 at {low}: achieved rate, msg/s", "p2low_achieved_rate", ".0f")
        row(f"2 at {low}: latency p50, ms", "p2low_p50_ms", ".1f")
        row(f"2 at {low}: latency p99, ms", "p2low_p99_ms", ".1f")
        row(f"2 at {low}: latency max, ms", "p2low_max_ms", ".1f")
        row(f"2 at {low}: POST /message p99, ms", "p2low_post_p99_ms", ".1f")
    if "p3_sockets" in f:
        n = f["p3_sockets"]
        held = (
            f.get("p3_connected") == n
            and f.get("p3_open_after_hold") == n
            and f.get("p3_notified") == n
            and table.met("p3_notify_all_ms", lambda x: x <= notify_ms)
        )
        target = 1000
        worst = min(f.get(k) or 0 for k in ("p3_connected", "p3_open_after_hold", "p3_notified"))
        table.add(
            "3 idle sockets held and answering",
            f"{worst}/{n}",
            f">= {target}",
            held if n >= target or not held else f"n/a (< {target})",
        )
        row("3 hub start with that many platforms, s", "p3_hub_start_s", ".1f")
        row("3 time to open them all (handshakes), s", "p3_connect_s", ".1f")
        row("3 ... platforms marked up at the hub", "p3_marked_up", "d")
        row("3 ... until all marked up at the hub, s", "p3_all_up_s", ".1f")
        row("3 handshake p50, ms", "p3_handshake_p50_ms", ".0f")
        row("3 handshake max, ms", "p3_handshake_max_ms", ".0f")
        row("3 hub RSS with no socket (tree), MB", "p3_rss_0_mb", ".0f")
        row("3 hub RSS with them open (tree), MB", "p3_rss_mb", ".0f")
        row("3 ... per socket, KB", "p3_rss_per_socket_kb", ".0f")
        row("3 hub threads with no socket", "p3_threads_0", "d")
        row("3 hub threads with them open", "p3_threads", "d")
        row("3 hub open files with them open", "p3_fds", "d")
        row("3 hub CPU while they idle, % of a core", "p3_idle_cpu_percent", ".0f")
        row("3 GET /healthz meanwhile, p50 ms", "p3_healthz_p50_ms", ".1f")
        row("3 GET /healthz meanwhile, max ms", "p3_healthz_max_ms", ".0f")
        row("3 pings received per socket (min)", "p3_min_pings_per_socket", "d")
        row("3 GET /healthz meanwhile, failed (5 s timeout)", "p3_healthz_failures", "d")
        row("3 POST /notification $all answered in, ms", "p3_notification_post_ms", ".0f")
        row("3 ... sockets it reached", "p3_notified", "d")
        table.target(
            "3 ... reached all of them after, ms",
            "p3_notify_all_ms",
            ".0f",
            f"<= {notify_ms:.0f}",
            lambda x: x <= notify_ms,
        )
        row("3 ... the last one it reached, after ms", "p3_notify_last_ms", ".0f")
        row("3 session threads gone after close, s", "p3_wind_down_s", ".1f")
        row("3 hub threads after close", "p3_threads_after_close", "d")
    row("run time, s", "run_seconds", ".0f")

    table.print()
    if results.checks:
        print_checks(
            "per socket (nothing lost, duplicated or out of order; seq strictly increasing):",
            results.checks,
        )
    cpu = [(k, v) for k, v in f.items() if k.endswith("cpu_percent") and isinstance(v, dict)]
    if cpu:
        print()
        print("CPU, % of one core, during:")
        for key, value in cpu:
            print(f"  {key[:-12]:<12} " + ", ".join(f"{n} {p:.0f}%" for n, p in value.items()))
        disturbed = [k[:-12] for k, v in cpu if v.get("others", 0) > DISTURBED]
        if disturbed:
            print(
                f"  DISTURBED: other processes used more than {DISTURBED:.0f}% of a core during"
                f" {', '.join(disturbed)}: those figures are low; run again on a quiet machine"
            )
    print_notes(results.notes)


# --- command line -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = make_parser(__doc__)
    size = parser.add_argument_group("sizes")
    size.add_argument("--messages", type=int, default=8000, help="phase 1 messages per run (8000)")
    size.add_argument("--threads", type=int, default=6, help="phase 1 poster threads (6)")
    size.add_argument(
        "--post-seconds",
        type=float,
        default=15,
        help="phase 1: stop posting after this many seconds, if --messages are not all sent (15)",
    )
    size.add_argument(
        "--ack-every",
        type=int,
        default=20,
        help="phase 1, second run: the clients ack cumulatively every N events (20) ...",
    )
    size.add_argument(
        "--ack-delay",
        type=float,
        default=0.1,
        help="... or this many seconds after the first unacked event, whichever first (0.1)",
    )
    add_latency_args(size, phase=2, rate=100, duration=10)
    size.add_argument(
        "--low-rate",
        type=float,
        default=20,
        help="phase 2 also at this lower rate, for reference (no target); 0 skips (20)",
    )
    size.add_argument("--low-duration", type=float, default=5, help="seconds at --low-rate (5)")
    size.add_argument(
        "--latency-ack-every",
        type=int,
        default=1,
        help="phase 2: the clients ack every N events (1: each one)",
    )
    size.add_argument("--warmup", type=int, default=50, help="warm-up messages per run (50)")
    size.add_argument("--idle", type=int, default=1000, help="phase 3 idle sockets (1000)")
    size.add_argument("--hold", type=float, default=20, help="phase 3 seconds held open (20)")
    size.add_argument(
        "--idle-ping-interval",
        type=float,
        default=8,
        help="phase 3 hub's HUB_WS_PING_INTERVAL, so that the hold sees pings (8)",
    )
    size.add_argument(
        "--connect-threads", type=int, default=32, help="phase 3 client threads connecting (32)"
    )
    size.add_argument(
        "--up-timeout",
        type=float,
        default=15,
        help="phase 3: wait at most this long for every platform to be marked up (15)",
    )
    size.add_argument(
        "--notify-timeout",
        type=float,
        default=20,
        help="phase 3: wait at most this long for the notification to reach every socket (20)",
    )
    run = parser.add_argument_group("run")
    run.add_argument(
        "--quick",
        action="store_true",
        help="~35 s smoke run: 3 s of posting per run, 2 s of latency, 200 idle sockets held 3 s",
    )
    run.add_argument(
        "--hub-workers",
        type=int,
        default=3,
        help="gunicorn workers of the hub in phases 1-2 (3: one more than this machine's two"
        " cores, the most messages/s of 1-5 workers, as the workers wait on SQLite's write lock;"
        " phase 3 always runs one process, the target being what one process holds)",
    )
    run.add_argument("--phases", default="1,2,3", help="phases to run, comma-separated (1,2,3)")
    run.add_argument(
        "--hub-threads", type=int, default=1100, help="gunicorn --threads, every hub (1100)"
    )
    run.add_argument(
        "--worker-connections",
        type=int,
        default=2000,
        help="gunicorn --worker-connections (2000). Gunicorn's default, 1000, counts every open"
        " socket: at 1,000 WebSockets the worker stops accepting connections, and with"
        " --threads above it HTTP keep-alive is off. 0 leaves gunicorn's default",
    )
    add_hub_args(
        run,
        env_example="HUB_LEASE_SECONDS=60",
        root_help="the hub's source tree to run (this project); a patched copy tries a fix",
    )
    add_output_args(run, waiting_for="frames")
    args = parser.parse_args(argv)
    if args.quick:
        args.messages = min(args.messages, 1000)
        args.post_seconds = min(args.post_seconds, 3)
        args.duration = min(args.duration, 2)
        args.low_duration = min(args.low_duration, 1)
        args.warmup = min(args.warmup, 20)
        args.idle = min(args.idle, 200)
        args.hold = min(args.hold, 3)
        args.idle_ping_interval = min(args.idle_ping_interval, 2)
    args.phases = parse_phases(args.phases)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    nofile = raise_nofile(max(8192, 3 * args.idle + 1024))
    workdir = Path(tempfile.mkdtemp(prefix="hub-rt-bench-"))
    version = code_version(args.hub_root)
    log(
        f"real-time benchmark: {os.cpu_count()} CPUs, Python {sys.version.split()[0]},"
        f" open files {nofile}, workdir {workdir}"
    )
    log(f"hub code: {args.hub_root} at {version}; arguments: {' '.join(sys.argv[1:]) or '(none)'}")
    started = time.monotonic()
    results = run_and_report(lambda: Bench(args, workdir), workdir, args.keep)
    if results is None:
        return 130
    results.figures["run_seconds"] = time.monotonic() - started
    report(results, args)
    if args.json:
        data = {
            "date": datetime.now().astimezone().isoformat(timespec="seconds"),
            "argv": sys.argv[1:],
            "hub_code": version,
            "cpus": os.cpu_count(),
            "figures": results.figures,
            "checks": [c.as_dict() for c in results.checks],
            "notes": results.notes,
        }
        args.json.write_text(json.dumps(data, indent=1, default=str))
        log(f"figures written to {args.json}")
    return 0 if results.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
