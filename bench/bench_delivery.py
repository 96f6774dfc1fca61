"""Delivery benchmark of the hub: throughput, direct-posting limit, latency, replay, memory.

It starts everything itself in a temporary directory: three fast receiving platforms A, B and C
(``bench/receiver.py``, one process each), and the hub on a fresh SQLite database: gunicorn
(gthread, 1 worker, 16 threads) with HUB_DELIVERY=off and ``flask hub deliver`` beside it, the
README's layout for throughput (``--no-delivery-process``: delivery inside the gunicorn worker).
Users 1 on A, B and C share a private room created by A; every message A posts goes to B and C
(2 events per message).

Phases (each checks that nothing is lost, duplicated or out of order, per receiver):

1. throughput   N messages posted as fast as the client can (closed loop, a few threads):
                202 answers/s, and events delivered/s until B and C have all 2N.
2. direct       the same client posts the same payloads straight to B and C: the limit of
                this machine without the hub, and the ratio hub/direct.
3. latency      an open-loop paced sender (fixed rate): receive time - send time, p50/p99/max.
4. replay       C is killed; messages are posted for 20 s (B keeps receiving) and the rest of
                M events queued for C in bulk; C comes back and pings: how fast the hub
                replays its queue.
5. queued       Q events queued for the down C (in bulk, straight into the hub's database
                with the hub's own routing and outbox code; or over HTTP): the hub's RSS with
                them queued; optionally their replay.

A table of CPU use per phase (hub, benchmark, rest of the machine, steal) tells whether
something else running on the machine lowered the figures.

The hub's processes (gunicorn's tree and the delivery process) are sampled every 0.2 s
(psutil) for their peak RSS, together.

    .venv/bin/python bench/bench_delivery.py            # full run, ~2.5-3.5 minutes
    .venv/bin/python bench/bench_delivery.py --quick    # ~30 s smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
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
    verdict,
)
from delivery_phases import Bench

# --- report -----------------------------------------------------------------------------------


def report(results: Results, args: argparse.Namespace) -> None:
    f = results.figures
    table = Table(f)
    row = table.row

    hub_rate = f.get("p1_messages_delivered_per_s")
    direct_rate = f.get("p2_messages_per_s")
    row("1 messages accepted (202)/s", "p1_accepted_per_s", ".0f")
    row("1 events delivered/s (B+C)", "p1_events_per_s", ".0f")
    row("1 messages delivered to both/s", "p1_messages_delivered_per_s", ".0f")
    row("1 last receipt after last 202, s", "p1_delivery_lag_s", ".2f")
    row("2 direct posting, messages to both/s", "p2_messages_per_s", ".0f")
    if hub_rate and direct_rate:
        ratio = hub_rate / direct_rate
        table.add(
            "2 ratio hub/direct", f"{ratio:.2f}", ">= 0.50", verdict(ratio, lambda x: x >= 0.5)
        )
    row("2 one in-order stream, urllib3, posts/s", "p2_one_stream_urllib3_per_s", ".0f")
    row("2 one in-order stream, http.client, posts/s", "p2_one_stream_http_client_per_s", ".0f")
    row("2 one in-order stream, hub's adapter, posts/s", "p2_one_stream_rest_adapter_per_s", ".0f")
    row("3 rate the sender achieved, msg/s", "p3_achieved_rate", ".0f")
    row("3 latency p50, ms", "p3_p50_ms", ".1f")
    table.target(
        f"3 latency p99 at {f.get('p3_rate', args.rate):g} msg/s, ms",
        "p3_p99_ms",
        ".1f",
        "< 50",
        lambda x: x < 50,
    )
    row("3 latency max, ms", "p3_max_ms", ".1f")
    row("3 POST /message p99, ms", "p3_post_p99_ms", ".1f")
    row("3 sender max lag behind schedule, ms", "p3_sender_max_lag_ms", ".1f")
    row("4 accepted/s with C down (HTTP part)", "p4_accepted_per_s_c_down", ".0f")
    row("4 events queued for C: posted", "p4_posted", "d")
    row("4 events queued for C: in bulk", "p4_bulk_queued", "d")
    table.target(
        "4 replay, events/s", "p4_replay_events_per_s", ".0f", ">= 2000", lambda x: x >= 2000
    )
    row("4 first replayed event after /ping, ms", "p4_first_event_after_ping_ms", ".0f")
    row("5 events queued", "p5_queued", "d")
    row(f"5 time to queue them ({f.get('p5_queue_method', '')}), s", "p5_queue_seconds", ".1f")
    table.target(
        "5 hub RSS with them queued, MB", "p5_rss_queued_mb", ".0f", "< 200", lambda x: x < 200
    )
    row("5 GET /admin/platforms with them queued, ms", "p5_admin_platforms_ms", ".0f")
    row("5 replay of them, events/s", "p5_replay_events_per_s", ".0f")
    row("5 hub RSS peak during that replay, MB", "p5_rss_peak_replay_mb", ".0f")
    row("hub RSS peak over the run (tree), MB", "rss_peak_mb", ".0f")
    row("hub RSS peak, largest process, MB", "rss_worker_peak_mb", ".0f")
    row("run time, s", "run_seconds", ".0f")

    table.print()
    if results.cpu:
        print()
        print(
            f"CPU, in cores (this machine has {os.cpu_count()}): hub / bench+receivers /"
            " rest of the machine / hypervisor steal"
        )
        busy = False
        for phase, c in results.cpu.items():
            flag = ""
            if c["other"] > 0.2:
                flag, busy = "  <- something else is running", True
            print(
                f"  {phase:<11} {c['hub']:5.2f} / {c['bench']:5.2f} / {c['other']:5.2f}"
                f" / {c['steal']:5.2f}{flag}"
            )
        if busy:
            print("  => other processes took CPU during the run: these figures are low")
    print_checks("nothing lost, nothing out of order:", results.checks)
    all_ok = all(c.ok for c in results.checks)
    print(
        f"  => {'nothing lost, nothing out of order' if all_ok else 'LOSS, DUPLICATES OR DISORDER'}"
    )
    print_notes(results.notes)


# --- command line -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = make_parser(__doc__)
    size = parser.add_argument_group("sizes")
    size.add_argument("--messages", type=int, default=3000, help="phase 1 messages (3000)")
    size.add_argument(
        "--direct-messages", type=int, help="phase 2 messages posted directly (default: --messages)"
    )
    size.add_argument(
        "--threads",
        type=int,
        default=4,
        help="client threads of phases 1, 2 and 4, closed loop (4)",
    )
    add_latency_args(size, phase=3, rate=200, duration=10)
    size.add_argument(
        "--stream-seconds",
        type=float,
        default=1.5,
        help="phase 2: seconds of each one-stream ceiling measurement; 0 skips (1.5)",
    )
    size.add_argument(
        "--replay",
        type=int,
        default=10000,
        help="phase 4 events queued for C, then replayed (10000)",
    )
    size.add_argument(
        "--queued", type=int, default=100000, help="phase 5 events queued; 0 skips (100000)"
    )
    size.add_argument(
        "--replay-post-seconds",
        type=float,
        default=20,
        help="phase 4: POST /message for at most this long (B receives them while C is down);"
        " the rest of --replay is queued in bulk (20)",
    )
    size.add_argument(
        "--queue-method",
        choices=("bulk", "http"),
        default="bulk",
        help="phase 5: queue in bulk, straight into the hub's database with the hub's own"
        " routing and outbox code, 2,000 messages a transaction (fast; default), or by"
        " POST /message (as slow as the hub accepts)",
    )
    size.add_argument(
        "--replay-queued",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="phase 5: also replay the queued events to C and time it (off)",
    )
    size.add_argument(
        "--warmup", type=int, default=100, help="warm-up messages before phase 1 (100)"
    )
    run = parser.add_argument_group("run")
    run.add_argument(
        "--quick",
        action="store_true",
        help="~30 s smoke run: 400 messages, 3 s of latency, replay 1000, no phase 5",
    )
    run.add_argument(
        "--phases",
        default="1,2,3,4,5",
        help="phases to run, comma-separated; setup always runs (1,2,3,4,5)",
    )
    run.add_argument("--hub-threads", type=int, default=16, help="gunicorn --threads (16)")
    run.add_argument(
        "--hub-workers", type=int, default=1, help="gunicorn -w: web server processes (1)"
    )
    run.add_argument(
        "--delivery-process",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run gunicorn with HUB_DELIVERY=off and `flask hub deliver` beside it, the"
        " README's layout for throughput (on); --no-delivery-process: delivery inside the"
        " gunicorn worker",
    )
    add_hub_args(
        run,
        env_example="HUB_DELIVERY_BATCH=500",
        root_help="the hub's source tree to run, e.g. a `git archive` snapshot (this project)",
    )
    run.add_argument(
        "--wsgi-app",
        default="wsgi:app",
        metavar="MODULE:APP",
        help="what gunicorn serves, from the project root (wsgi:app); with --hub-env"
        " PYTHONPATH=... it can be a patched copy, to try a fix",
    )
    add_output_args(run, waiting_for="deliveries")
    args = parser.parse_args(argv)
    if args.quick:
        args.messages = min(args.messages, 400)
        args.duration = min(args.duration, 3)
        args.replay = min(args.replay, 1000)
        args.replay_post_seconds = min(args.replay_post_seconds, 4)
        args.stream_seconds = min(args.stream_seconds, 1)
        args.queued = 0
        args.warmup = min(args.warmup, 20)
    if args.direct_messages is None:
        args.direct_messages = args.messages
    args.phases = parse_phases(args.phases)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    log(
        f"delivery benchmark: {os.cpu_count()} CPUs, Python {sys.version.split()[0]},"
        f" workdir {workdir}"
    )
    results = run_and_report(lambda: Bench(args, workdir), workdir, args.keep)
    if results is None:
        return 130
    report(results, args)
    if args.json:
        data = {
            "figures": results.figures,
            "cpu": results.cpu,
            "checks": [c.as_dict() for c in results.checks],
        }
        args.json.write_text(json.dumps(data, indent=1, default=str))
    return 0 if results.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
